"""A test's view of a Database: each call its own unit of work, so a test can set up
and inspect state in one line (the service layer never works this way: it groups its
reads and writes into one unit per phase)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from deposit_services.errors import StaleVersion
from deposit_services.store.base import Attempt, AttemptOutcome, E, PackageInfo
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import Database, run_unit


class StoreView:
    def __init__(self, database: Database) -> None:
        self.database = database

    @classmethod
    def sql(cls, url: str) -> StoreView:
        return cls(SqlDatabase(url))

    @property
    def engine(self) -> Engine:
        assert isinstance(self.database, SqlDatabase)
        return self.database.engine

    def get(self, cls: type[E], id: str) -> E:
        return run_unit(self.database, lambda uow: uow.records.get(cls, id), read_only=True)

    def find(self, cls: type[E], **criteria: Any) -> list[E]:
        return run_unit(self.database, lambda uow: uow.records.find(cls, **criteria),
                        read_only=True)

    def add(self, entity: E) -> E:
        return run_unit(self.database, lambda uow: uow.records.add(entity.model_copy()))

    def add_if_absent(self, entity: E) -> None:
        def add(uow: Any) -> None:
            if not uow.records.get_many(type(entity), [entity.id]):
                uow.records.add(entity.model_copy())

        run_unit(self.database, add)

    def update(self, entity: E) -> E:
        """Write ``entity`` as it is: StaleVersion if the stored one has moved on."""
        def write(uow: Any) -> E:
            stored: E = uow.records.get(type(entity), entity.id)
            if stored.version != entity.version:
                raise StaleVersion(f"{entity.TYPE} {entity.id}: version {entity.version} "
                                     f"is stale (stored: {stored.version})")
            for name in type(entity).model_fields:
                if name != "version":
                    setattr(stored, name, getattr(entity, name))
            for name, value in (entity.model_extra or {}).items():
                setattr(stored, name, value)
            return stored

        with self.database.unit_of_work() as uow:  # no run_unit: a stale copy stays stale
            stored = write(uow)
            uow.commit()
        return stored

    def attempts(self, deposit_id: str) -> list[Attempt]:
        return run_unit(self.database, lambda uow: uow.state.attempts(deposit_id),
                        read_only=True)

    def acquire_lease(self, key: str, owner: str, seconds: float) -> bool:
        return run_unit(self.database, lambda uow: uow.state.acquire_lease(key, owner, seconds))

    def release_lease(self, key: str, owner: str) -> None:
        run_unit(self.database, lambda uow: uow.state.release_lease(key, owner))

    def begin_attempt(self, deposit_id: str, *, trigger: str, owner: str,
                      package: PackageInfo | None = None) -> Attempt:
        return run_unit(self.database, lambda uow: uow.state.begin_attempt(
            deposit_id, trigger=trigger, owner=owner, package=package))

    def end_attempt(self, deposit_id: str, number: int, outcome: AttemptOutcome,
                    **details: Any) -> Attempt:
        return run_unit(self.database, lambda uow: uow.state.end_attempt(
            deposit_id, number, outcome, **details))

    def close(self) -> None:
        self.database.close()
