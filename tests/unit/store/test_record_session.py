"""The unit of work's identity map against a store that assigns its own ids, as
pass-core does: new entities are written after those they refer to, and every
reference in the unit follows the id the store gave."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deposit_services.model.entities import Deposit, RepositoryCopy, Submission
from deposit_services.store.base import E, Records
from deposit_services.store.memory import MemoryDatabase, MemoryRecords, MemoryUnitOfWork
from deposit_services.store.uow import RecordSession


class NumberingRecords(Records):
    """The memory adapter, but every insert gets the next number as its id."""

    def __init__(self, inner: MemoryRecords) -> None:
        self.inner = inner
        self.added: list[tuple[str, str, dict[str, Any]]] = []
        self.next = 100

    def get(self, cls: type[E], id: str) -> E:
        return self.inner.get(cls, id)

    def get_many(self, cls: type[E], ids: Sequence[str]) -> list[E]:
        return self.inner.get_many(cls, ids)

    def find(self, cls: type[E], **criteria: Any) -> list[E]:
        return self.inner.find(cls, **criteria)

    def add(self, entity: E) -> E:
        self.next += 1
        stored = entity.model_copy(update={"id": str(self.next)})
        self.added.append((entity.TYPE, entity.id, stored.to_json()))
        return self.inner.add(stored)

    def update(self, entity: E) -> E:
        return self.inner.update(entity)


def test_new_entities_get_the_stores_ids_and_references_follow() -> None:
    database = MemoryDatabase()
    unit = MemoryUnitOfWork(database, read_only=False)
    records = NumberingRecords(MemoryRecords(unit))
    session = RecordSession(records)
    session.add(Submission(id="s-temp"))
    existing = Deposit(id="d-old", submission="s-temp")
    records.inner.add(existing)  # a deposit already stored, found in this unit
    deposit = session.get(Deposit, "d-old")
    copy = session.add(RepositoryCopy(id="c-temp", repository="r1"))
    deposit.repository_copy = "c-temp"
    new_deposit = session.add(Deposit(id="d-temp", submission="s-temp", repository="r2",
                                      repository_copy="c-temp"))
    session.flush()
    unit.commit()
    # the copy and the new deposit refer to the submission: written after it
    order = [(kind, old) for kind, old, _ in records.added]
    assert order.index(("Submission", "s-temp")) < order.index(("Deposit", "d-temp"))
    assert order.index(("RepositoryCopy", "c-temp")) < order.index(("Deposit", "d-temp"))
    ids = {old: body["id"] for _, old, body in records.added}
    assert copy.id == ids["c-temp"] and new_deposit.id == ids["d-temp"]
    assert new_deposit.submission == ids["s-temp"]
    assert new_deposit.repository_copy == ids["c-temp"]
    # what was written carries the assigned ids, and so does the updated old deposit
    written = {old: body for _, old, body in records.added}
    assert written["d-temp"]["submission"] == ids["s-temp"]
    assert written["d-temp"]["repositoryCopy"] == ids["c-temp"]
    assert deposit.repository_copy == ids["c-temp"]
    with database.unit_of_work(read_only=True) as later:
        assert later.records.get(Deposit, "d-old").repository_copy == ids["c-temp"]
    assert session.get(RepositoryCopy, ids["c-temp"]) is copy
