"""What the duplicate check (service/duplicates.py) costs on a repository holding N
works: the index lookup of today against the reads the check made before the index
(every ACCEPTED and SUBMITTED deposit of the repository, their submissions and
publications), per check in milliseconds and SQL statements (each in a unit of its
own: one statement is the unit's BEGIN); then how fast the
schema-6 migration indexes N earlier deposits.

Seeds a SQLite store with N ACCEPTED deposits to one repository, each of its own
submission, publication and DOI, indexed as the intent unit indexes them.

Usage: ``python bench/duplicate_check.py [N] [--checks C]`` from the repository root.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, update

from deposit_services.model.entities import Deposit, DepositStatus, Publication, Submission
from deposit_services.model.submission import ArticleMetadata, DepositSubmission
from deposit_services.model.works import SentWork
from deposit_services.service.duplicates import HOLDING, find_resubmission, fingerprint
from deposit_services.store import schema
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import UnitOfWork, run_unit

REPO = "repo-bench"


def seed(database: SqlDatabase, count: int) -> None:
    def add(uow: UnitOfWork) -> None:
        for n in range(count):
            uow.records.add(Publication(id=f"p{n}", doi=f"10.5555/bench.{n}"))
            uow.records.add(Submission(id=f"s{n}", publication=f"p{n}", metadata="{}"))
            uow.records.add(Deposit(id=f"d{n}", submission=f"s{n}", repository=REPO,
                                    deposit_status=DepositStatus.ACCEPTED))
        uow.state.backfill_sent_works([SentWork(REPO, f"10.5555/bench.{n}", f"d{n}",
                                                f"s{n}", "print") for n in range(count)])

    run_unit(database, add)


def before_the_index(uow: UnitOfWork) -> None:
    """The reads the check made before the index (the DOI comparison left out)."""
    holding = [d for status in HOLDING
               for d in uow.records.find(Deposit, repository=REPO, deposit_status=status)]
    submissions = uow.records.get_many(Submission, [d.submission or "" for d in holding])
    uow.records.get_many(Publication, [s.publication or "" for s in submissions])


def measure(database: SqlDatabase, checks: int, check: Callable[[UnitOfWork], Any]
            ) -> tuple[float, float]:
    """Milliseconds and SQL statements per check, each in a unit of its own (SQLite's
    BEGIN is one of the statements counted)."""
    statements = 0

    def counted(*args: Any) -> None:
        nonlocal statements
        statements += 1

    event.listen(database.engine, "before_cursor_execute", counted)
    started = time.perf_counter()
    for _ in range(checks):
        run_unit(database, check, read_only=True)
    elapsed = time.perf_counter() - started
    event.remove(database.engine, "before_cursor_execute", counted)
    return elapsed * 1000 / checks, statements / checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=10_000, help="works held")
    parser.add_argument("--checks", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database = SqlDatabase(f"sqlite:///{tmp}/bench.db")
        started = time.perf_counter()
        seed(database, args.n)
        print(f"seeded {args.n} ACCEPTED deposits in {time.perf_counter() - started:.1f} s")
        content = DepositSubmission(id="new", article=ArticleMetadata(doi="10.5555/new"))
        deposit = Deposit(id="d-new", submission="new", repository=REPO)
        printed = fingerprint(content)
        ms, sql = measure(database, args.checks, lambda uow: find_resubmission(
            uow, deposit, content, printed, False))
        print(f"index lookup, no match:  {ms:8.2f} ms/check  {sql:6.1f} SQL statements/check")
        matching = DepositSubmission(id="new", article=ArticleMetadata(doi="10.5555/bench.7"))
        ms, sql = measure(database, args.checks, lambda uow: find_resubmission(
            uow, deposit, matching, printed, False))
        print(f"index lookup, a match:   {ms:8.2f} ms/check  {sql:6.1f} SQL statements/check")
        checks = max(1, min(args.checks, 10))
        ms, sql = measure(database, checks, before_the_index)
        print(f"before the index (reads): {ms:7.2f} ms/check  {sql:6.1f} SQL statements/check")

        with database.engine.begin() as conn:  # the migration on a schema-5 database
            schema.sent_works.drop(conn)
            conn.execute(update(schema.schema_version).values(version=5))
        started = time.perf_counter()
        schema.ensure_schema(database.engine)
        seconds = time.perf_counter() - started
        print(f"migration to schema 6 indexed {args.n} deposits in {seconds:.2f} s "
              f"({args.n / seconds:,.0f}/s)")
        database.close()


if __name__ == "__main__":
    main()
