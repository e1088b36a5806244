"""A clock the test moves by hand: ``sleep`` advances it at once, nothing waits."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from deposit_services.clock import Clock


class FakeClock(Clock):
    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._monotonic = 1000.0
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._monotonic

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._monotonic += seconds

    def set(self, when: datetime) -> None:
        with self._lock:
            self._monotonic += max((when - self._now).total_seconds(), 0.0)
            self._now = when
