"""Unreadable images, reported on stderr at the default verbosity: one line per kind of failure
(images.failure_kind), with a count and the first such image.

Why not absl logging: the command-line tools set it to ERROR (orbax logs every save), which hid these
lines unless -v=1. Why not one line per image: a dataset with thousands of bad files would bury every
other line. Counts are reported when a kind is first seen, then at most every REPORT_EVERY_SECONDS
while they grow, and once more at the end (`report(final=True)`) if they grew since; each line
gives the total of its kind so far.
"""

import sys
import time

REPORT_EVERY_SECONDS = 60.0


class SkipReport:
    """Counts unreadable images by kind; `verb` says what became of them ("skipped", "left out"),
    `note` (if any) ends each line."""

    def __init__(self, verb: str, note: str = ""):
        self.verb, self.note = verb, note
        self.counts: dict[str, int] = {}
        self.first: dict[str, str] = {}  # kind -> the first image of that kind, with why
        self._reported: dict[str, int] = {}  # kind -> its count when last reported
        self._last = None  # time.monotonic() of the last report

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, kind: str, reason: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.first.setdefault(kind, reason)

    def report(self, final: bool = False) -> list[str]:
        """Prints (and returns) a line for each kind whose count grew since its last report, when a
        kind is new, the last report is REPORT_EVERY_SECONDS old, or `final`."""
        grown = [k for k, n in self.counts.items() if self._reported.get(k) != n]
        now = time.monotonic()
        due = final or any(k not in self._reported for k in grown)
        if not grown or not (due or now - self._last >= REPORT_EVERY_SECONDS):
            return []
        lines = []
        for kind in grown:  # each line's count is the total so far
            count = self.counts[kind]
            lines.append(
                f"{self.verb} {count:,} unreadable image{'s' if count > 1 else ''}: {kind}; "
                f"first: {self.first[kind]}{self.note}"
            )
            self._reported[kind] = count
        self._last = now
        print("\n".join(lines), file=sys.stderr, flush=True)
        return lines
