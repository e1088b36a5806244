"""When the local queue's consumers claim again, so that an idle queue costs no queries.

On PostgreSQL every poll of ``queue_messages`` is a committed transaction: four worker
threads polling with backoff made an idle ``listen`` commit 30 to 60 a second.
``Wakeup`` remembers, per set of queues, the last claim that found nothing: the change
counter at that moment, when the earliest invisible message (nack'd, or leased by a
consumer that may die) becomes visible, and when the claim was made. A thread claims
again only when something changed since (a message published in this process, a
NOTIFY from another, ``LocalBroker.wake``, the listener (re)connecting), when that due
time is reached, when the safety interval has passed, or, with no listener (SQLite, or
the LISTEN connection lost), when the polling interval has passed. While one thread
checks an idle queue the others wait for its answer instead of asking too.

``NotifyListener`` (PostgreSQL) LISTENs on a connection of its own in a daemon thread
and turns every notification into a change of the queue it names.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq, sql

log = logging.getLogger(__name__)

POLL_FIRST_S = 0.02  # polling (no listener): first pause after an empty claim
POLL_MAX_S = 0.25  # ... doubling up to this
SAFETY_POLL_S = 30.0  # listening: claim at least this often anyway, in case a wake-up was lost
DUE_FLOOR_S = 0.02  # a due time already reached (a row another claim held): retry this soon
RECONNECT_FIRST_S = 0.5  # listener: first pause before reconnecting, doubling up to
RECONNECT_MAX_S = 30.0
READY_WAIT_S = 2.0  # the first receive waits this long for the listener's first attempt
CLOSE_WAIT_S = 5.0
LISTENER_APPLICATION_NAME = "deposit-services queue listener"
_MAX_STREAK = 8


@dataclass(frozen=True)
class ClaimOutcome:
    """What a claim found, as far as waiting goes: a message (or a row moved aside, so
    look again at once), or nothing visible and when the earliest invisible one shows."""

    found: bool
    due_in: float | None = None  # seconds; None: no message at all in these queues


@dataclass(frozen=True)
class _EmptyMark:
    """The last claim that found nothing: valid until something changes or time passes."""

    version: int
    at: float
    due_at: float | None
    streak: int  # consecutive empty claims with no change between them (polling backoff)


@dataclass
class _QueueSet:
    mark: _EmptyMark | None = None
    claiming: int = 0
    flowing: bool = False  # the last claim found a message: others may claim alongside


class Wakeup:
    """Decides, for the consumer threads of one broker, who claims and when. Times are
    ``time.monotonic()`` seconds, the clock ``Condition.wait`` runs on."""

    def __init__(self, *, safety_interval: float = SAFETY_POLL_S) -> None:
        self._safety = safety_interval
        self._cond = threading.Condition()
        self._changes = 0  # changes that concern every queue
        self._queue_changes: dict[str, int] = {}
        self._sets: dict[frozenset[str], _QueueSet] = {}
        self._listening = False
        self._closed = False

    @property
    def listening(self) -> bool:
        """A NOTIFY listener is connected: no need to poll."""
        return self._listening

    def changed(self, queue: str | None = None) -> None:
        """A message may be visible now in ``queue`` (None: in any queue): the threads
        waiting on it claim once more."""
        with self._cond:
            if queue is None:
                self._changes += 1
            else:
                self._queue_changes[queue] = self._queue_changes.get(queue, 0) + 1
            self._cond.notify_all()

    def set_listening(self, listening: bool) -> None:
        """The listener connected (or lost its connection). Either way one claim is due:
        what was published while nobody listened was announced to no one."""
        with self._cond:
            self._listening = listening
            self._changes += 1
            self._cond.notify_all()

    def close(self) -> None:
        """Waiting threads return at once (``turn`` gives None from now on)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _version(self, key: frozenset[str]) -> int:
        # Counters only grow: the sum changes exactly when one of them does.
        return self._changes + sum(self._queue_changes.get(queue, 0) for queue in key)

    def _quiet_until(self, state: _QueueSet, key: frozenset[str]) -> float | None:
        """Until when the last empty claim still answers for ``key`` (None: no answer)."""
        mark = state.mark
        if mark is None or mark.version != self._version(key):
            return None
        if self._listening:
            until = mark.at + self._safety
        else:
            until = mark.at + min(POLL_FIRST_S * 2**mark.streak, POLL_MAX_S)
        if mark.due_at is not None:
            until = min(until, mark.due_at)
        return until

    def turn(self, key: frozenset[str], deadline: float, tried: bool) -> int | None:
        """Wait until this thread should claim from ``key``; returns the change counter
        to give back to ``claimed``, or None once ``deadline`` passed (after at least one
        claim if ``tried`` is false and nothing answers for the queues yet)."""
        with self._cond:
            state = self._sets.setdefault(key, _QueueSet())
            while not self._closed:
                now = time.monotonic()
                until = self._quiet_until(state, key)
                if until is not None and now >= until:
                    until = None
                if until is None and (state.flowing or not state.claiming):
                    if tried and now >= deadline:
                        return None
                    state.claiming += 1
                    return self._version(key)
                if now >= deadline:
                    return None
                # Quiet, or another thread is checking the idle queue: its result (or
                # any change) notifies us.
                self._cond.wait((deadline if until is None else min(until, deadline)) - now)
            return None

    def claimed(self, key: frozenset[str], version: int, outcome: ClaimOutcome | None) -> None:
        """Record the result of the claim ``turn`` allowed (None: it failed)."""
        with self._cond:
            state = self._sets[key]
            state.claiming -= 1
            if outcome is not None and outcome.found:
                state.flowing = True
                state.mark = None
            elif outcome is not None:
                state.flowing = False
                previous = state.mark
                if previous is None or previous.version <= version:
                    now = time.monotonic()
                    same = previous is not None and previous.version == version
                    streak = min(previous.streak + 1, _MAX_STREAK) if previous and same else 0
                    due_at = None
                    if outcome.due_in is not None:
                        due_at = now + max(outcome.due_in, DUE_FLOOR_S)
                    state.mark = _EmptyMark(version, now, due_at, streak)
            self._cond.notify_all()


class NotifyListener:
    """LISTENs on the queue's channel on a PostgreSQL connection of its own, in a daemon
    thread; a lost connection is logged once, retried with backoff, and polled around."""

    def __init__(self, connect_args: Mapping[str, Any], channel: str, wakeup: Wakeup,
                 where: str) -> None:
        self._connect_args = {
            "connect_timeout": 10,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
            **connect_args,
            "autocommit": True,
            "application_name": LISTENER_APPLICATION_NAME,
        }
        self._channel = channel
        self._wakeup = wakeup
        self._where = where
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()  # the first connection attempt is over
        self._stopping = threading.Event()
        self._stop_r, self._stop_w = socket.socketpair()

    def start(self, wait: float = READY_WAIT_S) -> None:
        """Start listening (once) and wait up to ``wait`` s for the first connection, so
        that the first claim can already count on notifications."""
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stopping.is_set():
                    self._thread = threading.Thread(
                        target=self._run, name="local-queue-listener", daemon=True
                    )
                    self._thread.start()
        self._ready.wait(wait)

    def close(self) -> None:
        """Stop the thread and close its connection."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._stop_w.send(b"x")
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(CLOSE_WAIT_S)
            if thread.is_alive():  # stuck connecting: it stops when connect returns
                log.warning("queue listener (%s) did not stop within %.0f s",
                            self._where, CLOSE_WAIT_S)
                return
        self._stop_r.close()
        self._stop_w.close()

    def _run(self) -> None:
        try:
            self._connect_and_listen()
        finally:  # whatever ended the thread, the consumers must poll from now on
            if self._wakeup.listening:
                self._wakeup.set_listening(False)
            self._ready.set()

    def _connect_and_listen(self) -> None:
        pause = RECONNECT_FIRST_S
        lost = False  # this outage was logged already
        while not self._stopping.is_set():
            try:
                with psycopg.connect(**self._connect_args) as conn:
                    if self._stopping.is_set():
                        return
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self._wakeup.set_listening(True)
                    self._ready.set()
                    if lost:
                        log.info("queue listener (%s) reconnected: waiting for "
                                 "notifications again instead of polling", self._where)
                    lost, pause = False, RECONNECT_FIRST_S
                    self._listen(conn)
            except psycopg.Error as failure:
                if self._wakeup.listening:
                    self._wakeup.set_listening(False)
                error = " ".join(str(failure).split())  # libpq's messages span lines
                if not lost:
                    log.warning(
                        "queue listener has no PostgreSQL connection (%s): %s; polling the "
                        "queue until it reconnects (retrying with backoff)",
                        self._where, error,
                    )
                    lost = True
                else:
                    log.debug("queue listener (%s) still cannot connect: %s", self._where, error)
            self._ready.set()
            if self._stopping.wait(pause):
                return
            pause = min(pause * 2, RECONNECT_MAX_S)

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        """Turn notifications into changes until stopped; raises when the connection
        fails (the server restarted, the backend was terminated)."""
        pgconn = conn.pgconn
        with selectors.DefaultSelector() as selector:
            selector.register(conn.fileno(), selectors.EVENT_READ)
            selector.register(self._stop_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                selector.select()
                if self._stopping.is_set():
                    return
                pgconn.consume_input()  # OperationalError once the server is gone
                while (notify := pgconn.notifies()) is not None:
                    self._wakeup.changed(notify.extra.decode("utf-8", "replace"))
                if pgconn.status != pq.ConnStatus.OK:
                    raise psycopg.OperationalError("the LISTEN connection was closed")
