"""The repository state in the worker state (health, notices): the same contract on the
in-memory adapter, SQLite and PostgreSQL, so replicas sharing a database agree."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from deposit_services.store.base import RepositoryState
from deposit_services.store.uow import UnitOfWork, run_unit
from tests.support.store import StoreView

WHEN = datetime(2026, 11, 2, 12, 0, 30, tzinfo=UTC)


def states(store: StoreView, *keys: str) -> list[RepositoryState]:
    return run_unit(store.database, lambda uow: uow.state.repository_states(keys),
                    read_only=True)


def put(store: StoreView, state: RepositoryState) -> bool:
    return run_unit(store.database, lambda uow: uow.state.put_repository_state(state))


def test_every_field_round_trips_and_versions_count_up(store: StoreView) -> None:
    assert states(store) == []
    first = RepositoryState("jscholarship", health="paused", failures=5, reason="refused",
                            since=WHEN, paused_until=WHEN + timedelta(minutes=5), manual=True,
                            probes=2, noticed_at=WHEN - timedelta(days=1),
                            noticed=("d1:FAILED", "d2:REJECTED"))
    assert put(store, first)
    (stored,) = states(store, "jscholarship")
    assert stored == replace(first, version=1)
    assert put(store, replace(stored, health="healthy", paused_until=None, manual=False))
    (again,) = states(store)
    assert (again.health, again.paused_until, again.manual, again.version) == (
        "healthy", None, False, 2)
    assert put(store, RepositoryState("pmc"))
    assert [s.key for s in states(store)] == ["jscholarship", "pmc"]
    assert [s.key for s in states(store, "pmc", "nowhere")] == ["pmc"]


def test_a_stale_write_loses(store: StoreView) -> None:
    assert put(store, RepositoryState("r"))
    assert not put(store, RepositoryState("r", failures=9))  # a second first write
    (stored,) = states(store)
    assert put(store, replace(stored, failures=1))
    assert not put(store, replace(stored, failures=2))  # read before the write above
    assert states(store)[0].failures == 1


def test_a_lost_compare_and_set_leaves_the_unit_usable(store: StoreView) -> None:
    assert put(store, RepositoryState("r"))

    def both(uow: UnitOfWork) -> tuple[bool, bool]:
        lost = uow.state.put_repository_state(RepositoryState("r", failures=3))
        won = uow.state.put_repository_state(RepositoryState("s", failures=4))
        return lost, won

    assert run_unit(store.database, both) == (False, True)
    assert [(s.key, s.failures) for s in states(store)] == [("r", 0), ("s", 4)]


@pytest.mark.postgres
def test_concurrent_replicas_one_write_wins_per_version(fresh_postgres_url: str) -> None:
    views = [StoreView.sql(fresh_postgres_url) for _ in range(4)]
    try:
        assert put(views[0], RepositoryState("r"))
        (start,) = states(views[0])
        barrier = threading.Barrier(len(views))
        won: list[bool] = []

        def claim(view: StoreView) -> None:
            barrier.wait()
            won.append(put(view, replace(start, probes=start.probes + 1)))

        threads = [threading.Thread(target=claim, args=(v,)) for v in views]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(won) == [False, False, False, True]
        assert states(views[0])[0].probes == 1
    finally:
        for view in views:
            view.close()
