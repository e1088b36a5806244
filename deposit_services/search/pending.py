"""The durable "to index" marks: which documents a committed change has made stale.

A unit of work whose writes make documents stale records a mark here in its own
transaction (``SearchRelay.changed``), so the mark is committed with the change or
rolled back with it, and survives a crash or an index outage until the relay has
written the document. The table lives in the worker state's SQL database beside the
outbox (schema version 5, store/schema.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.engine import Connection

from deposit_services.store.engine import READ_ONLY, db_errors, masked
from deposit_services.store.schema import search_pending

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mark:
    id: int
    kind: str
    entity_id: str


class PendingMarks:
    """The marks table on ``engine`` (the worker state's database)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._where = masked(engine)

    @staticmethod
    def add(conn: Connection, keys: Sequence[tuple[str, str]]) -> None:
        """Mark ``keys`` (type, id) in the transaction of ``conn``."""
        if keys:
            conn.execute(insert(search_pending),
                         [{"kind": kind, "entity_id": id} for kind, id in keys])

    def replace(self, ids: Sequence[int], keys: Sequence[tuple[str, str]]) -> None:
        """Mark ``keys`` and forget the marks ``ids`` in one transaction."""
        with db_errors(self._where), self.engine.begin() as conn:
            self.add(conn, keys)
            if ids:
                conn.execute(delete(search_pending).where(search_pending.c.id.in_(list(ids))))

    def oldest(self, limit: int) -> list[Mark]:
        with db_errors(self._where), self.engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            with conn.begin():
                rows = conn.execute(select(search_pending).order_by(search_pending.c.id)
                                    .limit(limit)).all()
        return [Mark(int(r.id), r.kind, r.entity_id) for r in rows]

    def count(self) -> int:
        with db_errors(self._where), self.engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            with conn.begin():
                return int(conn.execute(select(func.count()).select_from(search_pending))
                           .scalar_one())

    def remove(self, ids: Sequence[int]) -> None:
        """Forget marks whose documents were written (a later mark of the same entity,
        made since, stays: its change may not be in what was written)."""
        if ids:
            with db_errors(self._where), self.engine.begin() as conn:
                conn.execute(delete(search_pending).where(search_pending.c.id.in_(list(ids))))
