"""The two store ports, split by what they hold.

``Records`` are PASS's entities (Submission, Deposit, RepositoryCopy, Repository, File
...): what the system of record holds, in our SQL tables or, in a PASS deployment, in
pass-core. Every entity carries a ``version``; ``update`` is a compare-and-set that
fails with ``StaleVersion`` when someone else wrote first.

``WorkerState`` is what only the worker needs, always in SQL (SQLite embedded,
PostgreSQL shared by replicas): leases (named, expiring claims such as ``deposit:31``
that keep two workers off the same piece of work), the attempt log (the intent of
every transfer before it, the outcome after it, so a restart can tell "never sent"
from "sent, outcome unknown"), the outbox (messages recorded with the state they
announce, published after commit), repository states and the index of works sent (a
repository's deposits by DOI, for the duplicate check: model/works.py).

Neither port is used directly by the service layer: it works inside a unit of work
(``store.uow``), which gives both to one phase of the work and one transaction.
"""

from __future__ import annotations

import enum
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from deposit_services.model.entities import (
    Entity,
    File,
    Funder,
    Grant,
    Journal,
    Publication,
    Repository,
    Submission,
    User,
)
from deposit_services.model.works import SentWork

E = TypeVar("E", bound=Entity)

# Fields each type can be searched by with ``find``. Adapters index these.
INDEXED_FIELDS: dict[str, tuple[str, ...]] = {
    "Submission": ("aggregated_deposit_status", "submission_status"),
    "Deposit": ("submission", "repository", "deposit_status"),
    "File": ("submission",),
    "RepositoryCopy": ("publication", "repository", "copy_status"),
    "Repository": ("repository_key", "name"),
}


def check_criteria(cls: type[Entity], criteria: Mapping[str, Any]) -> None:
    """ValueError naming the fields ``cls`` cannot be searched by."""
    indexed = INDEXED_FIELDS.get(cls.TYPE, ())
    unknown = sorted(set(criteria) - set(indexed))
    if unknown:
        raise ValueError(
            f"{cls.TYPE} cannot be searched by {', '.join(unknown)} "
            f"(indexed: {', '.join(indexed) or 'none'})"
        )


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
    """One transfer attempt of a deposit. ``ended_at`` None: intent recorded, outcome not."""

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


@dataclass(frozen=True)
class RepositoryState:
    """What the worker keeps about one repository (by its repositories.json key), shared
    by replicas: its health and when its contacts were last sent a notice.

    ``health`` is ``healthy``, ``degraded`` (transient failures since the last success:
    ``failures``) or ``paused`` (deposits wait until ``paused_until``; ``manual``: an
    operator paused it, only ``resume`` or the end of the pause lifts it); ``reason``
    says why, ``since`` since when. ``version`` is the compare-and-set version (0: new).
    """

    key: str
    health: str = "healthy"
    failures: int = 0
    reason: str | None = None
    since: datetime | None = None
    paused_until: datetime | None = None
    manual: bool = False
    probes: int = 0
    noticed_at: datetime | None = None
    noticed: tuple[str, ...] = ()  # what the last notice reported ("<deposit>:<status>")
    version: int = 0


@dataclass(frozen=True)
class OutboxMessage:
    """A message recorded in the outbox: published once its transaction has committed."""

    id: int
    queue: str
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)


class Records(ABC):
    """PASS entities, read and written inside the unit of work's transaction."""

    @abstractmethod
    def get(self, cls: type[E], id: str) -> E:
        """The entity with that id and its current version; ``NotFound`` if none."""

    @abstractmethod
    def get_many(self, cls: type[E], ids: Sequence[str]) -> list[E]:
        """The entities of those ids that exist (one round trip), in no set order."""

    @abstractmethod
    def find(self, cls: type[E], **criteria: Any) -> list[E]:
        """Entities whose indexed fields equal ``criteria`` (enum or str values, None for
        unset), ordered by id; no criteria: every entity of the type."""

    @abstractmethod
    def add(self, entity: E) -> E:
        """Insert; returns it as stored (at version 1, or the store's own version; a store
        that assigns ids, as pass-core does, returns the id it gave). ``AlreadyExists`` if
        the id is taken, or for a Deposit whose (submission, repository) pair has one."""

    @abstractmethod
    def update(self, entity: E) -> E:
        """Compare-and-set on ``entity.version``; returns it at the new version.
        ``StaleVersion`` if someone else wrote first, ``NotFound`` if it is gone."""

    def submission_graph(self, submission_id: str) -> list[Entity]:
        """The submission and what a deposit of it needs (publication, journal,
        repositories, submitter and grant users, grants, funders, files), in a few
        batched reads. ``NotFound`` if the submission is not there; a missing
        referenced entity is left out. Adapters with a join (pass-core's ``include``)
        override it with one request."""
        submission = self.get(Submission, submission_id)
        found: list[Entity] = [submission]
        publications = self.get_many(Publication, _ids([submission.publication]))
        grants = self.get_many(Grant, submission.grants)
        found += publications
        found += grants
        found += self.get_many(Repository, submission.repositories)
        found += self.find(File, submission=submission.id)
        found += self.get_many(Journal, _ids(p.journal for p in publications))
        found += self.get_many(Funder, _ids(id for g in grants
                                            for id in (g.primary_funder, g.direct_funder)))
        found += self.get_many(User, _ids([submission.submitter, *(
            id for g in grants for id in (g.pi, *g.co_pis))]))
        return found


def entity_from_json(cls: type[E], body: str, version: int) -> E:
    """An entity as an adapter stored it: its pass-core JSON and its version."""
    data = json.loads(body)
    data.pop("@type", None)
    entity = cls.model_validate(data)
    entity.version = version
    return entity


def _ids(values: Any) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


class WorkerState(ABC):
    """Leases, the attempt log, repository states, the outbox and the index of works
    sent (model/works.py), inside the unit of work's transaction."""

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
        started now) and return it."""

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
    def note_attempt(self, deposit_id: str, number: int, error: str) -> None:
        """Write ``error`` on an attempt that stays open (a transfer whose outcome is
        unknown: the next attempt reconciles it first); nothing if it has ended."""

    @abstractmethod
    def attempts(self, deposit_id: str) -> list[Attempt]:
        """The deposit's attempts, oldest first."""

    @abstractmethod
    def attempt_counts(self, deposit_ids: Sequence[str]) -> dict[str, int]:
        """How many attempts each deposit has had (one round trip; 0s left out)."""

    @abstractmethod
    def repository_states(self, keys: Sequence[str] = ()) -> list[RepositoryState]:
        """The recorded states of those repositories (every recorded one when ``keys``
        is empty), by key; a repository never recorded is left out (it is healthy)."""

    @abstractmethod
    def put_repository_state(self, state: RepositoryState) -> bool:
        """Write ``state`` if the stored one is still at ``state.version`` (0: none
        stored yet); stored at version + 1. False when someone else wrote first."""

    @abstractmethod
    def add_message(self, queue: str, body: str, headers: Mapping[str, str]) -> OutboxMessage:
        """Record a message to publish once this transaction has committed."""

    @abstractmethod
    def messages(self, older_than: float) -> list[OutboxMessage]:
        """Outbox messages recorded at least ``older_than`` seconds ago (left by a
        worker that stopped between commit and publish), oldest first."""

    @abstractmethod
    def remove_messages(self, ids: Sequence[int]) -> None:
        """Forget outbox messages that have been published."""

    @abstractmethod
    def discard_messages(self, body: str) -> None:
        """Forget outbox messages with this body, published or not: what they announce
        has been taken up (a claimed submission's SubmissionReady)."""


    @abstractmethod
    def record_sent_work(self, work: SentWork) -> None:
        """Index ``work`` (one row per deposit: a row of the same deposit is replaced)."""

    @abstractmethod
    def backfill_sent_works(self, works: Sequence[SentWork]) -> int:
        """Index those of ``works`` whose deposit has no row yet (rows written since are
        kept); how many were added."""

    @abstractmethod
    def sent_works(self, repository: str, doi: str) -> list[SentWork]:
        """The rows of that repository (its id) and DOI key, by deposit id: one indexed
        statement."""
