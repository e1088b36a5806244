"""``deposit-services dead-letters``: list, show, requeue or purge the dead letters of
the submission and deposit queues, whichever broker holds them (the Broker port's
dead-letter operations)."""

from __future__ import annotations

import argparse
import json
import sys

from deposit_services.entrypoints.command import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, bootstrap
from deposit_services.entrypoints.reports import Column, print_json, render_table
from deposit_services.safetext import safe
from deposit_services.settings import Settings


def cmd_dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    action = args.action or "list"
    ids: list[str] | None = list(args.ids or []) or None
    if action in ("requeue", "purge") and ids is None and not args.all:
        print(f"usage error: dead-letters {action} needs IDs or --all", file=sys.stderr)
        return EXIT_CONFIG
    if action == "show" and (ids is None or len(ids) != 1):
        print("usage error: dead-letters show needs one ID", file=sys.stderr)
        return EXIT_CONFIG
    queues = [settings.queue_submission, settings.queue_deposit]
    app = bootstrap(settings, with_repositories=False)
    try:
        broker = app.require_broker()
        if action in ("requeue", "purge"):
            call = (broker.requeue_dead_letters if action == "requeue"
                    else broker.purge_dead_letters)
            done = call(None if args.all else ids, queues)
        else:
            letters = broker.dead_letters(queues)
    finally:
        app.close()
    if action in ("requeue", "purge"):
        missing = sorted(set(ids or []) - set(done))
        verb = "requeued" if action == "requeue" else "purged"
        if args.json:
            print_json({verb: done, "notFound": missing})
        else:
            print(f"{verb} {len(done)} dead letter(s)"
                  + (f"; not found: {safe(', '.join(missing))}" if missing else ""))
        return EXIT_FAILURE if missing else EXIT_OK
    rows = [{"id": d.id, "queue": d.queue, "attempts": d.attempts, "reason": d.reason,
             "headers": dict(d.headers), "body": d.body} for d in letters]
    if action == "show":
        rows = [row for row in rows if row["id"] == ids[0]]  # type: ignore[index]
        if not rows:
            print(f"no dead letter {safe(ids[0])}", file=sys.stderr)  # type: ignore[index]
            return EXIT_FAILURE
    if args.json:
        print_json(rows[0] if action == "show" else rows)
    elif action == "show":
        print(render_table([Column("FIELD"), Column("VALUE", cut=True)],
                           [(k, json.dumps(v) if isinstance(v, dict) else v)
                            for k, v in rows[0].items()]))
    elif not rows:
        print("no dead letters")
    else:
        print(render_table([Column("ID"), Column("QUEUE"), Column("ATTEMPTS"),
                            Column("REASON", cut=True)],
                           [(r["id"], r["queue"], r["attempts"], r["reason"]) for r in rows]))
    return EXIT_OK
