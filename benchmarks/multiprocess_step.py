"""Seconds per training step of a multi-process run on this machine (`python -m dcgan_jax.main`, N
processes with simulated CPU devices joined by jax.distributed), read from the training loop's own
img/s lines.

  python benchmarks/multiprocess_step.py [--processes=2] [--steps=600] [--log_every=100] [--repo=PATH] [--json]
  python benchmarks/multiprocess_step.py --stop_check   # the per-step stop check alone, before/after, in ms/call

What it shows is the loop's cost per step around the compiled step: with several processes, anything
that makes the hosts talk outside the step (e.g. a cross-host allgather after every step) shows up
as a longer step at this tiny model size, where the step itself takes milliseconds. `--repo` runs
another checkout (e.g. an older commit unpacked with `git archive`), so a before/after comparison
runs the same script on the same machine. The first logged interval (compilation) is left out; the
figure is the median over the other intervals.

`--stop_check` times, in N joined processes, what the loop's stop check costs on a step: a
cross-host allgather of the stop flags (what every step paid before; now only log and checkpoint
steps) against `StopRequest.requested(at_sync_step=False)` (what a step that neither logs nor saves
pays now).
"""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The tiny test model (tests/helpers.py TINY_FLAGS' sizes): a step of milliseconds, so per-step host
# overhead shows.
MODEL_FLAGS = (
    "--config.model.g_width=8",
    "--config.model.d_width=8",
    "--config.batch_size=16",
    "--config.model.latent_dim=16",
    "--config.num_fixed_samples=16",
)
RATE = re.compile(r"^step (\d+)/\d+ .*\| (\d+) img/s")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--devices_per_process", type=int, default=1)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--log_every", type=int, default=100, help="steps per timed interval")
    parser.add_argument("--repo", default=REPO, help="the checkout to run (default: this one)")
    parser.add_argument(
        "--stop_check", action="store_true", help="time the stop check alone (see above)"
    )
    parser.add_argument("--calls", type=int, default=300, help="--stop_check: timed calls of each")
    parser.add_argument(
        "--worker", type=str, default="", help=argparse.SUPPRESS
    )  # coordinator,process_id
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args) -> dict:
    workdir = tempfile.mkdtemp(prefix="dcgan_multiprocess_bench_")
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        JAX_ENABLE_COMPILATION_CACHE="false",
        XLA_FLAGS=f"--xla_force_host_platform_device_count={args.devices_per_process}",
        PYTHONPATH=os.path.abspath(args.repo),
    )
    port = _free_port()
    flags = [
        f"--workdir={workdir}",
        *MODEL_FLAGS,
        f"--config.num_train_steps={args.steps}",
        f"--config.log_every_steps={args.log_every}",
        f"--config.sample_every_steps={args.steps}",
        f"--config.checkpoint_every_steps={args.steps}",
        f"--coordinator_address=127.0.0.1:{port}",
        f"--num_processes={args.processes}",
        "--coordinator_timeout_s=300",
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "dcgan_jax.main", *flags, f"--process_id={i}"],
            cwd=args.repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(args.processes)
    ]
    outputs = [p.communicate(timeout=1800) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        if p.returncode:
            sys.exit(
                f"error: a training process failed (exit {p.returncode}): {err.strip().splitlines()[-1:]}"
            )
    rates = [
        (int(m.group(1)), int(m.group(2))) for m in map(RATE.match, outputs[0][0].splitlines()) if m
    ]
    seconds = [
        16 / rate for _, rate in rates[1:]
    ]  # batch 16; the first interval includes compilation
    return {
        "processes": args.processes,
        "devices_per_process": args.devices_per_process,
        "repo": args.repo,
        "median_ms_per_step": 1000 * statistics.median(seconds),
        "ms_per_step_per_interval": [round(1000 * s, 2) for s in seconds],
        "loadavg": os.getloadavg(),
    }


def stop_check_worker(args) -> None:
    """One process of --stop_check: joins the others, times both checks, prints one JSON line."""
    sys.path.insert(0, REPO)
    from dcgan_jax.training import distributed, preemption

    coordinator, process_id = args.worker.split(",")
    distributed.initialize(coordinator, args.processes, int(process_id), 300)
    timings = {}
    with preemption.StopRequest() as stop:
        for name, at_sync_step in (
            ("allgather_ms", True),
            ("no_sync_step_ms", False),
            ("allgather_ms", True),
        ):
            stop.requested(at_sync_step)  # warm-up (compiles the allgather once)
            start = time.perf_counter()
            for _ in range(args.calls):
                stop.requested(at_sync_step)
            timings.setdefault(name, []).append(1000 * (time.perf_counter() - start) / args.calls)
    print(json.dumps({k: statistics.mean(v) for k, v in timings.items()}))


def run_stop_check(args) -> dict:
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        JAX_ENABLE_COMPILATION_CACHE="false",
        XLA_FLAGS=f"--xla_force_host_platform_device_count={args.devices_per_process}",
    )
    coordinator = f"127.0.0.1:{_free_port()}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                os.path.abspath(__file__),
                f"--processes={args.processes}",
                f"--devices_per_process={args.devices_per_process}",
                f"--calls={args.calls}",
                f"--worker={coordinator},{i}",
            ],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(args.processes)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    if any(p.returncode for p in procs):
        sys.exit("error: a --stop_check process failed (see its output above)")
    per_process = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    return {
        "processes": args.processes,
        "calls": args.calls,
        "per_process": per_process,
        "loadavg": os.getloadavg(),
    }


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        stop_check_worker(args)
        return
    if args.stop_check:
        result = run_stop_check(args)
        if args.json:
            print(json.dumps(result))
            return
        for i, timing in enumerate(result["per_process"]):
            print(
                f"process {i}: cross-host allgather of the stop flags {timing['allgather_ms']:.3f} ms/call (every "
                f"step before); stop check on a step that neither logs nor saves "
                f"{timing['no_sync_step_ms'] * 1000:.2f} us/call (now)"
            )
        print(f"load average {result['loadavg']}")
        return
    result = run(args)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{args.processes} processes x {args.devices_per_process} CPU device(s), {args.repo}: "
        f"{result['median_ms_per_step']:.2f} ms/step median (intervals of {args.log_every} steps: "
        f"{result['ms_per_step_per_interval']}; load average {result['loadavg']})"
    )


if __name__ == "__main__":
    main()
