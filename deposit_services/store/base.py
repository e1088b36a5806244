"""The store port: the system of record for PASS entities.

Every entity carries a ``version``. ``update`` is a compare-and-set: it succeeds only if
the stored version still equals the entity's, and then bumps it; otherwise it raises
``StaleVersion`` and the caller re-reads, re-checks its precondition and re-applies
(``service.cas.update_with_retry`` does exactly that).

``atomic()`` groups several writes into one transaction (a unit of work); outside it,
each call is its own transaction. Leases are named, expiring claims (``deposit:31``)
that keep two workers - threads, processes or machines - off the same piece of work.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
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

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    # Convenience built on the abstract methods ------------------------------------

    def get_many(self, cls: type[E], ids: Sequence[str]) -> list[E]:
        return [self.get(cls, i) for i in ids]

    def deposit_for(self, submission_id: str, repository_id: str) -> Deposit | None:
        found = self.find(Deposit, submission=submission_id, repository=repository_id)
        return found[0] if found else None
