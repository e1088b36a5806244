"""The SQS adapter (Amazon SQS; LocalStack, ElasticMQ or moto behind an endpoint override).

pass-core publishes its SubmissionReady and DepositStatus messages on SQS when it runs
with ``PASS_CORE_USE_SQS=true`` (the default of its production profile), as JMS text
messages through Amazon's JMS library: the JSON body as the SQS body, the JMS ``type``
property as a String message attribute. URL forms, region, credentials and the
dead-letter queue's name are described in sqs_client.py, the queues in sqs_queues.py.

Queue names (``PASS_DEPOSIT_QUEUE_*_NAME``) are resolved to queue URLs once and cached;
the broker's own queues and their dead-letter queues are resolved at start-up, so a
missing one is a ConfigurationError then (unless ``?create=true``); an SQS that cannot
be reached at start-up only defers that to the first use.

Semantics, the port's (base.py) in SQS terms:

- receive: one message per call, long polling (``WaitTimeSeconds`` up to the timeout, at
  most 20 s). SQS has no receive from several queues: they are polled in turn, one
  short long-poll each (``MULTI_QUEUE_WAIT_S``), starting from the next queue at every
  call, so none starves. The message is invisible for ``lease_seconds`` (its visibility
  timeout), ``touch`` extends that (ChangeMessageVisibility) while a deposit runs, and a
  consumer that dies without settling gets it redelivered once that runs out.
- attempts: SQS's ApproximateReceiveCount, which counts every receive and survives
  any consumer. A message received more than ``max_deliveries`` times without being
  settled (its consumers kept dying) is dead-lettered on that receive.
- ack: DeleteMessage. nack: ChangeMessageVisibility to a growing delay (the message
  comes back then); at ``max_deliveries`` it is dead-lettered instead.
- dead_letter: the body and attributes copied to the dead-letter queue with
  ``x-dead-letter-reason``, ``x-original-queue``, ``x-attempts`` and ``x-message-id``,
  then the original deleted. Not atomic: a crash in between leaves the original to come
  back (and a second copy may reach the dead-letter queue): at-least-once, like the rest.
- SQS itself never loses track of a receipt handle's owner: a handle from before the
  message was received again may still delete it (SQS's rule), so a consumer whose
  visibility ran out should not ack; the service layer's claims make the duplicate
  processing this allows harmless.

A queue's own RedrivePolicy still applies: SQS moves a message to its target after
``maxReceiveCount`` receives, without our reason; keep that count above
``DEPOSIT_MAX_DELIVERIES`` (a warning at start-up says so).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from deposit_services.errors import MessagingError
from deposit_services.messaging.base import Broker, DeadLetter, Delivery
from deposit_services.messaging.sqs_client import (
    MAX_WAIT_S,
    LeaseLost,
    SqsEndpoint,
    check_headers,
    dead_letter_attributes,
    dead_letter_from,
    header_value,
    make_client,
    sqs_errors,
    string_attributes,
)
from deposit_services.messaging.sqs_queues import SqsQueues
from deposit_services.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_sqs.literals import QueueAttributeFilterType
    from mypy_boto3_sqs.type_defs import (
        ChangeMessageVisibilityBatchRequestEntryTypeDef,
        MessageAttributeValueOutputTypeDef,
        MessageAttributeValueTypeDef,
        MessageTypeDef,
    )

log = logging.getLogger(__name__)

REDELIVERY_FIRST_S = 1.0
REDELIVERY_MAX_S = 60.0
MULTI_QUEUE_WAIT_S = 1  # one long poll per queue, in turn, when receiving from several
MAX_VISIBILITY_S = 43_200  # SQS's limit (12 hours)
LIST_HIDE_S = 30  # dead letters hidden while dead_letters() pages through them
_SYSTEM_ATTRIBUTES: Sequence[QueueAttributeFilterType] = ("ApproximateReceiveCount",
                                                           "SentTimestamp")


@dataclass(frozen=True)
class _Receipt:
    """A delivery's handle: where it came from, and the attributes to carry on."""

    queue_url: str
    handle: str
    attributes: Mapping[str, MessageAttributeValueOutputTypeDef]


def _seconds(value: float) -> int:
    """A visibility timeout in whole seconds, as SQS takes it (rounded up)."""
    return min(max(math.ceil(value), 0), MAX_VISIBILITY_S)


class SqsBroker(Broker):
    """One boto3 SQS client shared by the worker threads (boto3 clients are thread-safe)."""

    def __init__(
        self,
        url: str,
        *,
        queues: Sequence[str] = (),
        max_deliveries: int = 5,
        lease_seconds: float = 120.0,
        redelivery_delay: float = REDELIVERY_FIRST_S,
        redelivery_delay_max: float = REDELIVERY_MAX_S,
        max_connections: int = 10,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """``queues`` are resolved (with their dead-letter queues) now: a missing one is a
        ConfigurationError at start-up. ``environ`` is read for AWS_REGION only (boto3
        reads its own variables)."""
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        self.endpoint = SqsEndpoint.parse(url)
        self.max_deliveries = max_deliveries
        self.visibility = max(_seconds(lease_seconds), 1)
        self.redelivery_delay = redelivery_delay
        self.redelivery_delay_max = redelivery_delay_max
        self._client, self.region = make_client(
            self.endpoint, max_connections=max_connections,
            environ=os.environ if environ is None else environ)
        self.queues = SqsQueues(self._client, self.endpoint, max_deliveries, str(self))
        self._rotation = itertools.count()
        self._closed = threading.Event()
        try:
            for queue in queues:
                self.queues.prepare(queue)
        except BaseException:
            self._client.close()
            raise

    @classmethod
    def from_settings(cls, settings: Settings) -> SqsBroker:
        """The submission and deposit queues resolved now; a connection per worker thread
        (and a few for the outbox and the jobs)."""
        return cls(
            settings.broker_url,
            queues=(settings.queue_submission, settings.queue_deposit),
            max_deliveries=settings.max_deliveries,
            lease_seconds=settings.lease_seconds,
            max_connections=max(settings.workers_concurrency + 4, 10),
        )

    def __str__(self) -> str:
        return f"{self.endpoint} (region {self.region})"

    # Publishing ---------------------------------------------------------------------

    def publish(self, queue: str, body: str, headers: Mapping[str, str] | None = None) -> None:
        """SendMessage; every header as a String message attribute (``type`` among them,
        as pass-core sends it). Durable once SQS has answered."""
        attributes = string_attributes(check_headers(headers or {}))
        self._send(queue, self.queues.queue_url(queue), body, attributes, "publish")
        log.debug("published to %s", queue)

    def _send(self, queue: str, url: str, body: str,
              attributes: Mapping[str, MessageAttributeValueTypeDef], action: str) -> None:
        with sqs_errors(action, queue):
            if url.endswith(".fifo"):  # no ordering asked of us: a group per message
                self._client.send_message(
                    QueueUrl=url, MessageBody=body, MessageAttributes=attributes,
                    MessageGroupId=uuid.uuid4().hex, MessageDeduplicationId=uuid.uuid4().hex)
            else:
                self._client.send_message(QueueUrl=url, MessageBody=body,
                                          MessageAttributes=attributes)

    # Receiving ----------------------------------------------------------------------

    def receive(self, queues: Sequence[str], timeout: float) -> Delivery | None:
        """The next message of any of ``queues``; None once ``timeout`` has passed (give
        or take half a second: SQS waits whole seconds) and once closed."""
        if not queues:
            raise ValueError("receive needs at least one queue")
        deadline = time.monotonic() + max(timeout, 0.0)
        per_poll = MAX_WAIT_S if len(queues) == 1 else MULTI_QUEUE_WAIT_S
        start = next(self._rotation)
        while not self._closed.is_set():
            for i in range(len(queues)):
                queue = queues[(start + i) % len(queues)]
                wait = min(per_poll, max(int(deadline - time.monotonic() + 0.5), 0))
                delivery = self._poll(queue, wait)
                if delivery is not None:
                    return delivery
                if self._closed.is_set():
                    return None
            if deadline - time.monotonic() < 0.5:
                return None
        return None

    def _poll(self, queue: str, wait: int) -> Delivery | None:
        url = self.queues.queue_url(queue)
        with sqs_errors("receive", queue):
            messages = self._client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=wait,
                VisibilityTimeout=self.visibility, MessageAttributeNames=["All"],
                AttributeNames=_SYSTEM_ATTRIBUTES,
            ).get("Messages", [])
        if not messages:
            return None
        delivery = self._delivery(queue, url, messages[0])
        if delivery.delivery_count > self.max_deliveries:
            # Its consumers kept dying (or their visibility ran out) before settling it.
            unsettled = delivery.delivery_count - 1
            try:
                self._dead_letter(delivery, f"not settled after {unsettled} deliveries (consumer "
                                  "died or visibility timeout expired each time)", unsettled)
            except MessagingError as exc:
                log.warning("could not dead-letter message %s on %s (%s); it comes back in "
                            "%d s", delivery.message_id, queue, exc, self.visibility)
            return None
        return delivery

    def _delivery(self, queue: str, url: str, message: MessageTypeDef) -> Delivery:
        attributes = message.get("MessageAttributes", {})
        system = message.get("Attributes", {})
        try:
            attempt = max(int(system.get("ApproximateReceiveCount", "1")), 1)
        except ValueError:
            attempt = 1
        message_id = message.get("MessageId", "")
        if log.isEnabledFor(logging.DEBUG) and "SentTimestamp" in system:
            age = time.time() - int(system["SentTimestamp"]) / 1000
            log.debug("received %s on %s (attempt %d, sent %.1f s ago)", message_id, queue,
                      attempt, age)
        return Delivery(
            queue=queue,
            body=message.get("Body", ""),
            headers={name: header_value(value) for name, value in attributes.items()},
            message_id=message_id,
            delivery_count=attempt,
            token=_Receipt(url, message.get("ReceiptHandle", ""), attributes),
        )

    # Settling -----------------------------------------------------------------------

    @staticmethod
    def _receipt(delivery: Delivery) -> _Receipt:
        if not isinstance(delivery.token, _Receipt):
            raise MessagingError(f"delivery {delivery.message_id} was not received from SQS")
        return delivery.token

    def ack(self, delivery: Delivery) -> None:
        receipt = self._receipt(delivery)
        try:
            with sqs_errors("ack", delivery.queue):
                self._client.delete_message(QueueUrl=receipt.queue_url,
                                            ReceiptHandle=receipt.handle)
        except LeaseLost as exc:
            log.warning("ack of message %s on %s ignored: its receipt is no longer valid (%s)",
                        delivery.message_id, delivery.queue, exc)

    def _set_visibility(self, delivery: Delivery, seconds: int, action: str) -> bool:
        """False (logged) if the receipt no longer holds the message."""
        receipt = self._receipt(delivery)
        try:
            with sqs_errors(action, delivery.queue):
                self._client.change_message_visibility(
                    QueueUrl=receipt.queue_url, ReceiptHandle=receipt.handle,
                    VisibilityTimeout=seconds)
        except LeaseLost as exc:
            log.warning("cannot %s message %s on %s: its receipt is no longer valid (settled, "
                        "or its visibility ran out and it was received again): %s", action,
                        delivery.message_id, delivery.queue, exc)
            return False
        return True

    def touch(self, delivery: Delivery) -> None:
        """Still working on it: invisible for another ``lease_seconds`` from now."""
        self._set_visibility(delivery, self.visibility, "extend the visibility of")

    def nack(self, delivery: Delivery, reason: str) -> None:
        if delivery.delivery_count >= self.max_deliveries:
            self._dead_letter(delivery, f"{reason} (after {delivery.delivery_count} attempts)",
                              delivery.delivery_count)
            return
        delay = min(self.redelivery_delay * 2 ** (delivery.delivery_count - 1),
                    self.redelivery_delay_max)
        if self._set_visibility(delivery, _seconds(delay), "nack"):
            log.info("message %s on %s nacked (attempt %d), redelivery in %d s: %s",
                     delivery.message_id, delivery.queue, delivery.delivery_count, _seconds(delay),
                     reason)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self._dead_letter(delivery, reason, delivery.delivery_count)

    def _dead_letter(self, delivery: Delivery, reason: str, attempts: int) -> None:
        """Hold it (a receipt that lost the message copies nothing), copy it to the
        dead-letter queue, delete the original."""
        if not self._set_visibility(delivery, self.visibility, "dead-letter"):
            return
        dead_letter_queue = self.queues.dead_letter_queue_for(delivery.queue)
        attributes = dead_letter_attributes(
            self._receipt(delivery).attributes, reason=reason, queue=delivery.queue,
            attempts=attempts, message_id=delivery.message_id)
        self._send(dead_letter_queue, self.queues.queue_url(dead_letter_queue), delivery.body,
                   attributes, "dead-letter")
        receipt = self._receipt(delivery)
        try:
            with sqs_errors("delete the dead-lettered", delivery.queue):
                self._client.delete_message(QueueUrl=receipt.queue_url,
                                            ReceiptHandle=receipt.handle)
        except LeaseLost as exc:
            log.warning("message %s copied to %s but not deleted from %s (%s): it may come "
                        "again", delivery.message_id, dead_letter_queue, delivery.queue, exc)
        log.warning("message %s on %s dead-lettered to %s after %d attempt(s): %s",
                    delivery.message_id, delivery.queue, dead_letter_queue, attempts, reason)

    # Listing dead letters -----------------------------------------------------------

    def dead_letters(self, queues: Sequence[str] = ()) -> list[DeadLetter]:
        """The dead-letter queues of ``queues`` (default: every queue this broker has
        used), read without consuming them: each message is received (hidden
        ``LIST_HIDE_S`` s at most, so a page never repeats), then made visible again at
        once. Costs a second of long polling per queue; concurrent listings may each see
        part. Ids are the dead-letter queue's message ids."""
        letters: list[DeadLetter] = []
        for name in self.queues.dead_letter_queues(queues):
            letters.extend(self._list(name))
        return letters

    def requeue_dead_letters(self, ids: Sequence[str] | None,
                             queues: Sequence[str] = ()) -> list[str]:
        """Each chosen dead letter sent to its original queue, then deleted from the
        dead-letter queue (a crash in between leaves a copy in both: at-least-once)."""
        return self._sweep(ids, queues, requeue=True)

    def purge_dead_letters(self, ids: Sequence[str] | None,
                           queues: Sequence[str] = ()) -> list[str]:
        return self._sweep(ids, queues, requeue=False)

    def _sweep(self, ids: Sequence[str] | None, queues: Sequence[str], requeue: bool
               ) -> list[str]:
        """Browse the dead-letter queues as ``dead_letters`` does; the chosen messages
        are requeued (or not) and deleted, the others released at once."""
        wanted = None if ids is None else set(ids)
        done: list[str] = []
        for name in self.queues.dead_letter_queues(queues):
            url = self.queues.queue_url(name)
            keep: list[str] = []
            try:
                for message in self._browse(url, name):
                    message_id = message.get("MessageId", "")
                    handle = message.get("ReceiptHandle", "")
                    letter = dead_letter_from(message)
                    chosen = (wanted is None or message_id in wanted) and (
                        message_id not in done)
                    if chosen and requeue and not letter.queue:
                        log.warning("dead letter %s on %s names no original queue; "
                                    "left where it is", message_id, name)
                        chosen = False
                    if not chosen:
                        keep.append(handle)
                        continue
                    if requeue:
                        self.publish(letter.queue, letter.body, dict(letter.headers))
                    with sqs_errors("delete the dead letter", name):
                        self._client.delete_message(QueueUrl=url, ReceiptHandle=handle)
                    done.append(message_id)
            finally:
                self._release(url, name, keep)
        log.info("%s %d dead letter(s)", "requeued" if requeue else "purged", len(done))
        return done

    def _list(self, name: str) -> list[DeadLetter]:
        url = self.queues.queue_url(name)
        found: dict[str, tuple[int, DeadLetter]] = {}
        handles: list[str] = []
        try:
            for message in self._browse(url, name):
                handles.append(message.get("ReceiptHandle", ""))
                sent = int(message.get("Attributes", {}).get("SentTimestamp", "0") or 0)
                letter = replace(dead_letter_from(message), id=message.get("MessageId", ""))
                found.setdefault(letter.id, (sent, letter))
        finally:
            self._release(url, name, handles)
        return [letter for _, letter in sorted(found.values(), key=lambda item: item[0])]

    def _browse(self, url: str, name: str) -> Iterator[Any]:
        """Every message of a dead-letter queue, each hidden for LIST_HIDE_S while it is
        looked at (the caller releases or deletes it)."""
        while True:
            with sqs_errors("browse", name):
                messages = self._client.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                    VisibilityTimeout=LIST_HIDE_S, MessageAttributeNames=["All"],
                    AttributeNames=_SYSTEM_ATTRIBUTES,
                ).get("Messages", [])
            if not messages:
                return
            yield from messages

    def _release(self, url: str, name: str, handles: list[str]) -> None:
        for start in range(0, len(handles), 10):
            entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for i, handle in enumerate(handles[start:start + 10])]
            try:
                with sqs_errors("release listed messages of", name):
                    self._client.change_message_visibility_batch(
                        QueueUrl=url, Entries=entries)
            except MessagingError as exc:
                log.warning("listed dead letters of %s not released (%s); they reappear "
                            "within %d s", name, exc, LIST_HIDE_S)

    def close(self) -> None:
        """No thread of ours runs; the client's connections are closed. Unsettled
        deliveries come back when their visibility timeout runs out."""
        self._closed.set()
        self._client.close()

