"""Progress and summary for the operator's batch commands (``retry``, ``refresh``).

On a terminal, a one-line progress bar redrawn in place on stderr; otherwise (a log, a
pipe) one plain line per deposit, so nothing is lost to carriage returns. The summary
is a table for stdout: each deposit, done or still failing, and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from deposit_services.service.lifecycle import Outcome

BAR_WIDTH = 30


class Progress:
    """Reports each finished deposit of a batch of ``total``."""

    def __init__(self, total: int, verb: str, stream: TextIO) -> None:
        self.total = total
        self.verb = verb
        self.stream = stream
        self.tty = stream.isatty()
        self._drawn = False

    def step(self, done: int, total: int, outcome: Outcome) -> None:
        word = "ok" if outcome.ok else "not done"
        if self.tty:
            filled = int(BAR_WIDTH * done / max(total, 1))
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            line = f"{self.verb} [{bar}] {done}/{total} {outcome.deposit_id}: {outcome.status}"
            self.stream.write("\r\x1b[K" + line[:200])
            self._drawn = True
        else:
            self.stream.write(f"{self.verb} {done}/{total} deposit {outcome.deposit_id}: "
                              f"{outcome.status} ({word})\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def summary_table(outcomes: Sequence[Outcome], verb: str) -> str:
    """DEPOSIT / RESULT / STATUS / MESSAGE rows, then the counts."""
    rows = [("DEPOSIT", "RESULT", "STATUS", "MESSAGE")]
    for o in outcomes:
        result = "done" if o.ok else ("skipped" if o.skipped else "failing")
        rows.append((o.deposit_id, result, o.status, " ".join(o.message.split())))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3]
             for r in rows]
    done = sum(o.ok for o in outcomes)
    lines.append(f"{verb}: {done} done, {len(outcomes) - done} not done "
                 f"(of {len(outcomes)})")
    return "\n".join(lines)
