"""Stale deposits on the SWORD test server with a fake clock, and the notices digest
received by a real SMTP server (aiosmtpd, STARTTLS with a verified certificate, AUTH),
on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deposit_services.config.repositories import RepositoriesConfig, parse_repositories
from deposit_services.entrypoints.jobs import Jobs, refreshable
from deposit_services.model.entities import CopyStatus, Deposit, DepositStatus, RepositoryCopy
from deposit_services.service.context import ServiceContext
from deposit_services.service.lifecycle import DepositProcessor
from deposit_services.service.notices import SmtpSender, send_notices
from deposit_services.service.submissions import SubmissionProcessor
from deposit_services.service.targets import Targets
from deposit_services.settings import Settings, load_settings
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import run_unit
from deposit_services.transports import base as transports
from tests.integration.lifecycle.conftest import FAST_RETRY, SWORD_REPO, World, sword_entry
from tests.support import switch_transport
from tests.support.clock import FakeClock
from tests.support.smtp import SmtpServer, running_smtp_server
from tests.support.store import StoreView
from tests.support.switch_transport import REFUSING, SwitchServer
from tests.support.sword_server import SwordServer

DROP_REPO = {"@type": "Repository", "id": "repo-drop", "name": "Drop", "repositoryKey": "drop",
             "integrationType": "ONE_WAY"}


def context(root: Path, store_url: str, config: RepositoriesConfig, clock: FakeClock
            ) -> ServiceContext:
    return ServiceContext(database=SqlDatabase(store_url), targets=Targets(config, "test", clock),
                          work_dir=root / "work", owner="w1", clock=clock, lease_seconds=10,
                          retry_policy=FAST_RETRY)


@pytest.fixture
def stale_world(tmp_path: Path, store_url: str, sword_server: SwordServer
                ) -> Iterator[tuple[World, FakeClock]]:
    clock = FakeClock(datetime.now(UTC))  # attempt times come from the database's clock
    entry = {**sword_entry(sword_server), "operations": {"stale-after-days": 3}}
    ctx = context(tmp_path, store_url, parse_repositories({"dspace": entry}, {}), clock)
    world = World(tmp_path, StoreView(ctx.database), sword_server, ctx)
    yield world, clock
    ctx.targets.close()
    world.store.close()


def test_a_submitted_deposit_turns_stalled_after_its_time_and_back_when_answered(
        stale_world: tuple[World, FakeClock]) -> None:
    world, clock = stale_world
    world.seed("s1", [SWORD_REPO])
    SubmissionProcessor(world.ctx).process("s1")
    deposit = world.deposit_of("s1")
    assert deposit.deposit_status is DepositStatus.SUBMITTED
    processor = DepositProcessor(world.ctx)
    assert processor.refresh(deposit.id).message.startswith("still in progress")

    clock.advance(timedelta(days=2, hours=23).total_seconds())
    assert processor.refresh(deposit.id).message.startswith("still in progress")
    copy_id = world.deposit_of("s1").repository_copy or ""
    assert world.store.get(RepositoryCopy, copy_id).copy_status is CopyStatus.IN_PROGRESS

    clock.advance(3600 * 2)  # past the repository's 3 days
    outcome = processor.refresh(deposit.id)
    stalled = world.deposit_of("s1")
    assert stalled.deposit_status is DepositStatus.SUBMITTED
    assert world.store.get(RepositoryCopy, copy_id).copy_status is CopyStatus.STALLED
    message = stalled.status_message or ""
    assert message == outcome.message and not outcome.ok  # the refresh summary shows it
    assert message.startswith("stalled: SUBMITTED with no change since ")
    assert "(stale after 3 days); last heard: still in progress at the repository" in message
    # still refreshed by the job, whatever the refresh window says
    later = clock.now() + timedelta(days=400)
    assert [d.id for d in run_unit(world.ctx.database, lambda uow: refreshable(
        uow, later, timedelta(days=1)), read_only=True)] == [deposit.id]
    version = stalled.version
    processor.refresh(deposit.id)  # nothing new: no write
    assert world.deposit_of("s1").version == version

    (received,) = world.server.deposits.values()
    world.server.set_state(received.id, "archived")
    assert processor.refresh(deposit.id).changed
    assert world.deposit_of("s1").deposit_status is DepositStatus.ACCEPTED
    assert world.store.get(RepositoryCopy, copy_id).copy_status is CopyStatus.COMPLETE


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp_server() as server:
        yield server


def notices_config(tmp_path: Path, hours: float = 24) -> RepositoriesConfig:
    return parse_repositories({"drop": {
        "assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
        "operations": {"notices": {"to": ["staff@repository.example", "ops@repository.example"],
                                   "every-hours": hours}},
        "transport-config": {"protocol-binding": {"protocol": "switch",
                                                  "server": f"{tmp_path.name}-drop"}}}}, {})


def smtp_settings(tmp_path: Path, smtp: SmtpServer) -> Settings:
    """The settings of a worker that sends notices through the test SMTP server."""
    return load_settings({
        "DEPOSIT_DATA_DIR": str(tmp_path / "data"), "DEPOSIT_SMTP_HOST": "127.0.0.1",
        "DEPOSIT_SMTP_PORT": str(smtp.port), "DEPOSIT_SMTP_USER": smtp.username,
        "DEPOSIT_SMTP_PASSWORD": smtp.password, "DEPOSIT_SMTP_CA_FILE": str(smtp.ca_file),
        "DEPOSIT_SMTP_SENDER": "deposits@pass.example"})


def refusing_drop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test repository ``drop`` refuses every package (deposits FAILED)."""
    monkeypatch.setitem(transports.TRANSPORTS, "switch",
                        "tests.support.switch_transport:SwitchTransport")
    monkeypatch.setitem(switch_transport.SERVERS, f"{tmp_path.name}-drop",
                        SwitchServer(mode=REFUSING))


def test_the_digest_reaches_the_smtp_server_once_per_period_with_the_right_deposits(
        tmp_path: Path, store_url: str, smtp: SmtpServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    refusing_drop(tmp_path, monkeypatch)
    clock = FakeClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    config = notices_config(tmp_path)
    ctx = context(tmp_path, store_url, config, clock)
    world = World(tmp_path, StoreView(ctx.database), None, ctx)  # type: ignore[arg-type]
    settings = smtp_settings(tmp_path, smtp)
    send = SmtpSender(settings)

    def notify() -> list[str]:
        return send_notices(ctx.database, config, send, settings.smtp_sender, clock.now())

    try:
        for sid in ("n1", "n2"):
            world.seed(sid, [DROP_REPO])
            SubmissionProcessor(ctx).process(sid)
        failed = {d.id: d for d in world.store.find(Deposit, deposit_status=DepositStatus.FAILED)}
        assert len(failed) == 2
        assert notify() == ["drop"]
        (mail,) = smtp.messages
        assert smtp.tls_used == [True]
        assert sorted(smtp.recipients[0]) == ["ops@repository.example",
                                              "staff@repository.example"]
        assert mail["Subject"] == "[deposit-services] drop: 2 failed"
        assert mail["From"] == "deposits@pass.example"
        body = mail.get_content()
        for deposit_id in failed:
            assert f"deposit {deposit_id} (FAILED)" in body
            assert f"deposit-services retry --uri {deposit_id}" in body
        assert "package refused" in body

        assert notify() == []  # the same period: nothing, even with something new
        world.seed("n3", [DROP_REPO])
        SubmissionProcessor(ctx).process("n3")
        clock.advance(3600 * 23)
        assert notify() == []
        # the next period: only what is new since the last notice; a refused send is
        # given back and retried, and never touches a deposit
        clock.advance(3600 * 2)
        smtp.refuse_next(1)
        versions = {d.id: d.version for d in world.store.find(Deposit)}
        assert notify() == []
        assert len(smtp.messages) == 1
        assert notify() == ["drop"]
        assert {d.id: d.version for d in world.store.find(Deposit)} == versions
        new = world.store.find(Deposit, submission="n3")[0]
        body = smtp.messages[1].get_content()
        assert f"deposit {new.id} (FAILED)" in body
        assert all(deposit_id not in body for deposit_id in failed)
        assert "since the last notice (2026-11-02T12:00:00+00:00)" in body
    finally:
        ctx.targets.close()
        world.store.close()


def test_notices_without_an_smtp_host_are_a_configuration_error(tmp_path: Path) -> None:
    from deposit_services.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="DEPOSIT_SMTP_HOST"):
        SmtpSender(load_settings({"DEPOSIT_DATA_DIR": str(tmp_path)}))




def test_replicas_running_the_notices_job_together_send_one_digest(
        tmp_path: Path, store_url: str, smtp: SmtpServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    refusing_drop(tmp_path, monkeypatch)
    clock = FakeClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    config = notices_config(tmp_path, hours=1)
    settings = smtp_settings(tmp_path, smtp)
    replicas = [context(tmp_path, store_url, config, clock) for _ in range(3)]
    try:
        world = World(tmp_path, StoreView(replicas[0].database), None,  # type: ignore[arg-type]
                      replicas[0])
        world.seed("r1", [DROP_REPO])
        SubmissionProcessor(replicas[0]).process("r1")
        jobs = [Jobs(ctx, settings) for ctx in replicas]  # their schedulers never start
        barrier = threading.Barrier(len(jobs))
        sent: list[int] = []

        def run(job: Jobs) -> None:
            barrier.wait()
            sent.append(job.run_notices())

        threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(sent) == [0, 0, 1]
        assert len(smtp.messages) == 1
    finally:
        for ctx in replicas:
            ctx.targets.close()
            ctx.database.close()
