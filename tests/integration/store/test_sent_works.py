"""The index of works sent (schema step 6, issue 21) on every worker-state adapter: one
row per deposit, written with its unit, looked up by (repository, DOI); the migration
indexes a SQL-records deployment's earlier deposits; and the duplicate check costs one
SQL statement and no records read when the DOI matches nothing, however many deposits
the repository holds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event, select, update

from deposit_services.model.entities import Deposit, DepositStatus, Publication, Submission
from deposit_services.model.submission import ArticleMetadata, DepositSubmission
from deposit_services.model.works import SentWork
from deposit_services.service.duplicates import Kind, find_resubmission, fingerprint, sent_work
from deposit_services.store import schema
from deposit_services.store.uow import UnitOfWork, run_unit
from tests.support.store import StoreView

REPO = "repo-x"


def rows(store: StoreView, repository: str, doi: str) -> list[SentWork]:
    return run_unit(store.database, lambda uow: uow.state.sent_works(repository, doi),
                    read_only=True)


def test_one_row_per_deposit_looked_up_by_repository_and_doi(store: StoreView) -> None:
    first = SentWork(REPO, "10.5555/a", "d1", "s1", "print-1")
    run_unit(store.database, lambda uow: uow.state.record_sent_work(first))
    run_unit(store.database, lambda uow: uow.state.record_sent_work(
        SentWork("repo-y", "10.5555/a", "d2", "s2", None)))
    run_unit(store.database, lambda uow: uow.state.record_sent_work(
        SentWork(REPO, "10.5555/b", "d3", "s3", None)))
    assert rows(store, REPO, "10.5555/a") == [first]
    # the same deposit again (a forced retry with changed content): its row replaced
    again = SentWork(REPO, "10.5555/a", "d1", "s1", "print-2")
    run_unit(store.database, lambda uow: uow.state.record_sent_work(again))
    assert rows(store, REPO, "10.5555/a") == [again]
    # a backfill adds only deposits without a row: the newer fingerprint is kept
    added = run_unit(store.database, lambda uow: uow.state.backfill_sent_works(
        [SentWork(REPO, "10.5555/a", "d1", "s1", None), SentWork(REPO, "10.5555/a", "d0", "s0")]))
    assert added == 1
    assert rows(store, REPO, "10.5555/a") == [SentWork(REPO, "10.5555/a", "d0", "s0"), again]


def test_a_row_rolls_back_with_its_unit(store: StoreView) -> None:
    def fail(uow: UnitOfWork) -> None:
        uow.state.record_sent_work(SentWork(REPO, "10.5555/gone", "d9", "s9", "p"))
        raise RuntimeError("the intent failed")

    with pytest.raises(RuntimeError):
        run_unit(store.database, fail)
    assert rows(store, REPO, "10.5555/gone") == []


def _old_deposits(store: StoreView) -> None:
    """Deposits as a release before the index left them: two holding ones with a DOI
    (in the metadata blob; only on the publication), a FAILED one, one without a DOI."""
    store.add(Publication(id="p1", doi="10.5555/ignored-by-blob"))
    store.add(Publication(id="p2", doi="https://doi.org/10.5555/ON-PUB"))
    store.add(Publication(id="p3"))
    for sid, pub, blob in (("s1", "p1", '{"doi": "10.5555/Blob"}'), ("s2", "p2", "{}"),
                           ("s3", "p2", "{}"), ("s4", "p3", "{}")):
        store.add(Submission(id=sid, publication=pub, metadata=blob))
    for did, sid, status in (("d1", "s1", DepositStatus.ACCEPTED),
                             ("d2", "s2", DepositStatus.SUBMITTED),
                             ("d3", "s3", DepositStatus.FAILED),
                             ("d4", "s4", DepositStatus.ACCEPTED)):
        store.add(Deposit(id=did, submission=sid, repository=REPO, deposit_status=status))


def test_the_migration_indexes_the_earlier_holding_deposits(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = StoreView.sql(store_url)
    try:
        _old_deposits(store)
        with store.engine.begin() as conn:  # back to schema 5: no index yet
            schema.sent_works.drop(conn)
            conn.execute(update(schema.schema_version).values(version=5))
        monkeypatch.setattr(schema, "_BACKFILL_BATCH", 1)  # several batches
        assert schema.ensure_schema(store.engine) == 5
        assert rows(store, REPO, "10.5555/blob") == [SentWork(REPO, "10.5555/blob", "d1", "s1")]
        assert rows(store, REPO, "10.5555/on-pub") == [SentWork(REPO, "10.5555/on-pub", "d2", "s2")]
        with store.engine.connect() as conn:
            indexed = conn.execute(select(schema.sent_works.c.deposit_id)).scalars().all()
        assert sorted(indexed) == ["d1", "d2"]
    finally:
        store.close()


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        seen.append(sql)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


HOLDING = 1000


def test_the_check_is_one_statement_and_no_records_read_on_a_full_repository(
        store_url: str) -> None:
    store = StoreView.sql(store_url)

    def fill(uow: UnitOfWork) -> None:
        for n in range(HOLDING):
            uow.records.add(Deposit(id=f"held-{n:04}", submission=f"sub-{n:04}",
                                    repository=REPO, deposit_status=DepositStatus.ACCEPTED))
        uow.state.backfill_sent_works([SentWork(REPO, f"10.5555/other.{n}", f"held-{n:04}",
                                                f"sub-{n:04}", "p") for n in range(HOLDING)])

    try:
        run_unit(store.database, fill)
        content = DepositSubmission(id="new", article=ArticleMetadata(doi="10.5555/NEW"))
        deposit = Deposit(id="dep-new", submission="new", repository=REPO)
        printed = fingerprint(content)

        def check(uow: UnitOfWork) -> tuple[Any, list[str]]:
            uow.state.attempts("warm-up")  # the unit's transaction begun before counting
            with statements(store.engine) as seen:
                found = find_resubmission(uow, deposit, content, printed, True)
            return found, seen

        found, seen = run_unit(store.database, check, read_only=True)
        assert found is None
        assert len(seen) == 1 and "sent_works" in seen[0], seen
        assert not [s for s in seen if "entity_" in s]

        # a match reads the earlier deposit, and only it (its fingerprint is stored)
        run_unit(store.database, lambda uow: uow.state.record_sent_work(
            SentWork(REPO, "10.5555/new", "held-0007", "sub-0007", printed)))
        found, seen = run_unit(store.database, check, read_only=True)
        assert found is not None and found.kind is Kind.DUPLICATE
        assert found.earlier.id == "held-0007"
        assert len(seen) == 2 and "entity_deposit" in seen[1], seen

        # an earlier deposit that no longer holds the work (FAILED since) is no match
        with store.engine.begin() as conn:
            conn.execute(delete(schema.ENTITY_TABLES["Deposit"]).where(
                schema.ENTITY_TABLES["Deposit"].c.id == "held-0007"))
        found, _ = run_unit(store.database, check, read_only=True)
        assert found is None
    finally:
        store.close()


def test_a_doi_too_long_to_be_one_is_not_indexed_and_matches_nothing(store_url: str) -> None:
    store = StoreView.sql(store_url)
    try:
        content = DepositSubmission(id="s", article=ArticleMetadata(doi="10.5555/" + "x" * 600))
        deposit = Deposit(id="d", submission="s", repository=REPO)
        assert sent_work(deposit, content, "p") is None
        found = run_unit(store.database, lambda uow: find_resubmission(
            uow, deposit, content, "p", True), read_only=True)
        assert found is None
    finally:
        store.close()
