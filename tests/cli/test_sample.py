"""The sampling CLI: PNG and .npz outputs; the same seed gives the same images whatever the count or batch size."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.helpers import run_cli, tiny_config
from dcgan_jax import train
from dcgan_jax.training import state as train_state


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("sample_run"))
    train.train_and_evaluate(tiny_config(num_train_steps=4), path)
    return path


def test_png_grid(workdir, tmp_path):
    output = str(tmp_path / "grid.png")
    result = run_cli("dcgan_jax.sample", f"--workdir={workdir}", "--num_samples=9", f"--output={output}")
    assert result.returncode == 0, result.stderr[-2000:]
    grid = np.asarray(Image.open(output))
    assert grid.shape == (3 * 34 + 2, 3 * 34 + 2)  # 3x3 grid of 32 px images with 2 px padding, grayscale


def test_npz_is_independent_of_count_and_batch_size(workdir, tmp_path):
    small, large = str(tmp_path / "small.npz"), str(tmp_path / "large.npz")
    assert run_cli("dcgan_jax.sample", f"--workdir={workdir}", "--num_samples=5", "--batch_size=2",
                   f"--output={small}", "--seed=7").returncode == 0
    assert run_cli("dcgan_jax.sample", f"--workdir={workdir}", "--num_samples=12", "--batch_size=12",
                   f"--output={large}", "--seed=7").returncode == 0
    a, b = np.load(small), np.load(large)
    assert a["images"].dtype == np.uint8 and a["images"].shape == (5, 32, 32, 1)
    np.testing.assert_array_equal(a["z"], b["z"][:5])
    np.testing.assert_array_equal(a["images"], b["images"][:5])


def test_batch_stats_mode_depends_on_batch_mates(workdir, tmp_path):
    outs = []
    for batch_size in (2, 6):
        out = str(tmp_path / f"bs{batch_size}.npz")
        result = run_cli("dcgan_jax.sample", f"--workdir={workdir}", "--num_samples=6", f"--batch_size={batch_size}",
                         f"--output={out}", "--batch_stats")
        assert result.returncode == 0, result.stderr[-2000:]
        outs.append(np.load(out)["images"])
    assert np.any(outs[0] != outs[1])


def test_errors_are_one_line(tmp_path):
    result = run_cli("dcgan_jax.sample", f"--workdir={tmp_path}/empty", "--output=x.png")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "no checkpoints" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = run_cli("dcgan_jax.sample", f"--workdir={tmp_path}", "--output=x.jpg")
    assert result.returncode != 0 and ".png" in result.stderr


def _with_saved_upsample(workdir, tmp_path, value):
    """A copy of the trained workdir whose checkpoints' saved configs say upsample=`value`."""
    copy = tmp_path / f"run_{value}"
    shutil.copytree(workdir, copy)
    for metadata in copy.glob("checkpoints/*/config/metadata"):
        saved = json.loads(metadata.read_text())
        saved["upsample"] = value
        metadata.write_text(json.dumps(saved))
    return copy


def test_checkpoints_from_older_versions(workdir, tmp_path):
    """A retired upsample form (same math) still samples; a config that cannot build the models is one line."""
    old = _with_saved_upsample(workdir, tmp_path, "subpixel_gemm")
    result = run_cli("dcgan_jax.sample", f"--workdir={old}", "--num_samples=4", f"--output={tmp_path}/old.png")
    assert result.returncode == 0, result.stderr[-2000:]

    bad = _with_saved_upsample(workdir, tmp_path, "bogus")
    before = {p: p.read_bytes() for p in bad.rglob("*") if p.is_file()}
    result = run_cli("dcgan_jax.sample", f"--workdir={bad}", f"--output={tmp_path}/bad.png")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "upsample='bogus'" in last and "cannot build the models" in last
    assert {p: p.read_bytes() for p in bad.rglob("*") if p.is_file()} == before
