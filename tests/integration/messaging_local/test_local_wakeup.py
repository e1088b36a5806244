"""LocalBroker waits without polling: NOTIFY on PostgreSQL, due times, wake-ups.

An idle ``listen`` must not keep PostgreSQL busy (polling, it committed tens of
transactions a second doing nothing), yet still see at once what other processes
publish, redeliver what becomes visible later without any notification, and survive
losing its LISTEN connection. Waiting inside ``receive(timeout)`` is the operation under
test; nothing here sleeps to wait for a condition.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import psycopg
import pytest
from sqlalchemy import insert

from deposit_services.messaging.base import Delivery
from deposit_services.messaging.local import LocalBroker, enqueue
from deposit_services.messaging.local_wakeup import LISTENER_APPLICATION_NAME
from deposit_services.store.engine import make_engine
from deposit_services.store.schema import queue_messages

if TYPE_CHECKING:
    from tests.conftest import PostgresDatabases

WOKEN_WITHIN_S = 5.0  # far below the 10 s timeouts: proves a wake-up, not a tight timing
IDLE_WINDOW_S = 8.0


class Brokers:
    """Makes LocalBrokers on one database and closes them at the end of the test."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.made: list[LocalBroker] = []

    def make(self, **options: float) -> LocalBroker:
        broker = LocalBroker(self.url, **options)  # type: ignore[arg-type]
        self.made.append(broker)
        return broker


@pytest.fixture
def pg_brokers(fresh_postgres_url: str) -> Iterator[Brokers]:
    brokers = Brokers(fresh_postgres_url)
    yield brokers
    for broker in brokers.made:
        broker.close()


@pytest.fixture
def brokers(store_url: str) -> Iterator[Brokers]:
    brokers = Brokers(store_url)
    yield brokers
    for broker in brokers.made:
        broker.close()


class Waiter:
    """One ``receive`` in a thread of its own: what it returned and how long it took."""

    def __init__(self, broker: LocalBroker, queue: str, timeout: float) -> None:
        self.delivery: Delivery | None = None
        self.elapsed = float("inf")
        self._thread = threading.Thread(target=self._run, args=(broker, queue, timeout))
        self._thread.start()

    def _run(self, broker: LocalBroker, queue: str, timeout: float) -> None:
        started = time.monotonic()
        self.delivery = broker.receive([queue], timeout)
        self.elapsed = time.monotonic() - started

    def result(self) -> Delivery | None:
        self._thread.join(60)
        assert not self._thread.is_alive()
        return self.delivery


def _database(url: str) -> str:
    return url.rpartition("/")[2]


def _listener_pids(admin: psycopg.Connection[tuple[object, ...]], database: str) -> list[int]:
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
        (database, LISTENER_APPLICATION_NAME),
    ).fetchall()
    return [int(str(row[0])) for row in rows]


def _backends(admin: psycopg.Connection[tuple[object, ...]], database: str) -> list[int]:
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (database,),
    ).fetchall()
    return [int(str(row[0])) for row in rows]


def _committed(
    admin: psycopg.Connection[tuple[object, ...]], database: str, pids: list[int]
) -> int:
    """The database's committed transactions once its backends ``pids`` (and any still
    listed) have ended. A backend adds its counters to pg_stat_database when it exits
    (when still running, up to seconds later), and leaves pg_stat_activity just before
    that: so wait for the processes themselves (pg_terminate_backend(pid, timeout))."""
    admin.execute(
        "SELECT pg_terminate_backend(pid, 10000) FROM unnest(%s::int[]) AS pid",
        (pids + _backends(admin, database),),
    )
    admin.execute("SELECT pg_stat_clear_snapshot()")
    row = admin.execute(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (database,)
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


class ServerNoise:
    """Two idle connections shaped like an idle broker's (one LISTENing, one not) in a
    database of their own, counting what other work on the server makes PostgreSQL
    commit on behalf of idle connections: a transaction to catch up with the server-wide
    invalidation queue (other tests' DDL) or notification queue (their NOTIFYs). On a
    server of its own this is nothing; here other tests run at the same time."""

    BASELINE = 3  # two connection start-ups and LISTEN

    def __init__(self, postgres_databases: PostgresDatabases) -> None:
        self._databases = postgres_databases
        self.url = postgres_databases.create()
        self._conns: list[psycopg.Connection[tuple[object, ...]]] = []
        self._before = 0

    def start(self, admin: psycopg.Connection[tuple[object, ...]]) -> None:
        self._before = _committed(admin, _database(self.url), [])
        self._conns = [psycopg.connect(self.url, autocommit=True) for _ in range(2)]
        self._conns[0].execute("LISTEN nothing_is_sent_here")

    def stop(self, admin: psycopg.Connection[tuple[object, ...]]) -> int:
        """Transactions of the idle connections beyond their own start-up and LISTEN."""
        pids = [conn.info.backend_pid for conn in self._conns]
        for conn in self._conns:
            conn.close()
        after = _committed(admin, _database(self.url), pids)
        return max(after - self._before - self.BASELINE, 0)

    def drop(self) -> None:
        for conn in self._conns:
            conn.close()
        self._databases.drop(self.url)


@pytest.mark.postgres
def test_idle_consumers_on_postgresql_commit_almost_nothing(
    pg_brokers: Brokers, postgres_databases: PostgresDatabases
) -> None:
    database = _database(pg_brokers.url)
    noise = ServerNoise(postgres_databases)
    try:
        with psycopg.connect(postgres_databases.admin_url, autocommit=True) as admin:
            creator = pg_brokers.make()  # creates the schema
            pids = _backends(admin, database)
            creator.close()
            before = _committed(admin, database, pids)
            noise.start(admin)

            started = time.monotonic()
            broker = pg_brokers.make()
            stop = threading.Event()
            calls = [0] * 4

            def consume(index: int) -> None:
                while not stop.is_set():
                    assert broker.receive(["q"], 1.0) is None
                    calls[index] += 1

            threads = [threading.Thread(target=consume, args=(i,)) for i in range(4)]
            for thread in threads:
                thread.start()
            stop.wait(IDLE_WINDOW_S)
            stop.set()
            for thread in threads:
                thread.join(30)
            pids = _backends(admin, database)
            broker.close()
            window = time.monotonic() - started
            commits = _committed(admin, database, pids) - before
            elsewhere = noise.stop(admin)
    finally:
        noise.drop()
    assert all(count >= IDLE_WINDOW_S - 1 for count in calls)  # each thread kept receiving
    # The broker's whole life: two connection start-ups (PostgreSQL commits one for
    # each: the pool's and the listener's), the schema check, LISTEN, the first claim;
    # then nothing until the safety claim 30 s later. Polling, 4 threads committed 64/s.
    assert commits - elsewhere < window, (
        f"{commits} transactions in {window:.1f} s while idle "
        f"(as many as {elsewhere} of them caused by other work on the server)"
    )


@pytest.mark.postgres
def test_message_from_another_broker_wakes_a_waiting_consumer(
    pg_brokers: Brokers, postgres_databases: PostgresDatabases
) -> None:
    consumer = pg_brokers.make()
    publisher = pg_brokers.make()
    assert consumer.receive(["q"], timeout=0) is None  # listening, the queue known empty
    with psycopg.connect(postgres_databases.admin_url, autocommit=True) as admin:
        assert len(_listener_pids(admin, _database(pg_brokers.url))) == 1
    waiter = Waiter(consumer, "q", timeout=10)
    publisher.publish("q", "from elsewhere", {"type": "SubmissionReady"})
    delivery = waiter.result()
    assert delivery is not None and delivery.body == "from elsewhere"
    assert waiter.elapsed < WOKEN_WITHIN_S
    consumer.ack(delivery)
    assert publisher.pending() == 0


def test_nacked_message_returns_to_an_idle_waiter_without_a_publish(brokers: Brokers) -> None:
    broker = brokers.make(redelivery_delay=0.2)
    broker.publish("q", "flaky")
    first = broker.receive(["q"], timeout=5)
    assert first is not None
    waiter = Waiter(broker, "q", timeout=10)  # finds it leased: waits
    broker.nack(first, "transient trouble")
    again = waiter.result()
    assert again is not None
    assert (again.message_id, again.delivery_count) == (first.message_id, 2)
    assert waiter.elapsed < WOKEN_WITHIN_S
    broker.ack(again)


def test_nack_in_another_broker_reaches_an_idle_waiter(brokers: Brokers) -> None:
    worker = brokers.make(redelivery_delay=0.2)
    idle = brokers.make()
    worker.publish("q", "flaky")
    first = worker.receive(["q"], timeout=5)
    assert first is not None
    assert idle.receive(["q"], timeout=0) is None  # leased for 120 s: nothing visible
    waiter = Waiter(idle, "q", timeout=10)
    worker.nack(first, "transient trouble")  # and the worker stops receiving
    again = waiter.result()
    assert again is not None and again.delivery_count == 2
    assert waiter.elapsed < WOKEN_WITHIN_S
    idle.ack(again)


def test_enqueue_follows_the_callers_transaction(brokers: Brokers) -> None:
    broker = brokers.make()
    assert broker.receive(["q"], timeout=0) is None
    engine = make_engine(brokers.url)
    try:
        with engine.connect() as conn:
            transaction = conn.begin()
            enqueue(conn, "q", "rolled back", {"type": "DepositStatus"})
            transaction.rollback()
        assert broker.receive(["q"], timeout=1.0) is None
        assert broker.pending() == 0
        with engine.begin() as conn:
            enqueue(conn, "q", "committed", {"type": "DepositStatus"})
        broker.wake()  # what the unit of work does after its commit
        delivery = broker.receive(["q"], timeout=10)
    finally:
        engine.dispose()
    assert delivery is not None
    assert (delivery.body, dict(delivery.headers)) == ("committed", {"type": "DepositStatus"})
    broker.ack(delivery)


@pytest.mark.postgres
def test_enqueue_notifies_other_brokers_at_commit(pg_brokers: Brokers) -> None:
    consumer = pg_brokers.make()
    assert consumer.receive(["q"], timeout=0) is None
    waiter = Waiter(consumer, "q", timeout=10)
    engine = make_engine(pg_brokers.url)
    try:
        with engine.begin() as conn:
            enqueue(conn, "q", "announced")
    finally:
        engine.dispose()
    delivery = waiter.result()  # no wake(): the NOTIFY did it
    assert delivery is not None and delivery.body == "announced"
    assert waiter.elapsed < WOKEN_WITHIN_S


@pytest.mark.postgres
def test_wake_makes_waiting_consumers_look_at_once(pg_brokers: Brokers) -> None:
    broker = pg_brokers.make()
    assert broker.receive(["q"], timeout=0) is None
    waiter = Waiter(broker, "q", timeout=10)
    engine = make_engine(pg_brokers.url)
    try:
        with engine.begin() as conn:  # a row and no NOTIFY: only wake() can tell
            conn.execute(insert(queue_messages).values(
                queue="q", body="silent", headers="{}", attempts=0,
                available_at=0.0, created_at=0.0))
    finally:
        engine.dispose()
    broker.wake()
    delivery = waiter.result()
    assert delivery is not None and delivery.body == "silent"
    assert waiter.elapsed < WOKEN_WITHIN_S  # the safety claim would take 30 s


class _Seen(logging.Handler):
    """Sets an event when a log record containing ``text`` arrives."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


@pytest.mark.postgres
def test_lost_listener_connection_polls_then_reconnects(
    pg_brokers: Brokers, postgres_databases: PostgresDatabases,
    caplog: pytest.LogCaptureFixture,
) -> None:
    database = _database(pg_brokers.url)
    consumer = pg_brokers.make()
    publisher = pg_brokers.make()
    threads_before = set(threading.enumerate())
    assert consumer.receive(["q"], timeout=0) is None
    [listener_thread] = set(threading.enumerate()) - threads_before
    reconnected = _Seen("reconnected")
    logger = logging.getLogger("deposit_services.messaging.local_wakeup")
    logger.addHandler(reconnected)
    try:
        with psycopg.connect(postgres_databases.admin_url, autocommit=True) as admin, \
                caplog.at_level(logging.INFO, logger="deposit_services.messaging"):
            [first_pid] = _listener_pids(admin, database)
            admin.execute("SELECT pg_terminate_backend(%s, 10000)", (first_pid,))
            publisher.publish("q", "while nobody listened")
            delivery = consumer.receive(["q"], timeout=10)  # polling or after reconnecting
            assert delivery is not None and delivery.body == "while nobody listened"
            consumer.ack(delivery)

            assert reconnected.event.wait(30)
            [second_pid] = _listener_pids(admin, database)
            assert second_pid != first_pid
            waiter = Waiter(consumer, "q", timeout=10)
            publisher.publish("q", "after reconnecting")
            again = waiter.result()
            assert again is not None and again.body == "after reconnecting"
            assert waiter.elapsed < WOKEN_WITHIN_S
            consumer.ack(again)
    finally:
        logger.removeHandler(reconnected)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "polling the queue" in warnings[0].getMessage()

    started = time.monotonic()
    consumer.close()
    assert time.monotonic() - started < WOKEN_WITHIN_S
    assert not listener_thread.is_alive()
