"""Progress and summary for the operator's batch commands (``retry``, ``refresh``),
and what ``listen`` is busy with when asked to stop.

On a terminal, rich's live progress on stderr: the bar stays at the bottom and log
records are printed above it through rich's logging handler, so a log line never
breaks into the bar; ids and statuses are cut to the terminal's width. Otherwise (a log,
a pipe) one plain line per deposit, so nothing is lost to carriage returns. The summary
is a table for stdout (reports.render_table): each deposit, done or still failing, and
why; or the same as JSON (``summary_data``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from rich.console import Console
from rich.highlighter import NullHighlighter
from rich.logging import RichHandler
from rich.progress import Progress as RichProgress
from rich.progress import ProgressColumn, Task, TextColumn
from rich.text import Text

from deposit_services.entrypoints.reports import Column, render_table
from deposit_services.errors import DepositServicesError
from deposit_services.safetext import SafeFormatter
from deposit_services.service.context import ServiceContext
from deposit_services.service.lifecycle import Outcome
from deposit_services.store.uow import run_unit

BAR_WIDTH = 30

log = logging.getLogger(__name__)


class _Bar(ProgressColumn):
    """``[#####.....] done/total``: plain ASCII, readable on any terminal and in a
    captured screen."""

    def render(self, task: Task) -> Text:
        total = int(task.total or 0)
        done = int(task.completed)
        filled = int(BAR_WIDTH * done / max(total, 1))
        return Text(f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}")


class _Console(Console):
    """Leaves the cursor alone (as the plain bar did): nothing to restore if the
    process is killed mid-batch, and the output ends with the bar's line."""

    def show_cursor(self, show: bool = True) -> bool:
        return False


@contextmanager
def logs_above(console: Console) -> Iterator[None]:
    """While the live display runs, the root logger's records go through ``console``
    (above the bar; SafeFormatter as everywhere) instead of the stderr handlers."""
    root = logging.getLogger()
    ours = [h for h in root.handlers
            if type(h) is not logging.FileHandler and isinstance(h, logging.StreamHandler)
            and h.stream in (sys.stderr, console.file)]
    handler = RichHandler(console=console, show_path=False, markup=False,
                          rich_tracebacks=False, show_time=True,
                          highlighter=NullHighlighter())
    handler.setFormatter(SafeFormatter("%(name)s: %(message)s"))
    for old in ours:
        root.removeHandler(old)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for old in ours:
            root.addHandler(old)


class Progress:
    """Reports each finished deposit of a batch of ``total`` (use as a context manager
    or call ``close``)."""

    def __init__(self, total: int, verb: str, stream: TextIO) -> None:
        self.total = total
        self.verb = verb
        self.stream = stream
        self.tty = stream.isatty()
        self._live: RichProgress | None = None
        self._logs: Any = None
        if self.tty:
            console = _Console(file=stream, force_terminal=True, markup=False,
                              highlight=False, emoji=False)
            self._live = RichProgress(
                TextColumn(f"{verb} "), _Bar(),
                TextColumn("{task.fields[current]}"),
                console=console, auto_refresh=False, transient=False,
            )
            self._task = self._live.add_task(verb, total=total, current="")
            self._logs = logs_above(console)
            self._logs.__enter__()
            self._live.start()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def step(self, done: int, total: int, outcome: Outcome) -> None:
        word = "ok" if outcome.ok else "not done"
        if self._live is not None:
            self._live.update(self._task, completed=done, total=total,
                              current=f"{outcome.deposit_id}: {outcome.status}")
            self._live.refresh()
            return
        self.stream.write(f"{self.verb} {done}/{total} deposit {outcome.deposit_id}: "
                          f"{outcome.status} ({word})\n")
        self.stream.flush()

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
            self._logs.__exit__(None, None, None)
        self.stream.flush()


def in_flight(ctx: ServiceContext) -> list[str]:
    """What this worker is busy with now: its deposits (WorkerMemory's busy set), each
    with its open transfer from the attempt log (size, how long it has run) if any."""
    busy = ctx.memory.busy_with("Deposit")
    if not busy:
        return []
    now = ctx.clock.now()

    def read(uow: Any) -> list[str]:
        shown = []
        for deposit_id in busy:
            attempts = [a for a in uow.state.attempts(deposit_id) if a.is_open]
            if not attempts:
                shown.append(f"deposit {deposit_id} (packaging)")
                continue
            attempt = attempts[-1]
            size = f"{attempt.package.size} bytes, " if attempt.package else ""
            ran = (now - attempt.started_at).total_seconds()
            shown.append(f"deposit {deposit_id} (transfer {attempt.number}: {size}"
                         f"running for {ran:.0f} s)")
        return shown

    try:
        return run_unit(ctx.database, read, read_only=True)
    except DepositServicesError:
        return [f"deposit {deposit_id}" for deposit_id in busy]


def say_what_listen_waits_for(ctx: ServiceContext, signal_name: str, abort_code: int) -> None:
    """Logged on ``listen``'s first SIGTERM/SIGINT: the deposits it waits for."""
    work = in_flight(ctx)
    if not work:
        log.info("%s received: finishing the messages in flight, then exiting", signal_name)
        return
    log.warning("%s received: waiting for %d deposit(s) in flight before exiting: %s. A "
                "transfer takes as long as the repository needs to take the package (no "
                "limit of ours); a second SIGTERM or SIGINT aborts at once (exit %d), and "
                "the aborted deposits resume on the next start", signal_name, len(work),
                "; ".join(work), abort_code)


def _result(outcome: Outcome) -> str:
    return "done" if outcome.ok else ("skipped" if outcome.skipped else "failing")


def summary_table(outcomes: Sequence[Outcome], verb: str, width: int | None = None) -> str:
    """DEPOSIT / RESULT / STATUS / MESSAGE rows, then the counts."""
    rows = [(o.deposit_id, _result(o), o.status, " ".join(o.message.split()))
            for o in outcomes]
    table = render_table([Column("DEPOSIT"), Column("RESULT"), Column("STATUS"),
                          Column("MESSAGE", cut=True)], rows, width=width)
    done = sum(o.ok for o in outcomes)
    return (f"{table}\n{verb}: {done} done, {len(outcomes) - done} not done "
            f"(of {len(outcomes)})")


def summary_data(outcomes: Sequence[Outcome], verb: str) -> dict[str, Any]:
    """The summary for ``--json``: each deposit and the counts."""
    done = sum(o.ok for o in outcomes)
    return {
        "command": verb,
        "deposits": [{"id": o.deposit_id, "result": _result(o), "status": o.status,
                      "message": o.message} for o in outcomes],
        "done": done,
        "notDone": len(outcomes) - done,
    }
