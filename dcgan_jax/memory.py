"""Memory estimates: refuse, with a line saying what fits, a request no machine can hold, before
allocating it.

Without this, `sample --num_samples=10000000` or `explore --zoom=3000` start allocating tens of GB
and end in a native abort or the OOM killer, long after the mistake. The budget is the memory
available now (free plus reclaimable, as the kernel reports it) less a margin for the program
itself; for what each device holds (a training run's state and batch), an accelerator's own free
memory.
"""

import os
from collections.abc import Callable

import jax

from dcgan_jax.errors import UserError

MARGIN = 0.8  # of the available memory, the share a single request may take


def available_bytes() -> int:
    """Memory available to this process now: MemAvailable on Linux, else free physical pages."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def size_text(nbytes: float) -> str:
    """Bytes as people read them: '512 MiB', '3.2 GiB', '2.9 PiB'."""
    for unit, power in (("PiB", 50), ("TiB", 40), ("GiB", 30)):
        if nbytes >= 2**power:
            return f"{nbytes / 2**power:,.1f} {unit}"
    return f"{nbytes / 2**20:.0f} MiB"


def budget_bytes() -> float:
    """What one request may take: MARGIN of the available memory."""
    return MARGIN * available_bytes()


def check_fits(
    count: int, bytes_each: float, what: str, fix: str, fixed_bytes: float = 0.0
) -> None:
    """Raises a one-line UserError when `count` items of `bytes_each` (plus `fixed_bytes`) exceed
    the budget, naming how many would fit and `fix`, the flag to change."""
    budget = budget_bytes() - fixed_bytes
    needed = count * bytes_each
    if needed > budget:
        fits = max(int(budget // bytes_each), 0) if bytes_each else 0
        raise UserError(
            f"{what} needs about {size_text(needed + fixed_bytes)} of memory and "
            f"{size_text(available_bytes())} is available: at most {fits:,} fit; {fix}"
        )


def device_budget() -> tuple[float, str]:
    """(bytes, where) one device may hold: an accelerator's free memory as its allocator reports it
    (the allocator's limit already leaves XLA its room), else MARGIN of the host's available memory
    shared by the host's CPU devices."""
    device = jax.local_devices()[0]
    stats = (device.memory_stats() or {}) if device.platform != "cpu" else {}
    if "bytes_limit" in stats:
        free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
        return free, f"{size_text(free)} is free on the {device.device_kind}"
    shared = jax.local_device_count()
    where = f" shared by {shared} CPU devices" if shared > 1 else ""
    return budget_bytes() / shared, f"{size_text(available_bytes())} is available{where}"


def check_device_fits(per_device: float, what: str, fix: Callable[[], str]) -> None:
    """Raises a one-line UserError when `per_device` bytes exceed what one device may hold
    (`device_budget`), naming the estimate, the memory and `fix()` (called only then: it may
    estimate alternatives)."""
    budget, where = device_budget()
    if per_device > budget:
        raise UserError(
            f"{what} needs about {size_text(per_device)} of memory per device and {where}; {fix()}"
        )
