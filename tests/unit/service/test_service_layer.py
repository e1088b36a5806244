"""The service layer's rules on the in-memory store and a fake clock: no database, no
real waiting, nothing that can race. (The same rules run on SQLite and PostgreSQL in
tests/integration/lifecycle; the store contract tests hold the adapters to one
behaviour.)"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deposit_services.config.repositories import parse_repositories
from deposit_services.entrypoints.jobs import due_retries, refreshable
from deposit_services.model.entities import (
    AggregatedDepositStatus,
    Deposit,
    DepositStatus,
    RepositoryCopy,
    Submission,
)
from deposit_services.model.graph import Graph, resolve_file_uris
from deposit_services.service import deposits
from deposit_services.service.context import ServiceContext
from deposit_services.service.lifecycle import DepositProcessor
from deposit_services.service.outcome import TRIGGER_JOB
from deposit_services.service.retry import RetryPolicy
from deposit_services.service.submissions import SubmissionProcessor
from deposit_services.service.targets import Targets
from deposit_services.store.base import AttemptOutcome
from deposit_services.store.memory import MemoryDatabase
from deposit_services.store.uow import run_unit
from deposit_services.transports import base as transports
from tests.support.clock import FakeClock
from tests.support.graphs import make_graph, write_graph
from tests.support.memory_drop import SERVERS, MemoryServer
from tests.support.store import StoreView

REPO = {"@type": "Repository", "id": "repo-drop", "name": "Drop", "repositoryKey": "drop",
        "integrationType": "ONE_WAY"}
SUBMITTED = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)  # the graphs' submittedDate


@dataclass
class World:
    root: Path
    clock: FakeClock
    database: MemoryDatabase
    store: StoreView
    server: MemoryServer
    ctx: ServiceContext

    def seed(self, sid: str, repository: dict[str, str] = REPO, **metadata: str) -> None:
        path = write_graph(self.root / f"{sid}.json",
                           make_graph(sid, self.root / "files", repositories=[repository],
                                      metadata=metadata))
        for entity in resolve_file_uris(Graph.load(path), self.root / "files").entities:
            self.store.add_if_absent(entity)

    def deposit(self, sid: str) -> Deposit:
        (found,) = self.store.find(Deposit, submission=sid)
        return found

    def directory(self, when: datetime) -> dict[str, bytes]:
        return self.server.dirs.get(f"in/{when:%Y-%m-%d}", {})


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setitem(transports.TRANSPORTS, "memory",
                        "tests.support.memory_drop:MemoryTransport")
    clock = FakeClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    server = SERVERS[f"drop-{tmp_path.name}"] = MemoryServer()
    binding = {"protocol": "memory", "server-fqdn": f"drop-{tmp_path.name}",
               "username": "u", "default-directory": "in/%s"}
    config = parse_repositories({
        "drop": {"assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
                 "transport-config": {"protocol-binding": binding}},
        "bag": {"assembler": {"specification": "bagit", "options": {"archive": "ZIP"}},
                "transport-config": {"protocol-binding": binding}},
    }, {})
    database = MemoryDatabase(clock)
    targets = Targets(config, "test", clock)
    ctx = ServiceContext(database=database, targets=targets, work_dir=tmp_path / "work",
                         owner="w1", clock=clock, lease_seconds=10,
                         retry_policy=RetryPolicy(base_seconds=30, factor=2, cap_seconds=600,
                                                  max_attempts=3, jitter="none"))
    yield World(tmp_path, clock, database, StoreView(database), server, ctx)
    targets.close()


def test_one_submission_is_one_claim_then_intent_and_outcome(world: World) -> None:
    world.seed("s1")
    before = world.database.transactions
    SubmissionProcessor(world.ctx).process("s1")
    assert world.database.transactions - before == 3
    deposit = world.deposit("s1")
    assert deposit.deposit_status is DepositStatus.ACCEPTED
    assert world.store.get(RepositoryCopy, deposit.repository_copy or "").access_url
    assert (world.store.get(Submission, "s1").aggregated_deposit_status
            is AggregatedDepositStatus.ACCEPTED)
    (name,) = world.directory(world.clock.now())
    assert name.endswith(".zip")


def test_a_transient_fault_is_retried_at_its_backoff_time_and_not_before(world: World) -> None:
    world.seed("s1")
    world.server.fail["upload"] = ConnectionResetError("cut")
    SubmissionProcessor(world.ctx).process("s1")
    deposit = world.deposit("s1")
    assert deposit.deposit_status is DepositStatus.RETRY
    assert deposit.next_attempt_at == world.clock.now() + timedelta(seconds=30)
    assert "attempt 1 of 3 failed" in (deposit.status_message or "")

    def due() -> list[str]:
        now = world.clock.now()
        return [d.id for d in run_unit(world.database, lambda uow: due_retries(uow, now),
                                       read_only=True)]

    processor = DepositProcessor(world.ctx)
    world.clock.advance(29)
    assert due() == []
    assert processor.retry(deposit.id, TRIGGER_JOB).skipped
    world.clock.advance(1)
    assert due() == [deposit.id]
    world.server.fail["upload"] = ConnectionResetError("cut again")
    outcome = processor.retry(deposit.id, TRIGGER_JOB)
    assert outcome.status == "RETRY"
    # the second backoff doubles
    assert world.deposit("s1").next_attempt_at == world.clock.now() + timedelta(seconds=60)
    world.clock.advance(60)
    assert processor.retry(deposit.id, TRIGGER_JOB).status == "ACCEPTED"
    assert [a.outcome for a in world.store.attempts(deposit.id)] == [
        AttemptOutcome.TRANSIENT_ERROR, AttemptOutcome.TRANSIENT_ERROR, AttemptOutcome.SENT]
    assert (world.store.get(Submission, "s1").aggregated_deposit_status
            is AggregatedDepositStatus.ACCEPTED)


def test_the_retry_budget_ends_in_failed_with_what_to_do(world: World) -> None:
    world.seed("s1")
    processor = DepositProcessor(world.ctx)
    for _ in range(3):
        world.server.fail["upload"] = ConnectionResetError("cut")
        if not world.store.find(Deposit, submission="s1"):
            SubmissionProcessor(world.ctx).process("s1")
        else:
            world.clock.advance(3600)
            processor.retry(world.deposit("s1").id, TRIGGER_JOB)
    deposit = world.deposit("s1")
    assert deposit.deposit_status is DepositStatus.FAILED
    assert "gave up after 3 attempts" in (deposit.status_message or "")
    assert f"retry --uri {deposit.id}" in (deposit.status_message or "")
    assert deposit.next_attempt_at is None


def test_a_dead_workers_lease_is_waited_out_on_the_clock(world: World) -> None:
    world.seed("s1")
    world.store.add(Deposit(id="dep-1", submission="s1", repository="repo-drop"))
    assert world.store.acquire_lease("deposit:dep-1", "dead-worker", 10)
    SubmissionProcessor(world.ctx).process("s1")
    assert world.deposit("s1").deposit_status is DepositStatus.ACCEPTED
    assert 10 <= sum(world.clock.slept) <= 11  # waited until the lease ran out, no longer


def test_a_lease_that_never_runs_out_is_given_up_after_one_and_a_half_periods(
    world: World,
) -> None:
    world.seed("s1")
    world.store.add(Deposit(id="dep-1", submission="s1", repository="repo-drop"))
    original = world.clock.sleep

    def renewing_sleep(seconds: float) -> None:  # the other worker is alive: it renews
        original(seconds)
        world.store.acquire_lease("deposit:dep-1", "live-worker", 10)

    world.store.acquire_lease("deposit:dep-1", "live-worker", 10)
    world.clock.sleep = renewing_sleep  # type: ignore[method-assign]
    SubmissionProcessor(world.ctx).process("s1")
    assert world.deposit("s1").deposit_status is None  # left to the live worker
    assert 15 <= sum(world.clock.slept) <= 16
    assert world.store.attempts("dep-1") == []


def test_the_refresh_window_is_counted_on_the_clock(world: World) -> None:
    world.seed("s1")
    world.store.add(Deposit(id="dep-1", submission="s1", repository="repo-drop",
                            deposit_status=DepositStatus.SUBMITTED))
    window = timedelta(days=10)

    def chosen(now: datetime) -> list[str]:
        return [d.id for d in run_unit(world.database,
                                       lambda uow: refreshable(uow, now, window),
                                       read_only=True)]

    assert chosen(SUBMITTED + timedelta(days=9)) == ["dep-1"]
    assert chosen(SUBMITTED + timedelta(days=10)) == ["dep-1"]
    assert chosen(SUBMITTED + timedelta(days=10, seconds=1)) == []


def test_a_crash_before_midnight_is_reconciled_after_it(world: World,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The package reached yesterday's dated directory, then the worker died before
    recording it; the next worker, after midnight, finds it there and records it
    instead of uploading it again into today's directory."""
    world.seed("s1")
    world.clock.set(datetime(2026, 11, 2, 23, 59, 58, tzinfo=UTC))
    yesterday = world.clock.now()

    class Crash(BaseException):
        pass

    def crash(*args: object, **kwargs: object) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(deposits, "record_receipt", crash)  # the outcome unit
        with pytest.raises(Crash):
            SubmissionProcessor(world.ctx).process("s1")
    (sent,) = world.directory(yesterday)
    deposit = world.deposit("s1")
    assert deposit.deposit_status is None
    (attempt,) = world.store.attempts(deposit.id)
    assert attempt.is_open and attempt.started_at == yesterday

    world.clock.set(datetime(2026, 11, 3, 0, 0, 5, tzinfo=UTC))
    uploads = world.server.calls.count("upload")
    SubmissionProcessor(replace(world.ctx, owner="w2")).process("s1")
    deposit = world.deposit("s1")
    assert deposit.deposit_status is DepositStatus.ACCEPTED
    assert world.server.calls.count("upload") == uploads  # not sent again
    assert world.directory(world.clock.now()) == {}
    copy = world.store.get(RepositoryCopy, deposit.repository_copy or "")
    assert copy.access_url is not None and copy.access_url.endswith(
        f"in/{yesterday:%Y-%m-%d}/{sent}")
    assert [a.outcome for a in world.store.attempts(deposit.id)] == [AttemptOutcome.RECONCILED]


def test_a_missing_repository_fails_its_deposit_and_holds_the_submission(world: World) -> None:
    world.seed("s1")
    submission = world.store.get(Submission, "s1")
    submission.repositories = [*submission.repositories, "repo-gone"]
    world.store.update(submission)
    SubmissionProcessor(world.ctx).process("s1")
    deposits = {d.repository: d for d in world.store.find(Deposit, submission="s1")}
    assert deposits["repo-drop"].deposit_status is DepositStatus.ACCEPTED
    gone = deposits["repo-gone"]
    assert gone.deposit_status is DepositStatus.FAILED
    assert "repository repo-gone does not exist" in (gone.status_message or "")
    assert (world.store.get(Submission, "s1").aggregated_deposit_status
            is AggregatedDepositStatus.IN_PROGRESS)


def test_the_outbox_announces_each_change_after_its_commit(world: World) -> None:
    published: list[str] = []
    world.database.publisher = lambda m: published.append(m.body)
    world.seed("s1")
    SubmissionProcessor(world.ctx).process("s1")
    deposit = world.deposit("s1")
    assert published == [f'{{"deposit": "{deposit.id}", "type": "DepositStatus"}}']


def test_submit_refuses_a_graph_that_renames_a_stored_repository(world: World) -> None:
    from deposit_services.errors import GraphError
    from deposit_services.service.intake import load_submission_graph, submit_graph
    from tests.integration.lifecycle.test_round_trips import RecordingBroker

    world.seed("s1")  # stores repo-drop with key "drop"
    renamed = dict(REPO, repositoryKey="other")
    path = write_graph(world.root / "s2.json",
                       make_graph("s2", world.root / "files", repositories=[renamed]))
    with pytest.raises(GraphError, match=r"repositoryKey 'drop'.*gives it 'other'"):
        submit_graph(world.database, RecordingBroker(),
                     load_submission_graph(path, world.root / "files"), "submission")
    assert "s2" not in {s.id for s in world.store.find(Submission)}  # nothing stored


def test_a_doi_that_is_not_one_is_deposited_and_the_status_says_what_became_of_it(
    world: World,
) -> None:
    bag = {"@type": "Repository", "id": "repo-bag", "name": "Bag", "repositoryKey": "bag",
           "integrationType": "ONE_WAY"}
    world.seed("s1", bag, doi="abcdef")
    SubmissionProcessor(world.ctx).process("s1")
    deposit = world.deposit("s1")
    assert deposit.deposit_status is DepositStatus.ACCEPTED  # PASS deposits it too
    assert "'abcdef' is not a DOI" in (deposit.status_message or "")
