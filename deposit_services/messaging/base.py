"""The broker port: publish messages, receive them one at a time, settle each one.

A received ``Delivery`` is invisible to other consumers until it is settled:
``ack`` (the resulting state is committed: forget it), ``nack`` (processing failed:
deliver it again later; after ``max_deliveries`` attempts it goes to the dead-letter
queue with the reason) or ``dead_letter`` (it can never succeed: malformed, unknown
id). A consumer that dies without settling gets its deliveries redelivered. Adapters
are chosen by the broker URL scheme in ``BROKERS`` and imported lazily.

The operator's side of the dead-letter queue (``deposit-services dead-letters``):
``dead_letters`` lists them with their reasons, ``requeue_dead_letters`` sends them back
to the queue they came from as new messages (their delivery count starts again),
``purge_dead_letters`` drops them. Each takes the ids ``dead_letters`` gave (None: all)
and the queues whose dead letters to look at (brokers that keep one dead-letter queue
per queue need them; the others look at all).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deposit_services.errors import ConfigurationError
from deposit_services.registry import load_adapter


@dataclass(frozen=True)
class Delivery:
    """One received message. ``delivery_count``: how many times the broker has
    delivered it, this time included (1: the first delivery; a transfer attempt and a
    unit of work's run are other things)."""

    queue: str
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)
    message_id: str = ""
    delivery_count: int = 1
    token: Any = None  # adapter-specific handle used to settle it


@dataclass(frozen=True)
class DeadLetter:
    """A dead-lettered message: the queue it came from, why, after how many attempts;
    ``id`` names it for ``requeue_dead_letters`` / ``purge_dead_letters``."""

    queue: str
    body: str
    reason: str
    attempts: int
    headers: Mapping[str, str] = field(default_factory=dict)
    id: str = ""


class Broker(ABC):
    """A message broker connection shared by the worker threads."""

    @abstractmethod
    def publish(self, queue: str, body: str, headers: Mapping[str, str] | None = None) -> None:
        """Send a message; durable once this returns."""

    @abstractmethod
    def receive(self, queues: Sequence[str], timeout: float) -> Delivery | None:
        """The next message of any of ``queues``, waiting up to ``timeout`` seconds."""

    @abstractmethod
    def ack(self, delivery: Delivery) -> None:
        """Processing is committed: the message is done."""

    @abstractmethod
    def nack(self, delivery: Delivery, reason: str) -> None:
        """Processing failed: redeliver later, or dead-letter once attempts run out."""

    @abstractmethod
    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """The message can never be processed: move it to the dead-letter queue now."""

    def touch(self, delivery: Delivery) -> None:  # noqa: B027 - optional hook
        """Still working on it: extend its invisibility (brokers with leases)."""

    def dead_letters(self, queues: Sequence[str] = ()) -> list[DeadLetter]:
        """The dead-letter queue's content (of ``queues``' dead-letter queues), oldest
        first, where the adapter can list it."""
        raise NotImplementedError(f"{type(self).__name__} cannot list dead letters")

    def requeue_dead_letters(self, ids: Sequence[str] | None,
                             queues: Sequence[str] = ()) -> list[str]:
        """Publish the dead letters ``ids`` (None: all) again on the queue each came from,
        as new messages, and remove them; returns the ids requeued."""
        raise NotImplementedError(f"{type(self).__name__} cannot requeue dead letters")

    def purge_dead_letters(self, ids: Sequence[str] | None,
                           queues: Sequence[str] = ()) -> list[str]:
        """Remove the dead letters ``ids`` (None: all); returns the ids removed."""
        raise NotImplementedError(f"{type(self).__name__} cannot purge dead letters")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Disconnect; unsettled deliveries will be redelivered."""


# URL scheme -> "module:Class"
BROKERS: dict[str, str] = {
    "local": "deposit_services.messaging.local:LocalBroker",
    "sqlite": "deposit_services.messaging.local:LocalBroker",
    "postgresql": "deposit_services.messaging.local:LocalBroker",
    "stomp": "deposit_services.messaging.stomp:StompBroker",  # also stomp+ssl://
    "sqs": "deposit_services.messaging.sqs:SqsBroker",  # also sqs+http(s)://host:port
}


def broker_class(url: str) -> type[Broker]:
    scheme = url.partition(":")[0].split("+")[0].lower()
    cls: type[Broker] = load_adapter(BROKERS, scheme, Broker, "DEPOSIT_BROKER_URL scheme",
                                     ConfigurationError)
    return cls
