"""SIGTERM and SIGINT as an exception, for work that is all-or-nothing (a prepared cache): raised in
the main thread wherever it is, so the `finally` blocks on the way out remove what was half
written and stop the worker pool, rather than the process dying with both left behind.

Unlike training (training/preemption.py), which finishes its step and saves, there is nothing worth
keeping in half a cache, so the signal is acted on at once. Inside `too_late()` (the work is complete
and only being put in place: renames that must happen together) signals are ignored. After the
first signal, later ones are ignored too: the clean-up they would cut short is quick.
"""

import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Signalled(BaseException):
    """A stop signal arrived; a BaseException, like KeyboardInterrupt, so that no `except
    Exception` on the way out swallows it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.name = signal.Signals(signum).name

    @property
    def exit_status(self) -> int:
        """The shell's status of a process ended by this signal: 143 for SIGTERM, 130 for SIGINT."""
        return 128 + self.signum


class StopOnSignals:
    """`with StopOnSignals() as stop:` raises Signalled in the main thread on SIGTERM or SIGINT; a
    no-op outside the main thread (Python delivers signals to the main thread only)."""

    def __init__(self):
        self.received: int | None = None
        self._ignoring = False
        self._previous = {}

    def __enter__(self) -> "StopOnSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        del frame
        if self.received is not None or self._ignoring:
            return
        self.received = signum
        raise Signalled(signum)

    @contextlib.contextmanager
    def too_late(self) -> Iterator[None]:
        """Signals inside the block are ignored: what it finishes is already complete."""
        self._ignoring = True
        try:
            yield
        finally:
            self._ignoring = False
