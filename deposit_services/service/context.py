"""ServiceContext: what the service layer works with, built once by bootstrap."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from deposit_services.clock import Clock, SystemClock
from deposit_services.observability.metrics import Metrics
from deposit_services.service.health import HealthPolicy, Probe
from deposit_services.service.retry import RetryPolicy
from deposit_services.service.targets import Targets
from deposit_services.store.uow import Database


def _no_wake_up(when: datetime) -> None:
    """Default retry-scheduled hook: the periodic retry job will find it."""


class WorkerMemory:
    """What this worker knows from its own committed work, so that the messages its own
    changes produce cost no read: the DepositStatus after each outcome (and, behind
    pass-core, the echo of every Submission and Deposit write).

    - finished: deposits it recorded ACCEPTED in the transaction that also settled their
      submission, and those submissions (a terminal status never moves back);
    - busy: submissions and deposits it is working on now, under its own leases (no
      one else writes them until it is done);
    - held: repositories it found paused, until when: their deposits ask the gate
      before a package is built (the gate, in the worker state, decides).

    Bounded: the oldest finished ids are forgotten (a forgotten one costs one read).
    """

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._finished: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._busy: dict[tuple[str, str], int] = {}
        self._held: dict[str, datetime] = {}  # repository -> paused until (health.py)
        self._lock = threading.Lock()

    def finished(self, kind: str, ident: str) -> None:
        with self._lock:
            self._finished[(kind, ident)] = None
            self._finished.move_to_end((kind, ident))
            while len(self._finished) > self._size:
                self._finished.popitem(last=False)

    def busy(self, kind: str, ident: str, on: bool) -> None:
        with self._lock:
            count = self._busy.get((kind, ident), 0) + (1 if on else -1)
            if count > 0:
                self._busy[(kind, ident)] = count
            else:
                self._busy.pop((kind, ident), None)

    def busy_with(self, kind: str) -> list[str]:
        """The ids of ``kind`` this worker is working on now, sorted."""
        with self._lock:
            return sorted(ident for (k, ident) in self._busy if k == kind)

    def hold(self, repository: str, until: datetime) -> None:
        """Its deposits to ``repository`` were held (paused) until ``until``."""
        with self._lock:
            self._held[repository] = until

    def held(self, repository: str, now: datetime) -> datetime | None:
        """Until when this worker last saw ``repository`` paused (None: not, or over)."""
        with self._lock:
            until = self._held.get(repository)
            return until if until is not None and until > now else None

    def knows(self, kind: str, ident: str) -> str | None:
        """Why a message about it changes nothing, or None when it must be read."""
        with self._lock:
            if (kind, ident) in self._finished:
                return "this worker recorded it finished"
            if (kind, ident) in self._busy:
                return "this worker is working on it"
            return None


@dataclass(frozen=True)
class ServiceContext:
    """The ports and policies of the service layer. ``owner`` names this worker in
    leases and the attempt log; ``deposit_queue`` is where DepositStatus goes (None:
    the system of record announces its changes itself, as pass-core does)."""

    database: Database
    targets: Targets
    work_dir: Path
    owner: str
    clock: Clock = field(default_factory=SystemClock)
    deposit_queue: str | None = "deposit"
    lease_seconds: float = 120.0
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    retry_scheduled: Callable[[datetime], None] = field(default=_no_wake_up)
    fault_injection: str | None = None
    memory: WorkerMemory = field(default_factory=WorkerMemory)
    metrics: Metrics = field(default_factory=Metrics)  # observability/metrics.py
    # Repository health and staleness (service/health.py); ``probe`` None: check-target's
    # checks of the repository (health.preflight_probe).
    health: HealthPolicy = field(default_factory=HealthPolicy)
    probe: Probe | None = None
