"""Memory estimates: refuse, with a line saying what fits, a request no machine can hold, before
allocating it.

Without this, `sample --num_samples=10000000` or `explore --zoom=3000` start allocating tens of GB
and end in a native abort or the OOM killer, long after the mistake. The budget is the memory
available now (free plus reclaimable, as the kernel reports it) less a margin for the program
itself.
"""

import os

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


def _size(nbytes: float) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"


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
            f"{what} needs about {_size(needed + fixed_bytes)} of memory and {_size(available_bytes())} "
            f"is available: at most {fits:,} fit; {fix}"
        )
