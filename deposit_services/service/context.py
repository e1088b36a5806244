"""ServiceContext: what the service layer works with, built once by bootstrap."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from deposit_services.clock import Clock, SystemClock
from deposit_services.service.retry import RetryPolicy
from deposit_services.service.targets import Targets
from deposit_services.store.uow import Database


def _no_wake_up(when: datetime) -> None:
    """Default retry-scheduled hook: the periodic retry job will find it."""


@dataclass(frozen=True)
class ServiceContext:
    """The ports and policies of the service layer. ``owner`` names this worker in
    leases and the attempt log; ``deposit_queue`` is where DepositStatus goes."""

    database: Database
    targets: Targets
    work_dir: Path
    owner: str
    clock: Clock = field(default_factory=SystemClock)
    deposit_queue: str = "deposit"
    lease_seconds: float = 120.0
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    retry_scheduled: Callable[[datetime], None] = field(default=_no_wake_up)
    fault_injection: str | None = None
