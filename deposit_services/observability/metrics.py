"""Every Prometheus metric of the worker, defined here and nowhere else.

One ``Metrics`` per process (built by ``listen``; the service context carries it, a
fresh one by default so tests never share counters), with its own registry: no global
state. The service layer records through one-line hooks (``transfer``, ``deposit``,
``job``, ``error``); the broker is wrapped (``InstrumentedBroker``, in the app's place,
so the outbox's publishing is counted too) so messages are counted without touching
the worker; what the store knows (the RETRY backlog, its
oldest due time, submissions in progress) is read at scrape time by ``StoreCollector``.

Names follow Prometheus' conventions: ``deposit_services_`` prefix, ``_total`` on
counters, base units (``_bytes``, ``_seconds``), labels of low cardinality (queue,
message type, repository key, protocol, outcome, job name) and never a secret.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from deposit_services.errors import MessagingError, StoreError
from deposit_services.messaging.base import Broker, DeadLetter, Delivery
from deposit_services.observability.logs import clear

if TYPE_CHECKING:
    from deposit_services.model.entities import Repository
    from deposit_services.store.uow import Database

log = logging.getLogger(__name__)

PREFIX = "deposit_services"
MESSAGE_TYPES = ("SubmissionReady", "DepositStatus")  # anything else is "other"
FINAL = ("ACCEPTED", "REJECTED", "FAILED")  # what a status refresh can settle a deposit as
BYTE_BUCKETS = (1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, float("inf"))
SECOND_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0, float("inf"))
T = TypeVar("T")


def message_type(delivery: Delivery) -> str:
    """The message's ``type`` (PASS's JSON), bounded to the known names for the label."""
    try:
        body = json.loads(delivery.body)
    except ValueError:
        return "malformed"
    kind = body.get("type") if isinstance(body, dict) else None
    if kind is None and isinstance(body, dict):  # PASS's messages may leave it out
        kind = "SubmissionReady" if "submission" in body else (
            "DepositStatus" if "deposit" in body else None)
    return kind if kind in MESSAGE_TYPES else "other"


def message_ids(delivery: Delivery) -> dict[str, str]:
    """The submission or deposit id a message names, for the log context."""
    try:
        body = json.loads(delivery.body)
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    return {key: str(body[key]) for key in ("submission", "deposit")
            if isinstance(body.get(key), (str, int))}


def repository_label(repository: Repository) -> str:
    """The repository's key (as repositories.json names it), else its name, else its id."""
    return repository.repository_key or repository.name or repository.id


def error_kind(exc: BaseException) -> str | None:
    """``store`` or ``broker`` for the errors counted as such, else None."""
    if isinstance(exc, StoreError):
        return "store"
    if isinstance(exc, MessagingError):
        return "broker"
    return None


class Metrics:
    """The worker's metrics in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages_consumed = Counter(
            f"{PREFIX}_messages_consumed_total", "Messages received from the broker.",
            ["queue", "type"], registry=r)
        self.messages_dead_lettered = Counter(
            f"{PREFIX}_messages_dead_lettered_total",
            "Messages sent to the dead-letter queue (never to succeed, or redelivered too "
            "often).", ["queue", "type"], registry=r)
        self.messages_redelivered = Counter(
            f"{PREFIX}_messages_nacked_total",
            "Messages handed back to the broker to be delivered again.", ["queue", "type"],
            registry=r)
        self.deposits = Counter(
            f"{PREFIX}_deposits_total",
            "Deposit outcomes recorded by this worker, by repository and deposit status "
            "(SUBMITTED, ACCEPTED, REJECTED, RETRY, FAILED).", ["repository", "status"],
            registry=r)
        self.attempts = Counter(
            f"{PREFIX}_transfer_attempts_total",
            "Transfers tried, by protocol and result (ok: the repository took the package).",
            ["protocol", "result"], registry=r)
        self.transfer_bytes = Histogram(
            f"{PREFIX}_transfer_bytes", "Size of each package sent.", ["protocol"],
            buckets=BYTE_BUCKETS, registry=r)
        self.transfer_seconds = Histogram(
            f"{PREFIX}_transfer_duration_seconds", "Time each transfer took.", ["protocol"],
            buckets=SECOND_BUCKETS, registry=r)
        self.job_runs = Counter(
            f"{PREFIX}_job_runs_total", "Scheduled job runs, by job and result.",
            ["job", "result"], registry=r)
        self.job_seconds = Histogram(
            f"{PREFIX}_job_duration_seconds", "Time each scheduled job run took.", ["job"],
            buckets=SECOND_BUCKETS, registry=r)
        self.errors = Counter(
            f"{PREFIX}_errors_total",
            "Errors of the store (records, worker state) and the broker met by this worker.",
            ["component"], registry=r)
        for component in ("store", "broker"):
            self.errors.labels(component)  # exported at 0 from the start

    # -- hooks (each a one-liner where it is called) -----------------------------------

    def transfer(self, protocol: str, size: int) -> Transfer:
        """One ``transport.send`` starting; ``Transfer.done`` records its result."""
        return Transfer(self, protocol, size)

    def deposit(self, repository: Repository, status: object, counted: bool = True) -> None:
        """One deposit outcome recorded (``status``: a DepositStatus or its value), unless
        not ``counted`` (the deposit was terminal already: nothing changed)."""
        if not counted or status is None:
            return
        value = getattr(status, "value", status)
        self.deposits.labels(repository_label(repository), str(value)).inc()

    def refreshed(self, repository: Repository, status: str, changed: bool) -> None:
        """A status refresh or a repository's report (a NIHMS mail): counted when it
        moved the deposit to a final status."""
        self.deposit(repository, status, counted=changed and status in FINAL)

    def job(self, name: str, func: Callable[[], T]) -> Callable[[], T]:
        """``func`` counted and timed as a run of job ``name`` (its errors re-raised)."""

        def run() -> T:
            clear(job=name)  # the scheduler's threads are reused: no stale ids in its logs
            started = time.perf_counter()
            try:
                result = func()
            except BaseException as exc:
                self.job_runs.labels(name, "error").inc()
                self.error(exc)
                raise
            finally:
                self.job_seconds.labels(name).observe(time.perf_counter() - started)
            self.job_runs.labels(name, "ok").inc()
            return result

        return run

    def error(self, exc: BaseException) -> None:
        """Count ``exc`` if it is a store or broker error."""
        kind = error_kind(exc)
        if kind is not None:
            self.errors.labels(kind).inc()

    def broker(self, broker: Broker) -> Broker:
        """``broker`` with its messages and errors counted."""
        return InstrumentedBroker(broker, self)

    def watch_store(self, database: Database) -> None:
        """Export the store's backlog gauges, read at each scrape."""
        self.registry.register(StoreCollector(database, self))

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


class Transfer:
    """A transfer under way: its size, duration and result are recorded by ``done``."""

    def __init__(self, metrics: Metrics, protocol: str, size: int) -> None:
        self.metrics = metrics
        self.protocol = protocol
        self.size = size
        self.started = time.perf_counter()

    def done(self, ok: bool) -> None:
        m = self.metrics
        m.attempts.labels(self.protocol, "ok" if ok else "error").inc()
        m.transfer_bytes.labels(self.protocol).observe(self.size)
        m.transfer_seconds.labels(self.protocol).observe(time.perf_counter() - self.started)


class InstrumentedBroker(Broker):
    """A broker that counts what passes through it; everything else is the inner one's."""

    def __init__(self, inner: Broker, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    def __getattr__(self, name: str) -> Any:  # adapter extras (wait_connected ...)
        return getattr(self.inner, name)

    @property
    def connected(self) -> bool:
        return bool(getattr(self.inner, "connected", True))

    @contextlib.contextmanager
    def _counted(self) -> Iterator[None]:
        try:
            yield
        except Exception:
            self.metrics.errors.labels("broker").inc()
            raise

    def publish(self, queue: str, body: str, headers: Mapping[str, str] | None = None) -> None:
        with self._counted():
            self.inner.publish(queue, body, headers)

    def receive(self, queues: Sequence[str], timeout: float) -> Delivery | None:
        with self._counted():
            delivery = self.inner.receive(queues, timeout)
        if delivery is not None:
            self.metrics.messages_consumed.labels(delivery.queue, message_type(delivery)).inc()
            clear(**message_ids(delivery))  # this thread's log lines name what it works on
        return delivery

    def ack(self, delivery: Delivery) -> None:
        with self._counted():
            self.inner.ack(delivery)

    def nack(self, delivery: Delivery, reason: str) -> None:
        with self._counted():
            self.inner.nack(delivery, reason)
        self.metrics.messages_redelivered.labels(delivery.queue, message_type(delivery)).inc()

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        with self._counted():
            self.inner.dead_letter(delivery, reason)
        self.metrics.messages_dead_lettered.labels(delivery.queue,
                                                   message_type(delivery)).inc()

    def touch(self, delivery: Delivery) -> None:
        self.inner.touch(delivery)

    def dead_letters(self, queues: Sequence[str] = ()) -> list[DeadLetter]:
        return self.inner.dead_letters(queues)

    def requeue_dead_letters(self, ids: Sequence[str] | None,
                             queues: Sequence[str] = ()) -> list[str]:
        return self.inner.requeue_dead_letters(ids, queues)

    def purge_dead_letters(self, ids: Sequence[str] | None,
                           queues: Sequence[str] = ()) -> list[str]:
        return self.inner.purge_dead_letters(ids, queues)

    def close(self) -> None:
        self.inner.close()


class StoreCollector(Collector):
    """Gauges read from the store at scrape time: the RETRY backlog, the oldest due time
    of a retry, the submissions in progress, each recorded repository's health. A store
    that does not answer is counted as a store error and these gauges are left out of
    that scrape (never a stale value)."""

    def __init__(self, database: Database, metrics: Metrics) -> None:
        self.database = database
        self.metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return []  # read at scrape time only: nothing to read at registration

    def collect(self) -> Iterable[Metric]:
        from deposit_services.model.entities import (
            AggregatedDepositStatus,
            Deposit,
            DepositStatus,
            Submission,
        )

        try:
            with self.database.unit_of_work(read_only=True) as uow:
                retry = uow.records.find(Deposit, deposit_status=DepositStatus.RETRY)
                busy = uow.records.find(
                    Submission, aggregated_deposit_status=AggregatedDepositStatus.IN_PROGRESS)
                repositories = uow.state.repository_states()
        except Exception as exc:  # noqa: BLE001 - a scrape never fails for the store
            log.warning("metrics: the store did not answer (%s); backlog gauges left out", exc)
            self.metrics.errors.labels("store").inc()
            return []
        backlog = GaugeMetricFamily(f"{PREFIX}_retry_backlog",
                                    "Deposits in RETRY, waiting for their next attempt.")
        backlog.add_metric([], len(retry))
        due = [d.next_attempt_at for d in retry if d.next_attempt_at is not None]
        oldest = GaugeMetricFamily(
            f"{PREFIX}_retry_oldest_due_timestamp_seconds",
            "When the longest-waiting RETRY deposit was due (Unix time; 0: none).")
        oldest.add_metric([], min(due).astimezone(UTC).timestamp() if due else 0.0)
        progress = GaugeMetricFamily(f"{PREFIX}_submissions_in_progress",
                                     "Submissions whose deposits are not all finished.")
        progress.add_metric([], len(busy))
        health = GaugeMetricFamily(  # service/health.py; a repository never recorded is healthy
            f"{PREFIX}_repository_health", "1 for each repository's current health "
            "(healthy, degraded, paused), 0 for the others.", labels=["repository", "state"])
        for state in repositories:
            for word in ("healthy", "degraded", "paused"):
                health.add_metric([state.key, word], 1.0 if state.health == word else 0.0)
        return [backlog, oldest, progress, health]

