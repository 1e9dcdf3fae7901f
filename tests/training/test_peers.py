"""A lost process in a multi-process run (dcgan_jax/training/peers.py): the survivors stop in bounded
time with one line naming the lost process and the checkpoint to resume from, and a rerun resumes
exactly."""

import os
import queue
import subprocess
import sys
import threading
import time

import pytest

from dcgan_jax import run_files
from dcgan_jax.training import peers
from tests.helpers import REPO, max_abs_diff
from tests.training.test_distributed import _final_params, _finish, _launch, _start

# A run long enough to be killed while it trains (the kill comes at step 8; two processes of the
# tiny model take about 0.2 s a step here, their collectives going through gloo), checkpointing often.
_KILLED_FLAGS = (
    "--config.num_train_steps=24",
    "--config.log_every_steps=4",
    "--config.checkpoint_every_steps=4",
    "--config.sample_every_steps=100000",
)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """The compilation cache of this module's runs (test_distributed._start): its first run
    compiles, the later ones load."""
    return tmp_path_factory.mktemp("peers_jax_cache")


def _kill_one_of_two(workdir, victim, cache_dir, meanwhile=lambda: None):
    """Starts 2 processes, kill -9s `victim` once process 0 has logged step 8, then calls
    `meanwhile` (work that overlaps the survivor's wait); returns the survivor's (returncode, stderr
    lines, seconds it took to stop) and the latest checkpoint step."""
    procs = _start(workdir, 2, 1, *_KILLED_FLAGS, cache_dir=cache_dir)
    survivor = procs[1 - victim]
    killer = threading.Timer(600, lambda: [p.kill() for p in procs])
    killer.start()
    try:
        for line in procs[0].stdout:  # process 0 prints the progress; kill once steps are running
            if line.startswith("step 8/"):
                procs[victim].kill()
                break
        killed_at = time.time()
        meanwhile()
        # The subprocess's own timeout is the bound asserted, with a margin for a loaded machine.
        _, err = survivor.communicate(timeout=peers.BOUND_S + 30)
        stopped_after = time.time() - killed_at
        procs[victim].communicate()
    finally:
        killer.cancel()
        for p in procs:
            if p.poll() is None:
                p.kill()
    print(f"survivor (process {1 - victim}) stopped {stopped_after:.1f}s after the kill")
    assert "Traceback" not in err and "Check failure" not in err, err[-3000:]
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) <= 3, err[-3000:]  # at most a start-up notice or two, then the line
    step = max(int(n) for n in os.listdir(workdir / "checkpoints") if n.isdigit())
    assert step >= 4  # step 4 was saved before step 8 was logged
    assert f"resume from {run_files.checkpoint_dir(workdir)} (step {step})" in lines[-1], lines[-1]
    return survivor.returncode, lines, stopped_after, step


@pytest.mark.slow
def test_a_killed_peer_stops_the_survivor_in_bounded_time_with_one_line_and_a_rerun_resumes_exactly(
    tmp_path, cache_dir
):
    """kill -9 of process 1: process 0 stops within peers.BOUND_S (not after jax's 100 s heartbeat
    timeout, with a C++ abort) with one line naming the lost process and the checkpoint to resume
    from; rerunning both processes ends with the params of an uninterrupted run, bit for bit. (The
    uninterrupted run starts at the kill: the survivor waits out peers.LOST_AFTER_S meanwhile.)"""
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    uninterrupted = []
    try:
        rc, lines, stopped_after, step = _kill_one_of_two(
            killed,
            victim=1,
            cache_dir=cache_dir,
            meanwhile=lambda: uninterrupted.extend(
                _start(straight, 2, 1, *_KILLED_FLAGS, cache_dir=cache_dir)
            ),
        )
        assert rc == 1 and stopped_after < peers.BOUND_S + 10, (rc, stopped_after)
        assert lines[-1].startswith("error: process 1 of 2 was lost ("), lines[-1]
        resumed = _launch(killed, 2, 1, *_KILLED_FLAGS, cache_dir=cache_dir)
        _finish(uninterrupted)
    finally:
        for p in uninterrupted:
            if p.poll() is None:
                p.kill()
    assert f"resumed from step {step}" in resumed[0][1], resumed[0][1][-2000:]
    step_killed, state_killed = _final_params(killed)
    step_straight, state_straight = _final_params(straight)
    assert step_killed == step_straight == 24
    fields = ("g_params", "d_params", "g_batch_stats", "d_batch_stats")
    fields += ("g_opt_state", "d_opt_state")
    diff = max_abs_diff(
        [getattr(state_killed, f) for f in fields], [getattr(state_straight, f) for f in fields]
    )
    assert diff == 0, diff


@pytest.mark.slow
def test_a_killed_coordinator_stops_the_other_process_at_once_with_one_line(tmp_path, cache_dir):
    """kill -9 of process 0, which hosts jax's coordination service: jax aborts process 1 at once
    (a C++ fatal error); its stderr guard replaces the ~50-line dump by the one line."""
    rc, lines, stopped_after, _ = _kill_one_of_two(tmp_path, victim=0, cache_dir=cache_dir)
    assert rc != 0 and stopped_after < peers.BOUND_S + 10, (rc, stopped_after)
    assert lines[-1].startswith("error: process 0 (the coordinator) of 2 was lost ("), lines[-1]


class _FakeClient:
    """The key-value store of jax's coordination-service client, in memory."""

    def __init__(self):
        self.kv = {}

    def key_value_set(self, key, value, allow_overwrite=False):
        self.kv[key] = value

    def key_value_dir_get(self, prefix):
        return [(k, v) for k, v in self.kv.items() if k.startswith(prefix)]


def test_the_watchdog_names_a_peer_whose_beats_stopped_and_the_checkpoint_to_resume_from(
    tmp_path, monkeypatch, capfd
):
    """The watchdog acts by itself (the main thread may be stuck in a collective): process 1's
    counter stands still, process 2 said it finished; the line names process 1 only, and the last
    complete checkpoint (not orbax's temporary folder of a step being written)."""
    for name in ("4", "8", "12.orbax-checkpoint-tmp-1733", "tensorboard"):
        os.makedirs(tmp_path / "checkpoints" / name)
    monkeypatch.setattr(peers, "BEAT_S", 0.02)
    monkeypatch.setattr(peers, "LOST_AFTER_S", 0.3)
    exits = queue.Queue()

    def fake_exit(status):
        exits.put(status)
        watchdog.stop()  # ends the watchdog's thread

    monkeypatch.setattr(peers.os, "_exit", fake_exit)
    client = _FakeClient()
    client.key_value_set("dcgan_jax/peers/beat/1", "7")  # its last beat
    client.key_value_set("dcgan_jax/peers/done/2", "")
    watchdog = peers._Watchdog(client, 0, 3)
    watchdog.workdir = str(tmp_path)
    watchdog.start()
    assert exits.get(timeout=60) == 1
    watchdog.join(10)
    assert client.kv["dcgan_jax/peers/beat/0"]  # it beat itself
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: process 1 of 3 was lost ("), err
    assert "process 2" not in err[0] and "process 0 stopped too" in err[0], err
    assert f"resume from {tmp_path / 'checkpoints'} (step 8)" in err[0], err


# What jax's client printed when process 0 was killed (shortened): its log lines, then the fatal one
# and a stack dump.
_COORDINATOR_LOST = b"""\
W1206 00:50:55.169687   15160 preemption_sync_manager.cc:147] Failed to retrieve preemption notice \
from coordination service: UNAVAILABLE: Socket closed
Additional GRPC error information from remote target coordination_service while calling GetKeyValue:
E1206 00:50:55.169844   15160 coordination_service_agent.cc:289] Polled an error from coordination \
service (this can be an error from this or another task).
F1206 00:50:55.169854   15160 client.h:80] Terminating process because the JAX distributed service \
detected fatal errors. absl::Status: UNAVAILABLE: Failed to send RPC to coordination service. Either \
the leader task was preempted/died/restarted unexpectedly or this task is experiencing network issues.
*** Check failure stack trace: ***
    @     0x7f93db840634  absl::lts_20260107::log_internal::LogMessage::SendToLog()
Fatal Python error: Aborted
"""
_TASK_LOST = b"""\
E1206 00:42:24.280329   23167 coordination_service.cc:1549] Use error polling to propagate the \
following error to all tasks: UNAVAILABLE: The following tasks are unhealthy (stopped sending \
heartbeats):
2
The tasks have crashed.
F1206 00:42:24.280989   23178 client.h:80] Terminating process because the JAX distributed service \
detected fatal errors.
"""


def test_the_stderr_guard_replaces_jax_s_fatal_dump_by_the_one_line(tmp_path):
    """The guard between a multi-process run and its stderr: ordinary lines and jax's log lines pass
    through; jax's fatal dump (process 0 lost, or a task its coordinator declared dead) becomes the
    line naming the lost process and the checkpoint."""
    os.makedirs(tmp_path / "checkpoints" / "16")

    def guard(stream):
        result = subprocess.run(
            [sys.executable, "-m", "dcgan_jax.training.peers", "1", "3", str(tmp_path)],
            input=stream,
            capture_output=True,
            cwd=REPO,
            timeout=120,
        )
        assert result.returncode == 0 and not result.stderr, result.stderr
        return result.stdout.decode().splitlines()

    warning = b"W1206 00:50:55.169687   15160 some_file.cc:12] an ordinary warning\n"
    assert guard(b"started\n" + warning + b"more\nno newline") == [
        "started",
        warning.decode().strip(),
        "more",
        "no newline",
    ]
    lines = guard(b"started\n" + _COORDINATOR_LOST)
    assert lines[0] == "started" and len(lines) == 2, lines
    assert lines[1].startswith("error: process 0 (the coordinator) of 3 was lost ("), lines
    assert f"resume from {tmp_path / 'checkpoints'} (step 16)" in lines[1], lines
    lines = guard(_TASK_LOST)
    assert len(lines) == 1 and lines[0].startswith("error: process 2 of 3 was lost ("), lines
    assert "process 1 stopped too" in lines[0], lines
