"""`python -m dcgan_jax.main` end to end, and its one-line errors for bad input."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from tests.helpers import TINY_FLAGS, run_cli


@pytest.mark.slow
def test_short_digits_run_trains_writes_outputs_and_resumes(tmp_path):
    workdir = str(tmp_path / "run")
    result = run_cli("dcgan_jax.main", f"--workdir={workdir}", *TINY_FLAGS, "--config.num_train_steps=30",
                     "--config.sample_every_steps=10", "--config.checkpoint_every_steps=10",
                     "--config.log_every_steps=10")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "step 30/30" in result.stdout and "img/s" in result.stdout and "ETA" in result.stdout

    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    assert [r["step"] for r in rows] == [10, 20, 30]
    assert all(np.isfinite(v) for r in rows for v in r.values())
    grids = sorted(os.listdir(os.path.join(workdir, "samples")))
    assert grids == ["step_00000010.png", "step_00000020.png", "step_00000030.png"]
    first, last = (np.asarray(Image.open(os.path.join(workdir, "samples", g)), np.float32) for g in grids[::2])
    assert np.abs(first - last).mean() > 1.0  # the samples changed as G trained
    for name in ("config.json", "loss_curve.png", "tensorboard"):
        assert os.path.exists(os.path.join(workdir, name)), name
    assert json.load(open(os.path.join(workdir, "config.json")))["g_width"] == 8
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints")))[-1] == "30"

    # The same command with more steps resumes from step 30.
    result = run_cli("dcgan_jax.main", f"--workdir={workdir}", *TINY_FLAGS, "--config.num_train_steps=40",
                     "--config.log_every_steps=10")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from step 30" in result.stdout and "step 40/40" in result.stdout
    assert "step 10/" not in result.stdout


def _assert_one_line_error(result, *needles):
    assert result.returncode != 0
    lines = [l for l in result.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_unknown_config_field(tmp_path):
    _assert_one_line_error(run_cli("dcgan_jax.main", f"--workdir={tmp_path}", "--config.batchsize=3"), "batchsize")


def test_unsupported_image_size(tmp_path):
    _assert_one_line_error(run_cli("dcgan_jax.main", f"--workdir={tmp_path}", "--config.image_size=48"),
                           "image_size=48", "32, 64, 128")


def test_batch_size_not_divisible_by_device_count(tmp_path):
    _assert_one_line_error(run_cli("dcgan_jax.main", f"--workdir={tmp_path}", "--config.batch_size=6", devices=4),
                           "batch_size=6", "4 devices")


def test_unwritable_workdir(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    _assert_one_line_error(run_cli("dcgan_jax.main", f"--workdir={blocker}/run"), "not writable", "--workdir")


def test_missing_config_file(tmp_path):
    _assert_one_line_error(run_cli("dcgan_jax.main", f"--workdir={tmp_path}", "--config=configs/nope.py"),
                           "nope.py")
