"""The store port: the system of record for PASS entities.

Every entity carries a ``version``. ``update`` is a compare-and-set: it succeeds only if
the stored version still equals the entity's, and then bumps it; otherwise it raises
``StaleVersion`` and the caller re-reads, re-checks its precondition and re-applies
(``service.cas.update_with_retry`` does exactly that).

``atomic()`` groups several writes into one transaction (a unit of work); outside it,
each call is its own transaction. Leases are named, expiring claims (``deposit:31``)
that keep two workers - threads, processes or machines - off the same piece of work.

The attempt log records every transfer attempt of a deposit: ``begin_attempt`` before
the transfer (the intent), ``end_attempt`` after it (the outcome, in the same
transaction as the Deposit's new status). An attempt with no end is one whose worker
died between the two: the next run reconciles it instead of sending blindly again.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from deposit_services.model.entities import Deposit, Entity

E = TypeVar("E", bound=Entity)

# Fields each type can be searched by with ``find``. Adapters index these.
INDEXED_FIELDS: dict[str, tuple[str, ...]] = {
    "Submission": ("aggregated_deposit_status", "submission_status"),
    "Deposit": ("submission", "repository", "deposit_status"),
    "File": ("submission",),
    "RepositoryCopy": ("publication", "repository", "copy_status"),
    "Repository": ("repository_key", "name"),
}


class AttemptOutcome(enum.StrEnum):
    """How an attempt ended."""

    SENT = "sent"  # the transport returned a receipt
    TRANSIENT_ERROR = "transient-error"  # a fault that may go away (-> RETRY)
    PERMANENT_ERROR = "permanent-error"  # a fault that will not (-> FAILED)
    RECONCILED = "reconciled"  # its worker died; the target turned out to hold the package
    INTERRUPTED = "interrupted"  # its worker died; the target did not have the package


@dataclass(frozen=True)
class PackageInfo:
    """What the attempt log keeps of a package: enough to recognise it at the target."""

    name: str
    size: int
    md5: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Attempt:
    """One row of the attempt log. ``ended_at`` None: intent recorded, outcome not."""

    deposit_id: str
    number: int
    trigger: str
    owner: str
    started_at: datetime
    ended_at: datetime | None = None
    outcome: AttemptOutcome | None = None
    package: PackageInfo | None = None
    status_ref: str | None = None
    edit_iri: str | None = None
    access_url: str | None = None
    error: str | None = None

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


class Store(ABC):
    """System of record. Thread-safe: one instance is shared by the worker threads."""

    @abstractmethod
    def get(self, cls: type[E], id: str) -> E:
        """The entity with that id and its current version; ``NotFound`` if none."""

    @abstractmethod
    def find(self, cls: type[E], **criteria: Any) -> list[E]:
        """Entities whose indexed fields equal ``criteria`` (enum or str values), ordered
        by id; no criteria: every entity of the type. A non-indexed field: ValueError."""

    @abstractmethod
    def add(self, entity: E) -> E:
        """Insert; returns it at version 1. ``AlreadyExists`` if the id is taken, or for a
        Deposit whose (submission, repository) pair already has one."""

    @abstractmethod
    def update(self, entity: E) -> E:
        """Compare-and-set on ``entity.version``; returns it at the new version.
        ``StaleVersion`` if someone else wrote first, ``NotFound`` if it is gone."""

    @abstractmethod
    def atomic(self) -> AbstractContextManager[None]:
        """A transaction around the calls made inside it (same thread); nests."""

    @abstractmethod
    def acquire_lease(self, key: str, owner: str, seconds: float) -> bool:
        """Take or renew the lease ``key`` for ``owner``; False while another owner holds
        an unexpired one."""

    @abstractmethod
    def release_lease(self, key: str, owner: str) -> None:
        """Give the lease back (only if ``owner`` holds it)."""

    @abstractmethod
    def begin_attempt(
        self, deposit_id: str, *, trigger: str, owner: str, package: PackageInfo | None = None
    ) -> Attempt:
        """Record the intent of a new attempt (numbered after the deposit's last one,
        started now by the store's clock) and return it."""

    @abstractmethod
    def end_attempt(
        self,
        deposit_id: str,
        number: int,
        outcome: AttemptOutcome,
        *,
        error: str | None = None,
        status_ref: str | None = None,
        edit_iri: str | None = None,
        access_url: str | None = None,
    ) -> Attempt:
        """Record how an open attempt ended (now). ``Conflict`` if it has already ended,
        ``NotFound`` if there is no such attempt."""

    @abstractmethod
    def attempts(self, deposit_id: str) -> list[Attempt]:
        """The deposit's attempts, oldest first."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    # Convenience built on the abstract methods ------------------------------------

    def get_many(self, cls: type[E], ids: Sequence[str]) -> list[E]:
        return [self.get(cls, i) for i in ids]

    def deposit_for(self, submission_id: str, repository_id: str) -> Deposit | None:
        found = self.find(Deposit, submission=submission_id, repository=repository_id)
        return found[0] if found else None
