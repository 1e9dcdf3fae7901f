"""The processes a test started, seen through /proc (psutil is not a dependency): children of a pid, and whether a
pid still runs."""

import os
import time


def _status(pid: int) -> dict:
    try:
        with open(f"/proc/{pid}/status") as f:
            return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
    except OSError:  # gone (or not ours to read)
        return {}


def children(pid: int) -> list[int]:
    """The live processes whose parent is `pid`."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            status = _status(int(name))
            if status.get("PPid", "").strip() == str(pid) and alive(int(name)):
                found.append(int(name))
    return found


def alive(pid: int) -> bool:
    """Whether `pid` runs: a zombie (dead, not yet reaped by its new parent) counts as gone."""
    state = _status(pid).get("State", "")
    return bool(state) and not state.startswith(("Z", "X"))


def wait_gone(pids, timeout: float = 30.0) -> list[int]:
    """Polls until none of `pids` runs, at most `timeout` seconds; returns those still running."""
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for pid in pids if alive(pid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
