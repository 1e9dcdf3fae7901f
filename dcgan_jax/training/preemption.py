"""Preemption: on SIGTERM or SIGINT, finish the current step, save a checkpoint and exit cleanly.

A second signal exits at once. With several processes, any host's signal stops all of them at the
same step: the hosts compare their flags only at steps where they already wait for each other (log
and checkpoint steps fetch results of the step's collectives), so the steps in between run no
cross-host collective outside the compiled step and each host keeps queueing steps ahead of its
devices. A signal is acted on at the next such step, at most `log_every_steps` later (checkpoints
are also due then).
"""

import os
import signal
import sys

import jax
import numpy as np
from jax.experimental import multihost_utils

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """Context manager installing the handlers; `requested()` says whether to stop after this
    step."""

    def __init__(self):
        self.signal_name: str | None = None
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
            print(
                f"second signal ({name}): exiting now, without saving", file=sys.stderr, flush=True
            )
            os._exit(128 + signum)
        self.signal_name = name
        print(
            f"received {name}: finishing this step and saving a checkpoint (send it again to exit at once)",
            file=sys.stderr,
            flush=True,
        )

    def requested(self, at_sync_step: bool) -> bool:
        """Whether to stop after this step. One process: as soon as a signal arrived. Several: only
        at a step where the hosts synchronize anyway (`at_sync_step`, the same on every host), where
        all of them learn whether any host was signalled; on other steps False, with no cross-host
        communication."""
        local = self.signal_name is not None
        if jax.process_count() == 1:
            return local
        if not at_sync_step:
            return False
        return bool(np.any(multihost_utils.process_allgather(np.asarray(local))))
