"""The daemon on a real ActiveMQ, driven through its CLI as separate processes.

``deposit-services listen`` runs with ``DEPOSIT_BROKER_URL`` pointing at an ActiveMQ
started for this module (queue names unique per test), a SQLite store and a
filesystem target. Submissions are written and announced in-process with the same
intake function ``submit`` uses (one also through the ``submit`` command), because
a thousand CLI start-ups would take longer than the work itself.

Each test checks "exactly once" the way an operator would: every submission ACCEPTED
with one ACCEPTED Deposit, one package per deposit at the target, each submission
claimed once across all worker logs, nothing left on the queues or their DLQs, and
every worker exiting 0 on SIGTERM.

``DEPOSIT_E2E_STOMP_COUNT`` sets the size of the main run (default 1000, about a
minute and a half; marked ``slow``, it still runs in CI).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deposit_services.messaging.stomp import StompBroker
from deposit_services.model.entities import (
    AggregatedDepositStatus,
    Deposit,
    DepositStatus,
    Submission,
)
from deposit_services.settings import Settings, load_settings
from deposit_services.store.sql import SqlDatabase
from tests.e2e.conftest import Daemon, make_daemon, wait_until
from tests.support.activemq import ActiveMQ, running_activemq
from tests.support.graphs import make_graph, write_graph
from tests.support.pgstat import Commits

COUNT = int(os.environ.get("DEPOSIT_E2E_STOMP_COUNT", "1000"))
CLAIM = re.compile(r"submission (\S+) claimed")


@pytest.fixture(scope="module")
def activemq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ActiveMQ]:
    try:
        with running_activemq(tmp_path_factory.mktemp("activemq-e2e")) as broker:
            yield broker
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


def stomp_daemon(root: Path, activemq: ActiveMQ, concurrency: int = 4) -> Daemon:
    daemon = make_daemon(root)
    tag = uuid.uuid4().hex[:8]
    daemon.env.update({
        "DEPOSIT_BROKER_URL": activemq.url,
        "PASS_DEPOSIT_QUEUE_SUBMISSION_NAME": f"submission-{tag}",
        "PASS_DEPOSIT_QUEUE_DEPOSIT_NAME": f"deposit-{tag}",
        "PASS_DEPOSIT_WORKERS_CONCURRENCY": str(concurrency),
        "PASS_DEPOSIT_JOBS_DISABLED": "true",
    })
    daemon.data_dir.mkdir(parents=True, exist_ok=True)
    return daemon


@pytest.fixture
def amq_daemon(tmp_path: Path, activemq: ActiveMQ) -> Iterator[Daemon]:
    daemon = stomp_daemon(tmp_path, activemq)
    yield daemon
    daemon.stop_all()


def settings_of(daemon: Daemon) -> Settings:
    return load_settings(daemon.env)


def submit_many(daemon: Daemon, count: int, prefix: str) -> list[str]:
    """``count`` submissions stored and announced (SubmissionReady on the broker)."""
    from deposit_services.service.intake import load_submission_graph, submit_graph

    settings = settings_of(daemon)
    database = SqlDatabase(settings.store_url)
    broker = StompBroker.from_settings(settings)
    files = daemon.root / "files"
    (daemon.root / "graphs").mkdir(parents=True, exist_ok=True)
    ids = []
    try:
        for n in range(count):
            sid = f"{prefix}-{n:04d}"
            graph = write_graph(daemon.root / "graphs" / f"{sid}.json", make_graph(sid, files))
            submit_graph(database, broker, load_submission_graph(graph, files),
                         settings.queue_submission)
            ids.append(sid)
    finally:
        broker.close()
        database.close()
    return ids


def accepted(daemon: Daemon, ids: list[str]) -> int:
    store = daemon.store()
    try:
        return sum(store.get(Submission, sid).aggregated_deposit_status
                   is AggregatedDepositStatus.ACCEPTED for sid in ids)
    finally:
        store.close()


def leftovers(daemon: Daemon) -> dict[str, list[str]]:
    """Whatever is still on the daemon's queues and their dead-letter queues."""
    settings = settings_of(daemon)
    broker = StompBroker.from_settings(settings)
    found: dict[str, list[str]] = {}
    try:
        for queue in (settings.queue_submission, settings.queue_deposit):
            for name in (queue, broker.dead_letter_queue_for(queue)):
                while (delivery := broker.receive([name], timeout=1.5)) is not None:
                    found.setdefault(name, []).append(delivery.body)
                    broker.ack(delivery)
    finally:
        broker.close()
    return found


def claims(daemon: Daemon, names: list[str]) -> Counter[str]:
    return Counter(match.group(1) for name in names
                   for match in CLAIM.finditer(daemon.log_text(name)))


def assert_each_processed_once(daemon: Daemon, ids: list[str], workers: list[str]) -> None:
    packages = sorted(p.name for p in daemon.target_dir.iterdir())
    assert len(packages) == len(ids), f"{len(packages)} packages for {len(ids)} deposits"
    assert not [p for p in packages if p.startswith(".")], "temporary files left behind"
    store = daemon.store()
    try:
        for sid in ids:
            assert (store.get(Submission, sid).aggregated_deposit_status
                    is AggregatedDepositStatus.ACCEPTED)
            deposits = store.find(Deposit, submission=sid)
            assert [d.deposit_status for d in deposits] == [DepositStatus.ACCEPTED], sid
    finally:
        store.close()
    claimed = claims(daemon, workers)
    assert sorted(claimed) == sorted(ids), "every submission claimed"
    assert not {sid: n for sid, n in claimed.items() if n != 1}, "a submission claimed twice"
    daemon.stop_all()  # SIGTERM: finish what is in flight, ack, disconnect, exit 0
    for proc in daemon.processes:  # (a worker the test SIGKILLed excepted)
        assert proc.returncode in (0, -signal.SIGKILL), proc.returncode
    assert leftovers(daemon) == {}, "messages left on the queues"


def run_many(daemon: Daemon, count: int) -> None:
    ids = submit_many(daemon, count - 1, prefix="many")
    graph = write_graph(daemon.root / "graphs" / "cli-0.json",
                        make_graph("cli-0", daemon.root / "files"))
    daemon.cli("submit", str(graph), "--files-dir", str(daemon.root / "files"))
    ids.append("cli-0")
    daemon.listen("worker")
    wait_until(lambda: accepted(daemon, ids) == len(ids), 60 + count * 0.5,
               f"all {count} submissions ACCEPTED", daemon.processes)
    assert_each_processed_once(daemon, ids, ["worker"])


@pytest.mark.slow
def test_a_thousand_submissions_through_activemq(amq_daemon: Daemon) -> None:
    run_many(amq_daemon, COUNT)


def test_activemq_restarted_mid_run(amq_daemon: Daemon, activemq: ActiveMQ) -> None:
    daemon = amq_daemon
    ids = submit_many(daemon, 150, prefix="restart")
    worker = daemon.listen("worker")
    wait_until(lambda: accepted(daemon, ids) >= 30, 120, "30 submissions ACCEPTED",
               daemon.processes)
    activemq.stop()  # an orderly shutdown (the integration tests SIGKILL it)
    at_stop = accepted(daemon, ids)
    time.sleep(3.0)
    assert worker.poll() is None, "the daemon died with the broker"
    activemq.start()
    assert at_stop < len(ids), "the broker went away too late to test anything"
    wait_until(lambda: accepted(daemon, ids) == len(ids), 180, "all ACCEPTED after the restart",
               daemon.processes)
    log = daemon.log_text("worker")
    assert "lost; reconnecting" in log
    assert "unreachable (attempt 1)" in log
    assert "reconnected to broker" in log
    assert worker.poll() is None
    assert_each_processed_once(daemon, ids, ["worker"])


def test_sigkilled_worker_messages_go_to_the_restarted_one(amq_daemon: Daemon) -> None:
    daemon = amq_daemon
    ids = submit_many(daemon, 80, prefix="kill")
    first = daemon.listen("first")
    wait_until(lambda: accepted(daemon, ids) >= 10, 120, "10 submissions ACCEPTED",
               daemon.processes)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert accepted(daemon, ids) < len(ids), "the kill came too late to test anything"
    daemon.listen("second")
    wait_until(lambda: accepted(daemon, ids) == len(ids), 180, "all ACCEPTED after the kill",
               daemon.processes)
    # what the killed worker held unacked came back to the second one, marked redelivered
    assert "came back unsettled" in daemon.log_text("second")
    assert_each_processed_once(daemon, ids, ["first", "second"])


def test_three_competing_workers_claim_each_submission_once(amq_daemon: Daemon) -> None:
    daemon = amq_daemon
    ids = submit_many(daemon, 120, prefix="trio")
    for name in ("a", "b", "c"):
        daemon.listen(name)
    wait_until(lambda: accepted(daemon, ids) == len(ids), 180, "all ACCEPTED", daemon.processes)
    per_worker = {name: sum(claims(daemon, [name]).values()) for name in ("a", "b", "c")}
    assert all(n > 0 for n in per_worker.values()), f"a worker took no work: {per_worker}"
    assert_each_processed_once(daemon, ids, ["a", "b", "c"])


def test_poison_messages_dead_lettered_and_the_rest_processed(amq_daemon: Daemon) -> None:
    """Malformed messages are dead-lettered at once; a message whose processing keeps
    failing (its submission's stored record is corrupt) after DEPOSIT_MAX_DELIVERIES
    attempts; both with the reason, while the submissions behind them are processed."""
    daemon = amq_daemon
    daemon.env["DEPOSIT_MAX_DELIVERIES"] = "3"
    settings = settings_of(daemon)
    not_json = "this is not JSON"
    unknown = json.dumps({"submission": "no-such-submission", "type": "SubmissionReady"})
    other_type = json.dumps({"type": "SomethingElse"})
    broker = StompBroker.from_settings(settings)
    try:
        broker.publish(settings.queue_submission, not_json, {"type": "SubmissionReady"})
        broker.publish(settings.queue_submission, unknown, {"type": "SubmissionReady"})
        broker.publish(settings.queue_submission, other_type)
    finally:
        broker.close()
    poison = submit_many(daemon, 1, prefix="poison")
    with sqlite3.connect(settings.store_url.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE entity_submission SET body = ? WHERE id = ?",
                   ('{"@type": "Submission", "id": "corrupt', poison[0]))
    ids = submit_many(daemon, 5, prefix="behind")
    worker = daemon.listen("worker")
    wait_until(lambda: accepted(daemon, ids) == len(ids), 120, "the good ones ACCEPTED",
               daemon.processes)
    assert worker.poll() is None
    broker = StompBroker.from_settings(settings)
    dlq_name = broker.dead_letter_queue_for(settings.queue_submission)
    dead: dict[str, dict[str, str]] = {}
    try:
        while len(dead) < 4 and (d := broker.receive([dlq_name], timeout=15)) is not None:
            dead[d.body] = dict(d.headers)
            broker.ack(d)
    finally:
        broker.close()
    poison_body = json.dumps({"submission": poison[0], "type": "SubmissionReady"})
    assert set(dead) == {not_json, unknown, other_type, poison_body}
    assert "not JSON" in dead[not_json]["x-dead-letter-reason"]
    assert "no-such-submission" in dead[unknown]["x-dead-letter-reason"]
    assert "SomethingElse" in dead[other_type]["x-dead-letter-reason"]
    for body in (not_json, unknown, other_type):
        assert dead[body]["x-attempts"] == "1", body  # never retried
    assert dead[poison_body]["x-attempts"] == "3"
    assert "after 3 attempts" in dead[poison_body]["x-dead-letter-reason"]
    assert "JSON" in dead[poison_body]["x-dead-letter-reason"]  # the decode error
    for headers in dead.values():
        assert headers["x-original-queue"] == settings.queue_submission
    log = daemon.log_text("worker")
    assert log.count(f"processing {poison_body} failed") == 3
    assert_each_processed_once(daemon, ids, ["worker"])


def test_postgresql_counts_its_commits_per_submission(
    tmp_path: Path, activemq: ActiveMQ, postgres_databases: Any,
) -> None:
    """The issue's measurement, by PostgreSQL itself: at most 6 committed transactions
    per submission (``submit`` and processing, messages over ActiveMQ, jobs off), one
    for ``status --json`` over all of them, and an idle worker that commits nothing."""
    url = postgres_databases.create()
    daemon = stomp_daemon(tmp_path, activemq)
    daemon.env["DEPOSIT_STORE_URL"] = url
    daemon.env["DEPOSIT_LOG_LEVEL"] = "DEBUG"  # "changes nothing": the last message's end
    commits = Commits(postgres_databases.admin_url, url)
    daemon.cli("status")  # a fresh database gets its schema here, once
    count = 10
    files = daemon.root / "files"
    graphs = [write_graph(daemon.root / f"pg-{n}.json", make_graph(f"pg-{n}", files))
              for n in range(count)]
    before = commits.settled()
    worker = daemon.listen()
    for graph in graphs:
        daemon.cli("submit", str(graph), "--files-dir", str(files))
    # every DepositStatus message handled (the log says so; reading the store would
    # add transactions of our own to the count)
    wait_until(lambda: daemon.log_text().count("the message changes nothing") >= count, 120,
               "the DepositStatus messages", [worker])
    daemon.stop_all()
    assert worker.returncode == 0
    after = commits.settled()
    assert daemon.log_text().count("aggregatedDepositStatus ACCEPTED") == count
    assert (after - before) / count <= 6, f"{after - before} commits for {count} submissions"

    idle = daemon.listen("idle")  # a worker with nothing to do, for three seconds
    started = time.monotonic()
    wait_until(lambda: time.monotonic() - started > 3, 10, "three idle seconds", [idle])
    daemon.stop_all()
    idle_commits = commits.settled() - after
    assert idle_commits <= 2, f"an idle worker committed {idle_commits} transactions"

    status_before = commits.settled()
    report = json.loads(daemon.cli("status", "--json").stdout)
    # one read transaction, plus the one PostgreSQL itself counts for every new
    # connection (a backend's start-up): the command is a process of its own
    assert commits.settled() - status_before == 2
    assert sorted(s["id"] for s in report) == [f"pg-{n}" for n in range(count)]
    assert all(s["aggregatedDepositStatus"] == "ACCEPTED" for s in report)
