"""The SQS adapter on moto in server mode: what SQS adds to the shared contract
(test_contract.py) or does its own way: pass-core's messages, message attributes,
visibility (touch, a killed consumer, competing consumers), several queues, FIFO."""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from deposit_services.errors import MessagingError
from deposit_services.messaging.base import Delivery
from deposit_services.messaging.sqs import SqsBroker
from deposit_services.model.messages import SubmissionReady, parse_message
from tests.integration.sqs.conftest import SqsKit
from tests.support.moto_server import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY

PASS_CORE_BODY = json.dumps({"submission": "15", "type": "SubmissionReady"})


def receive(broker: SqsBroker, queue: str, timeout: float = 10.0) -> Delivery:
    delivery = broker.receive([queue], timeout=timeout)
    assert delivery is not None, f"nothing received on {queue} within {timeout}s"
    return delivery


def test_a_message_as_pass_core_sends_it(sqs_kit: SqsKit) -> None:
    """pass-core (Amazon's JMS library) sends the JSON body as text and the JMS ``type``
    property as a String message attribute, beside the library's own type marker."""
    queue = sqs_kit.queue("pass-submission")
    broker = sqs_kit.make()
    url = broker.queues.queue_url(queue)
    sqs_kit.client().send_message(QueueUrl=url, MessageBody=PASS_CORE_BODY, MessageAttributes={
        "type": {"DataType": "String", "StringValue": "SubmissionReady"},
        "JMS_SQSMessageType": {"DataType": "String", "StringValue": "text"},
    })
    delivery = receive(broker, queue)
    assert delivery.body == PASS_CORE_BODY
    assert dict(delivery.headers) == {"type": "SubmissionReady", "JMS_SQSMessageType": "text"}
    assert delivery.delivery_count == 1 and delivery.message_id
    assert parse_message(delivery.body, delivery.headers) == SubmissionReady("15")
    broker.ack(delivery)
    assert broker.receive([queue], timeout=0) is None


def test_publish_is_what_a_pass_consumer_reads(sqs_kit: SqsKit) -> None:
    """Our messages (the outbox's DepositStatus) as any SQS consumer sees them."""
    queue = sqs_kit.queue("deposit")
    broker = sqs_kit.make()
    broker.publish(queue, '{"deposit": "31", "type": "DepositStatus"}', {"type": "DepositStatus"})
    raw = sqs_kit.client().receive_message(
        QueueUrl=broker.queues.queue_url(queue), MessageAttributeNames=["All"], WaitTimeSeconds=5
    )["Messages"][0]
    assert json.loads(raw["Body"]) == {"deposit": "31", "type": "DepositStatus"}
    assert raw["MessageAttributes"] == {"type": {"DataType": "String",
                                                 "StringValue": "DepositStatus"}}


def test_headers_round_trip_through_delivery_and_dead_letter(sqs_kit: SqsKit) -> None:
    queue = sqs_kit.queue()
    broker = sqs_kit.make()
    headers = {"type": "SubmissionReady", "x-trace-id": "abc-123", "origin.system": "pass-core",
               "note": "späť ✓ text"}
    broker.publish(queue, "m", {**headers, "empty": ""})  # SQS refuses empty values
    delivery = receive(broker, queue)
    assert dict(delivery.headers) == headers
    broker.dead_letter(delivery, "kept for inspection")
    [letter] = sqs_kit.dead_letters(broker, queue, expected=1)
    assert (letter.body, letter.reason, letter.attempts) == ("m", "kept for inspection", 1)
    assert dict(letter.headers) == headers
    with pytest.raises(MessagingError, match="header name"):
        broker.publish(queue, "m", {"AWS.reserved": "x"})
    with pytest.raises(MessagingError, match="at most 10"):
        broker.publish(queue, "m", {f"h{i}": "x" for i in range(11)})


def test_attributes_beyond_sqs_limit_survive_dead_lettering(sqs_kit: SqsKit) -> None:
    """SQS carries 10 attributes; a message with 9 of its own still reaches the
    dead-letter queue whole (what does not fit beside ours travels as JSON)."""
    queue = sqs_kit.queue()
    broker = sqs_kit.make()
    attributes: dict[str, dict[str, object]] = {
        "count": {"DataType": "Number", "StringValue": "42"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01binary"},
    }
    attributes.update({f"a{i}": {"DataType": "String", "StringValue": f"v{i}"} for i in range(7)})
    sqs_kit.client().send_message(QueueUrl=broker.queues.queue_url(queue), MessageBody="many",
                                  MessageAttributes=attributes)  # type: ignore[arg-type]
    delivery = receive(broker, queue)
    broker.dead_letter(delivery, "too many attributes?")
    [letter] = sqs_kit.dead_letters(broker, queue, expected=1)
    expected = {f"a{i}": f"v{i}" for i in range(7)}
    expected.update(count="42", blob=base64.b64encode(b"\x00\x01binary").decode())
    assert dict(letter.headers) == expected
    assert letter.reason == "too many attributes?"
    raw = sqs_kit.client().receive_message(
        QueueUrl=broker.queues.queue_url(broker.queues.dead_letter_queue_for(queue)),
        MessageAttributeNames=["All"], WaitTimeSeconds=2)["Messages"][0]
    assert len(raw["MessageAttributes"]) == 10
    assert raw["MessageAttributes"]["count"] == {"DataType": "Number", "StringValue": "42"}
    assert raw["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01binary"  # types kept


def test_dead_letter_reason_is_one_clean_line(sqs_kit: SqsKit) -> None:
    queue = sqs_kit.queue()
    broker = sqs_kit.make()
    broker.publish(queue, "m")
    broker.dead_letter(receive(broker, queue), "Traceback:\n  line 1\x00\x07\n" + "x" * 5000)
    [letter] = sqs_kit.dead_letters(broker, queue, expected=1)
    assert letter.reason.startswith("Traceback: line 1 x")
    assert len(letter.reason) == 1000


def test_listing_dead_letters_does_not_consume_them(sqs_kit: SqsKit) -> None:
    queue = sqs_kit.queue()
    broker = sqs_kit.make()
    for i in range(12):  # more than one page of 10
        broker.publish(queue, f"bad-{i}")
    for _ in range(12):
        broker.dead_letter(receive(broker, queue), "malformed")
    first = sqs_kit.dead_letters(broker, queue, expected=12)
    assert sorted(letter.body for letter in first) == sorted(f"bad-{i}" for i in range(12))
    again = sqs_kit.dead_letters(broker, queue, expected=12)  # visible again at once
    assert sorted(letter.body for letter in again) == sorted(letter.body for letter in first)


def test_touch_keeps_the_message_invisible(sqs_kit: SqsKit) -> None:
    """While the holder touches it (a deposit running), no one else gets the message,
    well past its 2 s visibility timeout; once the holder stops (as if it died), it
    comes back with the next attempt number."""
    queue = sqs_kit.queue()
    holder = sqs_kit.make(lease_seconds=2.0)
    watcher = sqs_kit.make(lease_seconds=30.0)
    holder.publish(queue, "long deposit")
    held = receive(holder, queue)
    touching = threading.Event()
    touching.set()
    seen: list[tuple[float, Delivery]] = []
    stopped_at: list[float] = []

    def watch() -> None:
        deadline = time.monotonic() + 15
        while not seen and time.monotonic() < deadline:
            delivery = watcher.receive([queue], timeout=1.0)
            if delivery is not None:
                seen.append((time.monotonic(), delivery))

    thread = threading.Thread(target=watch)
    thread.start()
    end = time.monotonic() + 5.0
    while time.monotonic() < end:
        holder.touch(held)
        touching.wait(0.3)
    stopped_at.append(time.monotonic())
    thread.join(20)
    assert seen, "never redelivered after the touches stopped"
    (when, again), = seen
    assert when >= stopped_at[0], "delivered to another consumer while being touched"
    assert (again.body, again.delivery_count, again.message_id) == (
        "long deposit", 2, held.message_id)
    watcher.ack(again)


def test_settling_a_settled_delivery_is_logged_not_done(
    sqs_kit: SqsKit, caplog: pytest.LogCaptureFixture
) -> None:
    """A receipt whose message is gone (acked, here) touches, nacks and dead-letters
    nothing: a warning says so, and no copy reaches the dead-letter queue."""
    queue = sqs_kit.queue()
    broker = sqs_kit.make()
    broker.publish(queue, "m")
    delivery = receive(broker, queue)
    broker.ack(delivery)
    with caplog.at_level(logging.WARNING, logger="deposit_services.messaging.sqs"):
        broker.touch(delivery)
        broker.nack(delivery, "late")
        broker.dead_letter(delivery, "late")
    assert caplog.text.count("no longer valid") == 3
    assert sqs_kit.dead_letters(broker, queue, expected=0) == []
    assert broker.receive([queue], timeout=1.0) is None


def test_two_consumers_never_share_a_message(sqs_kit: SqsKit) -> None:
    """Competing consumers: two brokers with two threads each, every message
    delivered to exactly one of them."""
    queue = sqs_kit.queue()
    publisher = sqs_kit.make()
    expected = [f"m{i:03d}" for i in range(60)]
    for body in expected:
        publisher.publish(queue, body)
    consumers = [sqs_kit.make(lease_seconds=60.0), sqs_kit.make(lease_seconds=60.0)]
    received: list[str] = []
    lock = threading.Lock()

    def consume(broker: SqsBroker) -> None:
        while (delivery := broker.receive([queue], timeout=1.5)) is not None:
            assert delivery.delivery_count == 1
            with lock:
                received.append(delivery.body)
            broker.ack(delivery)

    threads = [threading.Thread(target=consume, args=(broker,))
               for broker in consumers for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(received) == expected  # all delivered, none twice


def test_receive_serves_several_queues_in_turn(sqs_kit: SqsKit) -> None:
    """SQS has no receive from several queues: they are polled in turn, from a
    different one at each call, so a busy queue does not starve the other."""
    busy, quiet = sqs_kit.queue("busy"), sqs_kit.queue("quiet")
    broker = sqs_kit.make(lease_seconds=30.0)
    for i in range(10):
        broker.publish(busy, f"b{i}")
    broker.publish(quiet, "q0")
    order = []
    for _ in range(4):
        delivery = broker.receive([busy, quiet], timeout=2.0)
        assert delivery is not None
        order.append(delivery.queue)
        broker.ack(delivery)
    assert quiet in order[:2], order
    assert order.count(busy) == 3


def test_a_killed_consumer_process_gives_the_message_back(sqs_kit: SqsKit) -> None:
    queue = sqs_kit.queue()
    broker = sqs_kit.make()
    broker.publish(queue, "survivor")
    code = textwrap.dedent("""
        import sys
        from deposit_services.messaging.sqs import SqsBroker
        broker = SqsBroker(sys.argv[1], lease_seconds=1.0)
        delivery = broker.receive([sys.argv[2]], timeout=10)
        print("got", delivery.body if delivery else None, flush=True)
        sys.stdin.read()  # hold it until killed
    """)
    child = subprocess.Popen([sys.executable, "-c", code, sqs_kit.url, queue],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=os.environ.copy())
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "got survivor"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    again = receive(broker, queue, timeout=10)
    assert (again.body, again.delivery_count) == ("survivor", 2)
    broker.ack(again)


def test_fifo_queues(sqs_kit: SqsKit) -> None:
    queue = sqs_kit.queue() + ".fifo"
    broker = sqs_kit.make(max_deliveries=2, redelivery_delay=0)
    broker.publish(queue, "first", {"type": "DepositStatus"})
    delivery = receive(broker, queue)
    broker.nack(delivery, "transient")
    again = receive(broker, queue)
    assert again.delivery_count == 2
    broker.nack(again, "still failing")
    assert broker.queues.dead_letter_queue_for(queue) == queue.removesuffix(".fifo") + "-dlq.fifo"
    [letter] = sqs_kit.dead_letters(broker, queue, expected=1)
    assert (letter.body, letter.attempts) == ("first", 2)
    assert "still failing (after 2 attempts)" in letter.reason


def test_nothing_secret_is_logged(sqs_kit: SqsKit, caplog: pytest.LogCaptureFixture,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Even with everything at DEBUG (DEPOSIT_LOG_LEVEL=DEBUG): botocore's wire logs,
    which print request headers (signature, session token), stay off."""
    token = "session-token-must-never-be-logged"
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    caplog.set_level(logging.DEBUG)
    queue = sqs_kit.queue()
    broker = sqs_kit.make(max_deliveries=1)
    broker.publish(queue, "m", {"type": "SubmissionReady"})
    broker.nack(receive(broker, queue), "failed")
    sqs_kit.dead_letters(broker, queue, expected=1)
    assert "dead-lettered" in caplog.text
    for secret in (DUMMY_SECRET_KEY, DUMMY_ACCESS_KEY, token, "Signature="):
        assert secret not in caplog.text


def test_close_leaves_nothing_running(sqs_kit: SqsKit) -> None:
    before = set(threading.enumerate())
    broker = SqsBroker(sqs_kit.url, lease_seconds=1.0)
    queue = sqs_kit.queue()
    broker.publish(queue, "m")
    assert receive(broker, queue).body == "m"  # not settled
    broker.close()
    assert broker.receive([queue], timeout=1.0) is None
    left = {t for t in set(threading.enumerate()) - before
            if "process_request" not in t.name}  # (moto's own request threads)
    assert left == set()
