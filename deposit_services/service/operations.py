"""Operator commands over many deposits: ``retry`` and ``refresh`` (the CLI is thin).

A deposit is named by its id or by any URL ending in it (a pass-core URL such as
``https://pass.example/data/deposit/31``). Without names, ``retry`` takes every FAILED
and RETRY deposit and ``refresh`` every SUBMITTED one. A named deposit that is not in a
state the command works on is reported as not done, with the reason. A named ACCEPTED
deposit is also refreshed: its repository's resolver may re-check it (dtool: is the
dataset still registered in dserver? see service/lifecycle.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from urllib.parse import unquote, urlsplit

from deposit_services.errors import DepositServicesError
from deposit_services.model.entities import Deposit, DepositStatus
from deposit_services.service.context import ServiceContext
from deposit_services.service.lifecycle import DepositProcessor, Outcome, status_word
from deposit_services.service.outcome import TRIGGER_FORCE, TRIGGER_OPERATOR
from deposit_services.store.uow import UnitOfWork, run_unit

log = logging.getLogger(__name__)

RETRY = "retry"
REFRESH = "refresh"
DONE_WORD = {RETRY: "retried", REFRESH: "refreshed"}
SELECTED: dict[str, tuple[DepositStatus, ...]] = {
    RETRY: (DepositStatus.FAILED, DepositStatus.RETRY),
    REFRESH: (DepositStatus.SUBMITTED,),
}
# Also worked on when the operator names them.
NAMED: dict[str, tuple[DepositStatus, ...]] = {REFRESH: (DepositStatus.ACCEPTED,)}


def deposit_id_from_uri(uri: str) -> str:
    """The deposit id in ``uri``: the id itself, or the last path segment of a URL.
    ValueError if there is none."""
    text = uri.strip()
    if "://" in text:
        text = unquote(urlsplit(text).path)
    ident = text.rstrip("/").rsplit("/", 1)[-1].strip()
    if not ident:
        raise ValueError(f"{uri!r} does not name a deposit (an id or a URL ending in the id)")
    return ident


def select(ctx: ServiceContext, command: str, ids: Sequence[str]) -> list[str]:
    """The deposits ``command`` works on: ``ids`` as given (duplicates dropped), or
    every deposit in the command's states."""
    if ids:
        return list(dict.fromkeys(ids))

    def chosen(uow: UnitOfWork) -> list[str]:
        return [d.id for status in SELECTED[command]
                for d in uow.records.find(Deposit, deposit_status=status)]

    return run_unit(ctx.database, chosen, read_only=True)


def run(
    ctx: ServiceContext,
    command: str,
    ids: Sequence[str],
    named: bool,
    progress: Callable[[int, int, Outcome], None] | None = None,
    force: bool = False,
) -> list[Outcome]:
    """Run ``command`` on each deposit in turn; one Outcome per deposit, in order.
    ``named``: the operator listed them, so one not in a matching state is not done.
    ``force`` (retry): a duplicate is sent anyway (service/duplicates.py)."""
    processor = DepositProcessor(ctx)
    current = run_unit(ctx.database, lambda uow: {
        d.id: d for d in uow.records.get_many(Deposit, ids)}, read_only=True)
    outcomes: list[Outcome] = []
    for index, deposit_id in enumerate(ids, start=1):
        outcome = _one(processor, command, deposit_id, current.get(deposit_id),
                       TRIGGER_FORCE if force else TRIGGER_OPERATOR, named)
        if named and outcome.skipped:
            outcome = replace(outcome, ok=False)
        outcomes.append(outcome)
        if progress is not None:
            progress(index, len(ids), outcome)
    return outcomes


def _one(processor: DepositProcessor, command: str, deposit_id: str,
         deposit: Deposit | None, trigger: str, named: bool = False) -> Outcome:
    if deposit is None:
        return Outcome(deposit_id, False, "-", "no such deposit", skipped=True)
    wanted = SELECTED[command] + (NAMED.get(command, ()) if named else ())
    if deposit.deposit_status not in wanted:
        current = status_word(deposit)
        names = " and ".join(s.value for s in wanted)
        return Outcome(deposit_id, False, current,
                       f"{current}: only {names} deposits are {DONE_WORD[command]}", skipped=True)
    try:
        if command == RETRY:
            return processor.retry(deposit_id, trigger, due_only=False)
        return processor.refresh(deposit_id)
    except DepositServicesError as exc:
        log.warning("%s of deposit %s failed: %s", command, deposit_id, exc)
        return Outcome(deposit_id, False, status_word(deposit), str(exc))
