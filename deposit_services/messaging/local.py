"""The durable local queue: a broker in SQL tables (SQLite or PostgreSQL).

The embedded set-up needs no broker process: messages live in ``queue_messages`` in
the same database as the store (schema.py). Receiving leases a message: a random
token and ``lease_until``; the message is invisible until the lease ends, so a
consumer that dies without settling gets it redelivered. Settling checks the token,
so a consumer whose lease ran out (and whose message went to someone else) cannot
ack or nack the new holder's delivery. A message that keeps failing moves to
``queue_dead_letters`` with its reason after ``max_deliveries`` attempts.

Claiming is one ``UPDATE ... WHERE id = (SELECT ... LIMIT 1) RETURNING``: on
PostgreSQL the inner select is ``FOR UPDATE SKIP LOCKED`` (competing consumers skip
each other's rows); on SQLite ``BEGIN IMMEDIATE`` serialises writers, and an empty
queue is checked first with one read so idle pollers do not queue for the write lock.

An idle queue is not polled on PostgreSQL: ``enqueue`` notifies ``CHANNEL`` in the
inserting transaction, each broker LISTENs on a connection of its own, and an empty
claim also reads when the earliest invisible message (nack'd, or leased by a consumer
that may die) becomes visible; local_wakeup.py decides who claims and when. SQLite has
no NOTIFY: it polls, but a publish in this process wakes its consumers at once.
``enqueue`` also lets the SQL store publish inside its own transaction (the message
exists exactly when the state it announces was committed).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, delete, func, insert, literal, select, update
from sqlalchemy.engine import Connection, Row

from deposit_services.errors import (
    BrokerUnavailable,
    MessagingError,
    StoreError,
    StoreUnavailable,
)
from deposit_services.messaging.base import Broker, DeadLetter, Delivery
from deposit_services.messaging.local_wakeup import ClaimOutcome, NotifyListener, Wakeup
from deposit_services.settings import Settings
from deposit_services.store.engine import READ_ONLY, db_errors, make_engine, masked, now_expression
from deposit_services.store.schema import ensure_schema, queue_dead_letters, queue_messages

log = logging.getLogger(__name__)

REDELIVERY_CAP_S = 60.0
LOCAL_SCHEMES = ("local", "local:", "local://")
CHANNEL = "deposit_services_queue"  # PostgreSQL NOTIFY channel; the payload is the queue


def enqueue(conn: Connection, queue: str, body: str,
            headers: Mapping[str, str] | None = None) -> None:
    """Insert the message into queue_messages within the caller's transaction (and, on
    PostgreSQL, pg_notify the channel so listeners wake at commit).

    A unit of work on the queue's database publishes this way as part of its own
    transaction; after committing it calls ``LocalBroker.wake`` so that this process's
    consumers look at once (the only way they learn of it on SQLite).
    """
    now = now_expression(conn.engine)
    row = insert(queue_messages).values(
        queue=queue,
        body=body,
        headers=json.dumps(dict(headers or {}), sort_keys=True),
        attempts=0,
        available_at=now,
        created_at=now,
    )
    if conn.dialect.name != "postgresql":
        conn.execute(row)
        return
    # One round trip: the notification goes out at commit, and never on rollback.
    inserted = row.returning(queue_messages.c.queue).cte("inserted")
    conn.execute(select(func.pg_notify(literal(CHANNEL), inserted.c.queue)))


class LocalBroker(Broker):
    """A durable queue in SQL tables, shared by threads and processes on one database."""

    def __init__(
        self,
        url: str,
        *,
        max_deliveries: int = 5,
        lease_seconds: float = 120.0,
        redelivery_delay: float = 1.0,
    ) -> None:
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        self.max_deliveries = max_deliveries
        self.lease_seconds = lease_seconds
        self.redelivery_delay = redelivery_delay
        self._engine: Engine = make_engine(url)
        self._where = masked(self._engine)
        self._now = now_expression(self._engine)
        self._postgres = self._engine.dialect.name == "postgresql"
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self._wakeup = Wakeup()
        self._listener: NotifyListener | None = None
        with self._errors():
            ensure_schema(self._engine)
        if self._postgres:
            # Started by the first receive: a broker that only publishes never listens.
            parsed = self._engine.url
            self._listener = NotifyListener(
                {**parsed.translate_connect_args(username="user", database="dbname"),
                 **dict(parsed.query)},
                CHANNEL, self._wakeup, self._where,
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBroker:
        """On ``local:`` the store's database; otherwise the broker URL is a database URL."""
        url = settings.broker_url
        if url.strip().lower() in LOCAL_SCHEMES:
            url = settings.store_url
        return cls(
            url,
            max_deliveries=settings.max_deliveries,
            lease_seconds=settings.lease_seconds,
        )

    # Plumbing ---------------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Database failures as messaging errors (the engine and schema code raise the
        store's; a queue user expects the broker's)."""
        try:
            with db_errors(self._where, unavailable=BrokerUnavailable, failed=MessagingError):
                yield
        except StoreUnavailable as error:
            raise BrokerUnavailable(str(error)) from error
        except StoreError as error:
            raise MessagingError(str(error)) from error

    @contextmanager
    def _tx(self, *, read_only: bool = False) -> Iterator[Connection]:
        with self._errors(), self._engine.connect() as conn:
            if read_only:
                conn.execution_options(**{READ_ONLY: True})
            with conn.begin():
                yield conn

    @staticmethod
    def _token(delivery: Delivery) -> tuple[int, str]:
        message_id, lease_token = delivery.token
        return int(message_id), str(lease_token)

    # Publishing and receiving -----------------------------------------------------

    def publish(self, queue: str, body: str, headers: Mapping[str, str] | None = None) -> None:
        with self._tx() as conn:
            enqueue(conn, queue, body, headers)
        self._committed(queue)
        log.debug("published to %s: %s", queue, body)

    def _committed(self, queue: str) -> None:
        """A message of ``queue`` was committed by this broker: wake our consumers,
        unless our listener is about to (its NOTIFY follows; one claim, not two)."""
        if not self._wakeup.listening:
            self._wakeup.changed(queue)

    def wake(self) -> None:
        """Wake this broker's waiting consumers at once: a message was committed here by
        ``enqueue`` in someone else's transaction (on SQLite they would only see it at
        their next poll; on PostgreSQL its NOTIFY would follow in a moment)."""
        self._wakeup.changed()

    def receive(self, queues: Sequence[str], timeout: float) -> Delivery | None:
        """Claim the next message, or wait for a reason to look again (see the module
        docstring): an idle queue on PostgreSQL costs one claim per safety interval."""
        if not queues:
            raise ValueError("receive needs at least one queue")
        if self._listener is not None:
            self._listener.start()
        key = frozenset(queues)
        deadline = time.monotonic() + max(timeout, 0.0)
        tried = False
        while (version := self._wakeup.turn(key, deadline, tried)) is not None:
            tried = True
            delivery: Delivery | None = None
            outcome: ClaimOutcome | None = None
            try:
                delivery, outcome = self._claim(list(queues))
            finally:
                self._wakeup.claimed(key, version, outcome)
            if delivery is not None:
                return delivery
        return None

    def _visible(self, queues: list[str]) -> Any:
        return (
            select(queue_messages.c.id)
            .where(queue_messages.c.queue.in_(queues), queue_messages.c.available_at <= self._now)
            .order_by(queue_messages.c.id)
            .limit(1)
        )

    def _next_due(self, queues: list[str]) -> Any:
        """Seconds until the earliest message of ``queues`` is visible (<= 0: one is)."""
        return select(func.min(queue_messages.c.available_at) - self._now).where(
            queue_messages.c.queue.in_(queues)
        )

    def _claim(self, queues: list[str]) -> tuple[Delivery | None, ClaimOutcome]:
        if not self._postgres:
            # Idle pollers read (no write lock); only a visible message is worth claiming.
            with self._tx(read_only=True) as conn:
                if conn.execute(self._visible(queues)).first() is None:
                    due_in = conn.execute(self._next_due(queues)).scalar()
                    return None, ClaimOutcome(found=False, due_in=due_in)
        token = secrets.token_hex(16)
        until = self._now + self.lease_seconds
        candidate = self._visible(queues)
        if self._postgres:
            candidate = candidate.with_for_update(skip_locked=True)
        statement = (
            update(queue_messages)
            .where(queue_messages.c.id == candidate.scalar_subquery())
            .values(
                attempts=queue_messages.c.attempts + 1,
                lease_token=token,
                lease_owner=f"{self._owner}:{threading.get_ident()}",
                lease_until=until,
                available_at=until,
            )
            .returning(
                queue_messages.c.id,
                queue_messages.c.queue,
                queue_messages.c.body,
                queue_messages.c.headers,
                queue_messages.c.attempts,
            )
        )
        with self._tx() as conn:
            row = conn.execute(statement).first()
            if row is None:
                # When to look again without a notification: a nack'd message, or the
                # lease of a consumer that may die.
                due_in = conn.execute(self._next_due(queues)).scalar()
                return None, ClaimOutcome(found=False, due_in=due_in)
            if row.attempts > self.max_deliveries:
                # Its consumers kept dying before settling it (a poison message?).
                self._move_to_dead_letters(
                    conn, row, f"not settled after {row.attempts - 1} deliveries "
                    "(consumer died or lease expired each time)",
                    attempts=row.attempts - 1,  # this receive delivered nothing
                )
                return None, ClaimOutcome(found=True)  # there may be others: look again
        delivery = Delivery(
            queue=row.queue,
            body=row.body,
            headers=json.loads(row.headers),
            message_id=str(row.id),
            delivery_count=row.attempts,
            token=(row.id, token),
        )
        return delivery, ClaimOutcome(found=True)

    # Settling ---------------------------------------------------------------------

    def _held(self, conn: Connection, delivery: Delivery, action: str) -> Row[Any] | None:
        """The message row if ``delivery``'s lease still holds it, else None (logged)."""
        message_id, token = self._token(delivery)
        # FOR UPDATE (PostgreSQL): a consumer claiming the row after our lease ran out
        # either waits for us or has already changed the token (then we see no row).
        row = conn.execute(
            select(queue_messages)
            .where(queue_messages.c.id == message_id, queue_messages.c.lease_token == token)
            .with_for_update()
        ).first()
        if row is None:
            log.warning(
                "cannot %s message %s on %s: its lease was lost (expired and taken by "
                "another consumer, or already settled)", action, message_id, delivery.queue
            )
        return row

    def ack(self, delivery: Delivery) -> None:
        message_id, token = self._token(delivery)
        with self._tx() as conn:
            result = conn.execute(
                delete(queue_messages).where(
                    queue_messages.c.id == message_id, queue_messages.c.lease_token == token
                )
            )
        if result.rowcount != 1:
            log.warning(
                "ack of message %s on %s ignored: its lease was lost (expired and taken by "
                "another consumer, or already settled)", message_id, delivery.queue
            )

    def nack(self, delivery: Delivery, reason: str) -> None:
        with self._tx() as conn:
            row = self._held(conn, delivery, "nack")
            if row is None:
                return
            if row.attempts >= self.max_deliveries:
                self._move_to_dead_letters(conn, row, f"{reason} (after {row.attempts} attempts)")
                return
            delay = min(self.redelivery_delay * 2 ** max(row.attempts - 1, 0), REDELIVERY_CAP_S)
            conn.execute(
                update(queue_messages)
                .where(queue_messages.c.id == row.id)
                .values(
                    lease_token=None,
                    lease_owner=None,
                    lease_until=None,
                    available_at=self._now + delay,
                )
            )
            if self._postgres:  # every broker's consumers learn its new due time
                conn.execute(select(func.pg_notify(literal(CHANNEL), literal(row.queue))))
        self._committed(row.queue)
        log.info("message %s on %s nacked (attempt %d), redelivery in %.1f s: %s",
                 row.id, row.queue, row.attempts, delay, reason)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        with self._tx() as conn:
            row = self._held(conn, delivery, "dead-letter")
            if row is not None:
                self._move_to_dead_letters(conn, row, reason)

    def _move_to_dead_letters(
        self, conn: Connection, row: Row[Any], reason: str, attempts: int | None = None
    ) -> None:
        attempts = row.attempts if attempts is None else attempts
        conn.execute(
            insert(queue_dead_letters).values(
                message_id=row.id,
                queue=row.queue,
                body=row.body,
                headers=row.headers,
                attempts=attempts,
                reason=reason,
                dead_at=self._now,
            )
        )
        conn.execute(delete(queue_messages).where(queue_messages.c.id == row.id))
        log.warning("message %s on %s dead-lettered after %d attempt(s): %s",
                    row.id, row.queue, attempts, reason)

    def touch(self, delivery: Delivery) -> None:
        message_id, token = self._token(delivery)
        until = self._now + self.lease_seconds
        with self._tx() as conn:
            result = conn.execute(
                update(queue_messages)
                .where(queue_messages.c.id == message_id, queue_messages.c.lease_token == token)
                .values(lease_until=until, available_at=until)
            )
        if result.rowcount != 1:
            log.warning("cannot extend the lease of message %s on %s: it was lost",
                        message_id, delivery.queue)

    # Dead letters (the operator's) -------------------------------------------------

    @staticmethod
    def _dead_rows(ids: Sequence[str] | None, queues: Sequence[str]) -> Any:
        query = select(queue_dead_letters).order_by(queue_dead_letters.c.id)
        if ids is not None:
            query = query.where(queue_dead_letters.c.id.in_(
                [int(i) for i in ids if str(i).isdigit()]))
        if queues:
            query = query.where(queue_dead_letters.c.queue.in_(list(queues)))
        return query

    def dead_letters(self, queues: Sequence[str] = ()) -> list[DeadLetter]:
        """Every dead letter of the database (of ``queues`` if given), oldest first;
        ids are the dead-letter rows' ids."""
        with self._tx(read_only=True) as conn:
            rows = conn.execute(self._dead_rows(None, queues)).all()
        return [
            DeadLetter(
                queue=row.queue,
                body=row.body,
                reason=row.reason,
                attempts=row.attempts,
                headers=json.loads(row.headers),
                id=str(row.id),
            )
            for row in rows
        ]

    def requeue_dead_letters(self, ids: Sequence[str] | None,
                             queues: Sequence[str] = ()) -> list[str]:
        """Back into their queues and out of the dead letters, in one transaction."""
        with self._tx() as conn:
            rows = conn.execute(self._dead_rows(ids, queues).with_for_update()).all()
            for row in rows:
                enqueue(conn, row.queue, row.body, json.loads(row.headers))
            conn.execute(delete(queue_dead_letters).where(
                queue_dead_letters.c.id.in_([row.id for row in rows])))
        for queue in {row.queue for row in rows}:
            self._committed(queue)
        log.info("requeued %d dead letter(s)", len(rows))
        return [str(row.id) for row in rows]

    def purge_dead_letters(self, ids: Sequence[str] | None,
                           queues: Sequence[str] = ()) -> list[str]:
        with self._tx() as conn:
            rows = conn.execute(self._dead_rows(ids, queues).with_for_update()).all()
            conn.execute(delete(queue_dead_letters).where(
                queue_dead_letters.c.id.in_([row.id for row in rows])))
        log.info("purged %d dead letter(s)", len(rows))
        return [str(row.id) for row in rows]

    def pending(self, queue: str | None = None) -> int:
        """Messages not yet acked or dead-lettered (leased ones included)."""
        query = select(func.count()).select_from(queue_messages)
        if queue is not None:
            query = query.where(queue_messages.c.queue == queue)
        with self._tx(read_only=True) as conn:
            return int(conn.execute(query).scalar_one())

    def close(self) -> None:
        """Stop listening (waiting consumers return None) and close the connections."""
        self._wakeup.close()
        if self._listener is not None:
            self._listener.close()
        self._engine.dispose()
