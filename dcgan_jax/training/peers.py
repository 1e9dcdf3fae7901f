"""A lost peer in a multi-process run: the survivors stop within `BOUND_S` seconds with one line
naming the process that was lost and the checkpoint that a rerun of all processes resumes from.

Left to jax, a survivor of a `kill -9` either fails in its next collective (a Gloo or NCCL error, a
traceback) and then blocks in jax's exit-time shutdown barrier, or blocks in the collective itself
(NCCL waits forever); either way it ends only when the coordination service's heartbeat timeout
passes, with a C++ abort and ~100 lines of stack dump. So each process runs a watchdog thread that
beats (a counter in the coordination service's key-value store, every `BEAT_S` s) and watches the
others' beats: a peer whose counter has stood still for `LOST_AFTER_S` s, without having said it
finished, is lost, and the watchdog prints the line and ends the process at once (os._exit: the
main thread may be stuck in a collective, and jax's exit handlers would wait for the dead peer).
jax's own timeout (`JAX_HEARTBEAT_TIMEOUT_S`, passed to jax.distributed.initialize) is set well
above, so this verdict always comes first. A watchdog thread beats even while its main thread waits
in a collective or compiles (both release the GIL), so a slow peer is not a lost one.

The bound, from a peer's death to the survivors' end: `BOUND_S` (20 s) when a process other than 0
dies (its last beat is at most `BEAT_S` old; it is lost once its counter has stood still
`LOST_AFTER_S`, noticed within one more `BEAT_S`; the rest is margin for the key-value round trips);
under a second when process 0 dies and its connections close (killed or crashed: the kernel resets
them); and `JAX_HEARTBEAT_TIMEOUT_S` plus a few seconds (under 60 s) when process 0's host vanishes
without a word (power, network), when jax's own heartbeat check gives up.

The loss of process 0 is different: it hosts the coordination service, and jax's client in every
other process aborts (a C++ fatal error and a stack dump, out of Python's reach: the client's
`missed_heartbeat_callback` of jaxlib 0.10 ends in std::bad_cast) as soon as it loses its
connection. So a multi-process run's stderr goes through a guard process (`python -m
dcgan_jax.training.peers`) that passes everything on, except that jax's log lines are held back for
`_HOLD_S`: when jax's "Terminating process" line follows, the guard drops it and all that comes
after, and ends the stream with the one line instead, naming the task jax says died. The guard ends
when the run's process (and every process sharing its stderr) has ended. (A side effect: stderr is
not a terminal in a multi-process run, so progress bars are off there.)
"""

import atexit
import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

from dcgan_jax import run_files
from dcgan_jax.errors import AbandonedWork

BEAT_S = 1.0
LOST_AFTER_S = 15.0
BOUND_S = LOST_AFTER_S + 2 * BEAT_S + 3
# jax's own verdict (its default is 100 s): well above BOUND_S, so ours comes first; it is what
# stops the survivors when process 0's host vanishes without its connections being reset.
JAX_HEARTBEAT_TIMEOUT_S = 45
_KEYS = "dcgan_jax/peers/"
# jax's C++ log lines ("E1206 00:42:24.280157   23167 file.cc:123] ..."), and the one jax ends a
# process with when its coordination service reports a task dead or cannot be reached.
_JAX_LOG = re.compile(rb"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w.-]+:\d+\] ")
_JAX_FATAL = b"Terminating process because the JAX distributed service detected fatal errors"
_HOLD_S = 2.0

_watchdog: "_Watchdog | None" = None
_guard_process: subprocess.Popen | None = None


def start(client, process_id: int, num_processes: int) -> None:
    """Starts this process's watchdog; `client` is jax's coordination-service client, once the
    processes have joined."""
    global _watchdog
    if _watchdog is not None or num_processes < 2:
        return
    _watchdog = _Watchdog(client, process_id, num_processes)
    _watchdog.start()
    # Registered after jax's own exit handler, so it runs first: the watchdog stops before jax shuts
    # the coordination service down, where a peer that already left would look lost.
    atexit.register(_watchdog.stop)


@contextlib.contextmanager
def guarded(workdir: str) -> Iterator[None]:
    """Around a multi-process run's work (a no-op with one process): the lost-peer line names
    workdir's checkpoints; an exception that the loss of a peer caused (a failed collective) is
    replaced by that line instead of a traceback; leaving normally tells the peers this process
    finished, so they do not take its exit for a loss."""
    watchdog = _watchdog
    if watchdog is None:
        yield
        return
    watchdog.workdir = workdir
    _guard_stderr(watchdog.me, watchdog.count, workdir)
    try:
        yield
    except (RuntimeError, ValueError, AbandonedWork):
        # What a collective (jax's runtime error, or a ValueError from a failed transfer) or a
        # checkpoint save raises when a peer died: the watchdog names the peer within the bound and
        # ends the process; any other error is re-raised once it is clear that no peer was lost.
        if watchdog.fired.wait(BOUND_S):
            threading.Event().wait()  # the watchdog has printed the line and is ending the process
        raise
    watchdog.finished()


class _Watchdog(threading.Thread):
    def __init__(self, client, process_id: int, num_processes: int):
        super().__init__(name="dcgan_jax-peers", daemon=True)
        self.client, self.me, self.count = client, process_id, num_processes
        self.workdir: str | None = None
        self.fired = threading.Event()
        self._stopped = threading.Event()
        self._once = threading.Lock()

    def run(self) -> None:
        beat, last_change = 0, {}  # peer -> (its counter, when it last changed here)
        while not self._stopped.wait(BEAT_S):
            beat += 1
            try:
                self.client.key_value_set(f"{_KEYS}beat/{self.me}", str(beat), allow_overwrite=True)
                entries = dict(self.client.key_value_dir_get(_KEYS))
            except Exception as e:  # the coordination service (process 0) does not answer
                if not self._stopped.is_set():
                    reason = " ".join(str(e).split())[:120]
                    self._lost([0], f"its coordination service stopped answering: {reason}")
                return
            now, lost = time.monotonic(), []
            for peer in range(self.count):
                if peer == self.me or f"{_KEYS}done/{peer}" in entries:
                    continue
                counter = entries.get(f"{_KEYS}beat/{peer}")
                if peer not in last_change or last_change[peer][0] != counter:
                    last_change[peer] = (counter, now)
                elif now - last_change[peer][1] >= LOST_AFTER_S:
                    lost.append(peer)
            if lost:
                self._lost(
                    lost, f"no sign of life for {LOST_AFTER_S:.0f}s: killed, crashed or cut off"
                )

    def finished(self) -> None:
        """Tells the peers this process ended its work normally."""
        with contextlib.suppress(Exception):
            self.client.key_value_set(f"{_KEYS}done/{self.me}", "", allow_overwrite=True)

    def stop(self) -> None:
        self._stopped.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=2 * BEAT_S)

    def _lost(self, peers: list[int], why: str) -> None:
        if not self._once.acquire(blocking=False) or self._stopped.is_set():
            return
        line = f"error: {lost_message(peers, self.me, self.count, why, self.workdir)}\n"
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        # Straight to file descriptor 2: sys.stderr may be redirected for the moment (checkpoints
        # hold back what orbax prints during a save).
        os.write(2, line.encode())
        self.fired.set()
        os._exit(1)


def lost_message(peers: list[int], me: int, count: int, why: str, workdir: str | None) -> str:
    """The one line a survivor ends with: who was lost, and where a rerun of every process resumes
    from."""
    names = ", ".join(f"process {p}" + (" (the coordinator)" if p == 0 else "") for p in peers)
    rerun = f"start all {count} processes again with the same command"
    if workdir is None:
        resume = f"{rerun} to resume from the latest checkpoint"
    else:
        folder = run_files.checkpoint_dir(workdir)
        steps = _finalized_steps(folder)
        resume = (
            f"{rerun} to resume from {folder} (step {max(steps)})"
            if steps
            else f"no checkpoint was saved yet in {folder}: {rerun} to start over"
        )
    return f"{names} of {count} was lost ({why}); process {me} stopped too; {resume}"


def _finalized_steps(folder: str) -> list[int]:
    """The complete checkpoints' steps: orbax writes a step under a temporary name and renames it to
    the bare step number once every process wrote its part."""
    try:
        return [int(name) for name in os.listdir(folder) if name.isdigit()]
    except OSError:
        return []


def _guard_stderr(me: int, count: int, workdir: str) -> None:
    """Routes this process's stderr (file descriptor 2, which jax's C++ code writes too) through the
    guard process."""
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    global _guard_process
    _guard_process = subprocess.Popen(
        [sys.executable, "-m", __name__, str(me), str(count), os.path.abspath(workdir)],
        stdin=read_end,
        stdout=original,
        stderr=original,
    )
    os.close(read_end)
    os.close(original)
    os.dup2(write_end, 2)
    os.close(write_end)


def _jax_verdict(text: bytes) -> tuple[list[int], str]:
    """Which processes jax's fatal message says were lost, and how it knew."""
    unhealthy = re.search(rb"stopped sending heartbeats\):\s*([\d\s,]+)", text)
    tasks = re.findall(rb"Task (\d+) heartbeat timeout", text)
    if unhealthy or tasks:
        found = re.findall(rb"\d+", unhealthy.group(1)) if unhealthy else tasks
        return sorted({int(t) for t in found}), "its heartbeats stopped, jax's coordinator says"
    return [0], "the coordination service it hosts stopped answering: killed, crashed or cut off"


def _guard(me: int, count: int, workdir: str) -> None:
    """The guard process: copies stdin to stdout as it comes, holding jax's log lines (and what
    follows them) back for _HOLD_S; replaces jax's fatal 'Terminating process' dump by the line."""
    for sig in (signal.SIGINT, signal.SIGTERM):  # it ends with its stream, after the last line
        signal.signal(sig, signal.SIG_IGN)
    out, partial, held, fatal, hold_until = sys.stdout.buffer, b"", None, None, 0.0
    while True:
        wait = max(hold_until - time.monotonic(), 0) if held is not None else None
        if not select.select([0], [], [], wait)[0]:
            out.write(b"".join(held))
            out.flush()
            held = None
            continue
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        *lines, partial = (partial + chunk).split(b"\n")
        for line in (line + b"\n" for line in lines):
            if fatal is not None or _JAX_FATAL in line:  # with what jax logged just before
                fatal, held = (fatal or b"".join(held or [])) + line, None
            elif held is not None:
                held.append(line)
            elif _JAX_LOG.match(line):
                held, hold_until = [line], time.monotonic() + _HOLD_S
            else:
                out.write(line)
        if held is None and fatal is None:
            out.flush()
    if fatal is None:
        out.write(b"".join(held or []) + partial)
    else:
        lost, why = _jax_verdict(fatal)
        out.write(f"error: {lost_message(lost, me, count, why, workdir)}\n".encode())
    out.flush()


if __name__ == "__main__":
    _guard(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
