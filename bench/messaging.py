"""Messages per second through a real ActiveMQ: raw stomp.py, our adapter, the whole worker.

Prints, on one broker in one run:

* raw: a bare stomp.py consumer (client-individual acks, prefetch 4 and 100) acking
  every message in its receiver thread as it arrives: the ceiling for this broker
  and machine;
* adapter: ``StompBroker.receive`` + ``ack`` from 1, 2 and 4 threads, no work;
* floor: the least any worker must do per submission under the issue's own guarantees,
  written by hand on stomp.py and sqlite3 (psycopg with a PostgreSQL ``--store-url``)
  with no service layer and no package (see ``floor_rate``): what a perfect
  implementation could reach on this broker, database, disk and machine;
* end to end: the worker (``MessageHandler`` + ``Worker``, as ``deposit-services
  listen`` runs them) with 1, 2 and 4 threads on SubmissionReady messages for
  submissions already in a fresh store, one repository on the devnull transport. It
  counts every message consumed (SubmissionReady and the DepositStatus messages the
  deposits publish), from the start to the last one handled, and submissions/s;
* where an end-to-end message's time goes: the adapter's share (1 / adapter rate).

Usage (from the repository root)::

    python bench/messaging.py [--messages 5000] [--submissions 300]
                              [--url stomp://...] [--store-url postgresql://...]

Without ``--url`` an ActiveMQ is started from Debian's package (see
tests/support/activemq.py); without ``--store-url`` each end-to-end run has a fresh
SQLite file (a PostgreSQL URL must name an existing database; ids are unique per run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import queue
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import stomp
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deposit_services.messaging.base import Delivery
from deposit_services.messaging.stomp import StompBroker
from deposit_services.messaging.stomp_connection import Endpoint
from tests.support.activemq import running_activemq

BODY = json.dumps({"submission": "0", "type": "SubmissionReady"})


def fill(url: str, queue: str, count: int) -> None:
    """``count`` persistent messages on ``queue``, from 4 publishing threads."""
    broker = StompBroker(url)
    shares = [count // 4 + (1 if i < count % 4 else 0) for i in range(4)]

    def send(n: int) -> None:
        for _ in range(n):
            broker.publish(queue, BODY, {"type": "SubmissionReady"})

    threads = [threading.Thread(target=send, args=(n,)) for n in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    broker.close()


class _Counter(stomp.ConnectionListener):  # type: ignore[misc]
    """Acks every message in stomp.py's receiver thread; notes when the last came."""

    def __init__(self, conn: stomp.Connection12, total: int) -> None:
        self.conn = conn
        self.total = total
        self.count = 0
        self.done = threading.Event()
        self.last = 0.0

    def on_message(self, frame: Any) -> None:
        self.conn.ack(frame.headers["ack"])
        self.count += 1
        if self.count >= self.total:
            self.last = time.perf_counter()
            self.done.set()


def raw_rate(url: str, count: int, prefetch: int) -> float:
    queue = f"bench-raw-{uuid.uuid4().hex[:8]}"
    fill(url, queue, count)
    ep = Endpoint.parse(url)
    conn = stomp.Connection12([(ep.host, ep.port)], heartbeats=(10_000, 10_000))
    counter = _Counter(conn, count)
    conn.set_listener("count", counter)
    conn.connect(ep.user, ep.password, wait=True)
    start = time.perf_counter()
    conn.subscribe(f"/queue/{queue}", id="raw", ack="client-individual",
                   headers={"activemq.prefetchSize": str(prefetch),
                            "prefetch-count": str(prefetch)})
    if not counter.done.wait(300):
        raise SystemExit(f"raw consumer got only {counter.count} of {count}")
    conn.disconnect()
    return count / (counter.last - start)


def adapter_rate(url: str, count: int, threads: int) -> float:
    """receive + ack from ``threads`` threads (prefetch = threads, as the worker sets)."""
    queue = f"bench-adapter-{uuid.uuid4().hex[:8]}"
    fill(url, queue, count)
    broker = StompBroker(url, prefetch=threads)
    broker.wait_connected(10)
    taken = [0]
    last = [0.0]
    lock = threading.Lock()
    done = threading.Event()

    def consume() -> None:
        while not done.is_set():
            delivery = broker.receive([queue], timeout=0.2)
            if delivery is None:
                continue
            broker.ack(delivery)
            with lock:
                taken[0] += 1
                if taken[0] >= count:
                    last[0] = time.perf_counter()
                    done.set()

    start = time.perf_counter()
    workers = [threading.Thread(target=consume) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    broker.close()
    return count / (last[0] - start)


class _FloorDatabase:
    """The floor's database: a fresh SQLite file (WAL, synchronous=FULL, as the store
    runs it) or, with ``--store-url postgresql://...``, tables of their own in that
    database (psycopg 3, explicit transactions), dropped at the end."""

    def __init__(self, root: Path, store_url: str | None) -> None:
        tag = uuid.uuid4().hex[:8]
        self.submissions, self.deposits = f"floor_submission_{tag}", f"floor_deposit_{tag}"
        self.postgres = bool(store_url and store_url.startswith(("postgres://", "postgresql")))
        self.dsn = (store_url or "").replace("postgresql+psycopg://", "postgresql://")
        self.path = root / f"floor-{tag}.db"
        self.begin = "BEGIN" if self.postgres else "BEGIN IMMEDIATE"
        # the table names are ours (a random tag), the values bound parameters
        mark = "%s" if self.postgres else "?"
        sub, dep = self.submissions, self.deposits
        self.add_submission = f"INSERT INTO {sub} VALUES ({mark}, 'NOT_STARTED', 1)"  # noqa: S608
        self.claim = (f"UPDATE {sub} SET status = 'IN_PROGRESS', version = version + 1 "  # noqa: S608
                      f"WHERE id = {mark} AND status = 'NOT_STARTED'")
        self.add_deposit = f"INSERT INTO {dep} VALUES ({mark}, NULL, 1)"  # noqa: S608
        self.accept_deposit = (f"UPDATE {dep} SET status = 'ACCEPTED', "  # noqa: S608
                               f"version = version + 1 WHERE id = {mark}")
        self.accept_submission = (f"UPDATE {sub} SET status = 'ACCEPTED', "  # noqa: S608
                                  f"version = version + 1 WHERE id = {mark}")
        self.read_deposit = f"SELECT status FROM {dep} WHERE id = {mark}"  # noqa: S608

    def connect(self) -> Any:
        if self.postgres:
            import psycopg

            return psycopg.connect(self.dsn, autocommit=True)
        db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def create(self, submissions: int) -> None:
        with contextlib.closing(self.connect()) as db:
            for table in (self.submissions, self.deposits):
                db.execute(f"CREATE TABLE {table} (id TEXT PRIMARY KEY, status TEXT, version INT)")
            db.cursor().executemany(self.add_submission, [(str(n),) for n in range(submissions)])

    def drop(self) -> None:
        if self.postgres:
            with contextlib.closing(self.connect()) as db:
                for table in (self.submissions, self.deposits):
                    db.execute(f"DROP TABLE {table}")


def floor_rate(url: str, submissions: int, threads: int, root: Path,
               store_url: str | None = None) -> float:
    """messages/s of a hand-written minimal worker: the floor under the issue's rules.

    ``threads`` consumers on one stomp.py connection (TCP_NODELAY, client-individual
    acks, prefetch = threads), each with its own database connection (``_FloorDatabase``).
    Per SubmissionReady: one durable commit before the transfer (claim the submission,
    create the deposit with its attempt's intent), one after it (the outcome), a
    persistent DepositStatus published, then the ack (the ack follows the commit, and a
    crash between the two commits must be detectable, so two commits is the least). Per
    DepositStatus: one read, then the ack. No package is built and nothing is
    transferred.
    """
    database = _FloorDatabase(root, store_url)
    database.create(submissions)
    try:
        return _floor_run(url, submissions, threads, database)
    finally:
        database.drop()


def _floor_run(url: str, submissions: int, threads: int, database: _FloorDatabase) -> float:
    ready, changed = f"floor-{uuid.uuid4().hex[:8]}", f"floor-deposit-{uuid.uuid4().hex[:8]}"
    broker = StompBroker(url)
    for n in range(submissions):
        broker.publish(ready, json.dumps({"submission": str(n), "type": "SubmissionReady"}),
                       {"type": "SubmissionReady"})
    broker.close()

    ep = Endpoint.parse(url)
    inbox: queue.Queue[Any] = queue.Queue()

    class Inbox(stomp.ConnectionListener):  # type: ignore[misc]
        def on_message(self, frame: Any) -> None:
            inbox.put(frame)

    conn = stomp.Connection12([(ep.host, ep.port)], heartbeats=(10_000, 10_000))
    conn.set_listener("inbox", Inbox())
    conn.connect(ep.user, ep.password, wait=True)
    # TCP_NODELAY, as our adapter sets it (Nagle's algorithm stalls the acks)
    conn.transport.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    total = 2 * submissions
    handled = [0]
    last = [0.0]
    lock = threading.Lock()
    finished = threading.Event()

    def consume() -> None:
        db = database.connect()
        while not finished.is_set():
            try:
                frame = inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            body = json.loads(frame.body)
            if "submission" in body:
                sid = body["submission"]
                db.execute(database.begin)
                db.execute(database.claim, (sid,))
                db.execute(database.add_deposit, (sid,))
                db.execute("COMMIT")
                db.execute(database.begin)
                db.execute(database.accept_deposit, (sid,))
                db.execute(database.accept_submission, (sid,))
                db.execute("COMMIT")
                conn.send(f"/queue/{changed}",
                          json.dumps({"deposit": sid, "type": "DepositStatus"}),
                          headers={"persistent": "true", "type": "DepositStatus"})
            else:
                db.execute(database.read_deposit, (body["deposit"],)).fetchone()
            conn.ack(frame.headers["ack"])
            with lock:
                handled[0] += 1
                if handled[0] >= total:
                    last[0] = time.perf_counter()
                    finished.set()
        db.close()

    start = time.perf_counter()
    for number, queue_name in enumerate((ready, changed)):
        conn.subscribe(f"/queue/{queue_name}", id=f"floor-{number}", ack="client-individual",
                       headers={"activemq.prefetchSize": str(threads),
                                "prefetch-count": str(threads)})
    workers = [threading.Thread(target=consume) for _ in range(threads)]
    for worker in workers:
        worker.start()
    if not finished.wait(300):
        finished.set()
        raise SystemExit(f"floor worker handled only {handled[0]} of {total}")
    for worker in workers:
        worker.join()
    conn.disconnect()
    return total / (last[0] - start)


def end_to_end_rate(url: str, submissions: int, threads: int, root: Path,
                    store_url: str | None) -> tuple[float, float]:
    """(messages/s, submissions/s) through the real worker on the devnull transport."""
    from deposit_services.bootstrap import bootstrap
    from deposit_services.model.entities import AggregatedDepositStatus, Submission
    from deposit_services.service.intake import load_submission_graph, submit_graph
    from deposit_services.service.worker import MessageHandler, Worker
    from deposit_services.settings import load_settings
    from deposit_services.store.schema import ENTITY_TABLES
    from deposit_services.store.sql import SqlStore
    from tests.support.graphs import make_graph, write_graph

    tag = uuid.uuid4().hex[:8]
    run = root / f"c{threads}-{tag}"
    (run / "graphs").mkdir(parents=True)
    config = run / "repositories.json"
    config.write_text(json.dumps({"archive": {
        "assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
        "transport-config": {"protocol-binding": {"protocol": "devnull"}},
    }}))
    env = {
        "DEPOSIT_DATA_DIR": str(run / "data"),
        "DEPOSIT_BROKER_URL": url,
        "PASS_DEPOSIT_REPOSITORY_CONFIGURATION": str(config),
        "PASS_DEPOSIT_WORKERS_CONCURRENCY": str(threads),
        "PASS_DEPOSIT_QUEUE_SUBMISSION_NAME": f"bench-submission-{tag}",
        "PASS_DEPOSIT_QUEUE_DEPOSIT_NAME": f"bench-deposit-{tag}",
    }
    if store_url:
        env["DEPOSIT_STORE_URL"] = store_url
    settings = load_settings(env)
    app = bootstrap(settings)
    broker = app.require_broker()
    ids = []
    for n in range(submissions):
        sid = f"bench-{tag}-{n:05d}"
        graph = write_graph(run / "graphs" / f"{sid}.json", make_graph(sid, run / "files"))
        submit_graph(app.store, broker, load_submission_graph(graph, run / "files"),
                     settings.queue_submission)
        ids.append(sid)

    class CountingHandler(MessageHandler):
        handled = 0
        last = 0.0
        lock = threading.Lock()

        def handle(self, delivery: Delivery) -> None:
            super().handle(delivery)
            with self.lock:
                CountingHandler.handled += 1
                CountingHandler.last = time.perf_counter()

    handler = CountingHandler(app.context(), broker, touch_interval=30.0)
    worker = Worker(handler, [settings.queue_submission, settings.queue_deposit], threads)
    stop = threading.Event()
    runner = threading.Thread(target=worker.run, args=(stop,))
    start = time.perf_counter()
    runner.start()
    # one indexed query per poll: reading every pending submission each time took a
    # tenth of the (GIL-bound) process's CPU away from the worker being measured
    store = app.store
    assert isinstance(store, SqlStore)
    table = ENTITY_TABLES[Submission.TYPE]
    done = (select(func.count()).select_from(table)
            .where(table.c.id.like(f"bench-{tag}-%"),
                   table.c.aggregated_deposit_status == AggregatedDepositStatus.ACCEPTED.value))
    while True:
        time.sleep(0.2)
        with store.engine.connect() as conn:
            if conn.execute(done).scalar() == len(ids):
                break
    # then the DepositStatus messages published on the way, until none comes for 1 s
    seen = -1
    while seen != CountingHandler.handled:
        seen = CountingHandler.handled
        time.sleep(1.0)
    elapsed = CountingHandler.last - start
    stop.set()
    runner.join()
    app.close()
    return CountingHandler.handled / elapsed, submissions / elapsed


def report(url: str, args: argparse.Namespace, root: Path) -> None:
    print(f"broker {url}, {os.cpu_count()} CPUs; {args.messages} messages for raw/adapter, "
          f"{args.submissions} submissions end to end, store "
          f"{'SQLite (fresh file per run)' if not args.store_url else args.store_url}")
    raw = {prefetch: raw_rate(url, args.messages, prefetch) for prefetch in (4, 100)}
    for prefetch, rate in raw.items():
        print(f"raw stomp.py consumer, prefetch {prefetch:>3}:          {rate:8.0f} msg/s")
    adapter = {}
    for threads in (1, 2, 4):
        adapter[threads] = adapter_rate(url, args.messages, threads)
        print(f"StompBroker receive+ack, {threads} thread(s):        {adapter[threads]:8.0f} msg/s")
    if args.submissions <= 0:
        return
    floor = {}
    for threads in (1, 4):
        floor[threads] = floor_rate(url, args.submissions * 4, threads, root, args.store_url)
        print(f"floor (hand-written minimum), {threads} thread(s):      "
              f"{floor[threads]:8.0f} msg/s")
    for threads in (1, 2, 4):
        messages, subs = end_to_end_rate(url, args.submissions, threads, root, args.store_url)
        print(f"end to end (worker, devnull), concurrency {threads}: {messages:8.1f} msg/s "
              f"({subs:.1f} submissions/s)")
    share = messages / adapter[4]
    print(f"at concurrency 4: end to end = {messages / raw[4]:.1%} of the raw rate (prefetch 4), "
          f"{messages / floor[4]:.1%} of the floor; the floor is {floor[4] / raw[4]:.1%} of the "
          f"raw rate (target: 50%); the adapter's receive+ack is {share:.1%} of an end-to-end "
          "message's time, the rest is the service layer (store transactions, package, "
          "transfer)")

def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--submissions", type=int, default=300)
    parser.add_argument("--url", help="an existing broker (default: start ActiveMQ)")
    parser.add_argument("--store-url", help="the store for the end-to-end runs "
                                            "(default: a fresh SQLite file per run)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-messaging-") as tmp:
        root = Path(tmp)
        if args.url:
            report(args.url, args, root)
        else:
            with running_activemq(root / "activemq") as amq:
                report(amq.url, args, root)


if __name__ == "__main__":
    main()
