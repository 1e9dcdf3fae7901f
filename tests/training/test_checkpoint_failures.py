"""A checkpoint that cannot be written (disk full, file size limit, unwritable volume) ends the run with one
`error:` line and a non-zero exit, promptly (no hang on orbax's writer threads), with earlier checkpoints intact;
rerunning once there is room resumes from the last complete checkpoint."""

import os
import subprocess

import pytest

from tests.helpers import TINY_FLAGS, one_line_error, run_cli, tree_digest

FLAGS = (*TINY_FLAGS, "--config.num_fixed_samples=4")


@pytest.fixture(scope="module")
def two_steps(tmp_path_factory):
    """A workdir with a complete checkpoint at step 2."""
    workdir = tmp_path_factory.mktemp("ckpt_fail") / "run"
    result = run_cli("dcgan_jax.main", f"--workdir={workdir}", *FLAGS, "--config.num_train_steps=2")
    assert result.returncode == 0, result.stderr[-2000:]
    return workdir


@pytest.mark.parametrize(
    "mode, fragments",
    [
        (
            "file_size",
            (
                "could not write the checkpoint of step 4",
                "step 2 is the last complete checkpoint (intact)",
            ),
        ),
        ("disk_full", ("not enough disk space for the checkpoint of step 4", "MiB free")),
    ],
)
def test_a_failed_write_is_one_line_and_keeps_earlier_checkpoints(
    two_steps, tmp_path, mode, fragments
):
    workdir = tmp_path / "run"
    subprocess.run(["cp", "-r", str(two_steps), str(workdir)], check=True)
    before = tree_digest(workdir / "checkpoints" / "2")
    # The driver (forked like every run_cli command: its limits and patches are its own process's)
    result = run_cli(
        "tests.training.checkpoint_failure_driver",
        mode,
        str(workdir),
        *FLAGS,
        "--config.num_train_steps=4",
        timeout=300,
    )  # a hang fails here
    one_line_error(result, *fragments)
    assert tree_digest(workdir / "checkpoints" / "2") == before
    assert not (workdir / "checkpoints" / "4").exists()

    rerun = run_cli("dcgan_jax.main", f"--workdir={workdir}", *FLAGS, "--config.num_train_steps=4")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resumed from step 2" in rerun.stdout
    assert (workdir / "checkpoints" / "4").is_dir()
    assert not [
        p for p in os.listdir(workdir / "checkpoints") if "tmp" in p
    ]  # orbax's partial write is gone
