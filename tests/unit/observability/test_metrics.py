"""Metrics: the broker wrapper counts what passes, hooks record transfers, deposits and
jobs, and the store's gauges are read at scrape time (a store that fails is counted, not
raised). Values are read back through prometheus_client's own text parser."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from deposit_services.errors import BrokerUnavailable, StoreUnavailable
from deposit_services.messaging.base import Broker, Delivery
from deposit_services.model.entities import (
    AggregatedDepositStatus,
    Deposit,
    DepositStatus,
    Repository,
    Submission,
)
from deposit_services.observability import logs
from deposit_services.observability.metrics import Metrics, message_type
from deposit_services.store.memory import MemoryDatabase, MemoryUnitOfWork
from deposit_services.store.uow import UnitOfWork, run_unit


class ListBroker(Broker):
    """Deliveries from a list; a publish may be told to fail."""

    def __init__(self, deliveries: list[Delivery]) -> None:
        self.deliveries = deliveries
        self.settled: list[tuple[str, str]] = []
        self.fail_publish = False

    def publish(self, queue: str, body: str, headers: Mapping[str, str] | None = None) -> None:
        if self.fail_publish:
            raise BrokerUnavailable("broker down")

    def receive(self, queues: Sequence[str], timeout: float) -> Delivery | None:
        return self.deliveries.pop(0) if self.deliveries else None

    def ack(self, delivery: Delivery) -> None:
        self.settled.append(("ack", delivery.body))

    def nack(self, delivery: Delivery, reason: str) -> None:
        self.settled.append(("nack", delivery.body))

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self.settled.append(("dead", delivery.body))


def read(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_message_type_is_bounded_for_the_label() -> None:
    assert message_type(Delivery("q", '{"submission": "1", "type": "SubmissionReady"}')) \
        == "SubmissionReady"
    assert message_type(Delivery("q", '{"deposit": "7"}')) == "DepositStatus"
    assert message_type(Delivery("q", '{"type": "x' + "y" * 500 + '"}')) == "other"
    assert message_type(Delivery("q", "not json")) == "malformed"


def test_broker_wrapper_counts_by_queue_and_type_and_binds_the_log_context() -> None:
    inner = ListBroker([
        Delivery("sub", '{"submission": "s1", "type": "SubmissionReady"}'),
        Delivery("dep", '{"deposit": "d1", "type": "DepositStatus"}'),
        Delivery("sub", "garbage"),
    ])
    metrics = Metrics()
    broker = metrics.broker(inner)
    first = broker.receive(["sub"], 1)
    assert first is not None and logs.current() == {"submission": "s1"}
    broker.ack(first)
    second = broker.receive(["dep"], 1)
    assert second is not None and logs.current() == {"deposit": "d1"}
    broker.nack(second, "later")
    third = broker.receive(["sub"], 1)
    assert third is not None
    broker.dead_letter(third, "not JSON")
    assert broker.receive(["sub"], 1) is None
    inner.fail_publish = True
    with pytest.raises(BrokerUnavailable):
        broker.publish("dep", "{}")
    found = read(metrics)
    consumed = "deposit_services_messages_consumed_total"
    assert found[(consumed, (("queue", "sub"), ("type", "SubmissionReady")))] == 1
    assert found[(consumed, (("queue", "dep"), ("type", "DepositStatus")))] == 1
    assert found[(consumed, (("queue", "sub"), ("type", "malformed")))] == 1
    assert found[("deposit_services_messages_dead_lettered_total",
                  (("queue", "sub"), ("type", "malformed")))] == 1
    assert found[("deposit_services_messages_nacked_total",
                  (("queue", "dep"), ("type", "DepositStatus")))] == 1
    assert found[("deposit_services_errors_total", (("component", "broker"),))] == 1
    assert inner.settled == [("ack", first.body), ("nack", second.body),
                             ("dead", "garbage")]


def test_transfers_deposits_and_jobs() -> None:
    metrics = Metrics()
    metrics.transfer("sftp", 2_000).done(ok=True)
    metrics.transfer("sftp", 5_000_000).done(ok=False)
    repository = Repository(id="r1", name="Archive", repository_key="archive")
    metrics.deposit(repository, DepositStatus.ACCEPTED)
    metrics.deposit(repository, DepositStatus.RETRY)
    metrics.deposit(repository, DepositStatus.FAILED, counted=False)  # already terminal

    def failing() -> None:
        raise StoreUnavailable("database gone")

    metrics.job("refresh", lambda: 3)()
    with pytest.raises(StoreUnavailable):
        metrics.job("retry", failing)()
    found = read(metrics)
    assert found[("deposit_services_transfer_attempts_total",
                  (("protocol", "sftp"), ("result", "ok")))] == 1
    assert found[("deposit_services_transfer_attempts_total",
                  (("protocol", "sftp"), ("result", "error")))] == 1
    assert found[("deposit_services_transfer_bytes_sum", (("protocol", "sftp"),))] == 5_002_000
    assert found[("deposit_services_transfer_bytes_bucket",
                  (("le", "10000.0"), ("protocol", "sftp")))] == 1
    assert found[("deposit_services_transfer_duration_seconds_count",
                  (("protocol", "sftp"),))] == 2
    deposits = "deposit_services_deposits_total"
    assert found[(deposits, (("repository", "archive"), ("status", "ACCEPTED")))] == 1
    assert found[(deposits, (("repository", "archive"), ("status", "RETRY")))] == 1
    assert (deposits, (("repository", "archive"), ("status", "FAILED"))) not in found
    assert found[("deposit_services_job_runs_total", (("job", "refresh"), ("result", "ok")))] \
        == 1
    assert found[("deposit_services_job_runs_total", (("job", "retry"), ("result", "error")))] \
        == 1
    assert found[("deposit_services_job_duration_seconds_count", (("job", "retry"),))] == 1
    assert found[("deposit_services_errors_total", (("component", "store"),))] == 1


def test_store_gauges_read_at_scrape_time() -> None:
    database = MemoryDatabase()
    soon = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def seed(uow: UnitOfWork) -> None:
        uow.records.add(Submission(id="s1", aggregated_deposit_status=(
            AggregatedDepositStatus.IN_PROGRESS)))
        uow.records.add(Submission(id="s2", aggregated_deposit_status=(
            AggregatedDepositStatus.ACCEPTED)))
        for n, when in enumerate((soon + timedelta(hours=1), soon, None)):
            uow.records.add(Deposit(id=f"d{n}", submission="s1", repository=f"r{n}",
                                    deposit_status=DepositStatus.RETRY, next_attempt_at=when))
        uow.records.add(Deposit(id="d9", submission="s2", repository="r1",
                                deposit_status=DepositStatus.ACCEPTED))

    run_unit(database, seed)
    metrics = Metrics()
    metrics.watch_store(database)
    found = read(metrics)
    assert found[("deposit_services_retry_backlog", ())] == 3
    assert found[("deposit_services_retry_oldest_due_timestamp_seconds", ())] \
        == soon.timestamp()
    assert found[("deposit_services_submissions_in_progress", ())] == 1

    def finish(uow: UnitOfWork) -> None:
        for n in range(3):
            deposit = uow.records.get(Deposit, f"d{n}")
            deposit.deposit_status = DepositStatus.FAILED  # written at commit

    run_unit(database, finish)
    found = read(metrics)
    assert found[("deposit_services_retry_backlog", ())] == 0
    assert found[("deposit_services_retry_oldest_due_timestamp_seconds", ())] == 0


def test_a_store_that_fails_at_scrape_time_is_counted_and_its_gauges_left_out() -> None:
    class Broken(MemoryDatabase):
        def unit_of_work(self, read_only: bool = False) -> MemoryUnitOfWork:
            raise StoreUnavailable("connection refused")

    metrics = Metrics()
    metrics.watch_store(Broken())
    found = read(metrics)
    assert ("deposit_services_retry_backlog", ()) not in found
    found = read(metrics)  # the failure counted: seen from the next scrape on
    assert ("deposit_services_retry_backlog", ()) not in found
    assert found[("deposit_services_errors_total", (("component", "store"),))] == 1
