"""Joining a multi-process (multi-host) run with `jax.distributed`, before anything else touches JAX
devices.

Three ways in: explicit (coordinator address, process count and id, e.g.
launch/local_multiprocess.sh), a SLURM job step with several tasks (`srun`), or a Cloud TPU VM (jax
reads the slice's workers from the metadata server). A single process needs none of this: it sees
all of its host's devices (e.g. 8 GPUs) by itself.
"""

import glob
import importlib.util
import os
import shutil
import sys
import threading

from dcgan_jax.errors import UserError
from dcgan_jax.training import peers

_BACKSTOP_S = 30  # seconds jax's own connection deadline leaves the watchdog


def detect_cluster() -> str | None:
    """'slurm' inside an `srun` step of several tasks, 'tpu' on a Cloud TPU VM, else None (a single
    process)."""
    slurm_vars = (
        "SLURM_JOB_ID",
        "SLURM_STEP_NODELIST",
        "SLURM_NTASKS",
        "SLURM_PROCID",
        "SLURM_LOCALID",
    )
    if all(v in os.environ for v in slurm_vars) and int(os.environ["SLURM_NTASKS"]) > 1:
        return "slurm"
    tpu_chips = glob.glob("/dev/accel[0-9]*") or glob.glob("/dev/vfio/[0-9]*")
    if tpu_chips and importlib.util.find_spec("libtpu") is not None:
        return "tpu"
    return None


def initialize(
    coordinator_address: str = "",
    num_processes: int = 0,
    process_id: int = -1,
    timeout_s: int = 300,
) -> bool:
    """Joins the run's other processes when there are several (explicit or detected); returns
    whether it did.

    Must run before any JAX computation. A coordinator that cannot be reached within `timeout_s`
    seconds is a UserError naming the address, not a hang.
    """
    explicit = bool(coordinator_address) or num_processes > 1 or process_id >= 0
    cluster = None if explicit else detect_cluster()
    if not explicit and cluster is None:
        return False
    if explicit:
        missing = [
            name
            for name, unset in (
                ("--coordinator_address", not coordinator_address),
                ("--num_processes", num_processes < 1),
                ("--process_id", process_id < 0),
            )
            if unset
        ]
        if missing:
            raise UserError(
                f"a multi-process run needs --coordinator_address, --num_processes and --process_id "
                f"together; missing {', '.join(missing)}"
            )
        if not 0 <= process_id < num_processes:
            raise UserError(
                f"--process_id={process_id} must be in [0, --num_processes={num_processes})"
            )
        if ":" not in coordinator_address:
            raise UserError(
                f"--coordinator_address={coordinator_address!r} must be host:port, e.g. "
                f"10.0.0.1:1234 (process 0's host, a free port)"
            )
    import jax
    from jax._src import distributed as jax_distributed

    if jax.distributed.is_initialized():
        return True
    if explicit and _cpu_only():
        # Cross-process collectives on CPU devices (the default in jax 0.10 is gloo; set it for
        # older defaults).
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs = (
        dict(
            coordinator_address=coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
        )
        if explicit
        else {}
    )
    where = coordinator_address or f"the {cluster} coordinator"
    problem = (
        f"process {process_id if explicit else os.environ.get('SLURM_PROCID', '?')} could not join the "
        f"run at {where} within {timeout_s}s"
    )
    advice = (
        "check that every process is running, that the address and port are reachable from this host, and "
        "that all processes were given the same --coordinator_address and --num_processes"
    )
    # jax aborts the process (a C++ fatal error and a stack trace) when its own deadline passes: the
    # watchdog fires first with one line; jax's deadline is only the backstop.
    watchdog = threading.Timer(timeout_s, _exit_with, (f"{problem}; {advice}",))
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(
            initialization_timeout=int(timeout_s) + _BACKSTOP_S,
            heartbeat_timeout_seconds=peers.JAX_HEARTBEAT_TIMEOUT_S,
            **kwargs,
        )
    except (
        Exception
    ) as e:  # ValueError/RuntimeError from jax's checks, XlaRuntimeError from the connection
        reason = " ".join(str(e).split())[:300]
        raise UserError(f"{problem} ({type(e).__name__}: {reason}); {advice}") from None
    finally:
        watchdog.cancel()
    # A peer lost from here on stops this process in bounded time, with one line (peers.py). jax
    # keeps its client in a private module; orbax reads it from there too.
    joined = jax_distributed.global_state
    peers.start(joined.client, joined.process_id, joined.num_processes)
    return True


def _exit_with(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    os._exit(1)


def _cpu_only() -> bool:
    return os.environ.get("JAX_PLATFORMS", "").strip().lower() == "cpu"


# The install command that gives a CUDA-enabled jaxlib (pyproject.toml's `cuda` extra: jax[cuda12]).
CUDA_INSTALL = 'pip install -e ".[cuda]"'


def nvidia_gpu_visible() -> bool:
    """Whether this host has an NVIDIA driver (whatever JAX makes of it)."""
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None


def backend_report() -> str:
    """The lines a run starts with: backend, device kind and count, process count; and, when an
    NVIDIA GPU is visible but JAX runs on the CPU (a CPU-only jaxlib, the plain `pip install`
    default), a warning naming the install command that fixes it. CPU chosen on purpose
    (JAX_PLATFORMS=cpu) is not warned about."""
    import jax

    backend = jax.default_backend()
    kinds = ", ".join(sorted({d.device_kind for d in jax.devices()}))
    lines = [
        f"backend {backend}: {jax.device_count()} x {kinds} device(s), {jax.local_device_count()} on this "
        f"process, {jax.process_count()} process(es)"
    ]
    if backend == "cpu" and not _cpu_only() and nvidia_gpu_visible():
        lines.append(
            f"warning: an NVIDIA GPU is visible but JAX runs on the CPU (a CPU-only jaxlib is installed); "
            f"install the CUDA one with: {CUDA_INSTALL}"
        )
    return "\n".join(lines)
