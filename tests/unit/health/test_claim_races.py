"""The probe of a paused repository and a repository's notice are each claimed by one
compare-and-set on the state a worker read: when two workers read the same version, only
the first to write claims, even when both stamp the same instant (a shared clock)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from deposit_services.config.repositories import parse_repositories
from deposit_services.model.entities import Deposit, DepositStatus, Repository
from deposit_services.service import health, notices
from deposit_services.service.health import HealthPolicy
from deposit_services.store.base import RepositoryState
from deposit_services.store.memory import MemoryDatabase
from deposit_services.store.uow import UnitOfWork, run_unit
from tests.support.clock import FakeClock

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def _config(tmp_path: Path, **operations: Any) -> Any:
    return parse_repositories({"down": {
        "operations": operations,
        "assembler": {"specification": "simple"},
        "transport-config": {"protocol-binding": {
            "protocol": "filesystem", "baseDir": str(tmp_path / "target")}}}}, {})


def _stale_first_read(uow: UnitOfWork, snapshot: list[RepositoryState]) -> None:
    """This unit's first read of the repository states returns ``snapshot``: what it
    would have read before the other worker's write committed."""
    real: Callable[[Sequence[str]], list[RepositoryState]] = uow.state.repository_states
    reads = [snapshot]

    def read(keys: Sequence[str] = ()) -> list[RepositoryState]:
        return reads.pop() if reads else real(keys)

    uow.state.repository_states = read  # type: ignore[method-assign]


def test_of_two_workers_that_read_the_same_pause_only_the_first_to_write_probes(
        tmp_path: Path) -> None:
    config = _config(tmp_path).entries["down"]
    database = MemoryDatabase(FakeClock(NOW))
    paused = RepositoryState("down", "paused", 5, "HTTP 503", NOW - timedelta(minutes=10),
                             paused_until=NOW - timedelta(seconds=1))
    run_unit(database, lambda uow: uow.state.put_repository_state(paused))
    (read,) = run_unit(database, lambda uow: uow.state.repository_states(["down"]),
                       read_only=True)
    policy = HealthPolicy(pause_seconds=60)

    first = run_unit(database, lambda uow: health.admit(uow, config, policy, NOW))

    def second_worker(uow: UnitOfWork) -> health.Gate:
        _stale_first_read(uow, [read])
        return health.admit(uow, config, policy, NOW)

    second = run_unit(database, second_worker)
    assert first.probe and not second.probe
    assert second.until == NOW + timedelta(seconds=60), "it waits for the first one's probe"
    (state,) = run_unit(database, lambda uow: uow.state.repository_states(["down"]),
                        read_only=True)
    assert state.probes == paused.probes + 1


def test_of_two_replicas_that_read_the_same_state_only_the_first_sends_the_notice(
        tmp_path: Path) -> None:
    repositories = _config(tmp_path, notices={"to": ["staff@example.org"], "every-hours": 1})
    database = MemoryDatabase(FakeClock(NOW))

    def seed(uow: UnitOfWork) -> None:
        repository = uow.records.add(Repository(id="r1", name="down", repository_key="down"))
        uow.records.add(Deposit(id="d1", repository=repository.id, submission="s1",
                                deposit_status=DepositStatus.FAILED))

    run_unit(database, seed)
    sent: list[EmailMessage] = []
    before = RepositoryState("down")  # never noticed: both replicas read "no row"
    keys = notices.send_notices(database, repositories, sent.append, "ds@example.org", NOW)
    assert keys == ["down"] and len(sent) == 1

    real_unit = database.unit_of_work

    def stale_unit(read_only: bool = False) -> Any:
        uow = real_unit(read_only)
        _stale_first_read(uow, [before])
        return uow

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(database, "unit_of_work", stale_unit)
        keys = notices.send_notices(database, repositories, sent.append, "ds@example.org",
                                    NOW)
    assert keys == [] and len(sent) == 1, "the second replica sends no second notice"
