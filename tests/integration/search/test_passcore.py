"""The relay in a PASS deployment: the records in the test pass-core (over HTTP), the
worker state and the marks in SQLite beside it, the documents in osmem-server. A mark
is written in the SQL transaction of the unit (its public ``state_connection``), so a
committed unit's documents are indexed and a rolled-back one's are not; marking sends
pass-core nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deposit_services.errors import StaleVersion
from deposit_services.model.entities import (
    CopyStatus,
    Deposit,
    DepositStatus,
    Publication,
    Repository,
    RepositoryCopy,
    Submission,
)
from deposit_services.search.relay import SearchRelay
from deposit_services.store.passcore.client import PassCoreClient
from deposit_services.store.passcore.database import PassCoreDatabase
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import UnitOfWork, run_unit
from tests.integration.search.records import make_relay, marks
from tests.support.osmem import all_documents
from tests.support.passcore import PassCore, running_passcore


@dataclass
class Deployment:
    passcore: PassCore
    database: PassCoreDatabase
    relay: SearchRelay

    def data_requests(self) -> int:
        return sum(1 for r in self.passcore.requests if r.path.startswith("/data"))


@pytest.fixture
def deployment(tmp_path: Path, search_url: str, fresh_index: str) -> Iterator[Deployment]:
    with running_passcore() as passcore:
        client = PassCoreClient(passcore.base_url, passcore.username, passcore.password)
        database = PassCoreDatabase(client, SqlDatabase(f"sqlite:///{tmp_path / 'state.db'}"))
        relay = make_relay(database, search_url, fresh_index)
        try:
            yield Deployment(passcore, database, relay)
        finally:
            relay.close()
            database.close()


def _create(uow: UnitOfWork) -> Deposit:
    records = uow.records
    records.add(Repository(id="r", name="JScholarship", repository_key="js"))
    records.add(Publication(id="p", title="On pass-core", doi="10.5555/pc.1"))
    records.add(Submission(id="s", publication="p", repositories=["r"], submitted=True))
    records.add(RepositoryCopy(id="c", repository="r", publication="p"))
    return records.add(Deposit(id="d", submission="s", repository="r", repository_copy="c",
                               deposit_status=DepositStatus.SUBMITTED))


def test_relay_indexes_what_a_passcore_unit_committed(
        deployment: Deployment, search_url: str, fresh_index: str) -> None:
    database, relay = deployment.database, deployment.relay
    deposit = run_unit(database, _create)
    assert deposit.id != "d"  # pass-core's own id: the marks name it
    assert (Deposit.TYPE, deposit.id) in marks(database)
    relay.catch_up()
    documents = all_documents(search_url, fresh_index)
    assert sorted(documents) == sorted([f"Deposit:{deposit.id}",
                                        f"Submission:{deposit.submission}"])
    document = documents[f"Deposit:{deposit.id}"]
    assert document["depositStatus"] == "SUBMITTED" and document["repositoryKey"] == "js"
    assert document["title"] == "On pass-core"

    # left without commit: pass-core is sent nothing, no mark
    with database.unit_of_work() as uow:
        uow.records.get(Deposit, deposit.id).deposit_status = DepositStatus.FAILED
    # refused by pass-core (another writer went first: 409): rolled back, no mark
    with database.unit_of_work() as uow:
        uow.records.get(Deposit, deposit.id).deposit_status = DepositStatus.FAILED
        deployment.passcore.update("deposit", deposit.id, {"depositStatusRef": "elsewhere"})
        with pytest.raises(StaleVersion):
            uow.commit()
    assert marks(database) == []
    assert relay.run_once() == 0
    assert all_documents(search_url, fresh_index)[f"Deposit:{deposit.id}"][
        "depositStatus"] == "SUBMITTED"

    def accept(uow: UnitOfWork) -> None:
        uow.records.get(Deposit, deposit.id).deposit_status = DepositStatus.ACCEPTED
        uow.records.get(RepositoryCopy, deposit.repository_copy or "").copy_status = \
            CopyStatus.COMPLETE

    run_unit(database, accept)
    relay.catch_up()
    document = all_documents(search_url, fresh_index)[f"Deposit:{deposit.id}"]
    assert document["depositStatus"] == "ACCEPTED" and document["copyStatus"] == "COMPLETE"
    assert document["depositStatusRef"] == "elsewhere"  # read as committed, after the unit


def test_marking_sends_passcore_nothing(deployment: Deployment) -> None:
    database, relay = deployment.database, deployment.relay
    deposit = run_unit(database, _create)
    copy = deposit.repository_copy or ""

    def complete(status: CopyStatus) -> int:
        """Requests to pass-core of a unit that reads the deposit, writes its copy and
        records an attempt."""
        before = deployment.data_requests()

        def work(uow: UnitOfWork) -> None:
            uow.records.get(Deposit, deposit.id)
            uow.records.get(RepositoryCopy, copy).copy_status = status
            uow.state.begin_attempt(deposit.id, trigger="retry", owner="test")
        run_unit(database, work)
        return deployment.data_requests() - before

    relay.catch_up()
    database.commit_hooks.remove(relay)
    without = complete(CopyStatus.STALLED)
    database.commit_hooks.append(relay)
    assert complete(CopyStatus.COMPLETE) == without == 3  # GET, GET, PATCH
    assert marks(database) == [(Deposit.TYPE, deposit.id)]
