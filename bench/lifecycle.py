"""What the deposit lifecycle's bookkeeping costs: the attempt log and the jobs' scans.

Prints, on SQLite and on PostgreSQL, the time per deposit of the whole service path
(claim, build, assemble, filesystem transfer, attempt intent + outcome, deposit and
copy, aggregate) for small packages, where bookkeeping dominates; the time of the
attempt log alone (``begin_attempt`` + ``end_attempt``); and one scan of the retry job
over a store holding that many RETRY deposits, none due (what every replica pays each
interval). The intent must be committed before the transfer starts, so the log costs
one commit of its own per attempt (the outcome shares the deposit's transaction); the
figure printed is both writes on their own, an upper bound. Target: under 15 % of a
deposit's time with tiny packages (real packages are dominated by the transfer), and
a retry scan of a few hundred deposits in milliseconds.

Usage: ``python bench/lifecycle.py [--deposits 200] [--postgres URL]`` from the
repository root (PostgreSQL: an admin URL; a scratch database is created and dropped).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from psycopg import sql

from deposit_services.config.repositories import parse_repositories
from deposit_services.entrypoints.jobs import due_retries
from deposit_services.model.entities import Deposit, DepositStatus
from deposit_services.model.graph import Graph, resolve_file_uris
from deposit_services.service.context import ServiceContext
from deposit_services.service.submissions import SubmissionProcessor
from deposit_services.service.targets import Targets
from deposit_services.store.base import AttemptOutcome
from deposit_services.store.uow import run_unit
from tests.support.graphs import make_graph, write_graph
from tests.support.store import StoreView


def _seed(store: StoreView, root: Path, count: int) -> list[str]:
    ids = []
    for n in range(count):
        sid = f"bench-{n:05d}"
        path = write_graph(root / f"{sid}.json", make_graph(sid, root / "files"))
        graph = resolve_file_uris(Graph.load(path), root / "files")
        for entity in graph.entities:  # shared: user, journal, repository
            store.add_if_absent(entity)
        ids.append(sid)
    return ids


def run(url: str, root: Path, count: int) -> dict[str, float]:
    store = StoreView.sql(url)
    config = parse_repositories({"archive": {
        "assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
        "transport-config": {"protocol-binding": {"protocol": "filesystem",
                                                  "baseDir": str(root / "target")}},
    }}, {})
    ctx = ServiceContext(database=store.database, targets=Targets(config, "bench"),
                         work_dir=root / "work", owner="bench")
    ids = _seed(store, root, count)
    processor = SubmissionProcessor(ctx)
    started = time.perf_counter()
    for sid in ids:
        processor.process(sid)
    per_deposit = (time.perf_counter() - started) / count

    started = time.perf_counter()
    for n in range(count):  # each in a unit of its own: the upper bound
        attempt = store.begin_attempt(f"log-{n}", trigger="bench", owner="bench")
        store.end_attempt(f"log-{n}", attempt.number, AttemptOutcome.SENT, status_ref="x")
    per_log = (time.perf_counter() - started) / count

    later = datetime.now(UTC) + timedelta(hours=1)
    for n in range(count):
        store.add(Deposit(id=f"retry-{n}", submission=f"s-{n}", repository="r",
                          deposit_status=DepositStatus.RETRY, next_attempt_at=later))
    started = time.perf_counter()
    now = datetime.now(UTC)
    due = run_unit(store.database, lambda uow: due_retries(uow, now), read_only=True)
    scan = time.perf_counter() - started
    assert not due
    ctx.targets.close()
    store.close()
    return {"deposit_ms": per_deposit * 1000, "attempt_log_ms": per_log * 1000,
            "log_share_pct": 100 * per_log / per_deposit, "retry_scan_ms": scan * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deposits", type=int, default=200)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sqlite"
        root.mkdir()
        results["sqlite"] = run(f"sqlite:///{root / 'db.sqlite'}", root, args.deposits)
        name = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            root = Path(tmp) / "postgres"
            root.mkdir()
            base = args.postgres.rpartition("/")[0]
            results["postgresql"] = run(f"{base}/{name}", root, args.deposits)
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                             .format(sql.Identifier(name)))
    print(f"{args.deposits} deposits per backend (small packages, filesystem target)")
    for backend, figures in results.items():
        print(f"{backend:11s} deposit {figures['deposit_ms']:7.2f} ms   attempt log "
              f"{figures['attempt_log_ms']:6.2f} ms ({figures['log_share_pct']:4.1f} %)   "
              f"retry scan of {args.deposits} RETRY deposits {figures['retry_scan_ms']:7.1f} ms")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
