"""Progress bars of the long commands (feature extraction, the SVM's C path, sampling, prepare, the
FID classifier).

A thin layer over tqdm: bars are drawn on stderr only when stderr is a terminal, so logs, pipes and
captured test output never receive carriage-return garbage.
"""

import sys
from collections.abc import Iterable

import tqdm


def enabled() -> bool:
    """Whether bars are drawn: only when stderr is an interactive terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def bar(
    iterable: Iterable | None = None,
    total: float | None = None,
    desc: str = "",
    unit: str = "it",
    **kwargs,
) -> tqdm.tqdm:
    """A tqdm bar on stderr that is a silent no-op when stderr is not a terminal; use as an iterable
    or a context manager with `.update(n)`."""
    return tqdm.tqdm(
        iterable,
        total=total,
        desc=desc or None,
        unit=unit,
        disable=not enabled(),
        leave=False,
        file=sys.stderr,
        dynamic_ncols=True,
        **kwargs,
    )
