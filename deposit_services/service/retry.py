"""RetryPolicy: when a deposit that failed with a transient fault is tried again.

Exponential backoff with jitter (the delay before attempt n+1 is ``base * factor**(n-1)``,
capped), bounded by a maximum number of attempts, after which the deposit is FAILED.
Jitter spreads the retries of many deposits that failed together (a repository outage)
so they do not all come back at the same second:

- ``full``: uniform in [0, delay] (most spread, may retry almost at once);
- ``equal``: delay/2 + uniform in [0, delay/2] (never less than half the delay);
- ``none``: exactly the delay (deterministic, for tests and debugging).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from deposit_services.settings import RETRY_JITTERS, Settings

DEFAULT_BASE_SECONDS = 30.0
DEFAULT_FACTOR = 2.0
DEFAULT_CAP_SECONDS = 3600.0
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_JITTER = "equal"
JITTERS = RETRY_JITTERS


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff and budget for transient deposit faults; the defaults are 30 s, x2, 1 h, 8."""

    base_seconds: float = DEFAULT_BASE_SECONDS
    factor: float = DEFAULT_FACTOR
    cap_seconds: float = DEFAULT_CAP_SECONDS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    jitter: str = DEFAULT_JITTER

    def __post_init__(self) -> None:
        if self.base_seconds <= 0 or self.cap_seconds <= 0:
            raise ValueError("retry base and cap must be positive")
        if self.factor < 1:
            raise ValueError("retry factor must be at least 1")
        if self.max_attempts < 1:
            raise ValueError("retry max attempts must be at least 1")
        if self.jitter not in JITTERS:
            raise ValueError(f"retry jitter must be one of {', '.join(JITTERS)}")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            base_seconds=settings.retry_base_seconds,
            factor=settings.retry_factor,
            cap_seconds=settings.retry_cap_seconds,
            max_attempts=settings.retry_max_attempts,
            jitter=settings.retry_jitter,
        )

    def exhausted(self, attempts: int) -> bool:
        """True when ``attempts`` transfers have been made and no more are allowed."""
        return attempts >= self.max_attempts

    def backoff(self, attempts: int) -> float:
        """The un-jittered delay after the ``attempts``-th failed attempt (1-based)."""
        exponent = max(attempts - 1, 0)
        try:
            raw = self.base_seconds * self.factor**exponent
        except OverflowError:
            raw = self.cap_seconds
        return min(raw, self.cap_seconds)

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt, jitter applied."""
        raw = self.backoff(attempts)
        pick = (rng or random).uniform
        if self.jitter == "full":
            return pick(0.0, raw)
        if self.jitter == "equal":
            return raw / 2 + pick(0.0, raw / 2)
        return raw

    def next_attempt_at(
        self, attempts: int, now: datetime, rng: random.Random | None = None
    ) -> datetime:
        return now + timedelta(seconds=self.delay(attempts, rng))
