"""The unit of work: one phase of the work, one transaction, nothing read twice.

``with database.unit_of_work() as uow:`` gives the phase ``uow.records`` (PASS's
entities through an identity map: an entity is read at most once per unit, and the
same object is returned every time) and ``uow.state`` (leases, the attempt log, the
outbox). Changes to the entities are not written when they are made: ``commit`` flushes
the new ones and every loaded entity that changed, each update a compare-and-set on its
version, then commits. Messages the phase announces (``uow.publish``) are recorded in
the outbox in the same transaction and handed to the publisher only after the commit,
so a message never announces state that was rolled back; one left behind by a crash is
published by ``Database.relay_outbox`` later. Leaving the block without ``commit``
rolls everything back.

``run_unit(database, work)`` runs ``work(uow)`` in a unit and commits it; when a
compare-and-set loses a race it runs the whole phase again on fresh reads, so the
phase re-checks its preconditions and re-applies its changes (the cosmicpython way).
"""

from __future__ import annotations

import logging
import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from copy import deepcopy
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from deposit_services.clock import Clock, SystemClock
from deposit_services.errors import AlreadyExists, Conflict, NotFound, StaleVersion, StoreError
from deposit_services.model.entities import Entity
from deposit_services.store.base import (
    E,
    OutboxMessage,
    Records,
    WorkerState,
    check_criteria,
)
from deposit_services.store.watch import WatchedState

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_RUNS = 25
Publisher = Callable[[OutboxMessage], None]


class CommitHook(ABC):
    """Told of the entities a unit writes and of the deposits whose attempt log it
    writes (``uow.attempted``): ``changed`` inside the unit's transaction (before its
    commit, so what it records there is committed or rolled back with them),
    ``committed`` after the commit. The search index's "to index" marks use it."""

    @abstractmethod
    def changed(self, uow: UnitOfWork, entities: Sequence[Entity]) -> None: ...

    @abstractmethod
    def committed(self) -> None: ...


def column_value(value: Any) -> str | None:
    """How an indexed field is compared and stored: enums by value, None as None."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def matches(entity: Entity, criteria: Mapping[str, Any]) -> bool:
    return all(column_value(getattr(entity, k)) == column_value(v) for k, v in criteria.items())


def _snapshot(entity: Entity) -> str:
    """What ``flush`` compares to tell a changed entity: pydantic's own JSON, written in
    Rust (a dict built and dumped by ``json`` cost 3x the CPU); only ever compared
    with another snapshot of the same entity, never stored."""
    return entity.model_dump_json(exclude_none=True)


def _copy(entity: E) -> E:
    """A deep copy of ``entity`` at half the CPU of pydantic's: its values are immutable
    (strings, numbers, enums, datetimes) but for lists and the JSON containers of its
    extra fields, which are copied deeply."""
    copy = entity.model_copy()  # its own __dict__ and extras, the values shared
    for values in (copy.__dict__, copy.__pydantic_extra__ or {}):
        for name, value in values.items():
            if isinstance(value, list | dict):
                values[name] = deepcopy(value)
    return copy


class RecordSession:
    """The identity map over ``Records`` for one unit of work."""

    def __init__(self, records: Records) -> None:
        self._records = records
        self._map: dict[tuple[str, str], Entity] = {}
        self._loaded: dict[tuple[str, str], str] = {}
        self._new: list[Entity] = []
        self._queries: set[tuple[str, tuple[tuple[str, str | None], ...]]] = set()
        self._first: list[tuple[str, str]] = []
        self.written: list[Entity] = []  # what flush wrote, new and changed

    def _track(self, entity: E) -> E:
        key = (entity.TYPE, entity.id)
        known = self._map.get(key)
        if known is not None:
            return known  # type: ignore[return-value]
        self._map[key] = entity
        self._loaded[key] = _snapshot(entity)
        return entity

    def get(self, cls: type[E], id: str) -> E:
        known = self._map.get((cls.TYPE, id))
        if known is not None:
            return known  # type: ignore[return-value]
        return self._track(self._records.get(cls, id))

    def loaded(self, cls: type[E]) -> list[E]:
        """The entities of ``cls`` this unit has read or added so far (no read)."""
        return [e for (kind, _), e in self._map.items()  # type: ignore[misc]
                if kind == cls.TYPE]

    def get_many(self, cls: type[E], ids: Iterable[str]) -> list[E]:
        """Those of ``ids`` that exist, in the order given (duplicates once)."""
        wanted = list(dict.fromkeys(i for i in ids if i))
        missing = [i for i in wanted if (cls.TYPE, i) not in self._map]
        if missing:
            for entity in self._records.get_many(cls, missing):
                self._track(entity)
        return [self._map[(cls.TYPE, i)] for i in wanted  # type: ignore[misc]
                if (cls.TYPE, i) in self._map]

    def find(self, cls: type[E], **criteria: Any) -> list[E]:
        """As ``Records.find``, on the entities as this unit has changed them. The same
        query twice in one unit is asked once: the map holds what it found."""
        check_criteria(cls, criteria)
        query = (cls.TYPE, tuple(sorted((k, column_value(v)) for k, v in criteria.items())))
        if query not in self._queries:
            for entity in self._records.find(cls, **criteria):
                self._track(entity)
            self._queries.add(query)
        found = [e for (kind, _), e in self._map.items()
                 if kind == cls.TYPE and matches(e, criteria)]
        return sorted(found, key=lambda e: e.id)  # type: ignore[arg-type]

    def submission_graph(self, submission_id: str) -> list[Entity]:
        """``Records.submission_graph``, tracked (NotFound if no such submission)."""
        return [self._track(e) for e in self._records.submission_graph(submission_id)]

    def attach(self, entity: E) -> E:
        """Take a copy of an entity read by an earlier unit instead of reading it again:
        a write of it is still a compare-and-set on the version it had, so if it changed
        since, the write fails and the unit runs again on fresh reads."""
        known = self._map.get((entity.TYPE, entity.id))
        if known is not None:
            return known  # type: ignore[return-value]
        return self._track(_copy(entity))

    def write_first(self, entity: Entity) -> None:
        """Write this (loaded) entity's changes before the new entities at commit: a
        compare-and-set that guards the unit (the claim of a submission) then fails
        before anything is created in a store that cannot roll back (pass-core)."""
        self._first.append((entity.TYPE, entity.id))

    def add(self, entity: E) -> E:
        key = (entity.TYPE, entity.id)
        if key in self._map:
            raise AlreadyExists(f"{entity.TYPE} {entity.id} already exists")
        self._map[key] = entity
        self._new.append(entity)
        return entity

    def flush(self) -> int:
        """Write the new entities (those they refer to first) and the changed ones;
        returns how many were written. A store that assigns its own ids (pass-core)
        may give a new entity another id: every reference to it in this unit follows."""
        written = 0
        for key in self._first:
            written += self._write(key)
        self._first.clear()
        renamed: dict[tuple[str, str], str] = {}
        for entity in _dependencies_first(self._new):
            _follow(entity, renamed)
            key = (entity.TYPE, entity.id)
            stored = self._records.add(entity)
            entity.version = stored.version
            if stored.id != entity.id:
                renamed[key] = stored.id
                del self._map[key]
                entity.id = stored.id
                key = (entity.TYPE, entity.id)
                self._map[key] = entity
            self._loaded[key] = _snapshot(entity)
            self.written.append(entity)
            written += 1
        self._new.clear()
        for key, entity in self._map.items():
            _follow(entity, renamed)
            written += self._write(key)
        return written

    def _write(self, key: tuple[str, str]) -> int:
        """Update the entity of ``key`` if it changed since it was read (or written)."""
        entity = self._map[key]
        now = _snapshot(entity)
        if now == self._loaded[key]:
            return 0
        entity.version = self._records.update(entity).version
        self._loaded[key] = now
        self.written.append(entity)
        return 1


def _refs(entity: Entity) -> Iterable[tuple[str, str]]:
    for name, target in entity.REFS.items():
        value = getattr(entity, name)
        for ref in value if isinstance(value, list) else [value]:
            if ref:
                yield target, ref


def _dependencies_first(entities: list[Entity]) -> list[Entity]:
    """New entities ordered so that each comes after the new ones it refers to (a
    store that checks references, or assigns ids, needs them to exist first)."""
    pending = {(e.TYPE, e.id): e for e in entities}
    ordered: list[Entity] = []
    placed: set[tuple[str, str]] = set()
    while pending:
        ready = [key for key, e in pending.items()
                 if all(ref in placed or ref not in pending for ref in _refs(e))]
        if not ready:  # a cycle: keep the order they were added in
            ready = list(pending)
        for key in ready:
            ordered.append(pending.pop(key))
            placed.add(key)
    return ordered


def _follow(entity: Entity, renamed: Mapping[tuple[str, str], str]) -> None:
    """Point ``entity``'s references at the ids the store assigned."""
    if not renamed:
        return
    for name, target in entity.REFS.items():
        value = getattr(entity, name)
        if isinstance(value, list):
            moved = [renamed.get((target, v), v) for v in value]
            if moved != value:
                setattr(entity, name, moved)
        elif value is not None and (target, value) in renamed:
            setattr(entity, name, renamed[(target, value)])


class UnitOfWork(ABC):
    """One transaction over the records and the worker state (see the module doc)."""

    def __init__(self, database: Database, read_only: bool) -> None:
        self.database = database
        self.read_only = read_only
        self._records: RecordSession | None = None
        self._state: WatchedState | None = None
        self._outbox: list[OutboxMessage] = []
        self._done = False

    @property
    def records(self) -> RecordSession:
        if self._records is None:
            self._records = RecordSession(self._open_records())
        return self._records

    @property
    def state(self) -> WorkerState:
        if self._state is None:
            self._state = WatchedState(self._open_state())
        return self._state

    @property
    def attempted(self) -> list[str]:
        """The deposits whose attempt log this unit has written."""
        return list(self._state.attempted) if self._state is not None else []

    def state_connection(self) -> Connection:
        """The SQL connection of this unit's worker state, in the unit's transaction
        (begun on first use): for tables kept beside the worker state (the search
        index's marks) that must commit or roll back with the unit. ``StoreError`` where
        the worker state is not in SQL."""
        raise StoreError(f"{type(self).__name__} keeps no worker state in SQL")

    def publish(self, queue: str, body: str, headers: Mapping[str, str] | None = None) -> None:
        """Announce ``body`` on ``queue`` once this unit has committed."""
        self._outbox.append(self.state.add_message(queue, body, dict(headers or {})))

    def commit(self) -> None:
        if self._done:
            raise RuntimeError("this unit of work has already ended")
        published = [] if self.read_only else self.database.take_published()
        try:
            if self._records is not None and not self.read_only:
                self._records.flush()
            written = self._written()
            for hook in self.database.commit_hooks if written or self.attempted else ():
                hook.changed(self, written)
            if published:
                self.state.remove_messages(published)
            self._commit()
        except BaseException:
            self.database.give_back(published)
            self._rollback()
            raise
        finally:
            self._done = True
            self._close()
        if self._outbox:
            self.database.after_commit(self._outbox)
        if self._written() or self.attempted:
            for hook in self.database.commit_hooks:
                hook.committed()

    def _written(self) -> list[Entity]:
        if self._records is None or self.read_only:
            return []
        return self._records.written

    def rollback(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._rollback()
        finally:
            self._close()

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()

    @abstractmethod
    def _open_records(self) -> Records: ...

    @abstractmethod
    def _open_state(self) -> WorkerState: ...

    @abstractmethod
    def _commit(self) -> None: ...

    @abstractmethod
    def _rollback(self) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...


class Database(ABC):
    """Makes units of work (one per phase); one instance per process, shared by threads.

    It also runs the outbox: ``publisher`` (set by bootstrap where there is a broker)
    gets each message after its unit committed; the ids of the published ones are
    removed in the next unit that writes (or by ``flush_published``), so publishing
    costs no transaction of its own on a busy worker.
    """

    # Whether the system of record announces its own changes (SubmissionReady,
    # DepositStatus) on the broker, as pass-core does; ours does not.
    announces_changes = False

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self.publisher: Publisher | None = None
        self.commit_hooks: list[CommitHook] = []
        self._lock = threading.Lock()
        self._published: list[int] = []

    @abstractmethod
    def unit_of_work(self, read_only: bool = False) -> UnitOfWork:
        """A new unit; ``read_only`` units never write (and may run concurrently)."""

    def check(self) -> None:  # noqa: B027 - optional hook
        """Connect and make the store ready now (``listen`` fails fast on a bad URL)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    # -- the outbox ---------------------------------------------------------------------

    def after_commit(self, messages: Sequence[OutboxMessage]) -> None:
        """Publish what a unit recorded; a failure leaves it for ``relay_outbox``."""
        if self.publisher is None:
            return
        for message in messages:
            try:
                self.publisher(message)
            except Exception as exc:  # noqa: BLE001 - the outbox keeps it: relayed later
                log.warning("publishing %s to %s failed (%s); it stays in the outbox and is "
                            "sent again later", message.body, message.queue, exc)
                continue
            with self._lock:
                self._published.append(message.id)

    def take_published(self) -> list[int]:
        with self._lock:
            taken, self._published = self._published, []
        return taken

    def give_back(self, ids: Sequence[int]) -> None:
        if ids:
            with self._lock:
                self._published.extend(ids)

    def flush_published(self) -> None:
        """Remove the published messages from the outbox now (an idle worker, a stop)."""
        with self._lock:
            if not self._published:
                return
        with self.unit_of_work() as uow:
            uow.commit()

    def relay_outbox(self, older_than: float) -> int:
        """Publish outbox messages left behind by a worker that stopped between its
        commit and its publish (at least ``older_than`` seconds old); returns how many."""
        if self.publisher is None:
            return 0
        with self.unit_of_work(read_only=True) as uow:
            left = uow.state.messages(older_than)
            uow.commit()
        if left:
            log.warning("outbox: publishing %d message(s) left by a stopped worker", len(left))
            self.after_commit(left)
            self.flush_published()
        return len(left)


def run_unit(
    database: Database,
    work: Callable[[UnitOfWork], T],
    *,
    read_only: bool = False,
    what: str = "unit of work",
) -> T:
    """``work`` in a unit of work, committed; run again from fresh reads when one of
    its compare-and-set writes lost a race (or, once, an insert did). ``Conflict``
    after MAX_RUNS."""
    duplicates = 0
    for run in range(1, MAX_RUNS + 1):
        with database.unit_of_work(read_only) as uow:
            try:
                result = work(uow)
                uow.commit()
                return result
            except StaleVersion as exc:
                log.debug("%s lost a race (run %d): %s; running it again", what, run, exc)
            except AlreadyExists as exc:
                # Someone inserted it between our read and our insert: a second run
                # reads it. A second time means the work inserts what exists: a bug.
                duplicates += 1
                if duplicates > 1:
                    raise
                log.debug("%s lost an insert race (run %d): %s; running it again", what,
                          run, exc)
        database.clock.sleep(random.uniform(0, 0.005 * run))
    raise Conflict(f"{what}: gave up after {MAX_RUNS} conflicting writes")


def get_or_none(uow: UnitOfWork, cls: type[E], id: str | None) -> E | None:
    if not id:
        return None
    try:
        return uow.records.get(cls, id)
    except NotFound:
        return None
