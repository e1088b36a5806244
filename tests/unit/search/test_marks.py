"""Which documents a unit's writes mark (``marks_for``), and that a unit's commit hooks
hear of an attempt recorded alone, on the in-memory store."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from deposit_services.errors import StoreError
from deposit_services.model.entities import (
    CopyStatus,
    Deposit,
    Entity,
    Journal,
    Publication,
    Repository,
    RepositoryCopy,
    Submission,
    User,
)
from deposit_services.search.relay import marks_for
from deposit_services.store.memory import MemoryDatabase
from deposit_services.store.uow import CommitHook, UnitOfWork, run_unit


class Recorder(CommitHook):
    """The marks each committed unit would record."""

    def __init__(self) -> None:
        self.changes: list[list[tuple[str, str]]] = []
        self.commits = 0

    def changed(self, uow: UnitOfWork, entities: Sequence[Entity]) -> None:
        self.changes.append(marks_for(uow, entities))

    def committed(self) -> None:
        self.commits += 1


@pytest.fixture
def database() -> MemoryDatabase:
    database = MemoryDatabase()

    def seed(uow: UnitOfWork) -> None:
        uow.records.add(Repository(id="r", repository_key="js"))
        uow.records.add(Journal(id="j", journal_name="J"))
        uow.records.add(User(id="u", display_name="U"))
        uow.records.add(Publication(id="p", title="T", journal="j"))
        uow.records.add(Submission(id="s", publication="p", repositories=["r"], submitter="u"))
        uow.records.add(RepositoryCopy(id="c", repository="r"))
        uow.records.add(Deposit(id="d", submission="s", repository="r", repository_copy="c"))

    run_unit(database, seed)
    return database


def _marks(database: MemoryDatabase, work: Callable[[UnitOfWork], object]) -> list[object]:
    recorder = Recorder()
    database.commit_hooks.append(recorder)
    run_unit(database, work)
    database.commit_hooks.remove(recorder)
    assert recorder.commits == len(recorder.changes)
    return [mark for change in recorder.changes for mark in change]


def _set(cls: type[Entity], id: str, **values: object) -> Callable[[UnitOfWork], None]:
    def work(uow: UnitOfWork) -> None:
        entity = uow.records.get(cls, id)
        for name, value in values.items():
            setattr(entity, name, value)
    return work


def test_a_deposit_write_marks_it_and_its_submission(database: MemoryDatabase) -> None:
    assert _marks(database, _set(Deposit, "d", status_message="x")) == [
        ("Deposit", "d"), ("Submission", "s")]


def test_a_submission_write_marks_it(database: MemoryDatabase) -> None:
    assert _marks(database, _set(Submission, "s", status_message="x")) == [("Submission", "s")]


def test_a_copy_write_marks_the_deposit_the_unit_read(database: MemoryDatabase) -> None:
    def work(uow: UnitOfWork) -> None:
        uow.records.find(Deposit, submission="s")
        uow.records.get(RepositoryCopy, "c").copy_status = CopyStatus.COMPLETE

    assert _marks(database, work) == [("Deposit", "d")]


def test_a_copy_write_alone_marks_the_copy(database: MemoryDatabase) -> None:
    assert _marks(database, _set(RepositoryCopy, "c", copy_status=CopyStatus.STALLED)) == [
        ("RepositoryCopy", "c")]


@pytest.mark.parametrize(("cls", "id", "field"), [
    (Publication, "p", "title"), (Journal, "j", "journal_name"), (User, "u", "email"),
    (Repository, "r", "name")])
def test_an_entity_documents_show_is_marked_itself(database: MemoryDatabase,
                                                     cls: type[Entity], id: str,
                                                     field: str) -> None:
    assert _marks(database, _set(cls, id, **{field: "new"})) == [(cls.TYPE, id)]


def test_an_attempt_alone_marks_its_deposit_once(database: MemoryDatabase) -> None:
    def work(uow: UnitOfWork) -> None:
        attempt = uow.state.begin_attempt("d", trigger="message", owner="t")
        uow.state.note_attempt("d", attempt.number, "no answer")

    assert _marks(database, work) == [("Deposit", "d")]


def test_nothing_written_nothing_heard(database: MemoryDatabase) -> None:
    recorder = Recorder()
    database.commit_hooks.append(recorder)
    run_unit(database, lambda uow: uow.records.get(Deposit, "d"))
    with database.unit_of_work() as uow:  # rolled back
        uow.state.begin_attempt("d", trigger="message", owner="t")
    assert recorder.changes == [] and recorder.commits == 0


def test_a_unit_without_sql_state_has_no_state_connection(database: MemoryDatabase) -> None:
    with database.unit_of_work() as uow, pytest.raises(StoreError, match="no worker state"):
        uow.state_connection()
