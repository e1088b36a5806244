"""The SQL schema (entities, leases, attempt log, outbox, local queue) and its migrations.

One schema serves the store and the local queue, because in the embedded set-up they
share one SQLite file. Its version is an integer in ``schema_version``; ``MIGRATIONS``
lists the steps from version 0 (empty database) upwards, applied in order in one
transaction by whichever process starts first. Concurrent start-ups are serialised by
a PostgreSQL advisory lock, or on SQLite by ``BEGIN IMMEDIATE`` (see engine.py).

Rule for later changes: never edit a released step; add one that alters the previous
shape (and freeze the table definitions step 1 used if they change).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.engine import Connection

from deposit_services.errors import StoreError
from deposit_services.model.entities import (
    ENTITY_TYPES,
    Deposit,
    DepositStatus,
    Publication,
    Submission,
)
from deposit_services.model.works import DOI_LIMIT, works_of
from deposit_services.store.base import INDEXED_FIELDS, E, entity_from_json
from deposit_services.store.engine import READ_ONLY, db_errors, masked

log = logging.getLogger(__name__)

metadata = MetaData()

# Our lock id for pg_advisory_xact_lock: any constant unlikely to clash ("DEPOSIT1").
_ADVISORY_LOCK_ID = 0x4445504F53495431
_ID = String(255)
_AUTO_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite: rowid alias

schema_version = Table(
    "schema_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _entity_table(type_name: str) -> Table:
    indexed = INDEXED_FIELDS.get(type_name, ())
    table_name = f"entity_{_snake(type_name)}"
    columns: list[Column[Any]] = [
        Column("id", _ID, primary_key=True),
        Column("version", Integer, nullable=False),
        Column("body", Text, nullable=False),
        *(Column(field, _ID, nullable=True) for field in indexed),
        Column("updated_at", Float, nullable=False),
    ]
    table = Table(table_name, metadata, *columns)
    for field in indexed:
        Index(f"ix_{table_name}_{field}", table.c[field])
    if type_name == "Deposit":
        table.append_constraint(
            UniqueConstraint("submission", "repository", name="uq_deposit_submission_repository")
        )
    return table


ENTITY_TABLES: dict[str, Table] = {name: _entity_table(name) for name in ENTITY_TYPES}

leases = Table(
    "leases",
    metadata,
    Column("key", _ID, primary_key=True),
    Column("owner", _ID, nullable=False),
    Column("expires_at", Float, nullable=False),
)

# A message is visible when available_at <= now: publish time, the redelivery time
# after a nack, or the end of the lease of the consumer holding it (kept equal to
# lease_until while leased), so one indexed range finds the next message.
queue_messages = Table(
    "queue_messages",
    metadata,
    Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    Column("queue", _ID, nullable=False),
    Column("body", Text, nullable=False),
    Column("headers", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("available_at", Float, nullable=False),
    Column("lease_owner", _ID, nullable=True),
    Column("lease_token", String(64), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_queue_messages_visible", "queue", "available_at", "id"),
)

queue_dead_letters = Table(
    "queue_dead_letters",
    metadata,
    Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    Column("message_id", BigInteger, nullable=False),
    Column("queue", _ID, nullable=False),
    Column("body", Text, nullable=False),
    Column("headers", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("dead_at", Float, nullable=False),
)


# Attempt log (schema version 2): one row per transfer attempt of a deposit, written
# before the transfer (intent: ended_at NULL) and completed after it (outcome), so a
# restart can tell "never sent" from "sent, outcome not recorded" (service/attempts.py).
deposit_attempts = Table(
    "deposit_attempts",
    metadata,
    Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    Column("deposit_id", _ID, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("trigger", String(32), nullable=False),
    Column("owner", _ID, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("outcome", String(32), nullable=True),
    Column("package_name", Text, nullable=True),
    Column("package_size", BigInteger, nullable=True),
    Column("package_md5", String(64), nullable=True),
    Column("package_sha256", String(64), nullable=True),
    Column("status_ref", Text, nullable=True),
    Column("edit_iri", Text, nullable=True),
    Column("access_url", Text, nullable=True),
    Column("error", Text, nullable=True),
    UniqueConstraint("deposit_id", "attempt", name="uq_deposit_attempts_deposit_attempt"),
    Index("ix_deposit_attempts_deposit", "deposit_id"),
)

# Outbox (schema version 3): messages recorded in the transaction of the state they
# announce, removed once published (store/uow.py).
outbox = Table(
    "outbox",
    metadata,
    Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    Column("queue", _ID, nullable=False),
    Column("body", Text, nullable=False),
    Column("headers", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_outbox_created", "created_at"),
)

# Repository state (schema version 4): health per repositories.json key (healthy,
# degraded, paused until when and why) and the last notice sent to its contacts,
# shared by replicas; every write is a compare-and-set on ``version``.
repository_states = Table(
    "repository_states",
    metadata,
    Column("key", _ID, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("health", String(16), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("reason", Text, nullable=True),
    Column("since", Float, nullable=True),
    Column("paused_until", Float, nullable=True),
    Column("manual", Integer, nullable=False),
    Column("probes", Integer, nullable=False),
    Column("noticed_at", Float, nullable=True),
    Column("noticed", Text, nullable=True),
)

# Search index marks (schema version 5): the documents a committed change has made stale
# (by entity type and id), recorded in the change's transaction and removed once the
# relay has written them (search/relay.py).
search_pending = Table(
    "search_pending",
    metadata,
    Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("entity_id", _ID, nullable=False),
)

# Works sent (schema version 6): one row per deposit of a submission with a DOI, by
# repository id and DOI key (model/works.py), written in the deposit's intent unit, so
# the duplicate check is one indexed lookup (service/duplicates.py).
sent_works = Table(
    "sent_works",
    metadata,
    Column("deposit_id", _ID, primary_key=True),
    Column("repository", _ID, nullable=False),
    Column("doi", String(DOI_LIMIT), nullable=False),
    Column("submission_id", _ID, nullable=False),
    Column("fingerprint", String(64), nullable=True),
    Index("ix_sent_works_repository_doi", "repository", "doi"),
)

# The tables step 1 created, frozen: later tables are created by their own steps.
_V1_TABLES = (*ENTITY_TABLES.values(), leases, queue_messages, queue_dead_letters)


def _v1_initial(conn: Connection) -> None:
    """Entities, leases and the local queue."""
    metadata.create_all(conn, tables=list(_V1_TABLES))


def _v2_attempt_log(conn: Connection) -> None:
    """The per-deposit attempt log (deposit_attempts)."""
    metadata.create_all(conn, tables=[deposit_attempts])


def _v3_outbox(conn: Connection) -> None:
    """The outbox (messages published after their transaction commits)."""
    metadata.create_all(conn, tables=[outbox])


def _v4_repository_states(conn: Connection) -> None:
    """Health and notices per repository (repository_states)."""
    metadata.create_all(conn, tables=[repository_states])


def _v5_search_pending(conn: Connection) -> None:
    """The search index's "to index" marks (search_pending; kept if a release before
    this step made it at start-up)."""
    metadata.create_all(conn, tables=[search_pending], checkfirst=True)


_BACKFILL_BATCH = 500


def _v6_sent_works(conn: Connection) -> None:
    """The index of works sent (sent_works), filled from this database's ACCEPTED and
    SUBMITTED deposits (a pass-core deployment's are indexed by ``index-works``)."""
    metadata.create_all(conn, tables=[sent_works])
    deposits, submissions = ENTITY_TABLES["Deposit"], ENTITY_TABLES["Submission"]
    publications = ENTITY_TABLES["Publication"]
    holding = [s.value for s in (DepositStatus.ACCEPTED, DepositStatus.SUBMITTED)]
    added, last = 0, ""
    while True:  # a batch at a time, by id: memory stays at one batch
        rows = conn.execute(select(deposits.c.id, deposits.c.body, deposits.c.version)
                            .where(deposits.c.deposit_status.in_(holding), deposits.c.id > last)
                            .order_by(deposits.c.id).limit(_BACKFILL_BATCH)).all()
        if not rows:
            break
        last = rows[-1].id
        batch = [entity_from_json(Deposit, r.body, r.version) for r in rows]
        subs = _read(conn, submissions, Submission, [d.submission for d in batch])
        pubs = _read(conn, publications, Publication, [s.publication for s in subs])
        works = [vars(w) for w in works_of(batch, subs, pubs)]
        if works:
            conn.execute(sent_works.insert(), works)
            added += len(works)
    if added:
        log.info("indexed %d earlier deposits' works", added)


def _read(conn: Connection, table: Table, cls: type[E], ids: list[str | None]) -> list[E]:
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return []
    found = conn.execute(select(table.c.body, table.c.version).where(table.c.id.in_(wanted)))
    return [entity_from_json(cls, r.body, r.version) for r in found]


MIGRATIONS: list[Callable[[Connection], None]] = [_v1_initial, _v2_attempt_log, _v3_outbox,
                                                  _v4_repository_states, _v5_search_pending,
                                                  _v6_sent_works]
LATEST = len(MIGRATIONS)


def _current(conn: Connection) -> int:
    if not conn.dialect.has_table(conn, schema_version.name):
        return 0
    value = conn.execute(select(schema_version.c.version).where(schema_version.c.id == 1)).scalar()
    return int(value or 0)


def is_current(conn: Connection) -> bool:
    """Whether the schema is at ``LATEST`` (read in the caller's transaction);
    StoreError if it is newer than this release knows."""
    found = _current(conn)
    if found > LATEST:
        raise StoreError(
            f"database {masked(conn.engine)} has schema version {found}, newer than this "
            f"deposit-services knows ({LATEST}): upgrade deposit-services"
        )
    return found == LATEST


def ensure_schema(engine: Engine) -> int:
    """Create or migrate the schema to ``LATEST``; returns the version found before.
    Cheap when the schema is current (one read). Safe for concurrent start-ups."""
    where = masked(engine)
    with db_errors(where):
        with engine.connect().execution_options(**{READ_ONLY: True}) as conn, conn.begin():
            found = _current(conn)
        if found == LATEST:
            return found
        if found > LATEST:
            raise StoreError(
                f"database {where} has schema version {found}, newer than this "
                f"deposit-services knows ({LATEST}): upgrade deposit-services"
            )
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
            schema_version.create(conn, checkfirst=True)
            found = _current(conn)  # again, under the lock: another process may have won
            for step in range(found, LATEST):
                log.info("migrating %s to schema version %d: %s", where, step + 1,
                         MIGRATIONS[step].__doc__)
                MIGRATIONS[step](conn)
            if found == 0:
                conn.execute(schema_version.insert().values(id=1, version=LATEST))
            elif found < LATEST:
                conn.execute(schema_version.update().where(schema_version.c.id == 1)
                             .values(version=LATEST))
        return found
