"""An idle cycle of the per-cycle jobs writes nothing: each reads whether it has work
and takes its ``job:<name>`` lease only when it has (an idle worker commits almost
nothing to PostgreSQL); with work the lease is still taken, by one replica."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select

from deposit_services.entrypoints.jobs import (
    OUTBOX,
    REFRESH,
    SUBMISSION_STATUS,
    UNSTARTED,
    Jobs,
)
from deposit_services.model.entities import Submission
from deposit_services.settings import load_settings
from deposit_services.store.schema import leases
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import run_unit
from tests.integration.lifecycle.conftest import World

PER_CYCLE = (REFRESH, SUBMISSION_STATUS, UNSTARTED, OUTBOX)
WRITES = ("INSERT", "UPDATE", "DELETE")


def jobs_of(world: World) -> Jobs:
    return Jobs(world.ctx, load_settings({"DEPOSIT_DATA_DIR": str(world.root),
                                          "PASS_DEPOSIT_JOBS_DEFAULT_INTERVAL_MS": "3600000"}))


def database_of(world: World) -> SqlDatabase:
    database = world.ctx.database
    assert isinstance(database, SqlDatabase)
    return database


@contextmanager
def statements(database: SqlDatabase) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(database.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", note)


def job_leases(database: SqlDatabase) -> dict[str, str]:
    with database.engine.connect() as conn:
        return {row.key: row.owner for row in conn.execute(
            select(leases.c.key, leases.c.owner).where(leases.c.key.like("job:%")))}


def run_cycle(jobs: Jobs, names: tuple[str, ...]) -> list[str]:
    """One cycle of the named jobs as the scheduler runs them; returns those whose work
    ran (the work itself is replaced by a note)."""
    ran: list[str] = []
    for name in names:
        jobs._guarded(name, lambda name=name: ran.append(name), True)  # type: ignore[misc]
    return ran


def test_an_idle_cycle_of_each_job_writes_nothing(make_world: Callable[..., World]) -> None:
    world = make_world()
    database = database_of(world)
    run_unit(database, lambda uow: uow.records.find(Submission), read_only=True)  # schema
    jobs = jobs_of(world)
    with statements(database) as seen:
        ran = run_cycle(jobs, PER_CYCLE)
        assert jobs.run_outbox() == 0 and jobs.run_submission_status() == 0
    assert ran == []
    assert seen, "the jobs read the store"
    assert [s for s in seen if s.lstrip().upper().startswith(WRITES)] == []
    assert job_leases(database) == {}


def test_with_work_the_lease_is_taken_by_one_replica(make_world: Callable[..., World]) -> None:
    first, second = make_world(), make_world()
    first.seed("sub-ready", [{"@type": "Repository", "id": "repo-archive", "name": "Archive",
                             "repositoryKey": "archive", "integrationType": "ONE_WAY"}])
    one, two = jobs_of(first), jobs_of(second)
    assert run_cycle(one, PER_CYCLE) == [UNSTARTED], "only unstarted has work"
    assert run_cycle(two, PER_CYCLE) == [], "the other replica skips this cycle"
    assert job_leases(database_of(first)) == {f"job:{UNSTARTED}": f"{first.ctx.owner}/jobs"}
