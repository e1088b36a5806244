"""The daemon's consumer (``Worker`` + ``MessageHandler``, as ``listen`` runs them) on
every broker: the same body on the local queue, ActiveMQ and RabbitMQ."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from deposit_services.bootstrap import bootstrap
from deposit_services.entrypoints.worker import MessageHandler, Worker
from deposit_services.model.entities import AggregatedDepositStatus, Submission
from deposit_services.service.intake import load_submission_graph, submit_graph
from deposit_services.settings import load_settings
from tests.integration.stomp.conftest import BrokerKit
from tests.support.graphs import make_graph, write_graph
from tests.support.store import StoreView


def test_the_worker_processes_good_messages_and_dead_letters_the_rest(
    broker_kit: BrokerKit, tmp_path: Path
) -> None:
    """Good submissions deposited once each; malformed messages dead-lettered at once
    with their reason; a message whose processing keeps failing dead-lettered after
    DEPOSIT_MAX_DELIVERIES attempts; the consumer keeps going throughout."""
    target = tmp_path / "target"
    config = tmp_path / "repositories.json"
    config.write_text(json.dumps({"archive": {
        "assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
        "transport-config": {"protocol-binding": {"protocol": "filesystem",
                                                  "baseDir": str(target),
                                                  "createIfMissing": True}},
    }}))
    store_file = tmp_path / "store.db"
    settings = load_settings({
        "DEPOSIT_DATA_DIR": str(tmp_path / "data"),
        "DEPOSIT_STORE_URL": f"sqlite:///{store_file}",
        "DEPOSIT_BROKER_URL": broker_kit.url,
        "PASS_DEPOSIT_REPOSITORY_CONFIGURATION": str(config),
        "PASS_DEPOSIT_WORKERS_CONCURRENCY": "2",
        "PASS_DEPOSIT_QUEUE_SUBMISSION_NAME": broker_kit.queue("submission"),
        "PASS_DEPOSIT_QUEUE_DEPOSIT_NAME": broker_kit.queue("deposit"),
        "DEPOSIT_MAX_DELIVERIES": "3",
        "DEPOSIT_LEASE_SECONDS": "5",
    })
    app = bootstrap(settings)
    store = StoreView(app.database)
    broker = app.require_broker()
    queue = settings.queue_submission
    files = tmp_path / "files"
    (tmp_path / "graphs").mkdir()

    def submit(sid: str) -> None:
        graph = write_graph(tmp_path / "graphs" / f"{sid}.json", make_graph(sid, files))
        submit_graph(app.database, broker, load_submission_graph(graph, files), queue)

    bad = {
        "this is not JSON": "not JSON",
        json.dumps({"type": "SubmissionReady"}): "needs a non-empty 'submission' id",
        json.dumps({"submission": "nowhere", "type": "SubmissionReady"}): "unknown id",
    }
    for body in bad:
        broker.publish(queue, body, {"type": "SubmissionReady"})
    submit("corrupt")
    with sqlite3.connect(store_file) as db:  # its record now fails to load, every time
        db.execute("UPDATE entity_submission SET body = '{\"id\": ' WHERE id = 'corrupt'")
    good = [f"good-{n}" for n in range(5)]
    for sid in good:
        submit(sid)

    worker = Worker(MessageHandler(app.context(), broker, touch_interval=1.0),
                    [settings.queue_submission, settings.queue_deposit], 2)
    stop = threading.Event()
    runner = threading.Thread(target=worker.run, args=(stop,))
    runner.start()
    try:
        dead = {d.body: d for d in broker_kit.dead_letters(broker, queue, expected=4,
                                                           timeout=60)}
        corrupt = json.dumps({"submission": "corrupt", "type": "SubmissionReady"})
        assert set(dead) == {*bad, corrupt}
        for body, reason in bad.items():
            assert reason in dead[body].reason, (body, dead[body].reason)
            assert dead[body].attempts == 1  # never retried
        assert dead[corrupt].attempts == 3
        assert "after 3 attempts" in dead[corrupt].reason
        for letter in dead.values():
            assert letter.queue == queue
            assert letter.headers.get("type") == "SubmissionReady"

        submit("late")  # the consumer is still taking messages
        deadline = time.monotonic() + 60

        def accepted() -> list[str]:
            return [sid for sid in [*good, "late"]
                    if store.get(Submission, sid).aggregated_deposit_status
                    is AggregatedDepositStatus.ACCEPTED]

        while len(accepted()) < 6 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert accepted() == [*good, "late"]
        assert runner.is_alive()
    finally:
        stop.set()
        runner.join(30)
    assert not runner.is_alive(), "the worker did not stop"
    packages = sorted(p.name for p in target.iterdir())
    assert len(packages) == 6, packages
    app.close()
