"""What only a STOMP broker can do wrong: go silent, refuse us, send bytes, be closed.

Each runs on the real ActiveMQ and RabbitMQ (``stomp_kit``), some through a relay
(tests/support/tcp_proxy.py ``TcpProxy``) that can go silent while its connections
stay open.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
import stomp

from deposit_services.errors import BrokerUnavailable
from deposit_services.messaging.stomp import StompBroker
from deposit_services.messaging.stomp_connection import Endpoint, StompLink
from tests.integration.stomp.conftest import BrokerKit
from tests.support.activemq import ActiveMQ
from tests.support.tcp_proxy import TcpProxy


def _relay_to(url: str) -> tuple[TcpProxy, str]:
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 61613)
    proxy.start()
    userinfo = f"{parts.username}:{parts.password}@" if parts.username else ""
    return proxy, f"stomp://{userinfo}127.0.0.1:{proxy.port}"


def test_a_silent_broker_is_noticed_by_heart_beats(
    stomp_kit: BrokerKit, caplog: pytest.LogCaptureFixture
) -> None:
    """A connection that stays open but carries nothing (a hung broker, a dropped
    route) is only noticed by STOMP heart-beats: the adapter drops it, reconnects and
    consumption resumes."""
    caplog.set_level(logging.INFO, logger="deposit_services.messaging")
    proxy, url = _relay_to(stomp_kit.url)
    queue = stomp_kit.queue()
    try:
        consumer = stomp_kit.make(url=url, heartbeats=(500, 500))
        producer = stomp_kit.make()
        producer.publish(queue, "before")
        first = consumer.receive([queue], timeout=10)
        assert first is not None and first.body == "before"
        consumer.ack(first)
        proxy.freeze()
        deadline = time.monotonic() + 15
        while "lost; reconnecting" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "no heart-beat from broker" in caplog.text
        assert "lost; reconnecting" in caplog.text
        assert isinstance(consumer, StompBroker) and not consumer.connected
        proxy.thaw()
        assert consumer.wait_connected(20), "not reconnected once the broker spoke again"
        producer.publish(queue, "after")
        second = consumer.receive([queue], timeout=10)
        assert second is not None and second.body == "after"
        consumer.ack(second)
    finally:
        proxy.close()


def test_a_body_that_is_not_utf8_is_dead_lettered_unchanged(stomp_kit: BrokerKit) -> None:
    queue = stomp_kit.queue()
    broker = stomp_kit.make()
    assert isinstance(broker, StompBroker)
    raw = b'{"submission": "\xff\xfe", "type": "SubmissionReady"}'
    ep = broker.endpoint
    conn = stomp.Connection12([(ep.host, ep.port)], vhost=ep.vhost)
    conn.connect(broker.user, broker.password, wait=True)
    try:
        conn.send(f"/queue/{queue}", raw, headers={"persistent": "true",
                                                    "content-length": str(len(raw)),
                                                    "type": "SubmissionReady"})
        conn.send(f"/queue/{queue}", "behind", headers={"persistent": "true"})
    finally:
        conn.disconnect()
    behind = broker.receive([queue], timeout=10)
    assert behind is not None and behind.body == "behind"  # the bad one never handed out
    broker.ack(behind)
    assert broker.receive([queue], timeout=1.0) is None
    frames = _raw_frames(broker, broker.dead_letter_queue_for(queue), expected=1)
    assert len(frames) == 1
    headers, body = frames[0]
    assert body == raw, "the dead-lettered bytes differ from what was sent"
    assert "not UTF-8" in headers["x-dead-letter-reason"]
    assert headers["x-original-queue"] == queue
    assert headers["type"] == "SubmissionReady"


class _Collect(stomp.ConnectionListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.frames: list[tuple[dict[str, str], bytes]] = []

    def on_message(self, frame: stomp.utils.Frame) -> None:
        self.frames.append((dict(frame.headers), frame.body))


def _raw_frames(broker: StompBroker, queue: str, expected: int,
                timeout: float = 10.0) -> list[tuple[dict[str, str], bytes]]:
    """Messages of ``queue`` as bytes, consumed with bare stomp.py (auto-ack)."""
    ep = broker.endpoint
    conn = stomp.Connection12([(ep.host, ep.port)], vhost=ep.vhost, auto_decode=False)
    collect = _Collect()
    conn.set_listener("collect", collect)
    conn.connect(broker.user, broker.password, wait=True)
    try:
        conn.subscribe(f"/queue/{queue}", id="raw", ack="auto")
        deadline = time.monotonic() + timeout
        while len(collect.frames) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)  # anything more would show up too
    finally:
        conn.disconnect()
    return collect.frames


def test_nothing_is_handed_out_after_close(stomp_kit: BrokerKit) -> None:
    """close() stops taking messages: what was prefetched stays with the broker."""
    queue = stomp_kit.queue()
    broker = stomp_kit.make(prefetch=5)
    for i in range(5):
        broker.publish(queue, f"m{i}")
    first = broker.receive([queue], timeout=10)
    assert first is not None
    time.sleep(0.5)  # the rest is prefetched into the adapter's buffer
    broker.close()
    assert broker.receive([queue], timeout=0.5) is None
    other = stomp_kit.make()
    seen = []
    while (delivery := other.receive([queue], timeout=2.0)) is not None:
        seen.append((delivery.body, delivery.delivery_count))
        other.ack(delivery)
    # all five come back, each counted as one (unsettled) delivery
    assert sorted(seen) == [(f"m{i}", 2) for i in range(5)]


def test_wrong_credentials_are_reported_and_retried(
    rabbitmq_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """RabbitMQ checks credentials: a wrong password never connects, says why in the
    log and keeps retrying (the daemon stays up until an operator fixes it)."""
    caplog.set_level(logging.WARNING, logger="deposit_services.messaging")
    parts = urlsplit(rabbitmq_url)
    broker = StompBroker(f"stomp://{parts.hostname}:{parts.port}", user="guest",
                         password=f"wrong-{uuid.uuid4().hex[:6]}", reconnect_first=0.2,
                         reconnect_max=0.5, publish_timeout=1.0)
    try:
        assert not broker.wait_connected(3)
        assert "unreachable (attempt 2)" in caplog.text
        assert "refused" in caplog.text.lower() or "denied" in caplog.text.lower()
        assert "wrong-" not in caplog.text, "a password was logged"
        assert broker.receive(["q"], timeout=0.2) is None
    finally:
        broker.close()


def test_a_redelivery_cut_short_leaves_one_copy(stomp_kit: BrokerKit) -> None:
    """nack's republish-and-ack is one transaction: when the connection dies before
    the broker confirms it, the original comes back (counted) and no copy exists."""
    proxy, url = _relay_to(stomp_kit.url)
    queue = stomp_kit.queue()
    try:
        consumer = stomp_kit.make(url=url, heartbeats=(500, 500), redelivery_delay=0.0)
        consumer.publish(queue, "only once")
        delivery = consumer.receive([queue], timeout=10)
        assert delivery is not None and delivery.delivery_count == 1
        proxy.freeze()
        thaw = threading.Timer(4.0, proxy.thaw)  # the broker is back soon after
        thaw.start()
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable):
            consumer.nack(delivery, "store briefly unavailable")
        # given up with the connection, not republished on the next one (the original
        # is still unacked there: a copy now would be a second one)
        assert time.monotonic() - started < 4.0
        thaw.join()
        consumer.close()
    finally:
        proxy.close()
    other = stomp_kit.make()
    seen = []
    while (again := other.receive([queue], timeout=2.0)) is not None:
        seen.append((again.body, again.delivery_count))
        other.ack(again)
    assert seen == [("only once", 2)]


def test_the_link_is_live_while_it_subscribes(activemq: ActiveMQ) -> None:
    """Subscriptions are made in ``on_connected``; a message they bring can be handled
    and settled by a worker before ``on_connected`` returns, so the link must already
    hold its connection then (once it did not, and a malformed message received at
    start-up could not be dead-lettered until the connection dropped)."""
    endpoint = Endpoint.parse(activemq.url)
    held: list[bool] = []
    link: StompLink

    def on_connected(conn: Any) -> None:
        held.append(link.holds(link.generation))

    link = StompLink(endpoint, user=endpoint.user, password=endpoint.password,
                     on_message=lambda generation, headers, body: None,
                     on_connected=on_connected, on_lost=lambda: None)
    link.start()
    try:
        assert link.wait_connected(10)
        assert held == [True]
    finally:
        link.close()
