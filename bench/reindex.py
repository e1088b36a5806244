"""``reindex`` throughput: documents per second from the records into the search index.

Seeds a SQLite store with N submissions of one deposit each (default 10,000: 20,000
documents, a submission's and a deposit's), each deposit with a repository, a
publication, a repository copy and one attempt with its package, then times
``search.commands.reindex`` (the code of ``deposit-services reindex``: batched reads,
one bulk request per batch) into an osmem-server (PyPI's in-memory OpenSearch-compatible
server, the tests' index) on loopback. Prints the figure; the informational target is
at least 2,000 documents per second here. The store and the index run on this machine,
so the figure includes building every document and the server's own indexing.

Usage: ``python bench/reindex.py [N] [--store URL]`` from the repository root.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from osmem_server import OsmemServer

from deposit_services.model.entities import (
    Deposit,
    DepositStatus,
    Publication,
    Repository,
    RepositoryCopy,
    Submission,
)
from deposit_services.search.base import Document, SearchIndex, SearchResult
from deposit_services.search.commands import reindex
from deposit_services.search.elastic import ElasticIndex
from deposit_services.store.base import AttemptOutcome, PackageInfo
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import UnitOfWork, run_unit

SEED_BATCH = 500


class CountingIndex(SearchIndex):
    """Takes the documents and drops them: what reindex costs on our side alone."""

    name = "null"

    def prepare(self) -> None:
        pass

    def write(self, documents: Iterable[Document], refresh: bool = False) -> int:
        return sum(1 for _ in documents)

    def search(self, query: str, *, size: int = 50, offset: int = 0,
               filters: Mapping[str, str] | None = None) -> SearchResult:
        return SearchResult(0)

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass


def seed(database: SqlDatabase, count: int) -> None:
    def batch(uow: UnitOfWork, start: int) -> None:
        records = uow.records
        if start == 0:
            records.add(Repository(id="repo-js", name="JScholarship", repository_key="js"))
        for n in range(start, min(start + SEED_BATCH, count)):
            failed = n % 10 == 0
            records.add(Publication(id=f"pub-{n}", title=f"Paper {n}", doi=f"10.5555/p.{n}"))
            records.add(Submission(id=f"s{n}", publication=f"pub-{n}", submitted=True,
                                   repositories=["repo-js"]))
            if not failed:
                records.add(RepositoryCopy(id=f"c{n}", access_url=f"https://js.example/{n}",
                                           external_ids=[f"hdl:1/{n}"]))
            records.add(Deposit(id=f"d{n}", submission=f"s{n}", repository="repo-js",
                                repository_copy=None if failed else f"c{n}",
                                deposit_status=DepositStatus.FAILED if failed
                                else DepositStatus.ACCEPTED,
                                status_message="connection refused" if failed else None))
            attempt = uow.state.begin_attempt(
                f"d{n}", trigger="message", owner="bench",
                package=PackageInfo(f"pkg-{n}.zip", 10_000 + n, "ab" * 16, "cd" * 32))
            uow.state.end_attempt(f"d{n}", attempt.number,
                                  AttemptOutcome.PERMANENT_ERROR if failed
                                  else AttemptOutcome.SENT,
                                  error="connection refused" if failed else None)

    for start in range(0, count, SEED_BATCH):
        run_unit(database, partial(batch, start=start))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=10_000,
                        help="submissions (one deposit each)")
    parser.add_argument("--store", help="a store URL (default: a new SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database = SqlDatabase(args.store or f"sqlite:///{tmp}/bench.db")
        started = time.perf_counter()
        seed(database, args.count)
        print(f"seeded {args.count} submissions and deposits in "
              f"{time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        built = reindex(database, CountingIndex())
        ours = time.perf_counter() - started
        server = OsmemServer.start(japanese=False)
        try:
            index = ElasticIndex(server.url, "bench")
            started = time.perf_counter()
            done = reindex(database, index)
            seconds = time.perf_counter() - started
            index.close()
        finally:
            server.process.kill()
            database.close()
    print(f"documents built from the records (no index): {built} in {ours:.2f} s = "
          f"{built / ours:,.0f} documents/s")
    print(f"reindex: {done} documents in {seconds:.2f} s = {done / seconds:,.0f} documents/s "
          f"(target >= 2,000/s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
