"""Documents rewritten for every write they show, not only a Submission's or a
Deposit's: a Publication, a Journal, a submitter, a Repository, a RepositoryCopy (with
its deposit read in the unit or not) and an attempt recorded alone (the transfer's
intent). On SQLite and PostgreSQL, with the documents read back from osmem-server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from sqlalchemy import event

from deposit_services.model.entities import (
    CopyStatus,
    Deposit,
    DepositStatus,
    Journal,
    Publication,
    Repository,
    RepositoryCopy,
    Submission,
    User,
)
from deposit_services.search.relay import SearchRelay
from deposit_services.store.base import PackageInfo
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import UnitOfWork, run_unit
from tests.integration.search.records import make_relay, marks, seed
from tests.support.osmem import all_documents


@pytest.fixture
def relay(database: SqlDatabase, search_url: str, fresh_index: str) -> Iterator[SearchRelay]:
    """A relay over two indexed submissions (s1, s2), each with one deposit."""
    relay = make_relay(database, search_url, fresh_index)
    for n in (1, 2):
        run_unit(database, partial(seed, n=n, status=DepositStatus.SUBMITTED, message="sent"))
    relay.catch_up()
    yield relay
    relay.close()


def _expanded(relay: SearchRelay, database: SqlDatabase) -> set[tuple[str, str]]:
    """Relay the one waiting mark (an entity documents show) and return the marks of
    the documents it was turned into."""
    assert relay.run_once(limit=1) == 1
    return set(marks(database))


def test_a_publication_change_rewrites_the_documents_that_show_it(
        database: SqlDatabase, relay: SearchRelay, search_url: str, fresh_index: str) -> None:
    def retitle(uow: UnitOfWork) -> None:
        uow.records.get(Publication, "pub-1").title = "Corrected title"

    run_unit(database, retitle)
    assert marks(database) == [("Publication", "pub-1")]
    assert _expanded(relay, database) == {("Submission", "s1"), ("Deposit", "d1")}
    relay.catch_up()
    documents = all_documents(search_url, fresh_index)
    assert documents["Submission:s1"]["title"] == "Corrected title"
    assert documents["Deposit:d1"]["title"] == "Corrected title"
    assert documents["Deposit:d2"]["title"] == "Paper <2>"
    assert marks(database) == []


def test_a_repository_change_rewrites_its_deposits_and_submissions(
        database: SqlDatabase, relay: SearchRelay, search_url: str, fresh_index: str) -> None:
    def rename(uow: UnitOfWork) -> None:
        repository = uow.records.get(Repository, "repo-1")
        repository.repository_key, repository.name = "jscholarship", "JScholarship (JHU)"

    run_unit(database, rename)
    assert marks(database) == [("Repository", "repo-1")]
    assert _expanded(relay, database) == {("Submission", "s1"), ("Deposit", "d1"),
                                          ("Submission", "s2"), ("Deposit", "d2")}
    relay.catch_up()
    documents = all_documents(search_url, fresh_index)
    for n in (1, 2):
        assert documents[f"Deposit:d{n}"]["repositoryKey"] == "jscholarship"
        assert documents[f"Deposit:d{n}"]["repositoryName"] == "JScholarship (JHU)"
        assert documents[f"Submission:s{n}"]["repositoryKeys"] == ["jscholarship"]


def test_journal_and_submitter_changes_rewrite_the_documents_that_show_them(
        database: SqlDatabase, relay: SearchRelay, search_url: str, fresh_index: str) -> None:
    def attach(uow: UnitOfWork) -> None:
        uow.records.add(Journal(id="j1", journal_name="J. Tests"))
        uow.records.add(User(id="u1", display_name="Ada L."))
        uow.records.get(Publication, "pub-1").journal = "j1"
        uow.records.get(Submission, "s1").submitter = "u1"

    run_unit(database, attach)
    relay.catch_up()
    assert all_documents(search_url, fresh_index)["Deposit:d1"]["journalName"] == "J. Tests"

    def rename(uow: UnitOfWork) -> None:
        uow.records.get(Journal, "j1").journal_name = "Journal of Tests"
        uow.records.get(User, "u1").display_name = "Ada Lovelace"

    run_unit(database, rename)
    assert sorted(marks(database)) == [("Journal", "j1"), ("User", "u1")]
    relay.catch_up()
    documents = all_documents(search_url, fresh_index)
    for key in ("Deposit:d1", "Submission:s1"):
        assert documents[key]["journalName"] == "Journal of Tests"
        assert documents[key]["submitterName"] == "Ada Lovelace"
    assert "journalName" not in documents["Deposit:d2"]


def _complete_copy(read_deposit: bool) -> Callable[[UnitOfWork], None]:
    def work(uow: UnitOfWork) -> None:
        if read_deposit:
            uow.records.get(Deposit, "d1")
        copy = uow.records.get(RepositoryCopy, "c1")
        copy.copy_status = CopyStatus.COMPLETE
        copy.access_url = "https://js.example/handle/1/1"
    return work


def test_a_copy_change_marks_the_deposit_the_unit_read(
        database: SqlDatabase, relay: SearchRelay, search_url: str, fresh_index: str) -> None:
    run_unit(database, _complete_copy(read_deposit=True))
    assert marks(database) == [("Deposit", "d1")]  # found in the unit: nothing to look up
    relay.catch_up()
    document = all_documents(search_url, fresh_index)["Deposit:d1"]
    assert document["copyStatus"] == "COMPLETE"
    assert document["accessUrl"] == "https://js.example/handle/1/1"


def test_a_copy_change_alone_is_found_through_the_index(
        database: SqlDatabase, relay: SearchRelay, search_url: str, fresh_index: str) -> None:
    run_unit(database, _complete_copy(read_deposit=False))
    assert marks(database) == [("RepositoryCopy", "c1")]
    assert _expanded(relay, database) == {("Deposit", "d1")}
    relay.catch_up()
    documents = all_documents(search_url, fresh_index)
    assert documents["Deposit:d1"]["copyStatus"] == "COMPLETE"
    assert "copyStatus" not in documents["Deposit:d2"]


def test_an_attempt_recorded_alone_rewrites_its_deposit(
        database: SqlDatabase, relay: SearchRelay, search_url: str, fresh_index: str) -> None:
    def intent(uow: UnitOfWork) -> None:
        uow.state.begin_attempt("d1", trigger="retry", owner="test",
                                package=PackageInfo("pkg-1-again.zip", 99, "ef" * 16))

    with database.unit_of_work() as uow:  # rolled back: no mark
        intent(uow)
    assert marks(database) == []
    run_unit(database, intent)
    assert marks(database) == [("Deposit", "d1")]
    relay.catch_up()
    document = all_documents(search_url, fresh_index)["Deposit:d1"]
    assert document["attempts"] == 2
    assert document["lastAttemptTrigger"] == "retry"
    assert document["packageName"] == "pkg-1-again.zip"
    assert "lastAttemptOutcome" not in document  # open: the transfer is under way


def test_marking_costs_the_unit_one_statement(database: SqlDatabase,
                                              relay: SearchRelay) -> None:
    """A unit that writes a copy (its deposit read) and records an attempt: the hook
    adds the marks' INSERT and reads nothing."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    def work(status: CopyStatus) -> Callable[[UnitOfWork], None]:
        def run(uow: UnitOfWork) -> None:
            uow.records.get(Deposit, "d1")
            uow.records.get(RepositoryCopy, "c1").copy_status = status
            uow.state.begin_attempt("d1", trigger="retry", owner="test")
        return run

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        database.commit_hooks.remove(relay)
        run_unit(database, work(CopyStatus.STALLED))
        without = list(seen)
        seen.clear()
        database.commit_hooks.append(relay)
        run_unit(database, work(CopyStatus.COMPLETE))
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
    extra = len(seen) - len(without)
    assert extra == 1, seen
    assert sum("search_pending" in s for s in seen) == 1
    assert marks(database) == [("Deposit", "d1")]
