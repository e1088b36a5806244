"""ServiceContext: what the service layer works with, built once by bootstrap."""

from __future__ import annotations

import threading
from collections import OrderedDict
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


class SettledDeposits:
    """Deposits this worker itself recorded in a terminal status, in a transaction that
    also settled their submission: a DepositStatus message about one of them can change
    nothing (a terminal status never moves back), so it costs no read at all. Bounded:
    the oldest are forgotten (a forgotten one costs one read)."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, deposit_id: str) -> None:
        with self._lock:
            self._ids[deposit_id] = None
            self._ids.move_to_end(deposit_id)
            while len(self._ids) > self._size:
                self._ids.popitem(last=False)

    def __contains__(self, deposit_id: object) -> bool:
        with self._lock:
            return deposit_id in self._ids


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
    settled: SettledDeposits = field(default_factory=SettledDeposits)
