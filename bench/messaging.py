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

* with ``--profile``: the process CPU per submission while the worker runs (all its
  threads; the rates above are wall clock and swing with a shared machine's load, the
  CPU much less), and after the runs a cProfile of ``MessageHandler.handle`` in every
  consumer thread of one more SQLite run at concurrency 1 (own time, top functions).

* store transactions per submission: counted by SQLAlchemy (``begin`` events) for
  ``submit`` and for the processing (the SubmissionReady and the DepositStatus message
  it leads to), and on PostgreSQL also as PostgreSQL counts them (``xact_commit`` of a
  database of the run's own, submit included).

Every figure from the floor on is printed for SQLite and for PostgreSQL in one run.

Usage (from the repository root)::

    python bench/messaging.py [--messages 5000] [--submissions 300]
                              [--url stomp://...] [--postgres ADMIN_URL | --postgres '']
                              [--profile]

Without ``--url`` an ActiveMQ is started from Debian's package (see
tests/support/activemq.py). Each end-to-end run has a fresh SQLite file, or a fresh
PostgreSQL database made with the admin URL and dropped after.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import logging
import os
import pstats
import queue
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass
class EndToEnd:
    messages_per_s: float
    submissions_per_s: float
    submit_transactions: float  # per submission, counted by SQLAlchemy
    work_transactions: float  # per submission: SubmissionReady + the DepositStatus it made
    postgres_commits: float | None  # per submission, submit included, counted by PostgreSQL
    cpu_ms: float  # process CPU per submission while the worker ran, all threads


def _xact_commit(admin_url: str, name: str) -> int:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        with contextlib.suppress(psycopg.Error):
            conn.execute("SELECT pg_stat_force_next_flush()")
        row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s",
                           (name,)).fetchone()
    return int(row[0]) if row else 0


def end_to_end_rate(url: str, submissions: int, threads: int, root: Path,
                    store_url: str | None, admin_url: str | None = None,
                    profiles: list[cProfile.Profile] | None = None) -> EndToEnd:
    """The real worker on the devnull transport: rates and store transactions. With
    ``profiles``, each consumer thread profiles its ``handle`` calls into one of its
    own, appended there."""
    from sqlalchemy import event

    from deposit_services.bootstrap import bootstrap
    from deposit_services.entrypoints.worker import MessageHandler, Worker
    from deposit_services.model.entities import AggregatedDepositStatus, Submission
    from deposit_services.service.intake import load_submission_graph, submit_graph
    from deposit_services.settings import load_settings
    from deposit_services.store.schema import ENTITY_TABLES
    from deposit_services.store.sql import SqlDatabase
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
        "PASS_DEPOSIT_JOBS_DISABLED": "true",
    }
    if store_url:
        env["DEPOSIT_STORE_URL"] = store_url
    settings = load_settings(env)
    app = bootstrap(settings)
    database = app.database
    assert isinstance(database, SqlDatabase)
    begun = [0]

    def count(conn: Any) -> None:
        begun[0] += 1

    event.listen(database.engine, "begin", count)
    broker = app.require_broker()
    pg_name = store_url.rpartition("/")[2] if store_url and admin_url else None
    commits_before = _xact_commit(admin_url, pg_name) if admin_url and pg_name else 0
    ids = []
    graphs = []
    for n in range(submissions):
        sid = f"bench-{tag}-{n:05d}"
        path = write_graph(run / "graphs" / f"{sid}.json", make_graph(sid, run / "files"))
        graphs.append(load_submission_graph(path, run / "files"))
        ids.append(sid)
    for loaded in graphs:
        submit_graph(database, broker, loaded, settings.queue_submission)
    submit_transactions = begun[0]

    class CountingHandler(MessageHandler):
        handled = 0
        last = 0.0
        lock = threading.Lock()

        def handle(self, delivery: Delivery) -> None:
            if profiles is None:
                super().handle(delivery)
            else:
                profile = _thread_profile(profiles)
                profile.enable()
                try:
                    super().handle(delivery)
                finally:
                    profile.disable()
            with self.lock:
                CountingHandler.handled += 1
                CountingHandler.last = time.perf_counter()

    handler = CountingHandler(app.context(), broker, touch_interval=30.0)
    worker = Worker(handler, [settings.queue_submission, settings.queue_deposit], threads)
    stop = threading.Event()
    runner = threading.Thread(target=worker.run, args=(stop,))
    cpu_start = time.process_time()
    start = time.perf_counter()
    runner.start()
    # the worker publishes one DepositStatus per submission and consumes it: wait for
    # 2 messages per submission (a poll of the database would cost transactions too)
    deadline = time.monotonic() + 600
    while CountingHandler.handled < 2 * submissions and time.monotonic() < deadline:
        time.sleep(0.2)
    elapsed = CountingHandler.last - start
    cpu = time.process_time() - cpu_start
    stop.set()
    runner.join()
    event.remove(database.engine, "begin", count)
    work_transactions = begun[0] - submit_transactions
    table = ENTITY_TABLES[Submission.TYPE]
    done = (select(func.count()).select_from(table)
            .where(table.c.id.like(f"bench-{tag}-%"),
                   table.c.aggregated_deposit_status == AggregatedDepositStatus.ACCEPTED.value))
    with database.engine.connect() as conn:
        accepted = conn.execute(done).scalar()
    app.close()
    if accepted != submissions:
        raise SystemExit(f"only {accepted} of {submissions} submissions were ACCEPTED")
    commits = None
    if admin_url and pg_name:
        time.sleep(1.0)  # the statistics collector reports with a delay
        commits = (_xact_commit(admin_url, pg_name) - commits_before - 1) / submissions
    return EndToEnd(CountingHandler.handled / elapsed, submissions / elapsed,
                    submit_transactions / submissions, work_transactions / submissions,
                    commits, 1000 * cpu / submissions)


_PROFILE = threading.local()


def _thread_profile(profiles: list[cProfile.Profile]) -> cProfile.Profile:
    """This thread's profile (made and added to ``profiles`` on first use)."""
    profile: cProfile.Profile | None = getattr(_PROFILE, "profile", None)
    if profile is None:
        profile = _PROFILE.profile = cProfile.Profile()
        profiles.append(profile)
    return profile


def print_profile(url: str, submissions: int, root: Path) -> None:
    """cProfile of the handler's calls in one SQLite run at concurrency 1."""
    profiles: list[cProfile.Profile] = []
    end_to_end_rate(url, submissions, 1, root, None, profiles=profiles)
    print(f"-- profile: MessageHandler.handle, SQLite, concurrency 1, {submissions} "
          f"submissions (cProfile: its own overhead inflates every figure)")
    stats = pstats.Stats(*profiles, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(25)


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database of its own (its commits are counted), dropped after."""
    import psycopg
    from psycopg import sql

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{admin_url.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


def report(url: str, args: argparse.Namespace, root: Path) -> None:
    print(f"broker {url}, {os.cpu_count()} CPUs; {args.messages} messages for raw/adapter, "
          f"{args.submissions} submissions end to end, on SQLite"
          f"{' and PostgreSQL' if args.postgres else ''}")
    raw = {prefetch: raw_rate(url, args.messages, prefetch) for prefetch in (4, 100)}
    for prefetch, rate in raw.items():
        print(f"raw stomp.py consumer, prefetch {prefetch:>3}:          {rate:8.0f} msg/s")
    adapter = {}
    for threads in (1, 2, 4):
        adapter[threads] = adapter_rate(url, args.messages, threads)
        print(f"StompBroker receive+ack, {threads} thread(s):        {adapter[threads]:8.0f} msg/s")
    if args.submissions <= 0:
        return
    backends: list[str | None] = [None]
    if args.postgres:
        backends.append(args.postgres)
    for admin in backends:
        name = "PostgreSQL" if admin else "SQLite"
        print(f"-- {name}")
        floor = {}
        for threads in (1, 4):
            if admin:
                with scratch_database(admin) as store_url:
                    floor[threads] = floor_rate(url, args.submissions * 4, threads, root,
                                                store_url)
            else:
                floor[threads] = floor_rate(url, args.submissions * 4, threads, root)
            print(f"floor (hand-written minimum), {threads} thread(s):      "
                  f"{floor[threads]:8.0f} msg/s")
        result = None
        for threads in (1, 2, 4):
            if admin:
                with scratch_database(admin) as store_url:
                    result = end_to_end_rate(url, args.submissions, threads, root, store_url,
                                             admin)
            else:
                result = end_to_end_rate(url, args.submissions, threads, root, None)
            print(f"end to end (worker, devnull), concurrency {threads}: "
                  f"{result.messages_per_s:8.1f} msg/s ({result.submissions_per_s:.1f} "
                  f"submissions/s); store transactions per submission: submit "
                  f"{result.submit_transactions:.2f} + processing {result.work_transactions:.2f}"
                  + (f"; committed per submission as PostgreSQL counts them: "
                     f"{result.postgres_commits:.2f}" if result.postgres_commits is not None
                     else "")
                  + (f"; process CPU per submission while the worker ran: "
                     f"{result.cpu_ms:.2f} ms" if args.profile else ""))
        assert result is not None
        messages = result.messages_per_s
        print(f"{name}, concurrency 4: end to end = {messages / floor[4]:.1%} of the floor "
              f"(target: 50%), {messages / raw[4]:.1%} of the raw rate (prefetch 4); "
              f"the floor is {floor[4] / raw[4]:.1%} of the raw rate; the adapter's "
              f"receive+ack is {messages / adapter[4]:.1%} of an end-to-end message's time")
    if args.profile:
        print_profile(url, args.submissions, root)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--submissions", type=int, default=300)
    parser.add_argument("--url", help="an existing broker (default: start ActiveMQ)")
    parser.add_argument("--postgres", default=os.environ.get(
        "DEPOSIT_TEST_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"),
        help="an admin URL: the PostgreSQL runs create and drop databases of their own "
             "('' to run on SQLite only)")
    parser.add_argument("--profile", action="store_true",
                        help="print the process CPU per submission of each end-to-end run, "
                             "and a cProfile of the handler at the end")
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
