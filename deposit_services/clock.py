"""The clock: every rule that reads time asks a ``Clock`` it was given.

Backoff, leases, refresh windows, dated directories and package timestamps read
``now()``; waits go through ``sleep``. Production uses ``SystemClock``; tests pass a
fake one they move by hand, so the rules run without real waiting and cannot race.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from datetime import UTC, datetime


class Clock(ABC):
    """Wall time (timezone-aware UTC), a monotonic counter, and waiting."""

    @abstractmethod
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""

    @abstractmethod
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for deadlines)."""

    @abstractmethod
    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""


class SystemClock(Clock):
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(seconds, 0.0))
