"""The daemon's consumer (``Worker`` + ``MessageHandler``, as ``listen`` runs them) on
SQS, fed the way a PASS integration feeds it: pass-core stores the submission and
sends SubmissionReady on SQS itself (Amazon's JMS library: JSON text body, ``type``
as a String message attribute). (The shared worker body, where our own ``submit``
publishes, runs on SQS in test_contract.py.)"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from deposit_services.bootstrap import bootstrap
from deposit_services.entrypoints.worker import MessageHandler, Worker
from deposit_services.messaging.sqs import SqsBroker
from deposit_services.model.entities import AggregatedDepositStatus, Deposit, Submission
from deposit_services.model.graph import Graph
from deposit_services.service.intake import load_submission_graph, store_graph
from deposit_services.settings import load_settings
from deposit_services.store.uow import run_unit
from tests.integration.sqs.conftest import SqsKit
from tests.support.graphs import make_graph, write_graph
from tests.support.store import StoreView


def test_the_worker_consumes_what_pass_core_sends_on_sqs(sqs_kit: SqsKit, tmp_path: Path) -> None:
    """Good submissions ACCEPTED (their DepositStatus messages, published by our outbox
    on the deposit queue, consumed too); a body that is not JSON and an unknown
    submission dead-lettered at once with the reason; nothing left on either queue."""
    target = tmp_path / "target"
    config = tmp_path / "repositories.json"
    config.write_text(json.dumps({"archive": {
        "assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
        "transport-config": {"protocol-binding": {"protocol": "filesystem",
                                                  "baseDir": str(target),
                                                  "createIfMissing": True}},
    }}))
    settings = load_settings({
        "DEPOSIT_DATA_DIR": str(tmp_path / "data"),
        "DEPOSIT_STORE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "DEPOSIT_BROKER_URL": sqs_kit.url,
        "PASS_DEPOSIT_REPOSITORY_CONFIGURATION": str(config),
        "PASS_DEPOSIT_WORKERS_CONCURRENCY": "3",
        "PASS_CORE_SUBMISSION_QUEUE": sqs_kit.queue("pass-submission"),
        "PASS_CORE_DEPOSIT_QUEUE": sqs_kit.queue("pass-deposit"),
        "DEPOSIT_MAX_DELIVERIES": "3",
        "DEPOSIT_LEASE_SECONDS": "5",
    })
    app = bootstrap(settings)
    broker = app.require_broker()
    assert isinstance(broker, SqsBroker)
    store = StoreView(app.database)
    queue = settings.queue_submission
    pass_core = sqs_kit.client()
    queue_url = pass_core.get_queue_url(QueueName=queue)["QueueUrl"]

    def pass_core_sends(body: str) -> None:
        pass_core.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes={
            "type": {"DataType": "String", "StringValue": "SubmissionReady"},
            "JMS_SQSMessageType": {"DataType": "String", "StringValue": "text"},
        })

    def pass_core_stores(graph: Graph) -> None:  # before it sends the message
        run_unit(app.database, lambda uow: store_graph(uow, graph),
                 what=f"store {graph.submission.id}")

    files = tmp_path / "files"
    (tmp_path / "graphs").mkdir()
    good = [f"pc-{n}" for n in range(4)]
    for sid in good:
        path = write_graph(tmp_path / "graphs" / f"{sid}.json", make_graph(sid, files))
        graph = load_submission_graph(path, files)
        pass_core_stores(graph)
        pass_core_sends(json.dumps({"submission": sid, "type": "SubmissionReady"}))
    pass_core_sends("{not json")
    pass_core_sends(json.dumps({"submission": "nowhere", "type": "SubmissionReady"}))

    worker = Worker(MessageHandler(app.context(), broker, touch_interval=1.0),
                    [settings.queue_submission, settings.queue_deposit], 3)
    stop = threading.Event()
    runner = threading.Thread(target=worker.run, args=(stop,))
    runner.start()
    try:
        deadline = time.monotonic() + 60

        def accepted() -> list[str]:
            return [sid for sid in good if store.get(Submission, sid).aggregated_deposit_status
                    is AggregatedDepositStatus.ACCEPTED]

        while len(accepted()) < len(good) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert accepted() == good
        dead = {d.body: d for d in sqs_kit.dead_letters(broker, queue, expected=2, timeout=30)}
        assert set(dead) == {"{not json", json.dumps({"submission": "nowhere",
                                                      "type": "SubmissionReady"})}
        assert "not JSON" in dead["{not json"].reason
        for letter in dead.values():
            assert letter.attempts == 1 and letter.queue == queue
            assert letter.headers["type"] == "SubmissionReady"
        time.sleep(2.0)  # let the DepositStatus messages of the last deposits go through
        assert runner.is_alive()
    finally:
        stop.set()
        runner.join(30)
    assert not runner.is_alive(), "the worker did not stop"
    deposits = store.find(Deposit)
    assert len(deposits) == len(good)
    assert len(list(target.iterdir())) == len(good)
    for name in (settings.queue_submission, settings.queue_deposit):  # all acked
        assert broker.receive([name], timeout=1.0) is None, name
    app.close()
