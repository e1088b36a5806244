"""The broker port's promises, one test body per promise, on every broker we support.

Each test runs on the local SQL queue, a real ActiveMQ and a real RabbitMQ (see
conftest.py); the STOMP-only ones (prefetch, reconnection) on the two real brokers.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter

import pytest

from deposit_services.messaging.base import Broker, Delivery
from deposit_services.messaging.stomp import StompBroker
from tests.integration.stomp.conftest import BrokerKit

SUBMISSION_READY = json.dumps({"submission": "15", "type": "SubmissionReady"})


def receive(broker: Broker, queue: str, timeout: float = 10.0) -> Delivery:
    delivery = broker.receive([queue], timeout=timeout)
    assert delivery is not None, f"nothing received on {queue} within {timeout}s"
    return delivery


def test_publish_receive_ack(broker_kit: BrokerKit) -> None:
    queue = broker_kit.queue()
    broker = broker_kit.make()
    other = broker_kit.make()
    broker.publish(queue, SUBMISSION_READY, {"type": "SubmissionReady"})
    delivery = receive(broker, queue)
    assert (delivery.queue, delivery.body, delivery.delivery_count) == (queue, SUBMISSION_READY, 1)
    assert delivery.headers["type"] == "SubmissionReady"
    assert delivery.message_id
    assert other.receive([queue], timeout=1.0) is None  # held: invisible to others
    broker.ack(delivery)
    assert other.receive([queue], timeout=1.0) is None
    assert broker.receive([queue], timeout=0.5) is None


def test_receive_takes_only_the_queues_asked_for(broker_kit: BrokerKit) -> None:
    wanted, unwanted = broker_kit.queue("a"), broker_kit.queue("b")
    broker = broker_kit.make()
    broker.publish(unwanted, "u0")
    for i in range(3):
        broker.publish(wanted, f"w{i}")
    bodies = []
    for _ in range(3):
        delivery = receive(broker, wanted)
        bodies.append(delivery.body)
        broker.ack(delivery)
    assert sorted(bodies) == ["w0", "w1", "w2"]
    assert broker.receive([wanted], timeout=0.5) is None
    late = receive(broker, unwanted)
    assert late.body == "u0"
    broker.ack(late)


def test_nack_redelivers_with_next_attempt(broker_kit: BrokerKit) -> None:
    queue = broker_kit.queue()
    broker = broker_kit.make(redelivery_delay=0.3)
    broker.publish(queue, SUBMISSION_READY, {"type": "SubmissionReady"})
    first = receive(broker, queue)
    broker.nack(first, "store briefly unavailable")
    second = receive(broker, queue)
    assert (second.body, second.delivery_count) == (SUBMISSION_READY, 2)
    assert second.message_id == first.message_id
    assert second.headers["type"] == "SubmissionReady"
    broker.ack(second)
    assert broker.receive([queue], timeout=1.0) is None


def test_poison_message_dead_lettered_after_max_deliveries(broker_kit: BrokerKit) -> None:
    queue = broker_kit.queue()
    broker = broker_kit.make(max_deliveries=3, redelivery_delay=0.05)
    broker.publish(queue, "poison")
    for i in range(4):
        broker.publish(queue, f"good-{i}")
    processed: Counter[str] = Counter()
    poison_attempts: list[int] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (len(processed) < 4 or len(poison_attempts) < 3):
        delivery = broker.receive([queue], timeout=0.5)
        if delivery is None:
            continue
        if delivery.body == "poison":
            poison_attempts.append(delivery.delivery_count)
            broker.nack(delivery, "ValueError: cannot parse the graph")
        else:
            processed[delivery.body] += 1
            broker.ack(delivery)
    assert processed == Counter({f"good-{i}": 1 for i in range(4)})
    assert poison_attempts == [1, 2, 3]
    assert broker.receive([queue], timeout=1.0) is None  # not redelivered a 4th time
    dead = broker_kit.dead_letters(broker, queue, expected=1)
    assert len(dead) == 1
    assert dead[0].body == "poison"
    assert dead[0].queue == queue
    assert dead[0].attempts == 3
    assert "cannot parse the graph" in dead[0].reason


def test_dead_letter_at_once(broker_kit: BrokerKit) -> None:
    queue = broker_kit.queue()
    broker = broker_kit.make()
    broker.publish(queue, "not json at all", {"type": "SubmissionReady"})
    broker.publish(queue, SUBMISSION_READY)
    delivery = receive(broker, queue)
    assert delivery.body == "not json at all"
    broker.dead_letter(delivery, "message body is not JSON")
    behind = receive(broker, queue)
    assert behind.body == SUBMISSION_READY
    broker.ack(behind)
    assert broker.receive([queue], timeout=1.0) is None
    dead = broker_kit.dead_letters(broker, queue, expected=1)
    assert [(d.body, d.reason, d.attempts) for d in dead] == [
        ("not json at all", "message body is not JSON", 1)]
    assert dead[0].headers.get("type") == "SubmissionReady"


def test_unsettled_messages_go_to_another_consumer(broker_kit: BrokerKit) -> None:
    queue = broker_kit.queue()
    first = broker_kit.make(lease_seconds=1.0)
    for i in range(5):
        first.publish(queue, f"m{i}")
    held = [receive(first, queue), receive(first, queue)]
    first.close()  # gone without settling what it held
    second = broker_kit.make()
    seen: dict[str, int] = {}
    deadline = time.monotonic() + 20
    while len(seen) < 5 and time.monotonic() < deadline:
        delivery = second.receive([queue], timeout=0.5)
        if delivery is not None:
            assert delivery.body not in seen, f"{delivery.body} delivered twice"
            seen[delivery.body] = delivery.delivery_count
            second.ack(delivery)
    assert sorted(seen) == [f"m{i}" for i in range(5)]
    for delivery in held:  # a delivery that was handed out and never settled counts
        assert seen[delivery.body] == 2
    assert second.receive([queue], timeout=1.0) is None


def test_prefetch_is_bounded(stomp_kit: BrokerKit) -> None:
    queue = stomp_kit.queue()
    greedy = stomp_kit.make(prefetch=2)
    for i in range(10):
        greedy.publish(queue, f"m{i}")
    held = receive(greedy, queue)
    time.sleep(1.0)  # let the broker push whatever it is allowed to
    other = stomp_kit.make(prefetch=20)
    got = []
    while (delivery := other.receive([queue], timeout=2.0)) is not None:
        got.append(delivery.body)
        other.ack(delivery)
    assert held.body not in got
    assert len(got) == 8  # 10 - the 2 the first consumer may hold (prefetch 2)
    greedy.ack(held)


def test_consumption_resumes_after_the_broker_goes_away(
    stomp_kit: BrokerKit, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="deposit_services.messaging")
    queue = stomp_kit.queue()
    consumer = stomp_kit.make(prefetch=4)
    producer = stomp_kit.make()
    total = 200
    seen: Counter[str] = Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            delivery = consumer.receive([queue], timeout=0.5)
            if delivery is None:
                continue
            time.sleep(0.005)  # some work
            with lock:
                seen[delivery.body] += 1
            consumer.ack(delivery)

    threads = [threading.Thread(target=consume) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for i in range(total):
            producer.publish(queue, f"m{i}", {"type": "SubmissionReady"})
            if i == total // 2:
                stomp_kit.break_connections()
        deadline = time.monotonic() + 60
        while len(seen) < total and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    missing = sorted(set(f"m{i}" for i in range(total)) - set(seen))
    assert not missing, f"lost: {missing}"
    assert isinstance(consumer, StompBroker) and consumer.connected
    messages = caplog.text
    assert "connection to broker" in messages and "lost; reconnecting" in messages
    # consumer and producer: connected at the start and again after the break
    assert messages.count("connected to broker") >= 4, messages
    # At-least-once: a message whose ack died with the connection comes again (the
    # service layer's claim makes that harmless); it must never be more than that.
    duplicates = {body: n for body, n in seen.items() if n > 1}
    assert all(n == 2 for n in duplicates.values()), duplicates


def test_a_message_that_keeps_killing_its_consumer_is_dead_lettered(
    broker_kit: BrokerKit,
) -> None:
    """The delivery count survives the consumer: each consumer takes the message and
    dies without settling it; after max_deliveries it is in the dead-letter queue.
    (Prefetch 1: like the broker's own redelivery counter, ours cannot tell a message
    handed to a worker from one only prefetched, so both count when a consumer dies.)"""
    queue = broker_kit.queue()
    producer = broker_kit.make(max_deliveries=3)
    producer.publish(queue, "kills its consumer", {"type": "SubmissionReady"})
    attempts: list[int] = []
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and len(attempts) < 3:
        consumer = broker_kit.make(max_deliveries=3, lease_seconds=1.0, prefetch=1)
        delivery = consumer.receive([queue], timeout=3.0)
        if delivery is not None:
            attempts.append(delivery.delivery_count)
        consumer.close()  # dies: whatever it held goes back unsettled
        broker_kit.made.remove(consumer)
    assert attempts == [1, 2, 3]
    checker = broker_kit.make(max_deliveries=3, lease_seconds=1.0)
    time.sleep(1.2)  # (local queue: the last lease runs out)
    assert checker.receive([queue], timeout=2.0) is None, "delivered a 4th time"
    dead = broker_kit.dead_letters(checker, queue, expected=1)
    assert [d.body for d in dead] == ["kills its consumer"]
    # (the reason names the count; the local queue's ``attempts`` field counts the
    # claim that found it exhausted as well)
    assert "not settled after 3 deliveries" in dead[0].reason
    assert dead[0].headers.get("type") == "SubmissionReady"
    checker.publish(queue, "behind it")
    behind = receive(checker, queue)
    assert (behind.body, behind.delivery_count) == ("behind it", 1)
    checker.ack(behind)
