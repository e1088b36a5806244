"""Messages per second through a real ActiveMQ: raw stomp.py, our adapter, the whole worker.

Prints, on one broker in one run:

* raw: a bare stomp.py consumer (client-individual acks, prefetch as given) acking
  every message as it arrives: the ceiling for this broker and machine;
* adapter: ``StompBroker.receive`` + ``ack`` from 1, 2 and 4 threads, no work;
* end to end: the worker (``MessageHandler`` + ``Worker``, as ``deposit-services listen``
  runs them) with 1, 2 and 4 threads on SubmissionReady messages for submissions
  already in a fresh SQLite store, one repository on the devnull transport; the
  rate counts every message consumed (SubmissionReady and the DepositStatus messages
  the deposits publish) and submissions/s.

Usage: ``python bench/messaging.py [--messages 5000] [--submissions 300] [--url stomp://...]``
(from the repository root; without ``--url`` an ActiveMQ is started from Debian's
package, see tests/support/activemq.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import stomp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deposit_services.messaging.stomp import StompBroker
from tests.support.activemq import running_activemq


def fill(url: str, queue: str, count: int) -> None:
    broker = StompBroker(url)
    body = json.dumps({"submission": "0", "type": "SubmissionReady"})
    threads = []
    share = count // 4

    def send(n: int) -> None:
        for _ in range(n):
            broker.publish(queue, body, {"type": "SubmissionReady"})

    for i in range(4):
        threads.append(threading.Thread(target=send, args=(share if i < 3 else count - 3 * share,)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    broker.close()


class _Counter(stomp.ConnectionListener):  # type: ignore[misc]
    def __init__(self, conn: stomp.Connection12, total: int) -> None:
        self.conn = conn
        self.total = total
        self.count = 0
        self.done = threading.Event()

    def on_message(self, frame: stomp.utils.Frame) -> None:
        self.conn.ack(frame.headers["ack"])
        self.count += 1
        if self.count >= self.total:
            self.done.set()


def raw_rate(url: str, count: int, prefetch: int) -> float:
    queue = f"bench-raw-{uuid.uuid4().hex[:8]}"
    fill(url, queue, count)
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    conn = stomp.Connection12([(host, int(port))], heartbeats=(10_000, 10_000))
    counter = _Counter(conn, count)
    conn.set_listener("count", counter)
    conn.connect(wait=True)
    start = time.perf_counter()
    conn.subscribe(f"/queue/{queue}", id="raw", ack="client-individual",
                   headers={"activemq.prefetchSize": str(prefetch)})
    if not counter.done.wait(300):
        raise SystemExit(f"raw consumer got only {counter.count} of {count}")
    elapsed = time.perf_counter() - start
    conn.disconnect()
    return count / elapsed


def adapter_rate(url: str, count: int, threads: int) -> float:
    queue = f"bench-adapter-{uuid.uuid4().hex[:8]}"
    fill(url, queue, count)
    broker = StompBroker(url, prefetch=threads)
    broker.wait_connected(10)
    taken = [0]
    lock = threading.Lock()

    def consume() -> None:
        while True:
            with lock:
                if taken[0] >= count:
                    return
            delivery = broker.receive([queue], timeout=2.0)
            if delivery is None:
                continue
            broker.ack(delivery)
            with lock:
                taken[0] += 1

    start = time.perf_counter()
    workers = [threading.Thread(target=consume) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    broker.close()
    return count / elapsed


def end_to_end_rate(url: str, submissions: int, threads: int, root: Path) -> tuple[float, float]:
    """(messages/s, submissions/s) through the real worker on the devnull transport."""
    from deposit_services.bootstrap import bootstrap
    from deposit_services.model.entities import AggregatedDepositStatus, Submission
    from deposit_services.service.intake import load_submission_graph, submit_graph
    from deposit_services.service.worker import MessageHandler, Worker
    from deposit_services.settings import load_settings
    from tests.support.graphs import make_graph, write_graph

    tag = uuid.uuid4().hex[:8]
    run = root / f"c{threads}-{tag}"
    run.mkdir(parents=True)
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
    settings = load_settings(env)
    app = bootstrap(settings)
    broker = app.require_broker()
    (run / "graphs").mkdir()
    ids = []
    for n in range(submissions):
        sid = f"bench-{tag}-{n:05d}"
        graph = write_graph(run / "graphs" / f"{sid}.json", make_graph(sid, run / "files"))
        submit_graph(app.store, broker, load_submission_graph(graph, run / "files"),
                     settings.queue_submission)
        ids.append(sid)
    consumed = [0]
    handler = MessageHandler(app.context(), broker, touch_interval=30.0)
    original = handler.handle

    def counting(delivery):  # type: ignore[no-untyped-def]
        original(delivery)
        consumed[0] += 1

    handler.handle = counting  # type: ignore[method-assign]
    worker = Worker(handler, [settings.queue_submission, settings.queue_deposit], threads)
    stop = threading.Event()
    runner = threading.Thread(target=worker.run, args=(stop,))
    start = time.perf_counter()
    runner.start()
    remaining = set(ids)
    while remaining:
        time.sleep(0.2)
        remaining = {sid for sid in remaining
                     if app.store.get(Submission, sid).aggregated_deposit_status
                     is not AggregatedDepositStatus.ACCEPTED}
    # the DepositStatus messages published on the way are consumed too
    expected = submissions * 2
    deadline = time.monotonic() + 30
    while consumed[0] < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    stop.set()
    runner.join()
    app.close()
    return consumed[0] / elapsed, submissions / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--submissions", type=int, default=300)
    parser.add_argument("--url", help="an existing broker (default: start ActiveMQ)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-messaging-") as tmp:
        root = Path(tmp)
        if args.url:
            report(args.url, args, root)
        else:
            with running_activemq(root / "activemq") as amq:
                report(amq.url, args, root)


def report(url: str, args: argparse.Namespace, root: Path) -> None:
    print(f"broker {url}, {os.cpu_count()} CPUs; {args.messages} messages for raw/adapter, "
          f"{args.submissions} submissions end to end")
    for prefetch in (4, 100):
        rate = raw_rate(url, args.messages, prefetch)
        print(f"raw stomp.py consumer, prefetch {prefetch:>3}: {rate:8.0f} msg/s")
    for threads in (1, 2, 4):
        rate = adapter_rate(url, args.messages, threads)
        print(f"StompBroker receive+ack, {threads} thread(s): {rate:8.0f} msg/s")
    for threads in (1, 2, 4) if args.submissions > 0 else ():
        messages, subs = end_to_end_rate(url, args.submissions, threads, root)
        print(f"end to end (worker, devnull), concurrency {threads}: {messages:8.1f} msg/s "
              f"({subs:.1f} submissions/s)")


if __name__ == "__main__":
    main()
