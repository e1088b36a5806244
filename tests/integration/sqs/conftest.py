"""SQS fixtures: moto in server mode (tests/support/moto_server.py) and a broker kit.

``moto`` is one server for the session; every test runs with dummy AWS credentials and
none of the developer's AWS configuration (``aws_test_env``, autouse, undone after the
test). ``broker_kit`` (alias ``sqs_kit``) has the interface of the STOMP tests'
``BrokerKit`` (queue, make, dead_letters, made, close), so the port's shared test bodies
run on SQS unchanged (test_contract.py). A missing moto FAILS the tests, never a skip.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import boto3
import pytest

from deposit_services.messaging.base import DeadLetter
from deposit_services.messaging.sqs import SqsBroker
from tests.support.moto_server import (
    AWS_TEST_ENVIRONMENT,
    AWS_UNSET,
    REGION,
    MotoServer,
    running_moto,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@dataclass
class SqsKit:
    """Makes SQS brokers on the test's moto server, with unique queue names."""

    server: MotoServer
    name: str = "sqs"
    made: list[SqsBroker] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A broker URL that creates missing queues (so each test's queues exist)."""
        return self.server.broker_url(create=True)

    def queue(self, label: str = "q") -> str:
        return f"test-{label}-{uuid.uuid4().hex[:10]}"

    def make(self, *, max_deliveries: int = 5, redelivery_delay: float = 0.1,
             prefetch: int = 4, lease_seconds: float = 2.0, url: str | None = None,
             **_stomp_only: object) -> SqsBroker:
        """A broker; ``prefetch`` and the STOMP kit's other options mean nothing on SQS
        (one message per receive, nothing buffered)."""
        del prefetch
        broker = SqsBroker(url or self.url, max_deliveries=max_deliveries,
                           redelivery_delay=redelivery_delay, lease_seconds=lease_seconds)
        self.made.append(broker)
        return broker

    def client(self) -> SQSClient:
        """A plain boto3 client, as a third party (pass-core) uses the server."""
        return boto3.client("sqs", endpoint_url=self.server.endpoint, region_name=REGION)

    def dead_letters(self, broker: SqsBroker, queue: str, expected: int,
                     timeout: float = 15.0) -> list[DeadLetter]:
        """The dead letters of ``queue``, listed (not consumed), waiting for ``expected``."""
        broker.queues.dead_letter_queue_for(queue)  # known to the broker, so listed
        deadline = time.monotonic() + timeout
        while True:
            listed = [letter for letter in broker.dead_letters() if letter.queue == queue]
            if len(listed) >= expected or time.monotonic() > deadline:
                return listed
            time.sleep(0.2)

    def close(self) -> None:
        for broker in self.made:
            broker.close()


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    try:
        with running_moto() as server:
            yield server
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(autouse=True)
def aws_test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials for this test only; nothing of the developer's AWS set-up."""
    for name in AWS_UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in AWS_TEST_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def sqs_kit(moto: MotoServer) -> Iterator[SqsKit]:
    kit = SqsKit(moto)
    yield kit
    kit.close()


@pytest.fixture
def broker_kit(sqs_kit: SqsKit) -> SqsKit:
    """The name the shared broker test bodies ask for (test_contract.py)."""
    return sqs_kit
