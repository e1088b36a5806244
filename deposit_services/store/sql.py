"""The SQL adapters (SQLite or PostgreSQL, SQLAlchemy 2 Core): one database holds both
the records and the worker state, so a unit of work is one SQL transaction.

Each entity type has its own table: the entity's pass-core JSON in ``body``, its
``version`` for compare-and-set, and a column per ``INDEXED_FIELDS`` entry for ``find``
(enum values stored as their value). A unit connects on first use (a unit served from
memory costs nothing); a read-only one begins a plain transaction (on SQLite, deferred),
any other ``BEGIN IMMEDIATE`` on SQLite (engine.py), so two writers never deadlock.
The hot statements are built once with bound parameters (``Statements``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, Executable, Table, bindparam, exc, insert, select, update
from sqlalchemy.engine import Connection, RootTransaction

from deposit_services.clock import Clock
from deposit_services.errors import AlreadyExists, NotFound, StaleVersion
from deposit_services.model.entities import Deposit, Entity
from deposit_services.store.base import (
    INDEXED_FIELDS,
    E,
    Records,
    WorkerState,
    check_criteria,
)
from deposit_services.store.base import entity_from_json as _load
from deposit_services.store.engine import READ_ONLY, db_errors, make_engine, masked, now_expression
from deposit_services.store.schema import ENTITY_TABLES, ensure_schema, is_current
from deposit_services.store.sql_state import SqlWorkerState
from deposit_services.store.uow import Database, UnitOfWork, column_value

log = logging.getLogger(__name__)

# Writes a message into a queue that lives in this database, inside the unit's transaction.
Enqueue = Callable[[Connection, str, str, Mapping[str, str]], None]


class Statements:
    """Statements built once per (kind, table), with bound parameters: building one and
    computing its cache key costs as much CPU as running it on SQLite."""

    def __init__(self, engine: Engine) -> None:
        self.now = now_expression(engine)
        self.postgres = engine.dialect.name == "postgresql"
        self.where = masked(engine)
        self._built: dict[tuple[str, str], Executable] = {}

    def get(self, kind: str, table: Table, build: Callable[[], Executable]) -> Executable:
        key = (kind, table.name)
        statement = self._built.get(key)
        if statement is None:
            statement = self._built[key] = build()
        return statement


class SqlDatabase(Database):
    """Units of work on one SQL database. ``SqlDatabase(url)`` creates the engine (no
    connection yet); ``SqlDatabase.from_engine`` reuses an engine. The first unit checks
    the schema version inside its own transaction and migrates it first if it is old,
    so a one-shot command (``status``) costs the one transaction it needs."""

    def __init__(self, url: str, clock: Clock | None = None) -> None:
        self._init(make_engine(url), clock)

    @classmethod
    def from_engine(cls, engine: Engine, clock: Clock | None = None) -> SqlDatabase:
        database = cls.__new__(cls)
        database._init(engine, clock)
        return database

    def _init(self, engine: Engine, clock: Clock | None) -> None:
        super().__init__(clock)
        self.engine = engine
        self.statements = Statements(engine)
        self.enqueue: Enqueue | None = None
        self._wake: Callable[[], None] | None = None
        self.schema_ready = False

    def check(self) -> None:
        """Connect and bring the schema up to date now (``listen`` fails fast)."""
        unit = self.unit_of_work(read_only=True)
        with unit:
            unit.connection()
            unit.commit()

    def deliver_to_queue(self, enqueue: Enqueue, wake: Callable[[], None]) -> None:
        """The broker's queue lives in this database: a unit's messages go straight into
        it in the unit's own transaction (no outbox, nothing to relay), and ``wake``
        tells this process's consumers after the commit."""
        self.enqueue = enqueue
        self._wake = wake

    def after_commit(self, messages: Sequence[Any]) -> None:
        if self._wake is not None:
            self._wake()
            return
        super().after_commit(messages)

    def unit_of_work(self, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self, read_only)

    def close(self) -> None:
        self.engine.dispose()


class SqlUnitOfWork(UnitOfWork):
    database: SqlDatabase

    def __init__(self, database: SqlDatabase, read_only: bool) -> None:
        super().__init__(database, read_only)
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None

    def connection(self) -> Connection:
        """The unit's connection, its transaction begun on first use."""
        if self._conn is None:
            with db_errors(self.database.statements.where):
                conn = self._begin()
                try:
                    if not self.database.schema_ready and not is_current(conn):
                        self._close_now(conn)  # a new or old database: migrate, go on
                        ensure_schema(self.database.engine)
                        conn = self._begin()
                except BaseException:
                    self._close_now(conn)
                    raise
                self.database.schema_ready = True
            self._conn = conn
        return self._conn

    def state_connection(self) -> Connection:
        return self.connection()  # the records' and the worker state's transaction

    def _begin(self) -> Connection:
        conn = self.database.engine.connect()
        if self.read_only:
            conn.execution_options(**{READ_ONLY: True})
        try:
            self._tx = conn.begin()
        except BaseException:
            conn.close()
            raise
        return conn

    def _close_now(self, conn: Connection) -> None:
        if self._tx is not None:
            self._tx.rollback()
        conn.close()
        self._tx = None

    def _open_records(self) -> Records:
        return SqlRecords(self.connection, self.database.statements)

    def _open_state(self) -> WorkerState:
        return SqlWorkerState(self.connection, self.database.statements, self.database.enqueue)

    def _commit(self) -> None:
        if self._tx is not None:
            with db_errors(self.database.statements.where):
                self._tx.commit()

    def _rollback(self) -> None:
        if self._tx is not None and self._tx.is_active:
            with db_errors(self.database.statements.where):
                self._tx.rollback()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._tx = None


def _table(cls: type[Entity]) -> Table:
    try:
        return ENTITY_TABLES[cls.TYPE]
    except KeyError:
        raise ValueError(f"{cls.__name__} is not a stored entity type") from None


class SqlRecords(Records):
    """The entity tables, on the unit's connection."""

    def __init__(self, connection: Callable[[], Connection], statements: Statements) -> None:
        self._connection = connection
        self._s = statements

    def _execute(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Any:
        with db_errors(self._s.where):
            return self._connection().execute(statement, dict(params or {}))

    def _row_params(self, entity: Entity) -> dict[str, Any]:
        params: dict[str, Any] = {"_body": json.dumps(entity.to_json(), sort_keys=True)}
        for field in INDEXED_FIELDS.get(entity.TYPE, ()):
            params[f"_{field}"] = column_value(getattr(entity, field))
        return params

    def _row_binds(self, entity_type: str) -> dict[str, Any]:
        binds: dict[str, Any] = {"body": bindparam("_body"), "updated_at": self._s.now}
        binds.update({f: bindparam(f"_{f}") for f in INDEXED_FIELDS.get(entity_type, ())})
        return binds

    def get(self, cls: type[E], id: str) -> E:
        table = _table(cls)
        query = self._s.get("get", table, lambda: select(table.c.body, table.c.version)
                            .where(table.c.id == bindparam("_id")))
        row = self._execute(query, {"_id": id}).first()
        if row is None:
            raise NotFound(f"{cls.TYPE} {id} not found")
        return _load(cls, row.body, row.version)

    def get_many(self, cls: type[E], ids: Sequence[str]) -> list[E]:
        if not ids:
            return []
        table = _table(cls)
        query = self._s.get("get many", table, lambda: select(table.c.body, table.c.version)
                            .where(table.c.id.in_(bindparam("_ids", expanding=True))))
        rows = self._execute(query, {"_ids": list(ids)}).all()
        return [_load(cls, row.body, row.version) for row in rows]

    def find(self, cls: type[E], **criteria: Any) -> list[E]:
        check_criteria(cls, criteria)
        table = _table(cls)
        # Byte order on both backends (PostgreSQL's default collation may differ).
        order = table.c.id.collate("C") if self._s.postgres else table.c.id
        values = {f"_{field}": column_value(value) for field, value in criteria.items()}
        shape = ",".join(f"{field}{'=' if values[f'_{field}'] is not None else ' null'}"
                         for field in sorted(criteria))

        def build() -> Executable:
            query = select(table.c.body, table.c.version).order_by(order)
            for field in sorted(criteria):
                column = table.c[field]
                query = query.where(column.is_(None) if values[f"_{field}"] is None
                                    else column == bindparam(f"_{field}"))
            return query

        query = self._s.get(f"find {shape}", table, build)
        params = {name: value for name, value in values.items() if value is not None}
        rows = self._execute(query, params).all()
        return [_load(cls, row.body, row.version) for row in rows]

    def add(self, entity: E) -> E:
        table = _table(type(entity))
        statement = self._s.get("add", table, lambda: insert(table).values(
            {"id": bindparam("_id"), "version": 1, **self._row_binds(entity.TYPE)}))
        # No savepoint: an insert that hits a unique key ends the unit (it is flushed at
        # commit), which run_unit rolls back and runs again on fresh reads.
        with db_errors(self._s.where):
            try:
                self._connection().execute(statement,
                                           {"_id": entity.id, **self._row_params(entity)})
            except exc.IntegrityError as error:
                raise _already_exists(entity) from error
        return entity.model_copy(update={"version": 1})

    def update(self, entity: E) -> E:
        table = _table(type(entity))
        statement = self._s.get("update", table, lambda: (
            update(table)
            .where(table.c.id == bindparam("_id"), table.c.version == bindparam("_expected"))
            .values({"version": bindparam("_version"), **self._row_binds(entity.TYPE)})
        ))
        params = self._row_params(entity)
        params.update(_id=entity.id, _expected=entity.version, _version=entity.version + 1)
        if self._execute(statement, params).rowcount == 1:
            return entity.model_copy(update={"version": entity.version + 1})
        current = self._execute(select(table.c.version).where(table.c.id == entity.id)).first()
        if current is None:
            raise NotFound(f"{entity.TYPE} {entity.id} not found (deleted?)")
        raise StaleVersion(f"{entity.TYPE} {entity.id}: version {entity.version} is stale "
                           f"(stored: {current.version})")


def _already_exists(entity: Entity) -> AlreadyExists:
    if isinstance(entity, Deposit):
        return AlreadyExists(
            f"Deposit {entity.id}: id taken, or submission {entity.submission} already "
            f"has a deposit to repository {entity.repository}"
        )
    return AlreadyExists(f"{entity.TYPE} {entity.id} already exists")
