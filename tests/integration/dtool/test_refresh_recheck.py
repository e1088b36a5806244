"""``refresh`` of an ACCEPTED dtool deposit re-checks its registration in dserver (the real
dserver fixture): present -> nothing written; registration missing but the frozen
dataset there -> registered again (registration only), statusMessage says so; dataset
gone too -> still ACCEPTED, statusMessage and log say what is missing and what to do.
The refresh job re-checks each ACCEPTED dtool deposit at most once per day (fake clock)."""

from __future__ import annotations

import logging
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import dtoolcore
import pytest

from deposit_services.config.repositories import parse_repositories
from deposit_services.entrypoints.jobs import RECHECK_EVERY, Jobs
from deposit_services.model.entities import Deposit, DepositStatus, RepositoryCopy
from deposit_services.model.graph import Graph, resolve_file_uris
from deposit_services.service import operations
from deposit_services.service.context import ServiceContext
from deposit_services.service.lifecycle import DepositProcessor
from deposit_services.service.submissions import SubmissionProcessor
from deposit_services.service.targets import Targets
from deposit_services.settings import load_settings
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import Database
from tests.support.clock import FakeClock
from tests.support.dserver import DServer
from tests.support.graphs import make_graph, write_graph
from tests.support.store import StoreView

REPO = {"@type": "Repository", "id": "repo-datasets", "name": "Datasets",
        "repositoryKey": "datasets", "integrationType": "ONE_WAY"}


@dataclass
class World:
    root: Path
    store: StoreView
    ctx: ServiceContext
    clock: FakeClock
    server: DServer
    user: str

    def accepted(self, sid: str) -> Deposit:
        """Deposit ``sid`` into dtool + dserver through the service layer: ACCEPTED."""
        files = self.root / "files"
        path = write_graph(self.root / f"{sid}.json",
                           make_graph(sid, files, repositories=[REPO]))
        for entity in resolve_file_uris(Graph.load(path), files).entities:
            self.store.add_if_absent(entity)
        SubmissionProcessor(self.ctx).process(sid)
        deposit = self.deposit(sid)
        assert deposit.deposit_status is DepositStatus.ACCEPTED, deposit.status_message
        return deposit

    def deposit(self, sid: str) -> Deposit:
        (found,) = self.store.find(Deposit, submission=sid)
        return found

    def unregister(self, deposit: Deposit) -> None:
        ref = deposit.deposit_status_ref or ""
        status, body = self.server.request("DELETE", "/uris/" + ref.split("/uris/", 1)[1],
                                           username=self.user)
        assert status == 200, body

    def copy(self, deposit: Deposit) -> RepositoryCopy:
        copy: RepositoryCopy = self.store.get(RepositoryCopy, deposit.repository_copy or "")
        return copy

    def registered(self, deposit: Deposit) -> list[str]:
        (uuid,) = self.copy(deposit).external_ids
        status, body = self.server.request("GET", f"/uuids/{uuid}", username=self.user)
        assert status == 200, body
        return [e["uri"] for e in body]


def context(world_root: Path, database: Database, clock: FakeClock, base_uri: str,
            dserver_url: str, server: DServer, user: str) -> ServiceContext:
    config = parse_repositories({"datasets": {
        "assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
        "transport-config": {"protocol-binding": {
            "protocol": "dtool", "base-uri": base_uri, "dserver-url": dserver_url,
            "private-key-file": str(server.private_key), "username": user}}}}, {})
    return ServiceContext(database=database, targets=Targets(config, "deposit-services-test"),
                          work_dir=world_root / "work", owner="test", lease_seconds=10,
                          clock=clock)


@pytest.fixture
def world(tmp_path: Path, sqlite_url: str, dserver_app: DServer, base_uri: str,
          worker: str) -> Iterator[World]:
    database = SqlDatabase(sqlite_url)
    store = StoreView(database)
    clock = FakeClock(datetime.now(UTC))
    ctx = context(tmp_path, database, clock, base_uri, dserver_app.url, dserver_app, worker)
    yield World(tmp_path, store, ctx, clock, dserver_app, worker)
    ctx.targets.close()
    store.close()


def test_a_registration_still_there_writes_nothing(world: World) -> None:
    deposit = world.accepted("rc-present")
    outcome = DepositProcessor(world.ctx).refresh(deposit.id)
    assert (outcome.ok, outcome.changed, outcome.skipped) == (True, False, False)
    again = world.deposit("rc-present")
    assert again.version == deposit.version
    assert again.status_message == deposit.status_message


def test_a_lost_registration_is_registered_again_from_the_frozen_dataset(
        world: World, base_uri: str) -> None:
    deposit = world.accepted("rc-lost")
    uri = world.copy(deposit).access_url or ""
    frozen_at = dtoolcore.DataSet.from_uri(uri).admin_metadata["frozen_at"]
    world.unregister(deposit)
    assert world.registered(deposit) == []

    outcome = DepositProcessor(world.ctx).refresh(deposit.id)

    assert outcome.changed and outcome.ok
    assert world.registered(deposit) == [uri]
    saved = world.deposit("rc-lost")
    assert saved.deposit_status is DepositStatus.ACCEPTED
    assert "registered again" in (saved.status_message or "")
    assert uri in (saved.status_message or "")
    # the registration step only: the same single dataset, not frozen again
    (dataset,) = dtoolcore.iter_datasets_in_base_uri(base_uri)
    assert dataset.uri == uri and dataset.admin_metadata["frozen_at"] == frozen_at
    # present again: the next refresh writes nothing
    version = saved.version
    assert not DepositProcessor(world.ctx).refresh(deposit.id).changed
    assert world.deposit("rc-lost").version == version


def test_a_lost_dataset_keeps_the_deposit_accepted_and_says_what_to_do(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    deposit = world.accepted("rc-gone")
    uri = world.copy(deposit).access_url or ""
    world.unregister(deposit)
    shutil.rmtree(urlparse(uri).path)

    with caplog.at_level(logging.WARNING):
        outcome = DepositProcessor(world.ctx).refresh(deposit.id)

    saved = world.deposit("rc-gone")
    assert saved.deposit_status is DepositStatus.ACCEPTED
    message = saved.status_message or ""
    assert outcome.changed and outcome.message == message
    assert f"dtool dataset {uri} is gone" in message and "no entry" in message
    assert "Restore the dataset" in message and "refresh" in message
    assert any(message in r.getMessage() and deposit.id in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)
    assert world.registered(deposit) == []  # nothing registered for a missing dataset
    # said once: the next refresh writes nothing
    assert not DepositProcessor(world.ctx).refresh(deposit.id).changed
    assert world.deposit("rc-gone").version == saved.version


def test_the_refresh_job_rechecks_an_accepted_deposit_at_most_once_a_day(
        world: World) -> None:
    deposit = world.accepted("rc-job")
    uri = world.copy(deposit).access_url or ""
    jobs = Jobs(world.ctx, load_settings({"DEPOSIT_DATA_DIR": str(world.root)}))
    jobs.run_refresh()  # first run: checked, all well, nothing changed
    assert world.deposit("rc-job").version == deposit.version

    world.unregister(deposit)
    world.clock.advance((RECHECK_EVERY - timedelta(minutes=1)).total_seconds())
    assert jobs.run_refresh() == 0, "checked less than a day ago: not again"
    assert world.registered(deposit) == []

    world.clock.advance(timedelta(minutes=1).total_seconds())
    assert jobs.run_refresh() == 1, "a day later it is checked and registered again"
    assert world.registered(deposit) == [uri]
    assert "registered again" in (world.deposit("rc-job").status_message or "")


def test_the_operators_refresh_of_a_named_accepted_deposit_rechecks_it(world: World) -> None:
    deposit = world.accepted("rc-named")
    uri = world.copy(deposit).access_url or ""
    world.unregister(deposit)
    assert operations.select(world.ctx, operations.REFRESH, []) == [], \
        "unnamed, refresh takes SUBMITTED deposits only"

    (outcome,) = operations.run(world.ctx, operations.REFRESH, [deposit.id], named=True)

    assert outcome.ok and outcome.changed, outcome.message
    assert "registered again" in outcome.message
    assert world.registered(deposit) == [uri]


def test_a_recheck_that_cannot_be_made_writes_nothing_and_says_why(
        world: World, base_uri: str, caplog: pytest.LogCaptureFixture) -> None:
    """The repository now names another dserver than the deposit's: the re-check fails,
    the deposit is untouched and the operator is told why."""
    deposit = world.accepted("rc-moved")
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        moved = f"http://127.0.0.1:{probe.getsockname()[1]}"
    ctx = context(world.root, world.ctx.database, world.clock, base_uri, moved, world.server,
                  world.user)
    try:
        with caplog.at_level(logging.WARNING):
            outcome = DepositProcessor(ctx).refresh(deposit.id)
    finally:
        ctx.targets.close()
    assert not outcome.ok and not outcome.changed
    assert outcome.message.startswith("re-check failed") and "not an entry of dserver" \
        in outcome.message
    assert any("re-check of the accepted deposit failed" in r.getMessage()
               for r in caplog.records)
    assert world.deposit("rc-moved").version == deposit.version
