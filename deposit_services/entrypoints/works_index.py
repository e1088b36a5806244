"""``deposit-services index-works [--repository KEY]``: index the works of deposits made
before the index of works sent existed (schema step 6), so the duplicate check finds
them (service/duplicates.py). A SQL-records deployment's migration did this already; a
pass-core deployment's earlier deposits are in pass-core, read here page by page. Safe
to run again, and while workers run: only deposits without a row are added."""

from __future__ import annotations

import argparse
import sys
import time

from deposit_services.entrypoints.command import EXIT_CONFIG, EXIT_OK, bootstrap
from deposit_services.entrypoints.progress import Progress
from deposit_services.model.entities import Repository
from deposit_services.safetext import safe
from deposit_services.service.duplicates import index_earlier_works
from deposit_services.service.lifecycle import Outcome
from deposit_services.settings import Settings
from deposit_services.store.uow import run_unit


def cmd_index_works(settings: Settings, args: argparse.Namespace) -> int:
    app = bootstrap(settings, with_broker=False, with_repositories=False)
    started = time.monotonic()
    try:
        repository = None
        if args.repository:
            found = run_unit(app.database, lambda uow: uow.records.find(
                Repository, repository_key=args.repository), read_only=True)
            if not found:
                print(f"no repository has the key {safe(args.repository)} in the records; "
                      "see `deposit-services status` for the repositories deposited to",
                      file=sys.stderr)
                return EXIT_CONFIG
            repository = found[0].id
        with Progress(0, "index-works", sys.stderr) as bar:
            added = index_earlier_works(app.database, repository, lambda n, total: bar.step(
                n, total, Outcome(f"{n} deposits", True, "indexed")))
    finally:
        app.close()
    print(f"indexed {added} earlier deposit(s) in {time.monotonic() - started:.1f} s")
    return EXIT_OK
