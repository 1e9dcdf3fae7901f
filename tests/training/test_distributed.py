"""Multi-process training (dcgan_jax/training/distributed.py): 2 processes on localhost equal 1 process with 4
devices."""

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import jax
import pytest

from dcgan_jax.errors import UserError
from dcgan_jax.training import checkpoints, distributed
from dcgan_jax.training.state import create_train_state
from tests.helpers import REPO, TINY_FLAGS, max_abs_diff, run_cli, xla_flags

# adam_eps=1 and seed 1 keep float32 summation-order noise from flipping Adam updates (multidevice_checks.py).
TINY = TINY_FLAGS + (
    "--config.optim.adam_eps=1.0",
    "--config.optim.learning_rate=0.01",
    "--config.seed=1",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(workdir, num_processes, devices_per_process, *flags, timeout=900, cache_dir=None):
    """Runs `dcgan_jax.main` as `num_processes` processes; returns their CompletedProcess-like (rc, out, err)."""
    return _finish(
        _start(workdir, num_processes, devices_per_process, *flags, cache_dir=cache_dir), timeout
    )


def _finish(procs, timeout=900):
    """Waits for the processes `_start` started; returns their (rc, out, err), each rc checked to be 0."""
    results, deadline = [], time.time() + timeout
    try:
        for p in procs:
            out, err = p.communicate(timeout=max(deadline - time.time(), 1))
            results.append((p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    for rc, _, err in results:
        assert rc == 0, err[-3000:]
    return results


def _start(workdir, num_processes, devices_per_process, *flags, cache_dir=None):
    """Starts `dcgan_jax.main` as `num_processes` processes (stdout and stderr piped).

    Not the tests' shared persistent compilation cache: a process that loads its programs from it
    reaches the first collective long before a peer that compiles (e.g. one that looked a moment
    before another test's run wrote the entry), and gloo's 30 s rendezvous deadline can pass.
    `cache_dir`: a cache that only the calling test module's multi-process runs use, one module per
    pytest worker, so no other run writes it meanwhile. Its first run compiles in every process
    alike (only process 0 writes entries: a process behind can catch up by reading one, none can
    run ahead); the later runs of the same programs load them in every process alike."""
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=xla_flags(devices_per_process),
        **(
            dict(JAX_ENABLE_COMPILATION_CACHE="true", JAX_COMPILATION_CACHE_DIR=str(cache_dir))
            if cache_dir
            else dict(JAX_ENABLE_COMPILATION_CACHE="false")
        ),
    )
    multi = (
        (
            f"--coordinator_address=127.0.0.1:{_free_port()}",
            f"--num_processes={num_processes}",
            "--coordinator_timeout_s=300",
        )
        if num_processes > 1
        else ()
    )
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dcgan_jax.main",
                f"--workdir={workdir}",
                *TINY,
                *flags,
                *multi,
                *((f"--process_id={i}",) if multi else ()),
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(num_processes)
    ]


def _final_params(workdir):
    manager, config = checkpoints.open_workdir(workdir)
    state = checkpoints.restore_state(
        manager, jax.eval_shape(lambda: create_train_state(config.model, config.optim, config.seed))
    )
    return int(state.step), state


@pytest.mark.slow
def test_two_processes_equal_one_process_with_four_devices_and_resume(tmp_path):
    """2 hosts x 2 devices (pmap to step 2, then resumed with shard_map to 4) == 1 host x 4 devices (pmap)."""
    single, multi = tmp_path / "single", tmp_path / "multi"
    cache = tmp_path / "jax_cache"  # the resumed run loads what the first compiled (see _start)
    started = _start(multi, 2, 2, "--config.num_train_steps=2", cache_dir=cache)
    try:  # the one process (forked, with the tests' compilation cache) while the two start
        alone = run_cli(
            "dcgan_jax.main", f"--workdir={single}", *TINY, "--config.num_train_steps=4", devices=4
        )
    except BaseException:
        for p in started:
            p.kill()
        raise
    first = _finish(started)
    assert alone.returncode == 0, alone.stderr[-3000:]
    resumed = _launch(
        multi, 2, 2, "--config.num_train_steps=4", "--config.parallelism=shard_map", cache_dir=cache
    )

    # The run names its backend, devices and processes first.
    assert "backend cpu: 4 x cpu device(s), 2 on this process, 2 process(es)" in first[0][1], first[
        0
    ][1]
    # One writer: only process 0 prints progress; one config.json, one metrics row per logged step, one grid each.
    for run in (first, resumed):
        assert "step 2/" in run[0][1] or "step 4/" in run[0][1]
        assert "step " not in run[1][1] and "resumed" not in run[1][1], run[1][1]
    assert "resumed from step 2" in resumed[0][1]
    rows = [json.loads(line)["step"] for line in open(multi / "metrics.jsonl")]
    assert rows == [2, 4], rows
    assert sorted(os.path.basename(p) for p in glob.glob(str(multi / "samples" / "*.png"))) == [
        "step_00000002.png",
        "step_00000004.png",
    ]
    assert json.load(open(multi / "config.json"))["num_train_steps"] == 4
    assert not glob.glob(str(multi / ".write_test*"))

    step_single, state_single = _final_params(single)
    step_multi, state_multi = _final_params(multi)
    assert step_single == step_multi == 4
    fields = ("g_params", "d_params", "g_batch_stats", "d_batch_stats")
    diff = max_abs_diff(
        [getattr(state_single, f) for f in fields], [getattr(state_multi, f) for f in fields]
    )
    print(f"max |params(2 processes x 2 devices) - params(1 process x 4 devices)| = {diff:.2e}")
    assert diff < 1e-5, diff
    # The check can fail: 4 steps moved the params well beyond the tolerance.
    assert max_abs_diff(state_multi.g_params, _initial_g_params(single)) > 1e-3


@pytest.mark.slow
def test_a_signal_on_one_host_stops_every_host_at_the_same_logged_step_with_a_checkpoint(tmp_path):
    """SIGTERM to process 1 only: the hosts compare their stop flags at logged steps (no per-step collective), so
    both stop after the same step, process 0 included, and the checkpoint of that step is saved."""
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        JAX_ENABLE_COMPILATION_CACHE="false",
        XLA_FLAGS=xla_flags(1),
    )
    flags = [
        f"--workdir={tmp_path}",
        *TINY,
        "--config.num_train_steps=100000",
        "--config.log_every_steps=4",
        "--config.sample_every_steps=100000",
        "--config.checkpoint_every_steps=100000",
        f"--coordinator_address=127.0.0.1:{_free_port()}",
        "--num_processes=2",
        "--coordinator_timeout_s=300",
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "dcgan_jax.main", *flags, f"--process_id={i}"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (0, 1)
    ]
    killer = threading.Timer(600, lambda: [p.kill() for p in procs])
    killer.start()
    try:
        lines = []
        for line in procs[
            0
        ].stdout:  # process 0 prints the progress; signal process 1 once steps are running
            lines.append(line)
            if line.startswith("step 8/"):
                procs[1].send_signal(signal.SIGTERM)
                break
        out0, err0 = procs[0].communicate()
        out1, err1 = procs[1].communicate()
    finally:
        killer.cancel()
    out0 = "".join(lines) + out0
    assert procs[0].returncode == 0 and procs[1].returncode == 0, err0[-2000:] + err1[-2000:]
    assert "received SIGTERM" in err1 and "received" not in err0
    stopped = [
        line for line in out0.splitlines() if line.startswith("stopped by another host at step ")
    ]
    assert len(stopped) == 1, out0[-2000:]
    step = int(stopped[0].split("at step ")[1].split(";")[0])
    assert step > 8 and step % 4 == 0, step  # after the signal, at a logged step
    assert int(json.loads(open(tmp_path / "metrics.jsonl").readlines()[-1])["step"]) == step
    assert _final_params(tmp_path)[0] == step  # both hosts saved that step together


def _initial_g_params(workdir):
    _, config = checkpoints.open_workdir(workdir)
    return create_train_state(config.model, config.optim, config.seed).g_params


def test_an_unreachable_coordinator_is_a_one_line_error_in_bounded_time():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    start = time.time()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dcgan_jax.main",
            "--workdir=/nonexistent/never_written",
            f"--coordinator_address=127.0.0.1:{_free_port()}",
            "--num_processes=2",
            "--process_id=1",
            "--coordinator_timeout_s=3",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.time() - start
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: process 1 could not join the run at 127.0.0.1:"
    ), result.stderr[-2000:]
    assert elapsed < 60, elapsed


def test_partial_multi_process_flags_name_what_is_missing():
    with pytest.raises(UserError, match="missing --num_processes, --process_id"):
        distributed.initialize("127.0.0.1:1234")
    with pytest.raises(UserError, match=r"--process_id=2 must be in \[0, --num_processes=2\)"):
        distributed.initialize("127.0.0.1:1234", 2, 2)
    with pytest.raises(UserError, match="must be host:port"):
        distributed.initialize("localhost", 2, 0)


def test_cluster_detection(monkeypatch):
    for var in (
        "SLURM_JOB_ID",
        "SLURM_STEP_NODELIST",
        "SLURM_NTASKS",
        "SLURM_PROCID",
        "SLURM_LOCALID",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(distributed.glob, "glob", lambda pattern: [])
    assert distributed.detect_cluster() is None
    assert distributed.initialize() is False  # a single process: nothing to join
    slurm = {
        "SLURM_JOB_ID": "7",
        "SLURM_STEP_NODELIST": "node[1-2]",
        "SLURM_NTASKS": "2",
        "SLURM_PROCID": "1",
        "SLURM_LOCALID": "0",
    }
    for var, value in slurm.items():
        monkeypatch.setenv(var, value)
    assert distributed.detect_cluster() == "slurm"
    monkeypatch.setenv(
        "SLURM_NTASKS", "1"
    )  # one task (e.g. one process driving a node's 8 GPUs): no cluster
    assert distributed.detect_cluster() is None


def test_backend_report_names_devices_and_warns_about_a_cpu_only_jaxlib_on_a_gpu_host(monkeypatch):
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    monkeypatch.setattr(distributed, "nvidia_gpu_visible", lambda: False)
    lines = distributed.backend_report().splitlines()
    assert lines == [
        f"backend cpu: {jax.device_count()} x cpu device(s), {jax.local_device_count()} on this "
        f"process, 1 process(es)"
    ]
    monkeypatch.setattr(
        distributed, "nvidia_gpu_visible", lambda: True
    )  # a GPU host, JAX still on the CPU
    lines = distributed.backend_report().splitlines()
    assert len(lines) == 2 and lines[1].startswith(
        "warning: an NVIDIA GPU is visible but JAX runs on the CPU"
    )
    assert lines[1].endswith('install the CUDA one with: pip install -e ".[cuda]"')
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")  # the CPU asked for: no warning
    assert len(distributed.backend_report().splitlines()) == 1


def test_nvidia_gpu_detection(monkeypatch, tmp_path):
    monkeypatch.setattr(distributed.os.path, "exists", lambda path: False)
    monkeypatch.setattr(distributed.shutil, "which", lambda name: None)
    assert not distributed.nvidia_gpu_visible()
    monkeypatch.setattr(
        distributed.shutil,
        "which",
        lambda name: "/usr/bin/nvidia-smi" if name == "nvidia-smi" else None,
    )
    assert distributed.nvidia_gpu_visible()
    monkeypatch.setattr(distributed.shutil, "which", lambda name: None)
    monkeypatch.setattr(
        distributed.os.path, "exists", lambda path: path == "/proc/driver/nvidia/version"
    )
    assert distributed.nvidia_gpu_visible()
