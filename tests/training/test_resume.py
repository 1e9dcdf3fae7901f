"""Training that survives: exact resume after SIGKILL, SIGTERM checkpoints, half-written steps, divergence, bad
checkpoints."""

import hashlib
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from dcgan_jax import run_files, train
from dcgan_jax.data import pipeline
from dcgan_jax.errors import UserError
from dcgan_jax.training import checkpoints, collapse
from dcgan_jax.training.state import create_train_state
from tests.helpers import REPO, TINY_FLAGS, run_cli, tiny_config, xla_flags

# Long enough to be killed mid-way: the first checkpoint (step 10) comes at about a sixth of the run,
# and the tiny steps take ~20 ms each here (a 4x slower machine leaves the kill more room, not less).
STEPS = 60
RUN_FLAGS = TINY_FLAGS + (
    f"--config.num_train_steps={STEPS}",
    "--config.checkpoint_every_steps=10",
    "--config.sample_every_steps=1000",
    "--config.log_every_steps=50",
)


def _start(workdir, *extra):
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(1))
    return subprocess.Popen(
        [sys.executable, "-m", "dcgan_jax.main", f"--workdir={workdir}", *RUN_FLAGS, *extra],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_checkpoint(workdir, process, timeout=300):
    """Returns once a complete checkpoint exists (the run is mid-way), failing if the run ends first."""
    deadline = time.time() + timeout
    ckpt = os.path.join(workdir, "checkpoints")
    while time.time() < deadline:
        if os.path.isdir(ckpt) and any(name.isdigit() for name in os.listdir(ckpt)):
            return
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared")


def _final_state(workdir):
    manager, config = checkpoints.open_workdir(workdir)
    return manager.latest_step(), checkpoints.restore_state(
        manager, create_train_state(config.model, config.optim, config.seed)
    )


@pytest.mark.slow
def test_sigkill_then_rerun_ends_bit_identical_to_an_uninterrupted_run(tmp_path):
    straight, interrupted = str(tmp_path / "straight"), str(tmp_path / "interrupted")
    assert run_cli("dcgan_jax.main", f"--workdir={straight}", *RUN_FLAGS).returncode == 0

    process = _start(interrupted)
    _wait_for_checkpoint(interrupted, process)
    process.send_signal(signal.SIGKILL)  # no handler runs: a crash, possibly mid checkpoint write
    process.communicate()
    killed_at = checkpoints.create_manager(interrupted, read_only=True).latest_step()
    assert killed_at < STEPS

    resumed = run_cli("dcgan_jax.main", f"--workdir={interrupted}", *RUN_FLAGS)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from step {killed_at}" in resumed.stdout
    (step_a, a), (step_b, b) = _final_state(straight), _final_state(interrupted)
    assert step_a == step_b == STEPS
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)  # bit-identical on CPU


@pytest.mark.slow
def test_sigterm_saves_the_current_step_and_exits_cleanly(tmp_path):
    workdir = str(tmp_path / "run")
    process = _start(workdir)
    _wait_for_checkpoint(workdir, process)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    assert "received SIGTERM" in stderr
    line = [row for row in stdout.splitlines() if row.startswith("stopped by SIGTERM at step")][0]
    stopped_at = int(line.split("at step ")[1].split(";")[0])
    assert 0 < stopped_at < STEPS
    assert checkpoints.create_manager(workdir, read_only=True).latest_step() == stopped_at


def test_a_half_written_step_is_never_read(tmp_path):
    config = tiny_config(num_train_steps=4)
    workdir = str(tmp_path)
    train.train_and_evaluate(config, workdir)
    # What a crash mid-write leaves: orbax's temporary directory for step 6, with partial content.
    partial = os.path.join(run_files.checkpoint_dir(workdir), "6.orbax-checkpoint-tmp-1795420000")
    os.makedirs(os.path.join(partial, "state"))
    with open(os.path.join(partial, "state", "partial"), "wb") as f:
        f.write(b"\x00" * 10)
    assert checkpoints.create_manager(workdir, read_only=True).latest_step() == 4
    config.num_train_steps = 6
    state = train.train_and_evaluate(config, workdir)
    assert int(state.step) == 6


def test_injected_nan_stops_the_run_and_the_last_good_checkpoint_restores(tmp_path, monkeypatch):
    real_batches = pipeline.train_batches

    def poisoned(data, source, batch_size, seed, start_step=0, *args, **kwargs):
        batches = real_batches(data, source, batch_size, seed, start_step, *args, **kwargs)
        for step, batch in enumerate(batches, start_step + 1):
            yield np.full_like(batch, np.nan) if step == 7 else batch

    monkeypatch.setattr(pipeline, "train_batches", poisoned)
    config = tiny_config(num_train_steps=12, checkpoint_every_steps=4, log_every_steps=1)
    with pytest.raises(
        collapse.DivergenceError,
        match=r"non-finite loss or params at step 7.*last good checkpoint "
        r"is step 4",
    ):
        train.train_and_evaluate(config, str(tmp_path))
    manager, _ = checkpoints.open_workdir(str(tmp_path))
    assert manager.all_steps() == [4]
    state = checkpoints.restore_state(
        manager, create_train_state(config.model, config.optim, config.seed)
    )
    assert int(state.step) == 4
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state))


def test_resuming_with_another_architecture_names_the_fields(tmp_path):
    train.train_and_evaluate(tiny_config(num_train_steps=2), str(tmp_path))
    with pytest.raises(
        UserError,
        match=r"model.latent_dim: checkpoint 16 vs config 20; "
        r"model.g_width: checkpoint 8 vs config 16",
    ):
        train.train_and_evaluate(
            tiny_config(num_train_steps=4, model=dict(g_width=16, latent_dim=20)), str(tmp_path)
        )
    # Harmless fields (steps, logging, learning rate) may change.
    state = train.train_and_evaluate(
        tiny_config(num_train_steps=4, log_every_steps=1, optim=dict(learning_rate=1e-4)),
        str(tmp_path),
    )
    assert int(state.step) == 4


def _digest(directory):
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(directory)):
        for name in sorted(files):
            with open(os.path.join(root, name), "rb") as f:
                h.update(name.encode() + f.read())
    return h.hexdigest()


def test_a_corrupt_checkpoint_is_a_one_line_error_and_nothing_is_lost(tmp_path):
    workdir = str(tmp_path)
    train.train_and_evaluate(tiny_config(num_train_steps=4), workdir)
    ckpt = run_files.checkpoint_dir(workdir)
    for root, _, files in os.walk(os.path.join(ckpt, "4", "state")):
        for name in files:
            with open(os.path.join(root, name), "r+b") as f:
                f.write(b"garbage!" * 4)
    before = _digest(ckpt)
    result = run_cli(
        "dcgan_jax.main", f"--workdir={workdir}", *TINY_FLAGS, "--config.num_train_steps=6"
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and "checkpoint" in lines[0]
        and "unreadable" in lines[0]
        and "step 2" in lines[0]
    ), result.stderr[-3000:]
    assert _digest(ckpt) == before  # nothing saved was touched
