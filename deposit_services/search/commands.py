"""The CLI's ``reindex`` and ``search`` (cli.py only parses and calls these)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

from deposit_services.model.entities import Deposit, Submission
from deposit_services.safetext import safe
from deposit_services.search.base import Document, SearchIndex, SearchResult
from deposit_services.search.documents import build
from deposit_services.settings import Settings
from deposit_services.store.uow import Database, UnitOfWork, run_unit

log = logging.getLogger(__name__)

BATCH = 500
WRITERS = 2  # bulk requests in flight: the index works while the next batch is read


def reindex(database: Database, index: SearchIndex,
            progress: Callable[[int, int], None] | None = None, batch: int = BATCH) -> int:
    """Write the document of every submission and deposit in the records to ``index``
    (bulk, ``batch`` entities per read and per request, up to WRITERS requests in
    flight while the next batch is read); returns how many."""

    def every(uow: UnitOfWork) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
        deposits = uow.records.find(Deposit)
        deposits_of: dict[str, list[str]] = {}
        for deposit in deposits:
            deposits_of.setdefault(deposit.submission or "", []).append(deposit.id)
        listed = {k: list(v) for k, v in deposits_of.items()}
        # each submission with its deposits, so that a batch reads what they share once
        keys: list[tuple[str, str]] = []
        for submission in uow.records.find(Submission):
            keys.append((Submission.TYPE, submission.id))
            keys += [(Deposit.TYPE, d) for d in deposits_of.pop(submission.id, [])]
        keys += [(Deposit.TYPE, d) for ids in deposits_of.values() for d in ids]  # orphans
        return keys, listed

    keys, deposits_of = run_unit(database, every, read_only=True, what="list the records")
    index.prepare()
    done = 0
    in_flight: deque[Future[int]] = deque()

    def finish_one() -> None:
        nonlocal done
        done += in_flight.popleft().result()
        if progress is not None:
            progress(done, len(keys))

    with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="reindex") as writers:
        for start in range(0, len(keys), batch):
            chunk = keys[start:start + batch]
            documents, _ = run_unit(database, partial(
                _build, submissions=[i for kind, i in chunk if kind == Submission.TYPE],
                deposits=[i for kind, i in chunk if kind == Deposit.TYPE],
                deposits_of=deposits_of), read_only=True, what="search documents")
            if len(in_flight) >= WRITERS:
                finish_one()
            in_flight.append(writers.submit(index.write, documents))
        while in_flight:
            finish_one()
    index.refresh()
    return done


def _build(uow: UnitOfWork, submissions: list[str], deposits: list[str],
           deposits_of: dict[str, list[str]]) -> tuple[list[Document], list[tuple[str, str]]]:
    return build(uow, submissions, deposits, deposits_of)


def cmd_reindex(settings: Settings, args: argparse.Namespace) -> int:
    # the commands' bootstrap: it masks configured secrets in every log line
    from deposit_services.entrypoints.command import EXIT_CONFIG, EXIT_OK, bootstrap
    from deposit_services.entrypoints.progress import Progress
    from deposit_services.search.relay import build_index
    from deposit_services.service.lifecycle import Outcome

    if not settings.elasticsearch_url:
        print("configuration error: reindex needs the index: set DEPOSIT_SEARCH_URL",
              file=sys.stderr)
        return EXIT_CONFIG
    app = bootstrap(settings, with_broker=False, with_repositories=False)
    index = build_index(settings, args.index)
    started = time.monotonic()
    try:
        with Progress(0, "reindex", sys.stderr) as bar:
            done = reindex(app.database, index, lambda n, total: bar.step(
                n, total, Outcome(f"{n} documents", True, "indexed", "")))
    finally:
        index.close()
        app.close()
    seconds = time.monotonic() - started
    print(f"reindexed {done} document(s) into {safe(index.name)} in {seconds:.1f} s")
    return EXIT_OK


def cmd_search(settings: Settings, args: argparse.Namespace) -> int:
    from deposit_services.entrypoints.command import EXIT_OK, bootstrap
    from deposit_services.entrypoints.reports import Column, print_json, render_table

    app = bootstrap(settings, with_broker=False, with_repositories=False)
    index = searcher(settings, app.database)
    try:
        result = index.search(" ".join(args.query), size=args.limit)
    finally:
        index.close()
        app.close()
    if args.json:
        print_json({"total": result.total, "documents": result.documents})
    else:
        print(render_table([Column("TYPE"), Column("ID"), Column("STATUS"),
                            Column("REPOSITORY"), Column("DOI"), Column("MESSAGE", cut=True)],
                           rows(result)))
        print(f"{result.total} found" + (f", {len(result.documents)} shown"
                                         if result.total > len(result.documents) else ""))
    return EXIT_OK


def rows(result: SearchResult) -> list[tuple[object, ...]]:
    return [(d.get("@type"), d.get("@id"),
             d.get("depositStatus") or d.get("aggregatedDepositStatus"),
             d.get("repositoryKey") or ", ".join(d.get("repositoryKeys", [])),
             d.get("doi"), d.get("statusMessage") or d.get("lastError"))
            for d in result.documents]


def searcher(settings: Settings, database: Database) -> SearchIndex:
    """The index when one is configured, the records' own search otherwise."""
    from deposit_services.search.records import RecordSearch
    from deposit_services.search.relay import build_index

    if settings.elasticsearch_url:
        return build_index(settings)
    return RecordSearch(database)
