"""The workdir is never damaged by a run that cannot start, a second run, a failed sample write or a resume:
one run at a time (a lock naming its holder; a killed holder's lock taken over), nothing written before every
check passed, the checkpoint of a step saved even when its samples fail, metrics.jsonl holding each step
once."""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from dcgan_jax import train
from dcgan_jax.errors import UserError
from dcgan_jax.training import reporting
from tests.helpers import REPO, TINY_FLAGS, one_line_error, run_cli, tiny_config, tree_digest

FLAGS = (*TINY_FLAGS, "--config.num_fixed_samples=4")


@pytest.fixture
def copied_run(trained_run, tmp_path):
    """A copy of the 5-step session run (checkpoints 2, 4, 5)."""
    path = tmp_path / "run"
    shutil.copytree(trained_run, path)
    return path


HOLDER = """
import sys
from dcgan_jax.training import workdir
with workdir.locked(sys.argv[1]):
    print("holding", flush=True)
    sys.stdin.read()
"""


def test_a_second_run_stops_naming_the_holder_and_a_dead_holders_lock_is_taken_over(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(workdir)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        result = run_cli(
            "dcgan_jax.main", f"--workdir={workdir}", *FLAGS, "--config.num_train_steps=2"
        )
        one_line_error(
            result, f"workdir {workdir} is in use by pid {holder.pid} on host", "another --workdir"
        )
        assert not (workdir / "checkpoints").exists() and not (workdir / "config.json").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    result = run_cli("dcgan_jax.main", f"--workdir={workdir}", *FLAGS, "--config.num_train_steps=2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"took over the lock of pid {holder.pid} on host" in result.stdout
    assert (workdir / ".lock").read_text() == ""  # released cleanly: the next run reports no holder
    # The next run (one with nothing to train: it takes the lock all the same) finds no holder.
    again = run_cli("dcgan_jax.main", f"--workdir={workdir}", *FLAGS, "--config.num_train_steps=2")
    assert again.returncode == 0 and "took over" not in again.stdout
    assert "nothing to do" in again.stdout


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (
            {"data": {"dataset": "image_folder", "data_path": "/nonexistent/images"}},
            "/nonexistent/images",
        ),
        ({"num_train_steps": 3}, "already at step 5, past num_train_steps=3"),
    ],
)
def test_a_run_that_cannot_start_changes_nothing(copied_run, overrides, fragment):
    before = tree_digest(copied_run)
    config = tiny_config(keep_checkpoints=3, **{"num_train_steps": 6, **overrides})
    with pytest.raises(UserError, match=fragment.replace("(", r"\(")):
        train.train_and_evaluate(config, str(copied_run))
    assert tree_digest(copied_run) == before


def test_nothing_to_do_writes_nothing(copied_run, capsys):
    before = tree_digest(copied_run)
    state = train.train_and_evaluate(
        tiny_config(keep_checkpoints=3, num_train_steps=5), str(copied_run)
    )
    assert int(state.step) == 5 and "nothing to do" in capsys.readouterr().out
    assert tree_digest(copied_run) == before


def test_no_fixed_samples_means_no_grids(tmp_path):
    train.train_and_evaluate(tiny_config(num_fixed_samples=0, num_train_steps=2), str(tmp_path))
    assert os.listdir(tmp_path / "samples") == [] and (tmp_path / "checkpoints" / "2").is_dir()


def test_a_failed_sample_write_is_one_line_and_keeps_that_steps_checkpoint(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(reporting.visualize, "save_image", broken)
    with pytest.raises(UserError, match=r"cannot write .*step_00000002.png \(No space left"):
        train.train_and_evaluate(tiny_config(num_train_steps=2), str(tmp_path))
    assert (tmp_path / "checkpoints" / "2").is_dir()
    assert _steps(tmp_path) == [2]  # the step's row was written before its grid and checkpoint


def _steps(workdir):
    with open(workdir / "metrics.jsonl") as f:
        return [json.loads(line)["step"] for line in f]


def test_resume_replays_steps_without_duplicating_their_metrics(tmp_path):
    config = tiny_config(num_train_steps=4, keep_checkpoints=5)
    train.train_and_evaluate(config, str(tmp_path))
    assert _steps(tmp_path) == [2, 4]
    shutil.rmtree(
        tmp_path / "checkpoints" / "4"
    )  # as if the run had died just before its step-4 checkpoint
    train.train_and_evaluate(config, str(tmp_path))
    assert _steps(tmp_path) == [2, 4]


def test_trim_metrics_keeps_rows_up_to_the_step_and_drops_a_torn_last_row(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"step": 2, "d_loss": 1}\n{"step": 4, "d_loss": 2}\n{"step": 4, "eval_fid": 3}\n'
        '{"step": 6, "d_loss": 4}\n{"step": 8, "d_lo'
    )
    reporting.trim_metrics(str(path), 4)
    assert (
        path.read_text()
        == '{"step": 2, "d_loss": 1}\n{"step": 4, "d_loss": 2}\n{"step": 4, "eval_fid": 3}\n'
    )
