"""Read-only views of submissions, their deposits and copies, for ``status``: one read
transaction and a fixed number of queries, however many submissions there are; and the
CLI's shared output helpers: tables rendered by rich (``render_table``: every cell
``safe``, one line per row, cut to the terminal's width) and ``--json`` (``print_json``:
exact but for credentials).
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from deposit_services.model.entities import (
    AggregatedDepositStatus,
    Deposit,
    DepositStatus,
    Repository,
    RepositoryCopy,
    Submission,
)
from deposit_services.nihms_mail.refs import manuscript_id
from deposit_services.safetext import redact_values, safe
from deposit_services.service.health import HEALTHY, describe
from deposit_services.store.uow import Database, UnitOfWork, run_unit


def _value(enum_value: Any) -> str | None:
    return None if enum_value is None else str(getattr(enum_value, "value", enum_value))


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _report(uow: UnitOfWork, submission_id: str | None) -> list[dict[str, Any]]:
    records = uow.records
    if submission_id is not None:
        submissions = [records.get(Submission, submission_id)]
        deposits = records.find(Deposit, submission=submission_id)
    else:
        submissions = records.find(Submission)
        deposits = records.find(Deposit)
    repositories = {r.id: r for r in records.get_many(
        Repository, [d.repository for d in deposits if d.repository])}
    copies = {c.id: c for c in records.get_many(
        RepositoryCopy, [d.repository_copy for d in deposits if d.repository_copy])}
    attempts = uow.state.attempt_counts([d.id for d in deposits])
    health = {s.key.casefold(): s for s in uow.state.repository_states() if s.health != HEALTHY}
    by_submission: dict[str, list[dict[str, Any]]] = {}
    for deposit in deposits:
        repository = repositories.get(deposit.repository or "")
        copy = copies.get(deposit.repository_copy or "")
        state = next((health[k.casefold()] for k in (
            repository.repository_key, repository.name, repository.id) if k
            and k.casefold() in health), None) if repository else None
        by_submission.setdefault(deposit.submission or "", []).append({
            "id": deposit.id,
            "repository": deposit.repository,
            "repositoryKey": (repository.repository_key or repository.name or repository.id
                              ) if repository else deposit.repository,
            "depositStatus": _value(deposit.deposit_status),
            "depositStatusRef": deposit.deposit_status_ref,
            "statusMessage": deposit.status_message,
            "nextAttemptAt": _time(deposit.next_attempt_at),
            "attempts": attempts.get(deposit.id, 0),
            "nihmsManuscriptId": manuscript_id(deposit.deposit_status_ref),
            "rejectionReason": (deposit.status_message if deposit.deposit_status
                                is DepositStatus.REJECTED else None),
            "repositoryHealth": describe(state) if state else None,
            "repositoryCopy": {
                "id": copy.id,
                "copyStatus": _value(copy.copy_status),
                "accessUrl": copy.access_url,
                "externalIds": copy.external_ids,
            } if copy else None,
        })
    return [{
        "id": s.id,
        "aggregatedDepositStatus": _value(s.aggregated_deposit_status),
        "submissionStatus": _value(s.submission_status),
        "statusMessage": s.status_message,
        "submittedDate": _time(s.submitted_date),
        "waiting": waiting_reason(s, bool(by_submission.get(s.id))),
        "deposits": by_submission.get(s.id, []),
    } for s in submissions]


def waiting_reason(submission: Submission, has_deposits: bool) -> str | None:
    """Why a submission nobody has started waits, for the operator (None: it does not
    wait, or it is a worker's to start)."""
    status = submission.aggregated_deposit_status
    if has_deposits or status not in (None, AggregatedDepositStatus.NOT_STARTED):
        return None
    if not submission.submitted:
        return ("stored, not announced: submitted is false (set it and submit --replace "
                "to have it deposited)")
    return ("ready: waiting for a worker (deposit-services listen) to take its "
            "SubmissionReady message, or for its unstarted job")


def status_report(database: Database, submission_id: str | None = None
                  ) -> list[dict[str, Any]]:
    """One entry per submission (or just ``submission_id``; NotFound if unknown)."""
    return run_unit(database, lambda uow: _report(uow, submission_id), read_only=True)


# --- output helpers --------------------------------------------------------------------

PIPE_WIDTH = 100_000  # not a terminal: nothing is cut but by ``safe``
MIN_CUT_WIDTH = 12  # a cut column keeps at least this much on a narrow terminal


@dataclass(frozen=True)
class Column:
    """A table column; ``cut``: the one that gives way (with an ellipsis) when the rows
    are wider than the terminal."""

    header: str
    cut: bool = False


def render_table(columns: Sequence[Column], rows: Sequence[Sequence[object]], *,
                 width: int | None = None, stream: TextIO | None = None) -> str:
    """The rows as a borderless table (a header line, then one line per row): every cell
    ``safe`` (escaped, cut, credentials masked) and never wrapped; on a terminal the
    ``cut`` columns (else the last) are cut to its width."""
    table = Table(box=None, pad_edge=False, show_edge=False, expand=False,
                  header_style=None)
    if width is None:
        target = stream or sys.stdout
        width = shutil.get_terminal_size().columns if target.isatty() else PIPE_WIDTH
    cells = [[safe(str(cell)) for cell in row] for row in rows]
    widths = [max([len(column.header), *(len(row[i]) for row in cells)])
              for i, column in enumerate(columns)]
    cut = [i for i, column in enumerate(columns) if column.cut] or [len(columns) - 1]
    fixed = sum(w for i, w in enumerate(widths) if i not in cut) + 2 * (len(columns) - 1)
    room = max((width - fixed) // len(cut), MIN_CUT_WIDTH)
    for i, column in enumerate(columns):
        table.add_column(column.header, no_wrap=True, overflow="ellipsis",
                         width=min(widths[i], room) if i in cut else widths[i])
    for row in cells:
        table.add_row(*(Text(cell) for cell in row))
    buffer = io.StringIO()
    Console(file=buffer, width=max(width, fixed + MIN_CUT_WIDTH * len(cut)), markup=False,
            highlight=False, emoji=False, color_system=None, soft_wrap=False).print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def print_json(data: object, stream: TextIO | None = None) -> None:
    """``--json``: the data exact but for credentials (``redact_values``)."""
    print(json.dumps(redact_values(data), indent=2), file=stream or sys.stdout)


def deposit_message(dep: dict[str, Any]) -> str:
    """A deposit's message column: the reason of a rejection, NIHMS's manuscript id,
    else its status message or its copy's URL."""
    text = dep["statusMessage"] or (dep["repositoryCopy"] or {}).get("accessUrl") or ""
    if dep.get("rejectionReason"):
        return f"rejected: {dep['rejectionReason']}"
    if dep.get("nihmsManuscriptId"):
        return f"NIHMS manuscript {dep['nihmsManuscriptId']}; {text}"
    return str(text)


def status_table(report: list[dict[str, Any]], width: int | None = None) -> str:
    """One row per submission and per deposit; every cell ``safe``, so a row is a line."""
    if not report:
        return "no submissions"
    rows: list[tuple[str, ...]] = []
    for sub in report:
        rows.append((sub["id"], sub["aggregatedDepositStatus"] or "-", "", "", "",
                     sub["statusMessage"] or sub.get("waiting") or ""))
        for dep in sub["deposits"]:
            copy = dep["repositoryCopy"] or {}
            rows.append(("", "", str(dep["repositoryKey"]), dep["depositStatus"] or "(pending)",
                         copy.get("copyStatus") or "-",
                         deposit_message(dep)))
    table = render_table([Column("SUBMISSION"), Column("STATUS"), Column("REPOSITORY"),
                          Column("DEPOSIT"), Column("COPY"), Column("MESSAGE / URL", cut=True)],
                         rows, width=width)
    unhealthy = {str(dep["repositoryKey"]): dep["repositoryHealth"] for sub in report
                 for dep in sub["deposits"] if dep.get("repositoryHealth")}
    if not unhealthy:
        return table
    return table + "\n\n" + render_table(
        [Column("REPOSITORY"), Column("HEALTH", cut=True)], sorted(unhealthy.items()),
        width=width)
