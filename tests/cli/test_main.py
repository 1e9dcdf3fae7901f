"""`python -m dcgan_jax.main` end to end, its one-line errors for bad input, and the installed console scripts."""

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tomllib

import numpy as np
import pytest
from PIL import Image

from tests.helpers import REPO, TINY_FLAGS, one_line_error, run_cli


@pytest.mark.slow
def test_short_digits_run_trains_writes_outputs_and_resumes(tmp_path):
    workdir = str(tmp_path / "run")
    result = run_cli(
        "dcgan_jax.main",
        f"--workdir={workdir}",
        *TINY_FLAGS,
        "--config.num_train_steps=30",
        "--config.sample_every_steps=10",
        "--config.checkpoint_every_steps=10",
        "--config.log_every_steps=10",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "step 30/30" in result.stdout and "img/s" in result.stdout and "ETA" in result.stdout

    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    assert [r["step"] for r in rows] == [10, 20, 30]
    assert all(np.isfinite(v) for r in rows for v in r.values())
    grids = sorted(os.listdir(os.path.join(workdir, "samples")))
    assert grids == ["random", "step_00000010.png", "step_00000020.png", "step_00000030.png"]
    assert (
        sorted(os.listdir(os.path.join(workdir, "samples", "random"))) == grids[1:]
    )  # the fresh-z grids
    grids = grids[1:]
    first, last = (
        np.asarray(Image.open(os.path.join(workdir, "samples", g)), np.float32) for g in grids[::2]
    )
    assert np.abs(first - last).mean() > 1.0  # the samples changed as G trained
    for name in ("config.json", "loss_curve.png", "tensorboard"):
        assert os.path.exists(os.path.join(workdir, name)), name
    assert json.load(open(os.path.join(workdir, "config.json")))["model"]["g_width"] == 8
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints")))[-1] == "30"

    # The same command with more steps resumes from step 30.
    result = run_cli(
        "dcgan_jax.main",
        f"--workdir={workdir}",
        *TINY_FLAGS,
        "--config.num_train_steps=40",
        "--config.log_every_steps=10",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from step 30" in result.stdout and "step 40/40" in result.stdout
    assert "step 10/" not in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "config_flags",
    [(f"--config={os.path.join(REPO, 'configs', 'digits.py')}",), ()],
    ids=["absolute_config_path", "default_config"],
)
def test_runs_from_a_folder_with_its_own_configs_package(tmp_path, config_flags):
    """The user's working directory (first on sys.path under `python -m`) may hold an unrelated configs/ package:
    neither a config path nor the embedded default may import from it."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "__init__.py").write_text("")
    (tmp_path / "configs" / "base.py").write_text(
        "raise RuntimeError('the user\\'s own configs/base.py was imported')\n"
    )
    result = run_cli(
        "dcgan_jax.main",
        "--workdir=run",
        *config_flags,
        *TINY_FLAGS,
        "--config.num_train_steps=1",
        cwd=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training digits at 32px for 1 steps" in result.stdout
    saved = json.load(open(tmp_path / "run" / "config.json"))
    assert saved["data"]["dataset"] == "digits" and saved["model"]["g_width"] == 8


def _one_line_only(result, *fragments):
    """`one_line_error`, and the error line is all the command printed on stderr."""
    line = one_line_error(result, *fragments)
    assert [row for row in result.stderr.splitlines() if row.strip()] == [line], result.stderr[
        -3000:
    ]


def test_positional_arguments(tmp_path):
    result = run_cli("dcgan_jax.main", "runs/x", cwd=str(tmp_path))
    _one_line_only(result, "runs/x", "--workdir")
    assert not os.listdir(tmp_path)  # nothing trained, nothing written


def test_unknown_config_field(tmp_path):
    _one_line_only(
        run_cli("dcgan_jax.main", f"--workdir={tmp_path}", "--config.batchsize=3"), "batchsize"
    )


def test_unsupported_image_size(tmp_path):
    _one_line_only(
        run_cli("dcgan_jax.main", f"--workdir={tmp_path}", "--config.model.image_size=48"),
        "image_size=48",
        "32, 64, 128",
    )


def test_batch_size_not_divisible_by_device_count(tmp_path):
    _one_line_only(
        run_cli("dcgan_jax.main", f"--workdir={tmp_path}", "--config.batch_size=6", devices=4),
        "batch_size=6",
        "4 devices",
    )


def test_unwritable_workdir(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    _one_line_only(
        run_cli("dcgan_jax.main", f"--workdir={blocker}/run"), "not writable", "--workdir"
    )


def test_missing_config_file(tmp_path):
    _one_line_only(
        run_cli("dcgan_jax.main", f"--workdir={tmp_path}", "--config=configs/nope.py"), "nope.py"
    )


def _console_scripts():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]["scripts"]


def _script(name):
    """The installed console script: next to the interpreter (e.g. an unactivated venv) or on PATH."""
    return shutil.which(
        name, path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    )


def test_console_scripts_are_installed_as_declared():
    declared = _console_scripts()
    assert set(declared) == {
        "dcgan-train",
        "dcgan-sample",
        "dcgan-explore",
        "dcgan-evaluate",
        "dcgan-prepare",
        "dcgan-export",
    }
    installed = {
        e.name: e.value
        for e in importlib.metadata.entry_points(group="console_scripts")
        if e.name.startswith("dcgan-")
    }
    assert installed == declared, "the installed package is stale: pip install -e . again"
    missing = [name for name in declared if _script(name) is None]
    assert not missing, f"not on PATH: {missing}"


def test_console_script_help(tmp_path):
    result = subprocess.run(
        [_script("dcgan-train"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        "Trains a DCGAN" in result.stdout
        and "--workdir" in result.stdout
        and "--config" in result.stdout
    )
    assert not os.listdir(tmp_path)  # help only: no workdir made
