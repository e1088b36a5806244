"""What the search index's marks cost: a unit's commit with and without the relay's hook,
and the relay bringing up to date every document a Repository rename makes stale.

Seeds a SQLite store (``bench/reindex.py``'s seed: N submissions of one deposit each),
indexes it in an osmem-server, then times U units that read a deposit, write its copy
and record an attempt (the shape of a status refresh or a transfer's intent), first
without the hook, then with it (the marks' INSERT, no read), printing the time and SQL
statements per unit; then renames the repository and times ``catch_up`` (the mark
turned into 2N document marks through the index, the documents rebuilt and written).

Usage: ``python bench/search_marks.py [N] [--units U]`` from the repository root.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from osmem_server import OsmemServer
from reindex import seed  # bench/reindex.py: python puts bench/ first on sys.path
from sqlalchemy import event

from deposit_services.model.entities import Deposit, Repository, RepositoryCopy
from deposit_services.search.commands import reindex
from deposit_services.search.elastic import ElasticIndex
from deposit_services.search.pending import PendingMarks
from deposit_services.search.relay import SearchRelay
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import UnitOfWork, run_unit

ROUNDS = 5


def _units(database: SqlDatabase, count: int, tag: str) -> tuple[float, float]:
    """Seconds and SQL statements per unit for ``count`` units."""
    statements = 0

    def counted(*args: Any) -> None:
        nonlocal statements
        statements += 1

    def work(uow: UnitOfWork, n: int) -> None:
        uow.records.get(Deposit, f"d{n}")
        uow.records.get(RepositoryCopy, f"c{n}").access_url = f"https://js.example/{tag}/{n}"
        uow.state.begin_attempt(f"d{n}", trigger="refresh", owner="bench")

    event.listen(database.engine, "before_cursor_execute", counted)
    started = time.perf_counter()
    for n in range(1, count + 1):  # every tenth deposit FAILED: it has no copy
        run_unit(database, partial(work, n=n if n % 10 else n + 1))
    elapsed = time.perf_counter() - started
    event.remove(database.engine, "before_cursor_execute", counted)
    return elapsed / count, statements / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=5_000,
                        help="submissions (one deposit each) in the store")
    parser.add_argument("--units", type=int, default=1_000, help="units timed each way")
    args = parser.parse_args()
    server = OsmemServer.start(japanese=False)
    with tempfile.TemporaryDirectory() as tmp:
        database = SqlDatabase(f"sqlite:///{Path(tmp) / 'store.db'}")
        relay = SearchRelay(database, ElasticIndex(server.url, "bench-marks"),
                            PendingMarks(database.engine))
        try:
            seed(database, args.count)
            reindex(database, ElasticIndex(server.url, "bench-marks"))
            _units(database, args.units, "warm-up")
            rounds: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
            for round in range(ROUNDS):  # alternated: the machine's load hits both alike
                for hooked in (False, True):
                    if hooked:
                        database.commit_hooks.append(relay)
                    rounds[hooked].append(_units(database, args.units // ROUNDS,
                                                 f"{round}-{hooked}"))
                    if hooked:
                        database.commit_hooks.remove(relay)
            (plain, plain_sql), (hooked_s, hooked_sql) = (
                (statistics.median(t for t, _ in rounds[h]), rounds[h][0][1])
                for h in (False, True))
            print(f"unit (read deposit, write copy, begin attempt), {args.units} each way: "
                  f"{plain * 1e3:.2f} ms and {plain_sql:.1f} SQL statements without the "
                  f"hook, {hooked_s * 1e3:.2f} ms and {hooked_sql:.1f} with it (medians of "
                  f"{ROUNDS} alternated rounds)")
            database.commit_hooks.append(relay)
            relay.catch_up()
            run_unit(database, lambda uow: setattr(uow.records.get(Repository, "repo-js"),
                                                   "repository_key", "jscholarship"))
            started = time.perf_counter()
            done = relay.catch_up()
            elapsed = time.perf_counter() - started
            print(f"repository renamed: {done} marks relayed ({2 * args.count} documents "
                  f"shown it) in {elapsed:.2f} s = {2 * args.count / elapsed:,.0f} "
                  f"documents/s (load average {os.getloadavg()[0]:.1f} on "
                  f"{os.cpu_count()} CPUs)")
        finally:
            relay.close()
            database.close()
            server.process.kill()
            server.process.wait(10)


if __name__ == "__main__":
    main()
