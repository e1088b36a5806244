"""What the operations layer costs: the metric hooks per message and transfer, one
/metrics scrape (with the store's gauges) over a store with many RETRY deposits, and a
JSON log line against a text one.

Target: hooks in microseconds (nothing next to a transfer or a commit); a scrape of a
store with thousands of RETRY deposits well under a second (Prometheus scrapes every
15-60 s); JSON formatting in the same range as the text format.

Usage: ``python bench/observability.py [--deposits 5000]`` from the repository root.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deposit_services.cli import LOG_FORMAT
from deposit_services.messaging.base import Broker, Delivery
from deposit_services.model.entities import Deposit, DepositStatus, Repository, Submission
from deposit_services.observability import logs
from deposit_services.observability.metrics import Metrics
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import UnitOfWork, run_unit


class NullBroker(Broker):
    def __init__(self) -> None:
        self.delivery = Delivery("submission", '{"submission": "s-1", "type": "SubmissionReady"}')

    def publish(self, queue: str, body: str, headers: Mapping[str, str] | None = None) -> None:
        pass

    def receive(self, queues: Sequence[str], timeout: float) -> Delivery | None:
        return self.delivery

    def ack(self, delivery: Delivery) -> None:
        pass

    def nack(self, delivery: Delivery, reason: str) -> None:
        pass

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        pass


def per_call(func: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        func()
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deposits", type=int, default=5000)
    args = parser.parse_args()
    n = 20_000
    metrics = Metrics()
    raw, wrapped = NullBroker(), metrics.broker(NullBroker())

    def received(broker: Broker) -> Callable[[], object]:
        def run() -> None:
            delivery = broker.receive(["submission"], 1)
            assert delivery is not None
            broker.ack(delivery)
        return run

    bare = per_call(received(raw), n)
    counted = per_call(received(wrapped), n)
    print(f"receive + ack: {bare * 1e6:.2f} us bare, {counted * 1e6:.2f} us counted "
          f"(+{(counted - bare) * 1e6:.2f} us a message)")
    repository = Repository(id="r", repository_key="archive")
    def hooks() -> None:
        metrics.transfer("sftp", 123_456).done(ok=True)
        metrics.deposit(repository, DepositStatus.ACCEPTED)

    hook = per_call(hooks, n)
    print(f"transfer + deposit hooks: {hook * 1e6:.2f} us a deposit")

    with tempfile.TemporaryDirectory() as tmp:
        database = SqlDatabase(f"sqlite:///{tmp}/bench.db")
        database.check()
        due = datetime(2026, 1, 1, tzinfo=UTC)

        def seed(uow: UnitOfWork) -> None:
            for i in range(args.deposits):
                uow.records.add(Submission(id=f"s{i}"))
                uow.records.add(Deposit(id=f"d{i}", submission=f"s{i}", repository="r",
                                        deposit_status=DepositStatus.RETRY,
                                        next_attempt_at=due + timedelta(seconds=i)))

        run_unit(database, seed)
        metrics.watch_store(database)
        metrics.exposition()
        scrape = per_call(metrics.exposition, 20)
        size = len(metrics.exposition())
        print(f"/metrics with {args.deposits} RETRY deposits (SQLite): {scrape * 1e3:.1f} ms "
              f"a scrape, {size} bytes")
        database.close()

    record = logging.LogRecord("deposit_services.service.deposits", logging.INFO, __file__, 1,
                               "deposit %s attempt %d: sending %s (%d bytes) to %s over %s",
                               ("d-1", 1, "pkg.zip", 123_456, "archive", "sftp"), None)
    logs.clear(submission="s-1", deposit="d-1", repository="archive", attempt=1)
    for fmt in ("text", "json"):
        formatter = logs.formatter(fmt, LOG_FORMAT)
        formatter.protect(["a-password-1", "a-token-2", "a-passphrase-3"])
        handler = logging.StreamHandler(io.StringIO())
        handler.setFormatter(formatter)
        seconds = per_call(lambda: handler.format(record), n)  # noqa: B023 - used at once
        print(f"log line ({fmt}, 3 secrets masked): {seconds * 1e6:.1f} us")


if __name__ == "__main__":
    main()
