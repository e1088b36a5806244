"""Heartbeat: call a function every few seconds while a block of work runs.

Used to renew leases (a deposit's claim, a local-queue message's invisibility) so a
live worker keeps them however long a transfer takes, and a dead one loses them soon.

One shared timer thread watches every heartbeat; a beat that falls due runs in a thread
of its own. Work shorter than the interval (nearly every message) so starts no thread,
and a slow beat (a broker that hangs) never delays another heartbeat's.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType

log = logging.getLogger(__name__)


class _Timer:
    """The thread that starts due beats, in time order (started on first use)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, Heartbeat]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, when: float, heartbeat: Heartbeat) -> None:
        with self._cond:
            heapq.heappush(self._due, (when, next(self._order), heartbeat))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="heartbeats",
                                                daemon=True)
                self._thread.start()
            elif self._due[0][2] is heartbeat:
                # due before what the timer waits for: wake it. Otherwise (nearly every
                # message: one interval for all) it wakes in time anyway, and a woken
                # timer per message costs a thread switch each
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._due and self._due[0][2].stopped:
                    heapq.heappop(self._due)  # ended before it was due
                if not self._due:
                    self._cond.wait()
                    continue
                when, _, heartbeat = self._due[0]
                wait = when - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._due)
                heartbeat.fire()


_TIMER = _Timer()


class Heartbeat:
    """``with Heartbeat(interval, beat):`` calls ``beat`` every ``interval`` seconds
    (counted from the end of the previous beat) until the block ends; when ``__exit__``
    returns, no beat is running and none will start."""

    def __init__(
        self, interval: float, beat: Callable[[], object], name: str = "heartbeat"
    ) -> None:
        self._interval = interval
        self._beat = beat
        self._name = name
        self._lock = threading.Condition()
        self._running = False
        self.stopped = False

    def __enter__(self) -> Heartbeat:
        _TIMER.schedule(time.monotonic() + self._interval, self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            self.stopped = True
            while self._running:  # a beat in flight finishes before the block is left
                self._lock.wait()

    def fire(self) -> None:
        """Called by the timer thread when due: run the beat in a thread of its own."""
        with self._lock:
            if self.stopped:
                return
            self._running = True
        threading.Thread(target=self._run, name=self._name, daemon=True).start()

    def _run(self) -> None:
        try:
            self._beat()
        except Exception:  # a failed renewal must not kill the work it guards
            log.warning("heartbeat %s failed", self._name, exc_info=True)
        finally:
            with self._lock:
                self._running = False
                self._lock.notify_all()
                again = not self.stopped
            if again:  # outside our lock: the timer holds its own while it fires us
                _TIMER.schedule(time.monotonic() + self._interval, self)
