"""A transfer whose outcome is unknown (sent whole, no answer) across replicas.

Replica A uploads to the SWORDv2 test server, which stores the package but answers only
after A's read timeout, and lists the item only later (a slow ingest): A records the
deposit RETRY with its attempt open ("outcome unknown"). Replica B, with its own
context, transports and owner over the same store (SQLite and PostgreSQL), runs the
next attempt: it asks the target first (the collection's listing) and records what it
finds instead of sending the package again.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from deposit_services.model.entities import CopyStatus, DepositStatus, RepositoryCopy
from deposit_services.service.lifecycle import DepositProcessor
from deposit_services.service.outcome import TRIGGER_OPERATOR
from deposit_services.service.retry import RetryPolicy
from deposit_services.service.submissions import SubmissionProcessor
from deposit_services.store.base import AttemptOutcome
from tests.integration.lifecycle.conftest import SWORD_REPO, World
from tests.support.clock import FakeClock


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave a server thread waiting


def _posts(world: World) -> list[str]:
    return [r.path for r in world.server.requests
            if r.method == "POST" and "/collection/" in r.path]


def _unanswered_first_attempt(make_world: Callable[..., World], sid: str,
                              release: threading.Event) -> World:
    """Replica A's attempt: uploaded whole, no answer, not in the listing yet."""
    first = make_world(**{"read-timeout": 0.5})
    first.seed(sid, [SWORD_REPO])
    first.server.answer_late_next(release, ingested=False)
    SubmissionProcessor(first.ctx).process(sid)
    deposit = first.deposit_of(sid)
    assert deposit.deposit_status is DepositStatus.RETRY, deposit.status_message
    message = deposit.status_message or ""
    assert "outcome unknown" in message
    assert "first asks the repository whether it holds the package" in message
    (attempt,) = first.store.attempts(deposit.id)
    assert attempt.is_open and attempt.package is not None, "the attempt log keeps it open"
    assert (attempt.error or "").startswith("outcome unknown: ")  # and says why
    assert deposit.repository_copy is None
    return first


def _replica_b(make_world: Callable[..., World], first: World, sid: str) -> DepositProcessor:
    """Another replica: its own context, transports and owner, the same store, and a
    clock at the deposit's next attempt time (the retry job's precondition)."""
    due = first.deposit_of(sid).next_attempt_at
    assert due is not None
    second = make_world()
    assert second.ctx.owner != first.ctx.owner
    ctx = dataclasses.replace(second.ctx, clock=FakeClock(due + timedelta(seconds=1)))
    return DepositProcessor(ctx)


def test_another_replica_finds_the_item_and_sends_nothing(
    make_world: Callable[..., World], release: threading.Event,
) -> None:
    first = _unanswered_first_attempt(make_world, "unknown-found", release)
    release.set()  # the ingest finishes: the item shows in the listing
    outcome = _replica_b(make_world, first, "unknown-found").retry(
        first.deposit_of("unknown-found").id)
    assert outcome.ok, outcome

    deposit = first.deposit_of("unknown-found")
    (remote,) = first.server.deposits.values()
    assert len(_posts(first)) == 1, "one upload, one item"
    assert deposit.deposit_status is DepositStatus.SUBMITTED, deposit.status_message
    assert deposit.deposit_status_ref == first.server.statement_url(remote.id, "atom")
    copy = first.store.get(RepositoryCopy, deposit.repository_copy or "")
    assert copy.copy_status is CopyStatus.IN_PROGRESS
    (attempt,) = first.store.attempts(deposit.id)
    assert attempt.outcome is AttemptOutcome.RECONCILED
    assert attempt.edit_iri == first.server.edit_url(remote.id)
    # it looked in the listing before anything else went to the collection
    gets = [r for r in first.server.requests if r.method == "GET" and "/collection/" in r.path]
    assert len(gets) == 2, "A looked once after its timeout, B once before sending"


def test_another_replica_sends_again_when_the_target_does_not_hold_it(
    make_world: Callable[..., World], release: threading.Event,
) -> None:
    first = _unanswered_first_attempt(make_world, "unknown-lost", release)
    with first.server.app._lock:  # the server lost it (its ingest failed)
        first.server.app.deposits.clear()
    release.set()
    deposit_id = first.deposit_of("unknown-lost").id
    outcome = _replica_b(make_world, first, "unknown-lost").retry(deposit_id)
    assert outcome.ok, outcome

    assert len(_posts(first)) == 2 and len(first.server.deposits) == 1
    assert first.deposit_of("unknown-lost").deposit_status is DepositStatus.SUBMITTED
    attempts = first.store.attempts(deposit_id)
    assert [a.outcome for a in attempts] == [AttemptOutcome.INTERRUPTED, AttemptOutcome.SENT]
    assert "the target does not hold the package" in (attempts[0].error or "")
    assert attempts[1].owner != attempts[0].owner


def test_out_of_attempts_it_is_failed_open_and_an_operator_retry_asks_first(
    make_world: Callable[..., World], release: threading.Event,
) -> None:
    """The last attempt's outcome unknown: FAILED, saying so, the attempt still open;
    the operator's retry (from any worker) asks the target before sending."""
    first = make_world(RetryPolicy(base_seconds=0.05, cap_seconds=0.05, max_attempts=1,
                                   jitter="none"), **{"read-timeout": 0.5})
    first.seed("unknown-last", [SWORD_REPO])
    first.server.answer_late_next(release, ingested=False)
    SubmissionProcessor(first.ctx).process("unknown-last")
    deposit = first.deposit_of("unknown-last")
    assert deposit.deposit_status is DepositStatus.FAILED
    message = deposit.status_message or ""
    assert "gave up after 1 attempts" in message and "outcome unknown" in message
    assert "first asks the repository whether it holds the package" in message
    (attempt,) = first.store.attempts(deposit.id)
    assert attempt.is_open

    release.set()
    outcome = DepositProcessor(make_world().ctx).retry(
        deposit.id, trigger=TRIGGER_OPERATOR, due_only=False)
    assert outcome.ok, outcome
    assert first.deposit_of("unknown-last").deposit_status is DepositStatus.SUBMITTED
    assert len(_posts(first)) == 1 and len(first.server.deposits) == 1
    assert [a.outcome for a in first.store.attempts(deposit.id)] == [
        AttemptOutcome.RECONCILED]
