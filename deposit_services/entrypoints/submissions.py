"""The submission commands: ``submit`` a pass-core JSON graph, see its ``status``, build
the ``package`` a repository would get from it (a dry run)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deposit_services.bootstrap import file_sources, load_repositories_config
from deposit_services.clock import SystemClock
from deposit_services.entrypoints.command import EXIT_FAILURE, EXIT_OK, bootstrap
from deposit_services.errors import ConfigurationError, NotFound
from deposit_services.safetext import safe
from deposit_services.settings import Settings

# ``submit`` waits this long for a broker before leaving SubmissionReady in the outbox
SUBMIT_PUBLISH_TIMEOUT = 5.0


def cmd_submit(settings: Settings, args: argparse.Namespace) -> int:
    from deposit_services.service.intake import (
        SubmissionExists,
        intake_graph,
        load_submission_graph,
    )

    graph = load_submission_graph(Path(args.graph), Path(args.files_dir) if args.files_dir
                                  else None)
    app = bootstrap(settings, with_repositories=False)
    broker = app.require_broker()
    if hasattr(broker, "publish_timeout"):  # a broker that is down: do not wait 30 s
        broker.publish_timeout = min(broker.publish_timeout, SUBMIT_PUBLISH_TIMEOUT)
    try:
        intake = intake_graph(app.database, graph, settings.queue_submission,
                              replace=args.replace)
    except SubmissionExists as exc:
        print(safe(str(exc)), file=sys.stderr)
        return EXIT_FAILURE
    finally:
        app.close()
    what = "replaced" if intake.replaced else "submitted"
    sid = safe(intake.submission.id)
    if intake.announced:
        print(f"{what} {sid}")
    elif not graph.submission.submitted:
        print(f"{what} {sid}: stored, not announced (submitted is false)")
    else:
        print(f"{what} {sid}: stored; {safe(intake.waiting or '')}: the message stays in "
              "the outbox and a running worker (deposit-services listen) sends it and "
              "picks the submission up")
    return EXIT_OK


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from deposit_services.entrypoints import reports

    app = bootstrap(settings, with_broker=False)
    try:
        try:
            report = reports.status_report(app.database, args.submission)
        except NotFound as exc:
            print(f"no such submission: {safe(str(exc))}", file=sys.stderr)
            return EXIT_FAILURE
    finally:
        app.close()
    if args.json:
        reports.print_json(report)
    else:
        print(reports.status_table(report))
    return EXIT_OK


def cmd_package(settings: Settings, args: argparse.Namespace) -> int:
    from deposit_services.assemblers.base import create_assembler
    from deposit_services.model.builder import build_deposit_submission
    from deposit_services.model.entities import Repository
    from deposit_services.service.deposits import package_timestamp
    from deposit_services.service.intake import load_submission_graph

    graph = load_submission_graph(Path(args.graph), Path(args.files_dir) if args.files_dir
                                  else None)
    config = load_repositories_config(settings)
    entry = config.find(Repository(id=args.repository, repository_key=args.repository))
    if entry is None:
        raise ConfigurationError(
            f"no repository {args.repository!r} in {settings.repository_configuration} "
            f"(known: {', '.join(sorted(config.entries))})"
        )
    submission = graph.submission
    content = build_deposit_submission(submission, graph)
    out_dir = Path(args.output)
    assembler = create_assembler(entry.assembler.specification, entry.assembler.options,
                                 file_sources(settings),  # the graph's directory only
                                 bean_name=entry.assembler.bean_name,
                                 label=entry.assembler.label)
    stamp = package_timestamp(submission, SystemClock())
    package = assembler.assemble(content, out_dir, stamp)
    final = out_dir / package.name
    package.path.replace(final)
    print(f"package  {safe(str(final))}\nformat   {safe(package.specification)}\n"
          f"label    {safe(package.label)}\n"
          f"size     {package.size}\nmd5      {package.md5}\nsha256   {package.sha256}")
    return EXIT_OK
