"""SQLAlchemy engine set-up shared by the SQL store and the local queue.

One place decides how we talk to SQLite and PostgreSQL, because the same database is
shared by several threads and several processes (two ``listen`` daemons, ``submit``):

* SQLite: WAL journal (readers never block the writer), a 30 s busy timeout, foreign
  keys on, and every write transaction opened with ``BEGIN IMMEDIATE`` so that two
  writers never deadlock upgrading a read lock to a write lock (a deferred transaction
  that reads then writes gets SQLITE_BUSY at once, whatever the timeout). Reads that
  are known to stay reads may run with ``read_only=True`` (plain ``BEGIN``).
* PostgreSQL: ``postgresql://`` is rewritten to the psycopg 3 driver; a pooled
  connection is checked before use only after it was idle for a while.

``db_errors`` maps driver failures to our exception tree at the adapter boundary.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, make_url
from sqlalchemy.engine import URL, Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import cast, extract, func, literal
from sqlalchemy.types import Float

from deposit_services.errors import StoreError, StoreUnavailable
from deposit_services.safetext import mask_url, redact

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 30.0
POOL_SIZE = 10
POOL_MAX_OVERFLOW = 20
PING_AFTER_IDLE_S = 10.0
# Execution option: the transaction only reads (SQLite may then begin it DEFERRED).
READ_ONLY = "deposit_read_only"


def normalise_url(url: str) -> URL:
    """Parse ``url``; ``postgres(ql)://`` goes to psycopg 3, anything else but SQLite is
    refused with a StoreError naming the masked URL."""
    text = url.strip()
    if text.startswith("postgres://"):
        text = "postgresql://" + text.removeprefix("postgres://")
    try:
        parsed = make_url(text)
    except exc.ArgumentError as error:
        raise StoreError(f"not a database URL: {mask_url(text)!r}") from error
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername in ("postgresql", "postgresql+psycopg2"):
            parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise StoreError(
            f"unsupported database URL {mask_url(text)!r}: use sqlite:/// or postgresql://"
        )
    return parsed


def make_engine(url: str) -> Engine:
    """An engine for ``sqlite:///path`` (parent directory created) or ``postgresql://``.

    No connection is made here; the first use connects (see ``db_errors``).
    """
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    # No hstore (we use none): looking its type up commits a transaction per engine.
    engine = create_engine(parsed, pool_size=POOL_SIZE, max_overflow=POOL_MAX_OVERFLOW,
                           use_native_hstore=False)
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it has been idle for a while
    (PostgreSQL restarted meanwhile, a firewall dropped it): a busy worker pays no
    round trip for it. SQLAlchemy's ``pool_pre_ping`` pings on every checkout, and on
    psycopg in autocommit: one more round trip and one more committed transaction per
    unit of work. A failed ping makes the pool replace the connection."""

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_connection.rollback()  # nothing to commit: no committed transaction
        except Exception as error:
            log.info("a pooled database connection failed its check (%s); replacing it",
                     error)
            raise exc.DisconnectionError(str(error)) from error


def _sqlite_engine(parsed: URL) -> Engine:
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    pool: dict[str, Any] = {}
    if database and database != ":memory:":
        pool = {"pool_size": POOL_SIZE, "max_overflow": POOL_MAX_OVERFLOW}
    engine = create_engine(
        parsed,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
        **pool,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level: pysqlite emits no BEGIN of its own, we do.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            _enable_wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL. On a brand-new file several connections may try at once,
    and SQLite answers the losers "database is locked" at once, without its busy
    timeout: try again until the timeout (the winner's switch takes milliseconds)."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def now_expression(engine: Engine) -> ColumnElement[float]:
    """The database's clock as epoch seconds (a float), so that leases and visibility
    times agree between processes and machines sharing one database."""
    if engine.dialect.name == "postgresql":
        return cast(extract("epoch", func.clock_timestamp()), Float)
    # julianday('now') has millisecond precision; 2440587.5 is the Unix epoch.
    return cast((func.julianday("now") - literal(2440587.5)) * literal(86400.0), Float)


def masked(engine: Engine) -> str:
    """The engine's URL with its password (user-info and ``?password=``-like query
    parameters) hidden, for messages and logs."""
    return mask_url(engine.url.render_as_string(hide_password=False))


@contextmanager
def db_errors(
    where: str,
    *,
    unavailable: type[Exception] = StoreUnavailable,
    failed: type[Exception] = StoreError,
) -> Iterator[None]:
    """Convert SQLAlchemy/driver errors raised inside to our tree: lost or refused
    connections and lock time-outs to ``unavailable`` (transient), any other database
    error to ``failed``. ``where`` names the masked URL (and operation) in the message.
    The message is redacted as a whole: the driver's own text may quote a URL too.
    Integrity errors must be handled by the caller before this sees them."""
    try:
        yield
    except (exc.OperationalError, exc.InterfaceError, exc.TimeoutError) as error:
        detail = getattr(error, "orig", None) or error
        raise unavailable(redact(f"database unavailable ({where}): {detail}")) from error
    except exc.DBAPIError as error:
        if error.connection_invalidated:
            raise unavailable(redact(f"database connection lost ({where}): {error.orig}")
                              ) from error
        raise failed(redact(f"database error ({where}): {error.orig}")) from error
