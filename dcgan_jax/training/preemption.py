"""Preemption: on SIGTERM or SIGINT, finish the current step, save a checkpoint and exit cleanly.

A second signal exits at once. With several processes, any host's signal stops all of them at the same step.
"""

import os
import signal
import sys
from typing import Optional

import jax
import numpy as np

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """Context manager installing the handlers; `requested()` says whether to stop after this step."""

    def __init__(self):
        self.signal_name: Optional[str] = None
        self._previous = {}

    def __enter__(self) -> "StopRequest":
        for sig in _SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        del frame
        name = signal.Signals(signum).name
        if self.signal_name is not None:
            print(f"second signal ({name}): exiting now, without saving", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        self.signal_name = name
        print(f"received {name}: finishing this step and saving a checkpoint (send it again to exit at once)",
              file=sys.stderr, flush=True)

    def requested(self) -> bool:
        local = self.signal_name is not None
        if jax.process_count() == 1:
            return local
        from jax.experimental import multihost_utils
        return bool(np.any(multihost_utils.process_allgather(np.asarray(local))))
