"""Broker fixtures: the same test bodies on the local queue, ActiveMQ and RabbitMQ.

``broker_kit`` is parametrised (dramatiq's ``result_backend`` style): ``[local]`` is the
durable SQL queue on a fresh SQLite file, ``[activemq]`` a real ActiveMQ Classic started
for the session (Debian's package or a container), ``[rabbitmq]`` the RabbitMQ server
with its STOMP plugin. ``stomp_kit`` is the two STOMP brokers only. A broker that cannot
be started fails the test (never a skip). Queue names are unique per test.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from deposit_services.messaging.base import Broker, DeadLetter
from deposit_services.messaging.local import LocalBroker
from deposit_services.messaging.stomp import StompBroker
from tests.support.activemq import ActiveMQ, running_activemq
from tests.support.rabbitmq import DEFAULT_URL, delete_local_queues, running_rabbitmq
from tests.support.tcp_proxy import TcpProxy


@dataclass
class BrokerKit:
    """Makes brokers of one kind and does what the test needs beyond the port."""

    name: str
    url: str
    activemq: ActiveMQ | None = None
    proxy: TcpProxy | None = None
    made: list[Broker] = field(default_factory=list)

    def queue(self, label: str = "q") -> str:
        name = f"test-{label}-{uuid.uuid4().hex[:10]}"
        if self.name == "rabbitmq":
            _RABBITMQ_QUEUES.extend((name, f"DLQ.{name}"))
        return name

    def make(self, *, max_deliveries: int = 5, redelivery_delay: float = 0.1,
             prefetch: int = 4, lease_seconds: float = 2.0, url: str | None = None,
             heartbeats: tuple[int, int] = (10_000, 10_000)) -> Broker:
        broker: Broker
        if self.name == "local":
            broker = LocalBroker(self.url, max_deliveries=max_deliveries,
                                 redelivery_delay=redelivery_delay, lease_seconds=lease_seconds)
        else:
            stomp_broker = StompBroker(url or self.url, max_deliveries=max_deliveries,
                                       redelivery_delay=redelivery_delay, prefetch=prefetch,
                                       reconnect_first=0.2, reconnect_max=2.0,
                                       heartbeats=heartbeats)
            if not stomp_broker.wait_connected(30):
                stomp_broker.close()
                pytest.fail(f"could not connect to {self.name} at {self.url}", pytrace=False)
            broker = stomp_broker
        self.made.append(broker)
        return broker

    def dead_letters(self, broker: Broker, queue: str, expected: int,
                     timeout: float = 15.0) -> list[DeadLetter]:
        """The dead letters of ``queue``: listed (local) or consumed from DLQ.<queue>."""
        if isinstance(broker, LocalBroker):
            deadline = time.monotonic() + timeout
            while True:
                listed = [d for d in broker.dead_letters() if d.queue == queue]
                if len(listed) >= expected or time.monotonic() > deadline:
                    return listed
                time.sleep(0.2)
        assert isinstance(broker, StompBroker)
        dlq = broker.dead_letter_queue_for(queue)
        found: list[DeadLetter] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            wait = expected > len(found)
            delivery = broker.receive([dlq], timeout=1.0 if wait else 0.5)
            if delivery is None:
                if not wait:
                    break
                continue
            headers = dict(delivery.headers)
            found.append(DeadLetter(
                queue=headers.get("x-original-queue", ""), body=delivery.body,
                reason=headers.get("x-dead-letter-reason", ""),
                attempts=int(headers.get("x-attempts", "0")), headers=headers))
            broker.ack(delivery)
        return found

    def break_connections(self) -> None:
        """The broker goes away and comes back: ActiveMQ is killed (SIGKILL) and started
        again on the same port and data; RabbitMQ (a shared server we must not restart)
        is reached through a relay that is cut for a while (connections reset, new ones
        refused), then restored."""
        if self.activemq is not None:
            self.activemq.kill()
            time.sleep(1.0)
            self.activemq.start()
            return
        assert self.proxy is not None, "this kit cannot lose its broker"
        self.proxy.cut()
        time.sleep(2.0)
        self.proxy.restore()

    def close(self) -> None:
        for broker in self.made:
            broker.close()
        if self.proxy is not None:
            self.proxy.close()


@pytest.fixture(scope="session")
def activemq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ActiveMQ]:
    try:
        with running_activemq(tmp_path_factory.mktemp("activemq")) as broker:
            yield broker
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


# queues the tests made on the shared RabbitMQ server, deleted at the end of the session
_RABBITMQ_QUEUES: list[str] = []


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    try:
        with running_rabbitmq() as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    if url == DEFAULT_URL:
        delete_local_queues(_RABBITMQ_QUEUES)


def _kit(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> BrokerKit:
    if name == "local":
        return BrokerKit(name, f"sqlite:///{tmp_path / 'queue.db'}")
    if name == "activemq":
        amq: ActiveMQ = request.getfixturevalue("activemq")
        return BrokerKit(name, amq.url, activemq=amq)
    url = urlsplit(request.getfixturevalue("rabbitmq_url"))
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 61613)
    proxy.start()
    return BrokerKit(name, f"stomp://{url.username}:{url.password}@127.0.0.1:{proxy.port}",
                     proxy=proxy)


@pytest.fixture(params=["local", "activemq", "rabbitmq"])
def broker_kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerKit]:
    kit = _kit(request.param, request, tmp_path)
    yield kit
    kit.close()


@pytest.fixture(params=["activemq", "rabbitmq"])
def stomp_kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerKit]:
    kit = _kit(request.param, request, tmp_path)
    yield kit
    kit.close()
