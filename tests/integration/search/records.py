"""Records for the search tests: a seeded submission with its deposit, copy, publication,
repository and attempt; a relay installed on a database; the marks waiting."""

from __future__ import annotations

from sqlalchemy import func, select

from deposit_services.model.entities import (
    Deposit,
    DepositStatus,
    Publication,
    Repository,
    RepositoryCopy,
    Submission,
)
from deposit_services.search.elastic import ElasticIndex
from deposit_services.search.pending import PendingMarks
from deposit_services.search.relay import SearchRelay, state_database
from deposit_services.store.base import AttemptOutcome, PackageInfo
from deposit_services.store.schema import search_pending
from deposit_services.store.uow import Database, UnitOfWork


def make_relay(database: Database, url: str, index_name: str) -> SearchRelay:
    relay = SearchRelay(database, ElasticIndex(url, index_name, timeout=2),
                        PendingMarks(state_database(database).engine))
    database.commit_hooks.append(relay)
    return relay


def seed(uow: UnitOfWork, n: int, status: DepositStatus, message: str) -> None:
    records = uow.records
    if not records.get_many(Repository, ["repo-1"]):
        records.add(Repository(id="repo-1", name="JScholarship", repository_key="js"))
    records.add(Publication(id=f"pub-{n}", title=f"Paper <{n}>", doi=f"10.5555/p.{n}"))
    records.add(Submission(id=f"s{n}", publication=f"pub-{n}", repositories=["repo-1"],
                           submitted=True))
    records.add(RepositoryCopy(id=f"c{n}", access_url=f"https://js.example/item/{n}",
                               external_ids=[f"hdl:1/{n}"]))
    records.add(Deposit(id=f"d{n}", submission=f"s{n}", repository="repo-1",
                        repository_copy=f"c{n}", deposit_status=status,
                        status_message=message))
    attempt = uow.state.begin_attempt(f"d{n}", trigger="message", owner="test",
                                      package=PackageInfo(f"pkg-{n}.zip", 1234, "ab" * 16,
                                                          "cd" * 32))
    uow.state.end_attempt(f"d{n}", attempt.number, AttemptOutcome.PERMANENT_ERROR
                          if status is DepositStatus.FAILED else AttemptOutcome.SENT,
                          error=message if status is DepositStatus.FAILED else None)


def marks(database: Database) -> list[tuple[str, str]]:
    """The marks waiting, oldest first."""
    with state_database(database).engine.connect() as conn:
        return [(r.kind, r.entity_id) for r in conn.execute(
            select(search_pending.c.kind, search_pending.c.entity_id)
            .order_by(search_pending.c.id))]


def pending(database: Database) -> int:
    with state_database(database).engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(search_pending)).scalar_one())
