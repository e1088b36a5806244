"""The operator's batch commands, ``retry`` and ``refresh``: the work is in
service.operations; here parse the deposit ids, show progress and the summary."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from deposit_services.entrypoints.command import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, bootstrap
from deposit_services.safetext import safe
from deposit_services.service.lifecycle import Outcome
from deposit_services.settings import Settings


def cmd_retry(settings: Settings, args: argparse.Namespace) -> int:
    return deposit_batch(settings, args, "retry")


def cmd_refresh(settings: Settings, args: argparse.Namespace) -> int:
    return deposit_batch(settings, args, "refresh")


def shown(outcome: Outcome) -> Outcome:
    """An Outcome whose texts are ``safe`` to print (the batch commands' table and
    progress lines show them)."""
    return replace(outcome, deposit_id=safe(outcome.deposit_id), status=safe(outcome.status),
                   message=safe(outcome.message))


def deposit_batch(settings: Settings, args: argparse.Namespace, command: str) -> int:
    """``retry`` / ``refresh`` the deposits named by ``--uri`` (default: every one the
    command selects)."""
    from deposit_services.entrypoints.progress import Progress, summary_data, summary_table
    from deposit_services.entrypoints.reports import print_json
    from deposit_services.service import operations

    try:
        ids = [operations.deposit_id_from_uri(uri) for uri in args.uri or []]
    except ValueError as exc:
        print(f"usage error: {safe(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG
    app = bootstrap(settings)
    try:
        ctx = app.context()
        chosen = operations.select(ctx, command, ids)
        if not chosen:
            which = ", ".join(s.value for s in operations.SELECTED[command])
            if args.json:
                print_json(summary_data([], command))
            else:
                print(f"nothing to {command}: no {which} deposits")
            return EXIT_OK
        with Progress(len(chosen), command, sys.stderr) as progress:
            outcomes = operations.run(
                ctx, command, chosen, named=bool(ids), force=getattr(args, "force", False),
                progress=lambda done, total, outcome: progress.step(done, total,
                                                                    shown(outcome)))
    finally:
        app.close()
    if args.json:
        print_json(summary_data(outcomes, command))
    else:
        print(summary_table([shown(o) for o in outcomes], command))
    return EXIT_OK if all(o.ok for o in outcomes) else EXIT_FAILURE
