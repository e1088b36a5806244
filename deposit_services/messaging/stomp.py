"""The STOMP adapter (ActiveMQ, RabbitMQ) on the ``stomp.py`` library.

``DEPOSIT_BROKER_URL=stomp://host:61613`` (``stomp+ssl://`` for TLS, see
stomp_connection.py), user and password from ``SPRING_ACTIVEMQ_USER`` /
``SPRING_ACTIVEMQ_PASSWORD`` or the URL. Subscriptions to ``/queue/<name>`` use
``client-individual`` acks and are made on the first ``receive`` asking for them. The
broker pushes messages to the connection's thread; ``receive`` takes them from
per-queue in-memory buffers that the broker's prefetch bounds (``activemq.prefetchSize``
and RabbitMQ's ``prefetch-count``, both sent, set to the worker concurrency).

Delivery attempts are counted by us, the same way on every broker, in an ``x-attempt``
header that travels with the message (so the count survives a crash of the consumer
or the broker, unlike a counter kept in memory or ActiveMQ's non-persistent
redelivery counter): ``nack`` republishes the message (persistent, after a short
backoff) with the next attempt number and acks the original, both in one STOMP
transaction (BEGIN, SEND, ACK, COMMIT with a receipt), so a crash in between leaves
the original and never two copies; once
``max_deliveries`` is reached it goes to ``DLQ.<queue>`` instead, with
``x-dead-letter-reason``, ``x-original-queue`` and ``x-attempts``. A STOMP NACK is
never sent: ActiveMQ treats it as a poison ack and moves the message to its own
``ActiveMQ.DLQ`` at once, RabbitMQ requeues it with no count. A message the broker marks
``redelivered`` (its consumer died or its connection was lost before settling) is
republished with the next attempt number before anyone processes it, so a message
that keeps killing its consumer is dead-lettered too. A body that is not UTF-8 text
is dead-lettered at once, bytes unchanged. Duplicates can still come from an ack lost
with its connection (the broker redelivers a message that was processed): the
service layer's claim (compare-and-set) makes them harmless.

Losing the broker: the connection reconnects by itself (stomp_connection.py) and
subscribes again; ``receive`` returns None meanwhile. Deliveries received on the lost
connection cannot be settled any more: settling one is logged and skipped, the broker
redelivers it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deposit_services.errors import BrokerUnavailable, MessagingError
from deposit_services.messaging.base import Broker, DeadLetter, Delivery
from deposit_services.messaging.stomp_connection import (
    HEARTBEATS_MS,
    RECONNECT_FIRST_S,
    RECONNECT_MAX_S,
    Endpoint,
    StompLink,
)
from deposit_services.messaging.stomp_headers import (
    ATTEMPT,
    ATTEMPTS,
    DELIVERY_HEADERS,
    LAST_ERROR,
    MESSAGE_ID,
    ORIGINAL_QUEUE,
    REASON,
    dead_letter_of,
    message_headers,
    one_line,
)
from deposit_services.settings import Settings

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT = 30.0
REDELIVERY_FIRST_S = 0.5
REDELIVERY_MAX_S = 10.0
DEAD_LETTER_QUEUE = "DLQ.{queue}"  # ActiveMQ's individual dead-letter naming
BROWSE_PREFETCH = 1000  # a dead-letter browse takes this many unacked at once
BROWSE_IDLE_S = 1.0  # ... and ends when nothing more came for this long

@dataclass(frozen=True)
class _Incoming:
    generation: int
    queue: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class _Token:
    generation: int
    ack_id: str


class StompBroker(Broker):
    """A STOMP connection shared by the worker threads; reconnects by itself."""

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        prefetch: int = 4,
        max_deliveries: int = 5,
        redelivery_delay: float = REDELIVERY_FIRST_S,
        redelivery_delay_max: float = REDELIVERY_MAX_S,
        dead_letter_queue: str = DEAD_LETTER_QUEUE,
        heartbeats: tuple[int, int] = HEARTBEATS_MS,
        reconnect_first: float = RECONNECT_FIRST_S,
        reconnect_max: float = RECONNECT_MAX_S,
        publish_timeout: float = PUBLISH_TIMEOUT,
    ) -> None:
        if max_deliveries < 1 or prefetch < 1:
            raise ValueError("max_deliveries and prefetch must be at least 1")
        self.endpoint = Endpoint.parse(url)
        self._url = url  # for the dead-letter browser's connection of its own
        self.user = user if user is not None else self.endpoint.user
        self.password = password if password is not None else self.endpoint.password
        self.prefetch = prefetch
        self.max_deliveries = max_deliveries
        self.redelivery_delay = redelivery_delay
        self.redelivery_delay_max = redelivery_delay_max
        self.dead_letter_queue = dead_letter_queue
        self.publish_timeout = publish_timeout

        self._subscriptions: dict[str, str] = {}  # queue -> subscription id
        self._by_id: dict[str, str] = {}  # subscription id -> queue
        self._cond = threading.Condition()  # the in-memory buffers
        self._inbox: dict[str, deque[_Incoming]] = {}
        self._rotation = 0
        self._timers: set[threading.Timer] = set()
        self._closed = threading.Event()
        self._link = StompLink(
            self.endpoint, user=self.user, password=self.password,
            on_message=self._on_message, on_connected=self._on_connected,
            on_lost=self._on_lost, heartbeats=heartbeats,
            reconnect_first=reconnect_first, reconnect_max=reconnect_max,
        )
        self._link.start()

    @classmethod
    def from_settings(cls, settings: Settings) -> StompBroker:
        """User and password from SPRING_ACTIVEMQ_USER/PASSWORD, else the URL's userinfo;
        prefetch = the worker concurrency (no message waits behind a busy thread)."""
        return cls(
            settings.broker_url,
            user=settings.broker_user,
            password=settings.broker_password,
            prefetch=max(settings.workers_concurrency, 1),
            max_deliveries=settings.max_deliveries,
        )

    # Connection -------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._link.connected

    def wait_connected(self, timeout: float) -> bool:
        """True once connected (the first connection is made in the background)."""
        return self._link.wait_connected(timeout)

    def _on_connected(self, conn: Any) -> None:
        for queue, sub_id in self._subscriptions.items():
            self._subscribe(conn, queue, sub_id)

    def _on_lost(self) -> None:
        with self._cond:
            dropped = sum(len(buffer) for buffer in self._inbox.values())
            for buffer in self._inbox.values():
                buffer.clear()
        if not self._link.closing:
            log.warning("connection to broker %s lost; reconnecting (%d prefetched message(s) "
                        "left to the broker to redeliver)", self.endpoint, dropped)

    # Subscriptions and receiving --------------------------------------------------

    def _subscribe(self, conn: Any, queue: str, sub_id: str) -> None:
        try:
            conn.subscribe(
                destination=f"/queue/{queue}", id=sub_id, ack="client-individual",
                headers={"activemq.prefetchSize": str(self.prefetch),
                         "prefetch-count": str(self.prefetch)},
            )
        except Exception as exc:  # noqa: BLE001 - any failure: the next connection retries
            log.warning("subscribing to %s failed (%s); it will be retried on reconnection",
                        queue, exc)

    def _ensure_subscribed(self, queues: Sequence[str]) -> None:
        if all(queue in self._subscriptions for queue in queues):
            return  # the usual case, without the connection's lock
        with self._link.lock:
            for queue in queues:
                if queue in self._subscriptions:
                    continue
                sub_id = f"sub-{len(self._subscriptions)}"
                self._subscriptions[queue] = sub_id
                self._by_id[sub_id] = queue
                with self._cond:
                    self._inbox.setdefault(queue, deque())
                try:
                    conn, _ = self._link.current()
                except BrokerUnavailable:
                    continue  # subscribed on connection
                self._subscribe(conn, queue, sub_id)

    def _on_message(self, generation: int, headers: dict[str, str], body: bytes) -> None:
        queue = self._by_id.get(headers.get("subscription", ""))
        if queue is None:
            log.warning("message for unknown subscription %r ignored", headers.get("subscription"))
            return
        with self._cond:
            self._inbox.setdefault(queue, deque()).append(
                _Incoming(generation, queue, headers, body))
            self._cond.notify()

    def _next(self, queues: Sequence[str], deadline: float) -> _Incoming | None:
        with self._cond:
            while True:
                if self._closed.is_set():
                    return None
                self._rotation += 1
                for i in range(len(queues)):
                    buffer = self._inbox.get(queues[(self._rotation + i) % len(queues)])
                    if buffer:
                        return buffer.popleft()
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def receive(self, queues: Sequence[str], timeout: float) -> Delivery | None:
        """The next message; None on timeout, while disconnected and once closed."""
        if not queues:
            raise ValueError("receive needs at least one queue")
        if self._closed.is_set():
            return None
        self._ensure_subscribed(queues)
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            item = self._next(queues, deadline)
            if item is None:
                return None
            if item.generation != self._link.generation:
                continue  # from a lost connection: the broker redelivers it
            try:
                text = item.body.decode("utf-8")
            except UnicodeDecodeError as exc:
                self._settle_quietly(self._delivery(item, ""), "dead-letter",
                                     f"message body is not UTF-8 text: {exc}", item.body)
                continue
            delivery = self._delivery(item, text)
            if item.headers.get("redelivered", "").lower() == "true":
                self._count_redelivery(delivery)
                continue
            return delivery

    @staticmethod
    def _attempt(headers: Mapping[str, str]) -> int:
        try:
            return max(int(headers.get(ATTEMPT, "1")), 1)
        except ValueError:
            return 1

    def _delivery(self, item: _Incoming, text: str) -> Delivery:
        return Delivery(
            queue=item.queue,
            body=text,
            headers=item.headers,
            message_id=item.headers.get(MESSAGE_ID) or item.headers.get("message-id", ""),
            delivery_count=self._attempt(item.headers),
            token=_Token(item.generation, item.headers.get("ack", "")),
        )

    def _count_redelivery(self, delivery: Delivery) -> None:
        """The broker gave it back unsettled (consumer or connection lost): one attempt."""
        if delivery.delivery_count >= self.max_deliveries:
            self._settle_quietly(delivery, "dead-letter",
                                 f"not settled after {delivery.delivery_count} deliveries "
                                 "(consumer died or connection lost each time)")
        else:
            log.info("message %s on %s came back unsettled; counted as attempt %d",
                     delivery.message_id, delivery.queue, delivery.delivery_count)
            self._settle_quietly(delivery, "republish", "redelivered unsettled")

    def _settle_quietly(self, delivery: Delivery, action: str, reason: str,
                        raw: bytes | None = None) -> None:
        """Settle from inside ``receive`` or a timer: a broker failure is logged (the
        message stays unacked and the broker redelivers it), never raised."""
        try:
            if action == "republish":
                self._republish(delivery, delivery.delivery_count + 1, reason)
            else:
                self._dead_letter(delivery, reason, raw)
        except MessagingError as exc:
            log.warning("could not %s message %s on %s (%s); the broker keeps it", action,
                        delivery.message_id, delivery.queue, exc)

    # Publishing -------------------------------------------------------------------

    def publish(self, queue: str, body: str, headers: Mapping[str, str] | None = None) -> None:
        """Send persistently and wait for the broker's receipt (retried on reconnection).

        No content-length header: ActiveMQ then makes it a JMS TextMessage, which is
        what pass-core's listeners expect."""
        frame_headers = {k: str(v) for k, v in (headers or {}).items()}
        frame_headers["persistent"] = "true"
        frame_headers.setdefault(MESSAGE_ID, uuid.uuid4().hex)
        deadline = time.monotonic() + self.publish_timeout
        problem = "not connected"
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self._link.closing:
                raise BrokerUnavailable(
                    f"publishing to {queue} on {self.endpoint} failed: {problem}")
            if not self._link.wait_connected(min(left, 1.0)):
                continue
            try:
                self._link.send_confirmed(f"/queue/{queue}", body, frame_headers, deadline)
            except BrokerUnavailable as exc:
                problem = str(exc)
                continue
            log.debug("published to %s", queue)
            return

    # Settling ---------------------------------------------------------------------

    def _held(self, delivery: Delivery, action: str) -> bool:
        token: _Token = delivery.token
        if not self._link.holds(token.generation):
            log.warning("cannot %s message %s on %s: it was received on a connection that has "
                        "since been lost; the broker will redeliver it", action,
                        delivery.message_id, delivery.queue)
            return False
        return True

    def ack(self, delivery: Delivery) -> None:
        if not self._held(delivery, "ack"):
            return
        token: _Token = delivery.token
        try:
            self._link.ack(token.ack_id, token.generation)
        except BrokerUnavailable as exc:
            log.warning("ack of message %s on %s lost with the connection (%s); the broker "
                        "will redeliver it", delivery.message_id, delivery.queue, exc)

    def nack(self, delivery: Delivery, reason: str) -> None:
        if not self._held(delivery, "nack"):
            return
        if delivery.delivery_count >= self.max_deliveries:
            self._dead_letter(delivery, f"{reason} (after {delivery.delivery_count} attempts)")
            return
        delay = min(self.redelivery_delay * 2 ** (delivery.delivery_count - 1),
                    self.redelivery_delay_max)
        log.info("message %s on %s nacked (attempt %d), redelivery in %.1f s: %s",
                 delivery.message_id, delivery.queue, delivery.delivery_count, delay, reason)
        if delay <= 0:
            self._republish(delivery, delivery.delivery_count + 1, reason)
            return
        # The original stays unacked (and invisible) until the copy is published.
        timer = threading.Timer(delay, self._delayed_republish, args=(delivery, reason))
        timer.daemon = True
        with self._cond:
            self._timers.add(timer)
        timer.start()

    def _delayed_republish(self, delivery: Delivery, reason: str) -> None:
        with self._cond:
            self._timers = {t for t in self._timers if t.is_alive()}
        if self._held(delivery, "redeliver"):
            self._settle_quietly(delivery, "republish", reason)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        if self._held(delivery, "dead-letter"):
            self._dead_letter(delivery, reason)

    def dead_letter_queue_for(self, queue: str) -> str:
        return self.dead_letter_queue.format(queue=queue)

    @staticmethod
    def _carried(delivery: Delivery) -> dict[str, str]:
        headers = {k: v for k, v in delivery.headers.items() if k not in DELIVERY_HEADERS}
        headers[MESSAGE_ID] = delivery.message_id
        return headers

    def _republish(self, delivery: Delivery, attempt: int, reason: str) -> None:
        headers = self._carried(delivery)
        headers[ATTEMPT] = str(attempt)
        headers[LAST_ERROR] = one_line(reason)
        self._move(delivery, delivery.queue, delivery.body, headers)

    def _dead_letter(self, delivery: Delivery, reason: str, raw: bytes | None = None) -> None:
        headers = self._carried(delivery)
        headers.update({
            REASON: one_line(reason),
            ORIGINAL_QUEUE: delivery.queue,
            ATTEMPTS: str(delivery.delivery_count),
        })
        dlq = self.dead_letter_queue_for(delivery.queue)
        self._move(delivery, dlq, raw if raw is not None else delivery.body, headers)
        log.warning("message %s on %s dead-lettered to %s after %d attempt(s): %s",
                    delivery.message_id, delivery.queue, dlq, delivery.delivery_count, reason)

    def _move(self, delivery: Delivery, queue: str, body: str | bytes,
              headers: dict[str, str]) -> None:
        """The copy published and the original acked in one transaction, on the
        connection the original came on (BrokerUnavailable if it is gone: the broker
        then redelivers the original, and nothing was published)."""
        token: _Token = delivery.token
        headers["persistent"] = "true"
        if isinstance(body, bytes):  # raw bytes (a JMS BytesMessage); text has none
            headers["content-length"] = str(len(body))
        self._link.move(token.ack_id, token.generation, f"/queue/{queue}", body, headers,
                        time.monotonic() + self.publish_timeout)

    # Dead letters (the operator's) -------------------------------------------------

    def dead_letters(self, queues: Sequence[str] = ()) -> list[DeadLetter]:
        """The messages of ``queues``' dead-letter queues (``DLQ.<queue>``), browsed on a
        connection of its own and left in place (unacked, given back on disconnect).
        Ids are our ``x-message-id``."""
        return [letter for letter, _ in self._sweep(queues, lambda letter: "keep")]

    def requeue_dead_letters(self, ids: Sequence[str] | None,
                             queues: Sequence[str] = ()) -> list[str]:
        """Each chosen dead letter republished on its original queue and acked in one
        STOMP transaction (the move the worker uses), its attempt count reset."""
        return self._act(ids, queues, "requeue")

    def purge_dead_letters(self, ids: Sequence[str] | None,
                           queues: Sequence[str] = ()) -> list[str]:
        return self._act(ids, queues, "purge")

    def _act(self, ids: Sequence[str] | None, queues: Sequence[str], action: str
             ) -> list[str]:
        wanted = None if ids is None else set(ids)
        done = [letter.id for letter, taken in self._sweep(
            queues, lambda letter: action if wanted is None or letter.id in wanted else "keep")
            if taken != "keep"]
        log.info("%s %d dead letter(s)", "requeued" if action == "requeue" else "purged",
                 len(done))
        return done

    def _sweep(self, queues: Sequence[str], choose: Any) -> list[tuple[DeadLetter, str]]:
        """Browse the dead-letter queues of ``queues`` until they stay quiet for
        ``BROWSE_IDLE_S``; ``choose(letter)`` says "keep", "requeue" or "purge"."""
        if not queues:
            raise ValueError("STOMP dead-letter queues are per queue: name the queues")
        browser = StompBroker(self._url, user=self.user, password=self.password,
                              prefetch=BROWSE_PREFETCH, publish_timeout=self.publish_timeout,
                              dead_letter_queue=self.dead_letter_queue)
        seen: list[tuple[DeadLetter, str]] = []
        try:
            if not browser.wait_connected(self.publish_timeout):
                raise BrokerUnavailable(f"cannot connect to {self.endpoint} to browse the "
                                        "dead-letter queues")
            dlqs = [self.dead_letter_queue_for(queue) for queue in queues]
            browser._ensure_subscribed(dlqs)
            while (item := browser._next(dlqs, time.monotonic() + BROWSE_IDLE_S)) is not None:
                letter = dead_letter_of(item.headers, item.body)
                action = str(choose(letter))
                if action != "keep" and not letter.queue:
                    log.warning("dead letter %s on %s names no original queue; left there",
                                letter.id, item.queue)
                    action = "keep"
                if action == "requeue":
                    headers = message_headers(item.headers)
                    headers[MESSAGE_ID] = letter.id
                    browser._link.move(item.headers.get("ack", ""), item.generation,
                                       f"/queue/{letter.queue}", item.body, headers,
                                       time.monotonic() + self.publish_timeout)
                elif action == "purge":
                    browser._link.ack(item.headers.get("ack", ""), item.generation)
                seen.append((letter, action))
        finally:
            browser.close()
        return seen

    # Shutting down ----------------------------------------------------------------

    def close(self) -> None:
        """Stop handing out messages, then disconnect cleanly (DISCONNECT with a receipt:
        the acks sent before it count).

        What was prefetched but not handed out goes back to the broker, marked
        redelivered, and is counted as one attempt when it comes again (a hand-back
        before disconnecting cannot be made safe: ActiveMQ requeues a consumer's
        unacked messages as soon as it unsubscribes, so a republished copy would
        double them). Pending delayed redeliveries are cancelled: their originals stay
        unacked and the broker redelivers them."""
        with self._cond:
            self._closed.set()
            self._cond.notify_all()
            timers, self._timers = self._timers, set()
        for timer in timers:
            timer.cancel()
        self._link.close()
