"""The SQL store adapter (SQLite or PostgreSQL) on SQLAlchemy 2 Core.

Each entity type has its own table: the entity's pass-core JSON in ``body``, its
``version`` for compare-and-set, and a column per ``INDEXED_FIELDS`` entry for ``find``
(enum values stored as their value). ``atomic()`` binds one connection and transaction
to the calling thread; calls inside it (and nested ``atomic()`` blocks) share it, and
each write inside runs in a savepoint so that an ``AlreadyExists`` caught by the caller
leaves the outer transaction usable (PostgreSQL aborts a transaction on any error).
"""

from __future__ import annotations

import enum
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Engine,
    Executable,
    Float,
    String,
    Table,
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

from deposit_services.errors import AlreadyExists, Conflict, NotFound, StaleVersion
from deposit_services.model.entities import Deposit, Entity
from deposit_services.store.base import (
    INDEXED_FIELDS,
    Attempt,
    AttemptOutcome,
    E,
    PackageInfo,
    Store,
)
from deposit_services.store.engine import READ_ONLY, db_errors, make_engine, masked, now_expression
from deposit_services.store.schema import ENTITY_TABLES, deposit_attempts, ensure_schema, leases

log = logging.getLogger(__name__)


def _column_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


class SqlStore(Store):
    """The system of record in one SQL database. ``SqlStore(url)`` creates the engine
    and migrates the schema; ``SqlStore.from_engine`` reuses an engine."""

    def __init__(self, url: str) -> None:
        self._init(make_engine(url))

    @classmethod
    def from_engine(cls, engine: Engine) -> SqlStore:
        store = cls.__new__(cls)
        store._init(engine)
        return store

    @classmethod
    def from_url(cls, url: str) -> SqlStore:
        return cls(url)

    def _init(self, engine: Engine) -> None:
        self._engine = engine
        self._where = masked(engine)
        self._local = threading.local()
        self._now = now_expression(engine)
        self._postgres = engine.dialect.name == "postgresql"
        self._statements: dict[tuple[str, str], Executable] = {}
        ensure_schema(engine)

    def _prepared(self, kind: str, table: Table, build: Callable[[], Executable]) -> Executable:
        """The hot statements built once, with bound parameters: building one and
        computing its cache key costs as much CPU as running it on SQLite."""
        key = (kind, table.name)
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = build()
        return statement

    @property
    def engine(self) -> Engine:
        return self._engine

    # Connections and transactions --------------------------------------------------

    def _bound(self) -> Connection | None:
        conn: Connection | None = getattr(self._local, "conn", None)
        return conn

    @contextmanager
    def _tx(self, *, read_only: bool = False) -> Iterator[Connection]:
        """The thread's atomic() connection (inside a savepoint for writes), or a
        connection and transaction of its own."""
        with db_errors(self._where):
            bound = self._bound()
            if bound is not None:
                if read_only:
                    yield bound
                else:
                    with bound.begin_nested():
                        yield bound
                return
            with self._engine.connect() as conn:
                if read_only:
                    conn.execution_options(**{READ_ONLY: True})
                with conn.begin():
                    yield conn

    @contextmanager
    def atomic(self) -> Iterator[None]:
        if self._bound() is not None:
            yield  # nested: joins the outer transaction
            return
        with db_errors(self._where), self._engine.connect() as conn, conn.begin():
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    def close(self) -> None:
        self._engine.dispose()

    # Entities -------------------------------------------------------------------------

    @staticmethod
    def _table(cls: type[Entity]) -> Table:
        try:
            return ENTITY_TABLES[cls.TYPE]
        except KeyError:
            raise ValueError(f"{cls.__name__} is not a stored entity type") from None

    @staticmethod
    def _load(cls: type[E], body: str, version: int) -> E:
        data = json.loads(body)
        data.pop("@type", None)
        entity = cls.model_validate(data)
        entity.version = version
        return entity

    def _row_values(self, entity: Entity) -> dict[str, Any]:
        values: dict[str, Any] = {"body": json.dumps(entity.to_json(), sort_keys=True)}
        for field in INDEXED_FIELDS.get(entity.TYPE, ()):
            values[field] = _column_value(getattr(entity, field))
        values["updated_at"] = self._now
        return values

    def _row_params(self, entity: Entity) -> dict[str, Any]:
        """``_row_values`` as the parameters of a statement from ``_row_binds``."""
        return {f"_{field}": value for field, value in self._row_values(entity).items()
                if field != "updated_at"}

    def _row_binds(self, entity_type: str) -> dict[str, Any]:
        binds: dict[str, Any] = {"body": bindparam("_body"), "updated_at": self._now}
        binds.update({f: bindparam(f"_{f}") for f in INDEXED_FIELDS.get(entity_type, ())})
        return binds

    def get(self, cls: type[E], id: str) -> E:
        table = self._table(cls)
        query = self._prepared("get", table, lambda: select(table.c.body, table.c.version)
                               .where(table.c.id == bindparam("_id")))
        with self._tx(read_only=True) as conn:
            row = conn.execute(query, {"_id": id}).first()
        if row is None:
            raise NotFound(f"{cls.TYPE} {id} not found")
        return self._load(cls, row.body, row.version)

    def find(self, cls: type[E], **criteria: Any) -> list[E]:
        table = self._table(cls)
        indexed = INDEXED_FIELDS.get(cls.TYPE, ())
        unknown = sorted(set(criteria) - set(indexed))
        if unknown:
            raise ValueError(
                f"{cls.TYPE} cannot be searched by {', '.join(unknown)} "
                f"(indexed: {', '.join(indexed) or 'none'})"
            )
        # Byte order on both backends (PostgreSQL's default collation may differ).
        order = table.c.id.collate("C") if self._postgres else table.c.id
        values = {f"_{field}": _column_value(value) for field, value in criteria.items()}
        shape = ",".join(f"{field}{'=' if values[f'_{field}'] is not None else ' null'}"
                         for field in sorted(criteria))

        def build() -> Executable:
            query = select(table.c.body, table.c.version).order_by(order)
            for field in sorted(criteria):
                column = table.c[field]
                query = query.where(column.is_(None) if values[f"_{field}"] is None
                                    else column == bindparam(f"_{field}"))
            return query

        query = self._prepared(f"find {shape}", table, build)
        params = {name: value for name, value in values.items() if value is not None}
        with self._tx(read_only=True) as conn:
            rows = conn.execute(query, params).all()
        return [self._load(cls, row.body, row.version) for row in rows]

    def add(self, entity: E) -> E:
        table = self._table(type(entity))
        stored = entity.model_copy(deep=True)
        stored.version = 1
        statement = self._prepared("add", table, lambda: insert(table).values(
            {"id": bindparam("_id"), "version": 1, **self._row_binds(stored.TYPE)}))
        with self._tx() as conn:
            try:
                conn.execute(statement, {"_id": entity.id, **self._row_params(stored)})
            except exc.IntegrityError as error:
                raise self._already_exists(entity) from error
        return stored

    def _already_exists(self, entity: Entity) -> AlreadyExists:
        if isinstance(entity, Deposit):
            return AlreadyExists(
                f"Deposit {entity.id}: id taken, or submission {entity.submission} already "
                f"has a deposit to repository {entity.repository}"
            )
        return AlreadyExists(f"{entity.TYPE} {entity.id} already exists")

    def update(self, entity: E) -> E:
        table = self._table(type(entity))
        stored = entity.model_copy(deep=True)
        stored.version = entity.version + 1
        statement = self._prepared("update", table, lambda: (
            update(table)
            .where(table.c.id == bindparam("_id"), table.c.version == bindparam("_expected"))
            .values({"version": bindparam("_version"), **self._row_binds(entity.TYPE)})
        ))
        params = self._row_params(stored)
        params.update(_id=entity.id, _expected=entity.version, _version=stored.version)
        with self._tx() as conn:
            result = conn.execute(statement, params)
            if result.rowcount == 1:
                return stored
            current = conn.execute(select(table.c.version).where(table.c.id == entity.id)).first()
        if current is None:
            raise NotFound(f"{entity.TYPE} {entity.id} not found (deleted?)")
        raise StaleVersion(
            f"{entity.TYPE} {entity.id}: version {entity.version} is stale "
            f"(stored: {current.version})"
        )

    # Leases ---------------------------------------------------------------------------

    def acquire_lease(self, key: str, owner: str, seconds: float) -> bool:
        statement = self._prepared("acquire", leases, self._acquire_statement)
        with self._tx() as conn:
            won = conn.execute(
                statement, {"_key": key, "_owner": owner, "_seconds": float(seconds)}
            ).first() is not None
        log.debug("lease %s for %s: %s", key, owner, "acquired" if won else "held by another")
        return won

    def _acquire_statement(self) -> Executable:
        """Insert the lease, or take it over when it is ours or has run out."""
        ins = postgresql.insert(leases) if self._postgres else sqlite.insert(leases)
        owner = bindparam("_owner", type_=String)
        expires = self._now + bindparam("_seconds", type_=Float)
        return (
            ins.values(key=bindparam("_key"), owner=owner, expires_at=expires)
            .on_conflict_do_update(
                index_elements=[leases.c.key],
                set_={"owner": owner, "expires_at": expires},
                where=or_(leases.c.owner == owner, leases.c.expires_at <= self._now),
            )
            .returning(leases.c.key)
        )

    def release_lease(self, key: str, owner: str) -> None:
        statement = self._prepared("release", leases, lambda: delete(leases).where(
            and_(leases.c.key == bindparam("_key"), leases.c.owner == bindparam("_owner"))))
        with self._tx() as conn:
            conn.execute(statement, {"_key": key, "_owner": owner})

    # Attempt log ---------------------------------------------------------------------

    def begin_attempt(
        self, deposit_id: str, *, trigger: str, owner: str, package: PackageInfo | None = None
    ) -> Attempt:
        t = deposit_attempts
        last_number = self._prepared("last attempt", t, lambda: select(func.max(t.c.attempt))
                                     .where(t.c.deposit_id == bindparam("_deposit")))
        add = self._prepared("add attempt", t, lambda: insert(t).values(
            deposit_id=bindparam("_deposit"), attempt=bindparam("_number"),
            trigger=bindparam("_trigger"), owner=bindparam("_owner"), started_at=self._now,
            package_name=bindparam("_name"), package_size=bindparam("_size"),
            package_md5=bindparam("_md5"), package_sha256=bindparam("_sha256"),
        ))
        params = {
            "_deposit": deposit_id, "_trigger": trigger, "_owner": owner,
            "_name": package.name if package else None,
            "_size": package.size if package else None,
            "_md5": package.md5 if package else None,
            "_sha256": package.sha256 if package else None,
        }
        for _ in range(5):  # two writers numbering the same deposit: the loser renumbers
            with self._tx() as conn:
                last = conn.execute(last_number, {"_deposit": deposit_id}).scalar()
                number = int(last or 0) + 1
                try:
                    conn.execute(add, {**params, "_number": number})
                except exc.IntegrityError:
                    continue
                return self._attempt(conn, deposit_id, number)
        raise Conflict(f"deposit {deposit_id}: could not number a new attempt (busy)")

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
        end = self._prepared("end attempt", t, lambda: update(t).where(
            t.c.deposit_id == bindparam("_deposit"), t.c.attempt == bindparam("_number"),
            t.c.ended_at.is_(None),
        ).values(
            ended_at=self._now, outcome=bindparam("_outcome"), error=bindparam("_error"),
            status_ref=bindparam("_status_ref"), edit_iri=bindparam("_edit_iri"),
            access_url=bindparam("_access_url"),
        ))
        key = {"_deposit": deposit_id, "_number": number}
        with self._tx() as conn:
            result = conn.execute(end, {
                **key, "_outcome": outcome.value, "_error": error, "_status_ref": status_ref,
                "_edit_iri": edit_iri, "_access_url": access_url,
            })
            if result.rowcount != 1:
                where = and_(t.c.deposit_id == deposit_id, t.c.attempt == number)
                if conn.execute(select(t.c.id).where(where)).first() is None:
                    raise NotFound(f"deposit {deposit_id} has no attempt {number}")
                raise Conflict(f"deposit {deposit_id}: attempt {number} has already ended")
            return self._attempt(conn, deposit_id, number)

    def attempts(self, deposit_id: str) -> list[Attempt]:
        t = deposit_attempts
        query = self._prepared("attempts", t, lambda: select(t).where(
            t.c.deposit_id == bindparam("_deposit")).order_by(t.c.attempt))
        with self._tx(read_only=True) as conn:
            rows = conn.execute(query, {"_deposit": deposit_id}).all()
        return [_to_attempt(row) for row in rows]

    def _attempt(self, conn: Connection, deposit_id: str, number: int) -> Attempt:
        t = deposit_attempts
        query = self._prepared("attempt", t, lambda: select(t).where(
            t.c.deposit_id == bindparam("_deposit"), t.c.attempt == bindparam("_number")))
        row = conn.execute(query, {"_deposit": deposit_id, "_number": number}).one()
        return _to_attempt(row)


def _when(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


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
