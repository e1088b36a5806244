"""Health per repository, duplicates and updates: the service layer's rules on the
in-memory store, a fake clock and switchable test repositories (no network)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deposit_services.config.repositories import RepositoryConfig, parse_repositories
from deposit_services.entrypoints.jobs import due_retries
from deposit_services.entrypoints.repositories import parse_until
from deposit_services.errors import ConfigurationError
from deposit_services.model.entities import (
    CopyStatus,
    Deposit,
    DepositStatus,
    Publication,
    Repository,
    RepositoryCopy,
)
from deposit_services.model.graph import Graph, resolve_file_uris
from deposit_services.service import health
from deposit_services.service.context import ServiceContext
from deposit_services.service.health import HealthPolicy
from deposit_services.service.lifecycle import DepositProcessor
from deposit_services.service.outcome import TRIGGER_FORCE, TRIGGER_JOB
from deposit_services.service.retry import RetryPolicy
from deposit_services.service.submissions import SubmissionProcessor
from deposit_services.service.targets import Targets
from deposit_services.settings import load_settings
from deposit_services.store.base import Attempt, RepositoryState
from deposit_services.store.memory import MemoryDatabase
from deposit_services.store.uow import run_unit
from deposit_services.transports import base as transports
from tests.support import switch_transport
from tests.support.clock import FakeClock
from tests.support.graphs import make_graph, write_graph
from tests.support.store import StoreView
from tests.support.switch_transport import DOWN, REFUSING, UP, SwitchServer

KEYS = ("down", "fine", "updating")


def repository(key: str) -> dict[str, str]:
    return {"@type": "Repository", "id": f"repo-{key}", "name": key, "repositoryKey": key,
            "integrationType": "ONE_WAY"}


@dataclass
class World:
    root: Path
    clock: FakeClock
    database: MemoryDatabase
    store: StoreView
    servers: dict[str, SwitchServer]
    ctx: ServiceContext
    probes: list[str]
    probe_answers: dict[str, str | None]

    def seed(self, sid: str, keys: tuple[str, ...] = ("down",), doi: str | None = None,
             files: dict[str, bytes] | None = None, **metadata: Any) -> None:
        if doi is not None:
            metadata["doi"] = doi
        path = write_graph(self.root / f"{sid}.json", make_graph(
            sid, self.root / "files", repositories=[repository(k) for k in keys],
            metadata=metadata, files=files))
        for entity in resolve_file_uris(Graph.load(path), self.root / "files").entities:
            if isinstance(entity, Publication) and doi is not None:
                entity.doi = doi
            self.store.add_if_absent(entity)

    def deposit(self, sid: str, key: str = "down") -> Deposit:
        (found,) = [d for d in self.store.find(Deposit, submission=sid)
                    if d.repository == f"repo-{key}"]
        return found

    def state(self, key: str) -> RepositoryState:
        found = run_unit(self.database, lambda uow: uow.state.repository_states([key]),
                         read_only=True)
        return found[0] if found else RepositoryState(key)

    def attempts(self, deposit_id: str) -> list[Attempt]:
        return run_unit(self.database, lambda uow: uow.state.attempts(deposit_id),
                        read_only=True)

    def run_due(self) -> list[str]:
        now = self.clock.now()
        due = run_unit(self.database, lambda uow: due_retries(uow, now), read_only=True)
        processor = DepositProcessor(self.ctx)
        return [d.id for d in due if not processor.retry(d.id, TRIGGER_JOB).skipped]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setitem(transports.TRANSPORTS, "switch",
                        "tests.support.switch_transport:SwitchTransport")
    servers = {key: SwitchServer() for key in KEYS}
    for key, server in servers.items():
        monkeypatch.setitem(switch_transport.SERVERS, f"{tmp_path.name}-{key}", server)

    def entry(key: str, **operations: Any) -> dict[str, Any]:
        return {"assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
                "operations": operations,
                "transport-config": {"protocol-binding": {
                    "protocol": "switch", "server": f"{tmp_path.name}-{key}",
                    "updates": key == "updating"}}}

    config = parse_repositories({
        "down": entry("down", **{"pause-after-failures": 3, "pause-seconds": 600}),
        "fine": entry("fine", **{"allow-duplicates": True}),
        "updating": entry("updating"),
    }, {})
    clock = FakeClock(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    database = MemoryDatabase(clock)
    targets = Targets(config, "test", clock)
    probes: list[str] = []
    answers: dict[str, str | None] = {}

    def probe(entry: RepositoryConfig) -> str | None:
        probes.append(entry.key)
        return answers.get(entry.key)

    ctx = ServiceContext(database=database, targets=targets, work_dir=tmp_path / "work",
                         owner="w1", clock=clock, lease_seconds=10,
                         retry_policy=RetryPolicy(base_seconds=30, factor=2, cap_seconds=60,
                                                  max_attempts=50, jitter="none"),
                         health=HealthPolicy(pause_after_failures=10, pause_seconds=60),
                         probe=probe)
    yield World(tmp_path, clock, database, StoreView(database), servers, ctx, probes, answers)
    targets.close()


def test_transient_failures_pause_the_repository_at_its_threshold_and_deposits_wait(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.servers["down"].mode = DOWN
    assembler = world.ctx.targets.for_repository(Repository.model_validate(
        repository("down"))).assembler
    built: list[str] = []
    assemble = assembler.assemble

    def counted(content: Any, *args: Any, **kwargs: Any) -> Any:
        built.append(content.id)
        return assemble(content, *args, **kwargs)

    monkeypatch.setattr(assembler, "assemble", counted)
    world.probe_answers["down"] = "target: connection refused"
    for n in range(1, 7):
        world.seed(f"s{n}", keys=("down", "fine"))
        SubmissionProcessor(world.ctx).process(f"s{n}")
    sends = world.servers["down"].calls.count("send")
    assert sends == 3  # the repository's own threshold (3), not the global one (10)
    state = world.state("down")
    assert state.health == health.PAUSED and state.failures == 3
    assert "connection refused" in (state.reason or "")
    until = world.clock.now() + timedelta(seconds=600)
    assert state.paused_until == until
    for n in range(4, 7):  # never attempted: RETRY at the pause's end, no attempt logged
        deposit = world.deposit(f"s{n}")
        assert deposit.deposit_status is DepositStatus.RETRY
        assert deposit.next_attempt_at == until
        assert "not attempted: repository down is paused" in (deposit.status_message or "")
        assert world.attempts(deposit.id) == []
    # the other repository is never held back
    assert all(world.deposit(f"s{n}", "fine").deposit_status is DepositStatus.ACCEPTED
               for n in range(1, 7))
    assert world.state("fine").health == health.HEALTHY

    # the pause runs out: one probe (not one attempt per deposit), which fails; only the
    # deposit that probed had its package built
    world.clock.set(until)
    built.clear()
    assert world.run_due() == []
    assert world.probes == ["down"]
    assert len(built) == 1
    assert world.servers["down"].calls.count("send") == sends
    again = world.state("down")
    assert again.health == health.PAUSED and again.probes == 1
    assert again.paused_until == until + timedelta(seconds=600)
    assert "still not answering: target: connection refused" in (again.reason or "")
    assert {world.deposit(f"s{n}").next_attempt_at for n in range(1, 7)} == {
        again.paused_until}

    # back up: the next probe resumes it and every waiting deposit is delivered once
    world.servers["down"].mode = UP
    world.probe_answers["down"] = None
    world.clock.set(again.paused_until)
    assert len(world.run_due()) == 6
    assert world.probes == ["down", "down"]
    assert world.servers["down"].calls.count("send") == sends + 6
    assert len(world.servers["down"].items) == 6
    assert all(world.deposit(f"s{n}").deposit_status is DepositStatus.ACCEPTED
               for n in range(1, 7))
    assert world.state("down").health == health.HEALTHY


def test_a_permanent_fault_never_pauses_and_a_success_clears_degraded(world: World) -> None:
    world.servers["down"].mode = REFUSING
    for n in range(1, 6):
        world.seed(f"p{n}")
        SubmissionProcessor(world.ctx).process(f"p{n}")
        assert world.deposit(f"p{n}").deposit_status is DepositStatus.FAILED
    assert world.state("down").health == health.HEALTHY
    world.servers["down"].mode = DOWN
    world.seed("t1")
    SubmissionProcessor(world.ctx).process("t1")
    assert world.state("down").health == health.DEGRADED
    world.servers["down"].mode = UP
    world.clock.advance(60)
    assert world.run_due() == [world.deposit("t1").id]
    assert world.state("down").health == health.HEALTHY


def test_an_operator_pause_holds_deposits_until_resume_and_no_probe_lifts_it(
        world: World) -> None:
    now = world.clock.now()
    health.operator_pause(world.database, "fine", now, None, "maintenance window")
    world.seed("m1", keys=("fine",))
    SubmissionProcessor(world.ctx).process("m1")
    deposit = world.deposit("m1", "fine")
    assert deposit.deposit_status is DepositStatus.RETRY
    assert "paused by the operator: maintenance window" in (deposit.status_message or "")
    world.clock.advance(2 * 3600)  # its recheck time passes: still paused, not probed
    assert world.run_due() == []
    assert world.probes == []
    assert world.servers["fine"].calls == []
    health.operator_resume(world.database, "fine", world.clock.now())
    world.clock.advance(3600)
    assert world.run_due() == [deposit.id]
    assert world.deposit("m1", "fine").deposit_status is DepositStatus.ACCEPTED


def test_an_operator_pause_with_until_ends_by_itself(world: World) -> None:
    until = world.clock.now() + timedelta(minutes=30)
    health.operator_pause(world.database, "fine", world.clock.now(), until, None)
    world.seed("u1", keys=("fine",))
    SubmissionProcessor(world.ctx).process("u1")
    assert world.deposit("u1", "fine").next_attempt_at == until
    world.clock.set(until)
    assert len(world.run_due()) == 1
    assert world.state("fine").health == health.HEALTHY
    assert world.probes == []


def test_the_same_doi_twice_is_sent_once_then_with_force_twice(world: World) -> None:
    same = {"manuscript.txt": b"the one manuscript\n"}  # the same bytes in both
    world.seed("d1", keys=("updating",), doi="https://doi.org/10.5555/SAME",
               title="One paper", files=same)
    world.seed("d2", keys=("updating",), doi="10.5555/same", title="One paper", files=same)
    SubmissionProcessor(world.ctx).process("d1")
    SubmissionProcessor(world.ctx).process("d2")
    first, second = world.deposit("d1", "updating"), world.deposit("d2", "updating")
    assert first.deposit_status is DepositStatus.ACCEPTED
    assert second.deposit_status is DepositStatus.FAILED
    message = second.status_message or ""
    assert f"deposit {first.id} (ACCEPTED, submission d1)" in message
    assert f"retry --force --uri {second.id}" in message
    assert world.servers["updating"].calls == ["send"]
    assert second.repository_copy is None

    outcome = DepositProcessor(world.ctx).retry(second.id, TRIGGER_FORCE, due_only=False)
    assert outcome.status == "ACCEPTED"
    assert world.servers["updating"].calls == ["send", "send"]


def test_allow_duplicates_sends_the_same_doi_again(world: World) -> None:
    for sid in ("a1", "a2"):
        world.seed(sid, keys=("fine",), doi="10.5555/allowed", title="Same")
        SubmissionProcessor(world.ctx).process(sid)
    assert world.servers["fine"].calls == ["send", "send"]


def test_a_changed_resubmission_updates_the_earlier_item_where_the_transport_can(
        world: World) -> None:
    world.seed("c1", keys=("updating", "down"), doi="10.5555/changed", title="Draft title")
    SubmissionProcessor(world.ctx).process("c1")
    world.seed("c2", keys=("updating", "down"), doi="10.5555/changed", title="Final title")
    SubmissionProcessor(world.ctx).process("c2")
    earlier = world.deposit("c1", "updating")
    updated = world.deposit("c2", "updating")
    assert world.servers["updating"].calls == ["send", "update item-1"]
    assert len(world.servers["updating"].items["item-1"]) == 2
    assert updated.deposit_status is DepositStatus.ACCEPTED
    assert f"updated the item of deposit {earlier.id}" in (updated.status_message or "")
    # a file drop cannot update: a new package, named as a replacement
    replacement = world.deposit("c2", "down")
    assert world.servers["down"].calls == ["send", "send"]
    assert len(world.servers["down"].items) == 2
    assert (f"switch cannot update an item in place, so this new package replaces the one "
            f"of deposit {world.deposit('c1', 'down').id}") in (replacement.status_message or "")


def test_a_corrected_file_under_the_same_name_and_size_is_an_update(world: World) -> None:
    world.seed("f1", keys=("updating",), doi="10.5555/fixed", title="Same",
               files={"paper.txt": b"a typo in teh paper\n"})
    SubmissionProcessor(world.ctx).process("f1")
    world.seed("f2", keys=("updating",), doi="10.5555/fixed", title="Same",
               files={"paper.txt": b"a typo in the paper\n"})  # same name and size
    SubmissionProcessor(world.ctx).process("f2")
    assert world.servers["updating"].calls == ["send", "update item-1"]
    corrected = world.deposit("f2", "updating")
    assert corrected.deposit_status is DepositStatus.ACCEPTED
    assert (f"updated the item of deposit {world.deposit('f1', 'updating').id}"
            in (corrected.status_message or ""))


def test_a_repository_state_write_is_a_compare_and_set(world: World) -> None:
    def put(state: RepositoryState) -> bool:
        return run_unit(world.database, lambda uow: uow.state.put_repository_state(state))

    assert put(RepositoryState("x", health=health.DEGRADED, failures=1))
    assert not put(RepositoryState("x"))  # version 0 again: someone wrote first
    stored = world.state("x")
    assert stored.version == 1
    assert put(replace(stored, failures=2))
    assert not put(replace(stored, failures=3))
    assert world.state("x").failures == 2


def test_pause_until_takes_a_duration_or_an_iso_time_in_the_future() -> None:
    now = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    assert parse_until("90m", now) == now + timedelta(minutes=90)
    assert parse_until(" 2H ", now) == now + timedelta(hours=2)
    assert parse_until("1.5d", now) == now + timedelta(hours=36)
    assert parse_until("2026-11-03T08:00:00", now) == datetime(2026, 11, 3, 8, tzinfo=UTC)
    assert parse_until("2026-11-03T08:00:00+01:00", now) == datetime(2026, 11, 3, 7,
                                                                       tzinfo=UTC)
    for bad in ("soon", "2026-11-01T00:00:00Z", "-5m"):
        with pytest.raises(ValueError, match="--until"):
            parse_until(bad, now)


def test_a_deposit_sent_by_another_system_is_stale_from_its_submission_date(
        world: World) -> None:
    world.seed("x1", keys=("fine",))  # submitted 2026-11-01T10:00Z; never sent by us
    world.store.add(RepositoryCopy(id="copy-x1", copy_status=CopyStatus.IN_PROGRESS,
                                   repository="repo-fine"))
    world.store.add(Deposit(id="dep-x1", submission="x1", repository="repo-fine",
                            deposit_status=DepositStatus.SUBMITTED,
                            repository_copy="copy-x1"))
    processor = DepositProcessor(world.ctx)
    world.clock.set(datetime(2026, 11, 15, 9, 0, tzinfo=UTC))  # 13 days, 23 hours
    assert processor.refresh("dep-x1").message.startswith("no depositStatusRef")
    world.clock.set(datetime(2026, 11, 15, 10, 0, tzinfo=UTC))  # the global 14 days
    message = processor.refresh("dep-x1").message
    assert message == ("stalled: SUBMITTED with no change since 2026-11-01T10:00:00+00:00 "
                       "(stale after 14 days); last heard: no depositStatusRef to follow; "
                       "the repository gave none")
    assert world.store.get(RepositoryCopy, "copy-x1").copy_status is CopyStatus.STALLED
    assert world.store.get(Deposit, "dep-x1").status_message == message


def test_health_and_smtp_settings_are_read_and_checked() -> None:
    settings = load_settings({"HOME": "/h", "DEPOSIT_PAUSE_AFTER_FAILURES": "3",
                              "DEPOSIT_PAUSE_SECONDS": "90", "DEPOSIT_STALE_AFTER_DAYS": "7.5",
                              "DEPOSIT_SMTP_TLS": "SSL", "DEPOSIT_SMTP_PORT": "465",
                              "DEPOSIT_SMTP_PASSWORD": "mail-secret"})
    assert HealthPolicy.from_settings(settings) == HealthPolicy(3, 90.0, 7.5)
    assert (settings.smtp_tls, settings.smtp_port) == ("ssl", 465)
    assert settings.masked()["smtp_password"] == "***"
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"HOME": "/h", "DEPOSIT_SMTP_TLS": "maybe", "DEPOSIT_SMTP_PORT": "70000",
                       "DEPOSIT_PAUSE_AFTER_FAILURES": "0"})
    problems = "; ".join(raised.value.problems)
    assert "DEPOSIT_SMTP_TLS='maybe': use one of starttls, ssl, none" in problems
    assert "DEPOSIT_SMTP_PORT='70000': use a port (1-65535)" in problems
    assert "DEPOSIT_PAUSE_AFTER_FAILURES='0'" in problems


def test_the_metrics_show_each_recorded_repository_s_health(world: World) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from deposit_services.observability.metrics import Metrics

    health.operator_pause(world.database, "fine", world.clock.now(), None, "maintenance")
    world.servers["down"].mode = DOWN
    world.seed("g1")
    SubmissionProcessor(world.ctx).process("g1")
    metrics = Metrics()
    metrics.watch_store(world.database)
    found = {tuple(sorted(s.labels.items())): s.value
             for family in text_string_to_metric_families(metrics.exposition().decode())
             for s in family.samples if s.name == "deposit_services_repository_health"}
    assert found == {
        (("repository", "down"), ("state", "healthy")): 0.0,
        (("repository", "down"), ("state", "degraded")): 1.0,
        (("repository", "down"), ("state", "paused")): 0.0,
        (("repository", "fine"), ("state", "healthy")): 0.0,
        (("repository", "fine"), ("state", "degraded")): 0.0,
        (("repository", "fine"), ("state", "paused")): 1.0,
    }


def test_held_deposits_keep_one_message_across_pause_periods(world: World) -> None:
    """A long pause costs a held deposit no new message and no DepositStatus per period:
    the message names the pause, the next try is nextAttemptAt alone."""
    world.servers["down"].mode = DOWN
    world.probe_answers["down"] = "target: connection refused"
    for n in range(1, 6):
        world.seed(f"h{n}")
        SubmissionProcessor(world.ctx).process(f"h{n}")
    ids = [world.deposit(f"h{n}").id for n in range(1, 6)]

    def announced() -> list[str]:
        return [m.body for m in run_unit(world.database, lambda uow: uow.state.messages(0.0),
                                         read_only=True) if m.queue == "deposit"]

    world.clock.set(world.state("down").paused_until or world.clock.now())
    world.run_due()  # the first period ends: every deposit is held now, probe failed
    held = {d: world.store.get(Deposit, d).status_message for d in ids}
    since = world.state("down").since
    assert since is not None
    assert set(held.values()) == {
        f"not attempted: repository down is paused after transient failures since "
        f"{since.isoformat(timespec='seconds')}; the deposit waits for it (next try: "
        "nextAttemptAt; details: `deposit-services status`)"}
    before = announced()
    for period in range(2, 5):
        until = world.state("down").paused_until
        assert until is not None
        world.clock.set(until)
        assert world.run_due() == []
        assert len(world.probes) == period  # one probe a period, still refused
        state = world.state("down")
        assert state.paused_until == until + timedelta(seconds=600)
        for deposit_id in ids:
            deposit = world.store.get(Deposit, deposit_id)
            assert deposit.deposit_status is DepositStatus.RETRY
            assert deposit.status_message == held[deposit_id]
            assert deposit.next_attempt_at == state.paused_until
    assert announced() == before  # no DepositStatus for a held deposit in periods 2-4
    assert "still not answering" in (world.state("down").reason or "")  # status says why
