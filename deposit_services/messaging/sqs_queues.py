"""The SQS broker's queues: names resolved to URLs once and cached (created on
``?create=true``), and each queue's dead-letter queue: ``?dlq=`` if given, else the
target of the queue's RedrivePolicy, else ``<queue>-dlq``. A missing queue is a
ConfigurationError saying which setting names it."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from deposit_services.errors import BrokerUnavailable, ConfigurationError
from deposit_services.messaging.sqs_client import (
    MissingQueue,
    SqsEndpoint,
    default_dead_letter_queue,
    sqs_errors,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

log = logging.getLogger(__name__)


class SqsQueues:
    """The queues one broker uses (thread-safe). ``where`` names the broker in
    messages; ``max_deliveries`` is compared with a RedrivePolicy's maxReceiveCount."""

    def __init__(self, client: SQSClient, endpoint: SqsEndpoint, max_deliveries: int,
                 where: str) -> None:
        self._client = client
        self.endpoint = endpoint
        self.max_deliveries = max_deliveries
        self.where = where
        self._lock = threading.Lock()
        self._urls: dict[str, str] = {}  # queue name -> queue URL
        self._dead_letter_names: dict[str, str] = {}  # queue name -> its dead-letter queue

    def prepare(self, queue: str) -> None:
        """Resolve ``queue`` and its dead-letter queue now (at start-up); an SQS that
        cannot be reached defers that to the first use."""
        try:
            self.dead_letter_queue_for(queue)  # resolves the queue itself first
        except BrokerUnavailable as exc:
            log.warning("%s cannot be reached (%s); queue %s will be looked up on first use",
                        self.where, exc, queue)

    def queue_url(self, name: str, purpose: str = "queue") -> str:
        """The URL of queue ``name`` (looked up once; created on ``?create=true``)."""
        with self._lock:
            url = self._urls.get(name)
        if url is not None:
            return url
        try:
            with sqs_errors("lookup", name):
                url = self._client.get_queue_url(QueueName=name)["QueueUrl"]
        except MissingQueue as exc:
            if not self.endpoint.create:
                fix = ("fix its name (PASS_DEPOSIT_QUEUE_SUBMISSION_NAME / "
                       "PASS_DEPOSIT_QUEUE_DEPOSIT_NAME)" if purpose == "queue" else
                       "name another (?dlq=NAME in DEPOSIT_BROKER_URL, or the queue's "
                       "RedrivePolicy)")
                raise MissingQueue(
                    f"SQS {purpose} {name!r} does not exist ({self.where}): create it or "
                    f"{fix}; ?create=true in the URL creates missing queues (tests only)"
                ) from exc
            url = self._create(name)
        with self._lock:
            self._urls[name] = url
        return url

    def _create(self, name: str) -> str:
        attributes: dict[QueueAttributeNameType, str] = (
            {"FifoQueue": "true"} if name.endswith(".fifo") else {})
        with sqs_errors("create", name):
            url = self._client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        log.info("created SQS queue %s (create=true)", name)
        return url

    def dead_letter_queue_for(self, queue: str) -> str:
        """The name of ``queue``'s dead-letter queue: ``?dlq=`` if given, else the target
        of the queue's RedrivePolicy, else ``<queue>-dlq`` (``<name>-dlq.fifo`` for a
        FIFO queue). Both queues are looked up (or created) here."""
        with self._lock:
            known = self._dead_letter_names.get(queue)
        if known is not None:
            return known
        self.queue_url(queue)
        if self.endpoint.dead_letter_queue:
            name = self.endpoint.dead_letter_queue.replace("{queue}", queue)
        else:
            name = self._redrive_target(queue) or default_dead_letter_queue(queue)
        self.queue_url(name, f"dead-letter queue (of {queue})")
        with self._lock:
            self._dead_letter_names[queue] = name
        log.debug("dead letters of %s go to %s", queue, name)
        return name

    def dead_letter_queues(self, queues: Sequence[str]) -> list[str]:
        """The dead-letter queues of ``queues`` (none given: of every queue used)."""
        for queue in queues:
            self.dead_letter_queue_for(queue)
        with self._lock:
            return sorted({dlq for queue, dlq in self._dead_letter_names.items()
                           if not queues or queue in queues})

    def _redrive_target(self, queue: str) -> str | None:
        """The queue the operator made ``queue``'s dead-letter queue on the AWS side."""
        try:
            with sqs_errors("read attributes of", queue):
                attributes = self._client.get_queue_attributes(
                    QueueUrl=self.queue_url(queue), AttributeNames=["RedrivePolicy"]
                ).get("Attributes", {})
        except ConfigurationError as exc:
            log.warning("cannot read the RedrivePolicy of %s (%s); dead letters go to %s",
                        queue, exc, default_dead_letter_queue(queue))
            return None
        raw = attributes.get("RedrivePolicy")
        if not raw:
            return None
        try:
            policy = json.loads(raw)
            target = str(policy["deadLetterTargetArn"]).rpartition(":")[2]
            most = int(policy.get("maxReceiveCount", 0))
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable RedrivePolicy on %s: %r", queue, raw)
            return None
        if most and most <= self.max_deliveries:
            log.warning(
                "queue %s's RedrivePolicy moves a message to %s after %d receives, no more than "
                "DEPOSIT_MAX_DELIVERIES=%d: SQS will dead-letter failing messages before we "
                "do, without the reason; raise maxReceiveCount above %d", queue, target, most,
                self.max_deliveries, self.max_deliveries)
        return target or None
