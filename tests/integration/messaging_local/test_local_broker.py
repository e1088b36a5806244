"""LocalBroker against real databases: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deposit_services.messaging.base import broker_class
from deposit_services.messaging.local import LocalBroker
from deposit_services.settings import load_settings
from deposit_services.store.sql import SqlDatabase

Factory = Callable[..., LocalBroker]


@pytest.fixture
def make_broker(store_url: str) -> Iterator[Factory]:
    made: list[LocalBroker] = []

    def make(**options: float) -> LocalBroker:
        broker = LocalBroker(store_url, **options)  # type: ignore[arg-type]
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.close()


def test_publish_receive_ack(make_broker: Factory) -> None:
    broker = make_broker()
    body = '{"submission": "15", "type": "SubmissionReady"}'
    broker.publish("submission", body, {"type": "SubmissionReady"})
    delivery = broker.receive(["submission"], timeout=5)
    assert delivery is not None
    assert (delivery.queue, delivery.body, delivery.delivery_count) == ("submission", body, 1)
    assert dict(delivery.headers) == {"type": "SubmissionReady"}
    assert delivery.message_id
    assert broker.receive(["submission"], timeout=0) is None  # leased: invisible
    broker.ack(delivery)
    assert broker.pending() == 0
    assert broker.receive(["submission"], timeout=0.2) is None


def test_receive_picks_only_its_queues_in_order(make_broker: Factory) -> None:
    broker = make_broker()
    for i in range(3):
        broker.publish("deposit", f"d{i}")
    broker.publish("other", "o0")
    got = []
    for _ in range(3):
        delivery = broker.receive(["submission", "deposit"], timeout=1)
        assert delivery is not None
        got.append(delivery.body)
        broker.ack(delivery)
    assert got == ["d0", "d1", "d2"]
    assert broker.receive(["submission", "deposit"], timeout=0.1) is None
    assert broker.pending("other") == 1


def test_nack_redelivers_later_with_next_attempt(make_broker: Factory) -> None:
    broker = make_broker(redelivery_delay=0.5)
    broker.publish("q", "m")
    first = broker.receive(["q"], timeout=1)
    assert first is not None and first.delivery_count == 1
    broker.nack(first, "transient trouble")
    assert broker.receive(["q"], timeout=0) is None  # not before the redelivery delay
    second = broker.receive(["q"], timeout=10)
    assert second is not None
    assert (second.body, second.delivery_count, second.message_id) == ("m", 2, first.message_id)
    broker.ack(second)
    assert broker.pending() == 0
    assert broker.dead_letters() == []


def test_dead_letter_after_max_deliveries(make_broker: Factory) -> None:
    broker = make_broker(max_deliveries=3, redelivery_delay=0.01)
    broker.publish("q", "poison", {"type": "DepositStatus"})
    for attempt in (1, 2, 3):
        delivery = broker.receive(["q"], timeout=10)
        assert delivery is not None and delivery.delivery_count == attempt
        broker.nack(delivery, f"failure {attempt}")
    assert broker.receive(["q"], timeout=0.3) is None
    assert broker.pending() == 0
    [dead] = broker.dead_letters()
    assert (dead.queue, dead.body, dead.attempts) == ("q", "poison", 3)
    assert "failure 3" in dead.reason
    assert dict(dead.headers) == {"type": "DepositStatus"}


def test_dead_letter_moves_at_once(make_broker: Factory) -> None:
    broker = make_broker()
    broker.publish("q", "not json")
    broker.publish("q", "fine")
    delivery = broker.receive(["q"], timeout=1)
    assert delivery is not None and delivery.body == "not json"
    broker.dead_letter(delivery, "malformed message: not JSON")
    [dead] = broker.dead_letters()
    assert (dead.body, dead.attempts, dead.reason) == ("not json", 1, "malformed message: not JSON")
    following = broker.receive(["q"], timeout=1)
    assert following is not None and following.body == "fine"
    broker.ack(following)
    assert broker.pending() == 0


def test_expired_lease_is_redelivered_and_stale_settles_ignored(
    make_broker: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    broker = make_broker(lease_seconds=0.5)
    broker.publish("q", "m")
    first = broker.receive(["q"], timeout=1)
    assert first is not None
    assert broker.receive(["q"], timeout=0) is None
    second = broker.receive(["q"], timeout=10)  # the first consumer "died"
    assert second is not None
    assert (second.message_id, second.delivery_count) == (first.message_id, 2)
    with caplog.at_level(logging.WARNING, logger="deposit_services.messaging.local"):
        broker.ack(first)  # its lease was lost: must not remove the second's message
        broker.nack(first, "late")
    assert "lease was lost" in caplog.text
    assert broker.pending() == 1
    broker.ack(second)
    assert broker.pending() == 0


def test_touch_keeps_the_message_invisible(make_broker: Factory) -> None:
    broker = make_broker(lease_seconds=0.6)
    broker.publish("q", "m")
    delivery = broker.receive(["q"], timeout=1)
    assert delivery is not None
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        broker.touch(delivery)
        assert broker.receive(["q"], timeout=0.2) is None
    broker.ack(delivery)
    assert broker.pending() == 0


def test_consumers_dying_without_settling_end_in_dead_letters(make_broker: Factory) -> None:
    broker = make_broker(lease_seconds=0.2, max_deliveries=2)
    broker.publish("q", "crashes its consumer")
    for _ in range(2):
        assert broker.receive(["q"], timeout=5) is not None  # never settled
    assert broker.receive(["q"], timeout=1) is None
    [dead] = broker.dead_letters()
    assert (dead.body, dead.attempts) == ("crashes its consumer", 2)
    assert "not settled after 2 deliveries" in dead.reason


def test_from_settings_uses_the_store_database_on_local(store_url: str, tmp_path: Path) -> None:
    settings = load_settings({"DEPOSIT_DATA_DIR": str(tmp_path), "DEPOSIT_STORE_URL": store_url,
                              "DEPOSIT_MAX_DELIVERIES": "7"})
    assert settings.broker_url in ("local:", "local")
    broker = broker_class(settings.broker_url).from_settings(settings)  # type: ignore[attr-defined]
    assert isinstance(broker, LocalBroker) and broker.max_deliveries == 7
    broker.publish("q", "hello")
    direct = LocalBroker(store_url)
    delivery = direct.receive(["q"], timeout=1)
    assert delivery is not None and delivery.body == "hello"
    direct.ack(delivery)
    SqlDatabase(store_url).close()  # the store starts fine on the shared schema
    broker.close()
    direct.close()


_CONSUMER = textwrap.dedent(
    """
    import sys
    from deposit_services.messaging.local import LocalBroker
    broker = LocalBroker(sys.argv[1], lease_seconds=float(sys.argv[2]))
    mode = sys.argv[3]
    if mode == "hold":
        delivery = broker.receive(["q"], timeout=30)
        print("got", delivery.body if delivery else None, flush=True)
        sys.stdin.read()  # wait to be killed
    else:
        while True:
            delivery = broker.receive(["q"], timeout=float(sys.argv[4]))
            if delivery is None:
                break
            broker.ack(delivery)
            print(delivery.body, flush=True)
    """
)


def _python(*args: str, stdin: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CONSUMER, *args],
        stdin=stdin, stdout=subprocess.PIPE, text=True, env=os.environ.copy(),
    )


def test_message_survives_a_killed_consumer(store_url: str, make_broker: Factory) -> None:
    broker = make_broker(lease_seconds=1.0)
    broker.publish("q", "survivor")
    child = _python(store_url, "1.0", "hold", stdin=subprocess.PIPE)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "got survivor"
        assert broker.receive(["q"], timeout=0) is None  # the child holds it
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    again = broker.receive(["q"], timeout=15)
    assert again is not None
    assert (again.body, again.delivery_count) == ("survivor", 2)
    broker.ack(again)
    assert broker.pending() == 0


def test_two_consumer_threads_each_message_exactly_once(make_broker: Factory) -> None:
    publisher = make_broker()
    expected = [f"m{i:03d}" for i in range(200)]
    for body in expected:
        publisher.publish("q", body)
    consumer = make_broker(lease_seconds=60)  # one instance shared, as the worker does
    received: list[list[str]] = [[], []]

    def consume(index: int) -> None:
        while (delivery := consumer.receive(["q"], timeout=1.0)) is not None:
            received[index].append(delivery.body)
            consumer.ack(delivery)

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    together = received[0] + received[1]
    assert sorted(together) == expected  # all delivered, none twice
    assert publisher.pending() == 0


def test_two_consumer_processes_each_message_exactly_once(
    store_url: str, make_broker: Factory
) -> None:
    publisher = make_broker()
    expected = [f"m{i:03d}" for i in range(200)]
    for body in expected:
        publisher.publish("q", body)
    children = [_python(store_url, "60", "drain", "3.0") for _ in range(2)]
    outputs = []
    for child in children:
        out, _ = child.communicate(timeout=300)
        assert child.returncode == 0
        outputs.append(out.split())
    together = outputs[0] + outputs[1]
    assert sorted(together) == expected  # all delivered, none twice
    assert publisher.pending() == 0
    assert publisher.dead_letters() == []
