"""Progress bars of the long commands (feature extraction, the SVM's C path, sampling, prepare, the
FID classifier), and the lines said while XLA compiles (`compile_notice`).

A thin layer over tqdm: bars are drawn on stderr only when stderr is a terminal, so logs, pipes and
captured test output never receive carriage-return garbage. Compile notices are plain lines on
stdout, as a run's other progress lines.
"""

import contextlib
import functools
import sys
from collections.abc import Callable, Iterable, Iterator

import jax
import tqdm

# JAX's monitoring events (jax._src.dispatch, jax._src.compiler): an XLA compilation starting (a
# scalar: its start time) and done (its duration; a read from the persistent cache included), and
# a program read from the persistent compilation cache.
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"


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


_notices = []  # the compile notice in force: a block inside it says nothing of its own


@contextlib.contextmanager
def compile_notice(what: str, say: Callable[[str], None] | None = None) -> Iterator[None]:
    """Around code whose first run compiles (a step's first call, a model's initializers): says
    `compiling {what} ...` as XLA starts the block's first compilation and, after the block,
    `compiled in X s`, the seconds XLA spent compiling the block's programs (those read from JAX's
    persistent compilation cache are said to be). Says nothing when the block compiles nothing
    (its programs were compiled earlier in this process), nor a second line when it raises; a
    notice inside another says nothing (the outer one counts its programs). `say`: where the lines
    go (default: stdout)."""
    if _notices:
        yield
        return
    say = say or functools.partial(print, flush=True)
    seen = {"started": False, "seconds": 0.0, "programs": 0, "cached": 0}

    def started(event: str, value: float, **kwargs) -> None:
        if event == COMPILE_EVENT and not seen["started"]:
            seen["started"] = True
            say(f"compiling {what} ...")

    def finished(event: str, duration: float, **kwargs) -> None:
        if event == COMPILE_EVENT:
            seen["seconds"] += duration
            seen["programs"] += 1

    def read(event: str, **kwargs) -> None:
        seen["cached"] += event == CACHE_HIT_EVENT

    monitoring = jax.monitoring
    monitoring.register_scalar_listener(started)
    monitoring.register_event_duration_secs_listener(finished)
    monitoring.register_event_listener(read)
    _notices.append(what)
    try:
        yield
    finally:
        _notices.pop()
        monitoring.unregister_scalar_listener(started)
        monitoring.unregister_event_duration_listener(finished)
        monitoring.unregister_event_listener(read)
    if not seen["started"]:
        return
    note, cached, programs = "", seen["cached"], seen["programs"]
    if cached:
        which = "its programs" if cached >= programs else f"{cached} of its {programs} programs"
        note = f" ({which} read from the persistent compilation cache)"
    say(f"compiled in {seen['seconds']:.1f} s{note}")
