"""In-memory adapters of both store ports, for the service layer's unit tests.

They keep the contract the SQL adapters keep (the same contract tests run on all of
them): versions and compare-and-set, unique deposits per (submission, repository),
leases that expire by the given clock, the attempt log, the outbox, and a unit of
work that commits everything or nothing. A unit holds the database's lock from its
first use to its end, as SQLite's ``BEGIN IMMEDIATE`` does, and rolls back by restoring
what it changed. ``transactions`` counts the units that touched the data.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from deposit_services.clock import Clock
from deposit_services.errors import AlreadyExists, Conflict, NotFound, StaleVersion
from deposit_services.model.entities import Deposit
from deposit_services.model.works import SentWork
from deposit_services.store.base import (
    Attempt,
    AttemptOutcome,
    E,
    OutboxMessage,
    PackageInfo,
    Records,
    RepositoryState,
    WorkerState,
    check_criteria,
)
from deposit_services.store.base import entity_from_json as _load
from deposit_services.store.uow import Database, UnitOfWork, matches


@dataclass
class _Data:
    entities: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    leases: dict[str, tuple[str, float]] = field(default_factory=dict)
    attempts: dict[str, list[Attempt]] = field(default_factory=dict)
    outbox: dict[int, tuple[OutboxMessage, float]] = field(default_factory=dict)
    next_message: int = 1
    repositories: dict[str, RepositoryState] = field(default_factory=dict)
    sent_works: dict[str, SentWork] = field(default_factory=dict)  # by deposit id


class MemoryDatabase(Database):
    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self.data = _Data()
        self.lock = threading.RLock()
        self.transactions = 0

    def unit_of_work(self, read_only: bool = False) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self, read_only)


class MemoryUnitOfWork(UnitOfWork):
    database: MemoryDatabase

    def __init__(self, database: MemoryDatabase, read_only: bool) -> None:
        super().__init__(database, read_only)
        self._before: _Data | None = None

    def data(self) -> _Data:
        """The database's data, locked for this unit and saved for a rollback."""
        if self._before is None:
            self.database.lock.acquire()
            self.database.transactions += 1
            self._before = copy.deepcopy(self.database.data)
        return self.database.data

    def _open_records(self) -> Records:
        return MemoryRecords(self)

    def _open_state(self) -> WorkerState:
        return MemoryWorkerState(self)

    def _commit(self) -> None:
        pass

    def _rollback(self) -> None:
        if self._before is not None:
            self.database.data = self._before

    def _close(self) -> None:
        if self._before is not None:
            self._before = None
            self.database.lock.release()


class MemoryRecords(Records):
    def __init__(self, unit: MemoryUnitOfWork) -> None:
        self._unit = unit

    def get(self, cls: type[E], id: str) -> E:
        row = self._unit.data().entities.get((cls.TYPE, id))
        if row is None:
            raise NotFound(f"{cls.TYPE} {id} not found")
        return _load(cls, *row)

    def get_many(self, cls: type[E], ids: Sequence[str]) -> list[E]:
        rows = self._unit.data().entities
        return [_load(cls, *rows[(cls.TYPE, i)]) for i in ids if (cls.TYPE, i) in rows]

    def find(self, cls: type[E], **criteria: Any) -> list[E]:
        check_criteria(cls, criteria)
        found = [_load(cls, *row) for (kind, _), row in self._unit.data().entities.items()
                 if kind == cls.TYPE]
        return sorted((e for e in found if matches(e, criteria)), key=lambda e: e.id)

    def add(self, entity: E) -> E:
        rows = self._unit.data().entities
        if (entity.TYPE, entity.id) in rows:
            raise AlreadyExists(f"{entity.TYPE} {entity.id} already exists")
        if isinstance(entity, Deposit) and any(
            d.submission == entity.submission and d.repository == entity.repository
            for d in self.find(Deposit)
        ):
            raise AlreadyExists(f"Deposit {entity.id}: submission {entity.submission} already "
                                f"has a deposit to repository {entity.repository}")
        rows[(entity.TYPE, entity.id)] = (json.dumps(entity.to_json()), 1)
        return entity.model_copy(update={"version": 1})

    def update(self, entity: E) -> E:
        rows = self._unit.data().entities
        row = rows.get((entity.TYPE, entity.id))
        if row is None:
            raise NotFound(f"{entity.TYPE} {entity.id} not found (deleted?)")
        if row[1] != entity.version:
            raise StaleVersion(f"{entity.TYPE} {entity.id}: version {entity.version} is stale "
                               f"(stored: {row[1]})")
        rows[(entity.TYPE, entity.id)] = (json.dumps(entity.to_json()), entity.version + 1)
        return entity.model_copy(update={"version": entity.version + 1})


class MemoryWorkerState(WorkerState):
    def __init__(self, unit: MemoryUnitOfWork) -> None:
        self._unit = unit
        self._clock = unit.database.clock

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def acquire_lease(self, key: str, owner: str, seconds: float) -> bool:
        leases = self._unit.data().leases
        held = leases.get(key)
        if held is not None and held[0] != owner and held[1] > self._now():
            return False
        leases[key] = (owner, self._now() + seconds)
        return True

    def release_lease(self, key: str, owner: str) -> None:
        leases = self._unit.data().leases
        if key in leases and leases[key][0] == owner:
            del leases[key]

    def begin_attempt(
        self, deposit_id: str, *, trigger: str, owner: str, package: PackageInfo | None = None
    ) -> Attempt:
        log = self._unit.data().attempts.setdefault(deposit_id, [])
        attempt = Attempt(deposit_id, len(log) + 1, trigger, owner, self._clock.now(),
                          package=package)
        log.append(attempt)
        return attempt

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
        log = self._unit.data().attempts.get(deposit_id, [])
        if not 1 <= number <= len(log):
            raise NotFound(f"deposit {deposit_id} has no attempt {number}")
        if not log[number - 1].is_open:
            raise Conflict(f"deposit {deposit_id}: attempt {number} has already ended")
        ended = replace(log[number - 1], ended_at=self._clock.now(), outcome=outcome,
                        error=error, status_ref=status_ref, edit_iri=edit_iri,
                        access_url=access_url)
        log[number - 1] = ended
        return ended

    def note_attempt(self, deposit_id: str, number: int, error: str) -> None:
        log = self._unit.data().attempts.get(deposit_id, [])
        if 1 <= number <= len(log) and log[number - 1].is_open:
            log[number - 1] = replace(log[number - 1], error=error)

    def attempts(self, deposit_id: str) -> list[Attempt]:
        return list(self._unit.data().attempts.get(deposit_id, []))

    def attempt_counts(self, deposit_ids: Sequence[str]) -> dict[str, int]:
        attempts = self._unit.data().attempts
        return {d: len(attempts[d]) for d in deposit_ids if attempts.get(d)}

    def repository_states(self, keys: Sequence[str] = ()) -> list[RepositoryState]:
        states = self._unit.data().repositories
        return [states[k] for k in sorted(states) if not keys or k in keys]

    def put_repository_state(self, state: RepositoryState) -> bool:
        states = self._unit.data().repositories
        stored = states.get(state.key)
        if (stored.version if stored is not None else 0) != state.version:
            return False
        states[state.key] = replace(state, version=state.version + 1)
        return True

    def record_sent_work(self, work: SentWork) -> None:
        self._unit.data().sent_works[work.deposit_id] = work

    def backfill_sent_works(self, works: Sequence[SentWork]) -> int:
        stored = self._unit.data().sent_works
        added = {w.deposit_id: w for w in works if w.deposit_id not in stored}
        stored.update(added)
        return len(added)

    def sent_works(self, repository: str, doi: str) -> list[SentWork]:
        stored = self._unit.data().sent_works
        return [stored[k] for k in sorted(stored)
                if (stored[k].repository, stored[k].doi) == (repository, doi)]

    def add_message(self, queue: str, body: str, headers: Mapping[str, str]) -> OutboxMessage:
        data = self._unit.data()
        message = OutboxMessage(data.next_message, queue, body, dict(headers))
        data.outbox[message.id] = (message, self._now())
        data.next_message += 1
        return message

    def messages(self, older_than: float) -> list[OutboxMessage]:
        limit = self._now() - older_than
        return [m for m, at in self._unit.data().outbox.values() if at <= limit]

    def discard_messages(self, body: str) -> None:
        outbox = self._unit.data().outbox
        for key in [k for k, (m, _) in outbox.items() if m.body == body]:
            del outbox[key]

    def remove_messages(self, ids: Sequence[int]) -> None:
        outbox = self._unit.data().outbox
        for i in ids:
            outbox.pop(i, None)

