"""Every RETRY due time gets its wake-up: a wake-up scheduled for another deposit a
little earlier no longer stands in for a later one (which then waited for the periodic
job, ten minutes). The scheduler is started paused and its jobs are run by hand on a
fake clock: no real waiting."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deposit_services.config.repositories import parse_repositories
from deposit_services.entrypoints.jobs import RETRY, WAKE, WAKE_WINDOW, Jobs, wake_slot
from deposit_services.model.entities import Deposit, DepositStatus
from deposit_services.model.graph import Graph, resolve_file_uris
from deposit_services.service.context import ServiceContext
from deposit_services.service.retry import RetryPolicy
from deposit_services.service.submissions import SubmissionProcessor
from deposit_services.service.targets import Targets
from deposit_services.settings import load_settings
from deposit_services.store.memory import MemoryDatabase
from deposit_services.transports import base as transports
from tests.support.clock import FakeClock
from tests.support.graphs import make_graph, write_graph
from tests.support.memory_drop import SERVERS, MemoryServer
from tests.support.store import StoreView

REPO = {"@type": "Repository", "id": "repo-drop", "name": "Drop", "repositoryKey": "drop",
        "integrationType": "ONE_WAY"}
BACKOFF = 30.0
# The incident: one deposit due at 22:17:36.819, another 80 ms later.
FIRST_DUE = datetime(2026, 11, 2, 22, 17, 36, 819_000, tzinfo=UTC)


class World:
    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(transports.TRANSPORTS, "memory",
                            "tests.support.memory_drop:MemoryTransport")
        self.root = root
        self.clock = FakeClock(FIRST_DUE - timedelta(seconds=BACKOFF))
        self.server = SERVERS[f"wake-{root.name}"] = MemoryServer()
        config = parse_repositories({"drop": {
            "assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
            "transport-config": {"protocol-binding": {
                "protocol": "memory", "server-fqdn": f"wake-{root.name}", "username": "u",
                "default-directory": "in"}},
        }}, {})
        self.database = MemoryDatabase(self.clock)
        self.store = StoreView(self.database)
        self.targets = Targets(config, "test", self.clock)
        ctx = ServiceContext(database=self.database, targets=self.targets,
                             work_dir=root / "work", owner="w1", clock=self.clock,
                             retry_policy=RetryPolicy(base_seconds=BACKOFF, factor=2,
                                                      cap_seconds=600, max_attempts=3,
                                                      jitter="none"))
        settings = load_settings({"DEPOSIT_DATA_DIR": str(root),
                                  "PASS_DEPOSIT_JOBS_DEFAULT_INTERVAL_MS": "600000"})
        self.jobs = Jobs(ctx, settings)
        self.jobs._scheduler.start(paused=True)  # jobs are added, and run here by hand

    def fail_once(self, sid: str) -> Deposit:
        """Submit ``sid`` and have its transfer fail once: a RETRY deposit."""
        path = write_graph(self.root / f"{sid}.json",
                           make_graph(sid, self.root / "files", repositories=[REPO]))
        for entity in resolve_file_uris(Graph.load(path), self.root / "files").entities:
            self.store.add_if_absent(entity)
        self.server.fail["upload"] = ConnectionResetError("cut")
        SubmissionProcessor(self.jobs.ctx).process(sid)
        return self.deposit(sid)

    def deposit(self, sid: str) -> Deposit:
        (found,) = self.store.find(Deposit, submission=sid)
        return found

    def wake_ups(self) -> list[datetime]:
        return sorted(job.next_run_time for job in self.jobs._scheduler.get_jobs()
                      if job.id.startswith(WAKE))

    def run_next_wake_up(self) -> datetime:
        """Move the clock to the earliest wake-up and run it, as the scheduler would."""
        job = min((j for j in self.jobs._scheduler.get_jobs() if j.id.startswith(WAKE)),
                  key=lambda j: j.next_run_time)
        job.remove()
        self.clock.set(job.next_run_time)
        job.func(*job.args, **job.kwargs)
        return job.next_run_time  # type: ignore[no-any-return]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    world = World(tmp_path, monkeypatch)
    yield world
    world.jobs.shutdown()
    world.targets.close()


def test_two_deposits_due_80_ms_apart_are_both_retried_at_their_time(world: World) -> None:
    first = world.fail_once("s1")
    world.clock.advance(0.080)
    second = world.fail_once("s2")
    assert first.next_attempt_at == FIRST_DUE
    assert second.next_attempt_at == FIRST_DUE + timedelta(milliseconds=80)
    (wake,) = world.wake_ups()  # one slot holds both: one wake-up, after both
    assert FIRST_DUE + timedelta(milliseconds=80) <= wake < FIRST_DUE + WAKE_WINDOW
    world.run_next_wake_up()
    assert world.deposit("s1").deposit_status is DepositStatus.ACCEPTED
    assert world.deposit("s2").deposit_status is DepositStatus.ACCEPTED
    assert world.wake_ups() == []


def test_due_times_in_different_slots_each_get_their_own_wake_up(world: World) -> None:
    world.clock.set(FIRST_DUE - timedelta(seconds=BACKOFF) + timedelta(milliseconds=150))
    world.fail_once("s1")  # due 36.969
    world.clock.advance(0.080)
    world.fail_once("s2")  # due 37.049: the next slot
    world.clock.advance(5)
    world.fail_once("s3")  # due 42.049
    due = [world.deposit(s).next_attempt_at for s in ("s1", "s2", "s3")]
    assert world.wake_ups() == [wake_slot(when) for when in due if when is not None]
    assert len(world.wake_ups()) == 3
    for done, sid in enumerate(("s1", "s2", "s3"), start=1):
        ran = world.run_next_wake_up()
        statuses = [world.deposit(s).deposit_status for s in ("s1", "s2", "s3")]
        assert statuses[:done] == [DepositStatus.ACCEPTED] * done, (sid, ran, statuses)
        assert statuses[done:] == [DepositStatus.RETRY] * (3 - done)
    assert world.wake_ups() == []


def test_a_wake_up_that_fails_again_schedules_the_next_one(world: World) -> None:
    world.fail_once("s1")
    world.server.fail["upload"] = ConnectionResetError("cut again")
    ran = world.run_next_wake_up()
    deposit = world.deposit("s1")
    assert deposit.deposit_status is DepositStatus.RETRY
    assert deposit.next_attempt_at == ran + timedelta(seconds=2 * BACKOFF)
    assert world.wake_ups() == [wake_slot(deposit.next_attempt_at)]


def test_the_same_due_time_twice_is_one_wake_up_and_the_periodic_job_is_untouched(
    world: World,
) -> None:
    when = FIRST_DUE + timedelta(minutes=5)
    world.jobs.wake_retry(when)
    world.jobs.wake_retry(when)
    world.jobs.wake_retry(when + timedelta(milliseconds=1))
    assert world.wake_ups() == [wake_slot(when)]
    assert world.jobs._scheduler.get_job(RETRY) is None  # start() was not called here


def test_slots_round_up_never_down() -> None:
    on_boundary = datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert wake_slot(on_boundary) == on_boundary
    assert wake_slot(on_boundary + timedelta(microseconds=1)) == on_boundary + WAKE_WINDOW
    assert wake_slot(on_boundary - timedelta(microseconds=1)) == on_boundary
    elsewhere = on_boundary.astimezone(tz=None)
    assert wake_slot(elsewhere) == on_boundary
