"""What a run reports: TensorBoard event files that TensorBoard reads, metrics.jsonl rows, sample grids; written by
process 0 only, and without importing TensorFlow or PyTorch."""

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dcgan_jax.training import reporting
from tests.helpers import REPO, tiny_config

TRAIN = {
    2: {"d_loss": 1.25, "g_loss": 0.75, "d_real": 0.5, "d_fake": 0.25},
    4: {"d_loss": 1.0, "g_loss": 1.5, "d_real": 0.625, "d_fake": 0.125},
}
EVAL = {"fid": 12.5, "kid": 0.03}


def _samples(count=4, size=8):
    """Model-range images in [-1, 1], as G produces them."""
    return np.random.default_rng(0).uniform(-1, 1, (count, size, size, 1)).astype(np.float32)


def _report(workdir):
    config = tiny_config()
    reporter = reporting.Reporter(str(workdir), 0, config.num_train_steps, config.batch_size)
    for step, metrics in TRAIN.items():
        reporter.scalars(step, metrics)
    reporter.evaluation(4, EVAL)
    reporter.samples(4, _samples())
    reporter.close()


def _events(workdir):
    accumulator = EventAccumulator(
        os.path.join(str(workdir), "tensorboard"), size_guidance={"scalars": 0, "images": 0}
    )
    accumulator.Reload()
    return accumulator


def test_tensorboard_reads_the_scalars_and_the_sample_grid(tmp_path):
    _report(tmp_path)
    events = _events(tmp_path)
    tags = events.Tags()
    expected = (
        {f"train/{k}" for k in TRAIN[2]} | {"train/images_per_sec"} | {f"eval/{k}" for k in EVAL}
    )
    assert set(tags["scalars"]) == expected
    for key in TRAIN[2]:
        scalars = events.Scalars(f"train/{key}")
        assert [s.step for s in scalars] == [2, 4]
        assert [s.value for s in scalars] == pytest.approx([TRAIN[2][key], TRAIN[4][key]])
    for key, value in EVAL.items():
        assert [(s.step, pytest.approx(s.value)) for s in events.Scalars(f"eval/{key}")] == [
            (4, value)
        ]
    assert all(s.value > 0 for s in events.Scalars("train/images_per_sec"))

    assert tags["images"] == ["samples"]
    (image,) = events.Images("samples")
    grid = np.asarray(Image.open(tmp_path / "samples" / "step_00000004.png"))
    assert image.step == 4 and (image.height, image.width) == grid.shape[:2]
    np.testing.assert_array_equal(
        np.asarray(Image.open(io.BytesIO(image.encoded_image_string))), grid
    )


def test_metrics_jsonl_holds_one_row_per_report(tmp_path):
    _report(tmp_path)
    with open(tmp_path / "metrics.jsonl") as f:
        rows = [json.loads(line) for line in f]
    assert rows == [
        {"step": 2, **TRAIN[2]},
        {"step": 4, **TRAIN[4]},
        {"step": 4, **{f"eval_{k}": v for k, v in EVAL.items()}},
    ]
    assert os.path.exists(tmp_path / "loss_curve.png")


def test_only_process_0_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(reporting.jax, "process_index", lambda: 1)
    _report(tmp_path)
    assert os.listdir(tmp_path) == []


def test_reporting_imports_neither_tensorflow_nor_torch(tmp_path):
    # Both are installed here (the tfds and bench extras): writing must not pull them in, as tensorboard's own
    # EventFileWriter and flax's and tensorboardX's writers do.
    script = textwrap.dedent("""
        import sys
        import numpy as np
        from dcgan_jax.training import reporting

        reporter = reporting.Reporter(sys.argv[1], 0, 10, 4)
        reporter.scalars(1, {"d_loss": 1.0, "g_loss": 1.0, "d_real": 0.5, "d_fake": 0.5})
        reporter.evaluation(1, {"fid": 3.0})
        reporter.samples(1, np.zeros((4, 8, 8, 1), np.float32))
        reporter.close()
        loaded = [name for name in ("tensorflow", "torch") if sys.modules.get(name) is not None]
        assert not loaded, loaded
        print("OK")
    """)
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("OK")
    assert os.listdir(tmp_path / "tensorboard")
