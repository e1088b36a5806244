"""The "to index" marks table is schema step 5: a database of schema 4 is migrated, and
one whose table an earlier release made at start-up keeps the marks it holds."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from deposit_services.store import schema
from deposit_services.store.engine import make_engine
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import run_unit


def _schema_4(url: str, *, with_marks_table: bool) -> None:
    """What a release at schema 4 left behind (with the marks table it made itself)."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            schema.schema_version.create(conn)
            for step in schema.MIGRATIONS[:4]:
                step(conn)
            conn.execute(insert(schema.schema_version).values(id=1, version=4))
            if with_marks_table:
                schema.search_pending.create(conn)
                conn.execute(insert(schema.search_pending).values(kind="Deposit",
                                                                  entity_id="d1"))
    finally:
        engine.dispose()


@pytest.mark.parametrize("with_marks_table", [False, True])
def test_schema_4_is_migrated_to_the_marks_step(store_url: str, with_marks_table: bool) -> None:
    assert schema.LATEST >= 5
    assert schema.MIGRATIONS[4].__name__ == "_v5_search_pending"
    _schema_4(store_url, with_marks_table=with_marks_table)
    engine = make_engine(store_url)
    assert schema.ensure_schema(engine) == 4
    engine.dispose()
    database = SqlDatabase(store_url)
    try:
        with database.engine.connect() as conn:
            version = conn.execute(select(schema.schema_version.c.version)).scalar_one()
            marks = [(r.kind, r.entity_id) for r in conn.execute(
                select(schema.search_pending.c.kind, schema.search_pending.c.entity_id))]
        assert version == schema.LATEST
        assert marks == ([("Deposit", "d1")] if with_marks_table else [])

        # a unit writes a mark in its own transaction through its public connection
        run_unit(database, lambda uow: uow.state_connection().execute(
            insert(schema.search_pending).values(kind="Submission", entity_id="s1")))
        with database.engine.connect() as conn:
            assert ("Submission", "s1") in [(r.kind, r.entity_id) for r in conn.execute(
                select(schema.search_pending.c.kind, schema.search_pending.c.entity_id))]
    finally:
        database.close()
