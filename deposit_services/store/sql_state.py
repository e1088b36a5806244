"""The worker state in SQL: leases, the attempt log and the outbox, on a unit's
connection. Times come from the database's clock, so leases agree between processes
and machines sharing one database."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Executable,
    Float,
    String,
    and_,
    bindparam,
    delete,
    exc,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from deposit_services.errors import Conflict, NotFound
from deposit_services.model.works import SentWork
from deposit_services.store.base import (
    Attempt,
    AttemptOutcome,
    OutboxMessage,
    PackageInfo,
    RepositoryState,
    WorkerState,
)
from deposit_services.store.engine import db_errors
from deposit_services.store.schema import (
    deposit_attempts,
    leases,
    outbox,
    repository_states,
    sent_works,
)

log = logging.getLogger(__name__)


class SqlWorkerState(WorkerState):
    def __init__(
        self,
        connection: Callable[[], Connection],
        statements: Any,
        enqueue: Callable[[Connection, str, str, Mapping[str, str]], None] | None = None,
    ) -> None:
        self._connection = connection
        self._s = statements
        self._enqueue = enqueue

    def _execute(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Any:
        with db_errors(self._s.where):
            return self._connection().execute(statement, dict(params or {}))

    # Leases ---------------------------------------------------------------------------

    def acquire_lease(self, key: str, owner: str, seconds: float) -> bool:
        statement = self._s.get("acquire", leases, self._acquire_statement)
        won = self._execute(statement, {"_key": key, "_owner": owner,
                                        "_seconds": float(seconds)}).first() is not None
        log.debug("lease %s for %s: %s", key, owner, "acquired" if won else "held by another")
        return won

    def _acquire_statement(self) -> Executable:
        """Insert the lease, or take it over when it is ours or has run out."""
        ins = postgresql.insert(leases) if self._s.postgres else sqlite.insert(leases)
        owner = bindparam("_owner", type_=String)
        expires = self._s.now + bindparam("_seconds", type_=Float)
        return (
            ins.values(key=bindparam("_key"), owner=owner, expires_at=expires)
            .on_conflict_do_update(
                index_elements=[leases.c.key],
                set_={"owner": owner, "expires_at": expires},
                where=or_(leases.c.owner == owner, leases.c.expires_at <= self._s.now),
            )
            .returning(leases.c.key)
        )

    def release_lease(self, key: str, owner: str) -> None:
        statement = self._s.get("release", leases, lambda: delete(leases).where(
            and_(leases.c.key == bindparam("_key"), leases.c.owner == bindparam("_owner"))))
        self._execute(statement, {"_key": key, "_owner": owner})

    # Attempt log ----------------------------------------------------------------------

    def begin_attempt(
        self, deposit_id: str, *, trigger: str, owner: str, package: PackageInfo | None = None
    ) -> Attempt:
        t = deposit_attempts
        # Numbered in the insert itself: one round trip. Two writers numbering the same
        # deposit (never under its lease) collide on the unique key: Conflict.
        add = self._s.get("add attempt", t, lambda: insert(t).from_select(
            ["deposit_id", "attempt", "trigger", "owner", "started_at", "package_name",
             "package_size", "package_md5", "package_sha256"],
            select(bindparam("_deposit", type_=String), func.coalesce(func.max(t.c.attempt), 0)
                   + 1, bindparam("_trigger", type_=String), bindparam("_owner", type_=String),
                   self._s.now, bindparam("_name", type_=String),
                   bindparam("_size", type_=BigInteger), bindparam("_md5", type_=String),
                   bindparam("_sha256", type_=String))
            .where(t.c.deposit_id == bindparam("_deposit", type_=String)),
        ).returning(*t.c))
        params = {
            "_deposit": deposit_id, "_trigger": trigger, "_owner": owner,
            "_name": package.name if package else None,
            "_size": package.size if package else None,
            "_md5": package.md5 if package else None,
            "_sha256": package.sha256 if package else None,
        }
        with db_errors(self._s.where):
            try:
                row = self._connection().execute(add, params).one()
            except exc.IntegrityError as error:
                raise Conflict(f"deposit {deposit_id}: another worker numbered an attempt at "
                               "the same time") from error
        return _to_attempt(row)

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
        t = deposit_attempts
        end = self._s.get("end attempt", t, lambda: update(t).where(
            t.c.deposit_id == bindparam("_deposit"), t.c.attempt == bindparam("_number"),
            t.c.ended_at.is_(None),
        ).values(
            ended_at=self._s.now, outcome=bindparam("_outcome"), error=bindparam("_error"),
            status_ref=bindparam("_status_ref"), edit_iri=bindparam("_edit_iri"),
            access_url=bindparam("_access_url"),
        ).returning(*t.c))
        row = self._execute(end, {
            "_deposit": deposit_id, "_number": number, "_outcome": outcome.value,
            "_error": error, "_status_ref": status_ref, "_edit_iri": edit_iri,
            "_access_url": access_url,
        }).first()
        if row is None:
            where = and_(t.c.deposit_id == deposit_id, t.c.attempt == number)
            if self._execute(select(t.c.id).where(where)).first() is None:
                raise NotFound(f"deposit {deposit_id} has no attempt {number}")
            raise Conflict(f"deposit {deposit_id}: attempt {number} has already ended")
        return _to_attempt(row)

    def note_attempt(self, deposit_id: str, number: int, error: str) -> None:
        t = deposit_attempts
        note = self._s.get("note attempt", t, lambda: update(t).where(
            t.c.deposit_id == bindparam("_deposit"), t.c.attempt == bindparam("_number"),
            t.c.ended_at.is_(None),
        ).values(error=bindparam("_error")))
        self._execute(note, {"_deposit": deposit_id, "_number": number, "_error": error})

    def attempts(self, deposit_id: str) -> list[Attempt]:
        t = deposit_attempts
        query = self._s.get("attempts", t, lambda: select(t).where(
            t.c.deposit_id == bindparam("_deposit")).order_by(t.c.attempt))
        return [_to_attempt(row) for row in self._execute(query, {"_deposit": deposit_id})]

    def attempt_counts(self, deposit_ids: Sequence[str]) -> dict[str, int]:
        if not deposit_ids:
            return {}
        t = deposit_attempts
        query = self._s.get("attempt counts", t, lambda: select(t.c.deposit_id, func.count())
                            .where(t.c.deposit_id.in_(bindparam("_ids", expanding=True)))
                            .group_by(t.c.deposit_id))
        rows = self._execute(query, {"_ids": list(deposit_ids)}).all()
        return {row[0]: int(row[1]) for row in rows}

    # Repository state ----------------------------------------------------------------

    def repository_states(self, keys: Sequence[str] = ()) -> list[RepositoryState]:
        t = repository_states
        if not keys:
            query = self._s.get("repository states", t, lambda: select(t).order_by(t.c.key))
            return [_to_state(row) for row in self._execute(query)]
        # built once (the health gate reads one key per intent and outcome unit)
        query = self._s.get("repository states of", t, lambda: select(t).where(
            t.c.key.in_(bindparam("_keys", expanding=True))).order_by(t.c.key))
        return [_to_state(row) for row in self._execute(query, {"_keys": list(keys)})]

    def put_repository_state(self, state: RepositoryState) -> bool:
        t = repository_states
        values = {
            "health": state.health, "failures": state.failures, "reason": state.reason,
            "since": _stamp(state.since), "paused_until": _stamp(state.paused_until),
            "manual": int(state.manual), "probes": state.probes,
            "noticed_at": _stamp(state.noticed_at), "version": state.version + 1,
            "noticed": json.dumps(list(state.noticed)) if state.noticed else None,
        }
        if state.version == 0:  # first write: loses to a concurrent first write
            ins = postgresql.insert(t) if self._s.postgres else sqlite.insert(t)
            added = self._execute(ins.values(key=state.key, **values)
                                  .on_conflict_do_nothing(index_elements=[t.c.key])
                                  .returning(t.c.key))
            return added.first() is not None
        result = self._execute(update(t).where(t.c.key == state.key,
                                               t.c.version == state.version)
                               .values(**values).returning(t.c.key))
        return result.first() is not None

    # Works sent ----------------------------------------------------------------------

    def record_sent_work(self, work: SentWork) -> None:
        t = sent_works

        def upsert() -> Executable:  # a row of the same deposit is replaced
            ins = postgresql.insert(t) if self._s.postgres else sqlite.insert(t)
            return ins.values({c.name: bindparam(f"_{c.name}") for c in t.c}
                              ).on_conflict_do_update(
                index_elements=[t.c.deposit_id],
                set_={c.name: ins.excluded[c.name] for c in t.c if c.name != "deposit_id"})

        statement = self._s.get("record sent work", t, upsert)
        self._execute(statement, {f"_{k}": v for k, v in vars(work).items()})

    def backfill_sent_works(self, works: Sequence[SentWork]) -> int:
        if not works:
            return 0
        t = sent_works
        ins = postgresql.insert(t) if self._s.postgres else sqlite.insert(t)
        statement = ins.values([vars(w) for w in works]).on_conflict_do_nothing(
            index_elements=[t.c.deposit_id]).returning(t.c.deposit_id)
        return len(self._execute(statement).all())

    def sent_works(self, repository: str, doi: str) -> list[SentWork]:
        t = sent_works
        query = self._s.get("sent works", t, lambda: select(t).where(
            t.c.repository == bindparam("_repository"), t.c.doi == bindparam("_doi"),
        ).order_by(t.c.deposit_id))
        rows = self._execute(query, {"_repository": repository, "_doi": doi})
        return [SentWork(r.repository, r.doi, r.deposit_id, r.submission_id, r.fingerprint)
                for r in rows]

    # Outbox ---------------------------------------------------------------------------

    def add_message(self, queue: str, body: str, headers: Mapping[str, str]) -> OutboxMessage:
        if self._enqueue is not None:  # the queue is in this database: straight into it
            with db_errors(self._s.where):
                self._enqueue(self._connection(), queue, body, headers)
            return OutboxMessage(0, queue, body, headers)
        statement = self._s.get("add message", outbox, lambda: insert(outbox).values(
            queue=bindparam("_queue"), body=bindparam("_body"),
            headers=bindparam("_headers"), created_at=self._s.now,
        ).returning(outbox.c.id))
        row = self._execute(statement, {"_queue": queue, "_body": body,
                                        "_headers": json.dumps(dict(headers), sort_keys=True)})
        return OutboxMessage(int(row.scalar_one()), queue, body, headers)

    def messages(self, older_than: float) -> list[OutboxMessage]:
        query = select(outbox).where(outbox.c.created_at <= self._s.now - older_than
                                     ).order_by(outbox.c.id)
        return [OutboxMessage(int(r.id), r.queue, r.body, json.loads(r.headers))
                for r in self._execute(query)]

    def discard_messages(self, body: str) -> None:
        statement = self._s.get("discard messages", outbox, lambda: delete(outbox).where(
            outbox.c.body == bindparam("_body")))
        self._execute(statement, {"_body": body})

    def remove_messages(self, ids: Sequence[int]) -> None:
        if ids:
            statement = self._s.get("remove messages", outbox, lambda: delete(outbox).where(
                outbox.c.id.in_(bindparam("_ids", expanding=True))))
            self._execute(statement, {"_ids": list(ids)})


def _when(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _stamp(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _to_state(row: Row[Any]) -> RepositoryState:
    return RepositoryState(
        key=row.key, health=row.health, failures=int(row.failures), reason=row.reason,
        since=_when(row.since), paused_until=_when(row.paused_until), manual=bool(row.manual),
        probes=int(row.probes), noticed_at=_when(row.noticed_at),
        noticed=tuple(json.loads(row.noticed)) if row.noticed else (), version=int(row.version))


def _to_attempt(row: Row[Any]) -> Attempt:
    package = None
    if row.package_name is not None:
        package = PackageInfo(row.package_name, int(row.package_size or 0), row.package_md5,
                              row.package_sha256)
    return Attempt(
        deposit_id=row.deposit_id, number=row.attempt, trigger=row.trigger, owner=row.owner,
        started_at=datetime.fromtimestamp(row.started_at, UTC), ended_at=_when(row.ended_at),
        outcome=AttemptOutcome(row.outcome) if row.outcome else None, package=package,
        status_ref=row.status_ref, edit_iri=row.edit_iri, access_url=row.access_url,
        error=row.error,
    )
