"""The command line: parse, configure logging, bootstrap, call the service layer, exit.

Exit codes: EXIT_OK (0) success; EXIT_FAILURE (1) the command ran but something it did
failed; EXIT_CONFIG (2) bad usage, settings or repositories.json; EXIT_ABORTED (3)
``listen`` stopped by a second SIGTERM/SIGINT while transfers were in flight (they are
resumed, reconciled, on the next start).

What it prints and logs may hold ids, messages and URLs from outside (a graph, a
repository's error document): every such value goes through ``safetext.safe`` (escaped,
cut, credentials masked) and every log record through ``safetext.SafeFormatter``;
``--json`` stays exact but for credentials (``redact_values``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

import deposit_services
from deposit_services import __version__
from deposit_services import bootstrap as _bootstrap
from deposit_services.bootstrap import file_sources, load_repositories_config
from deposit_services.clock import SystemClock
from deposit_services.errors import ConfigurationError, DepositServicesError, NotFound
from deposit_services.observability.logs import formatter, protect, secret_values
from deposit_services.safetext import safe
from deposit_services.settings import DEFAULT_REPOSITORY_CONFIGURATION, Settings, load_settings

if TYPE_CHECKING:
    from deposit_services.bootstrap import App
    from deposit_services.service.lifecycle import Outcome

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_ABORTED = 3

# ``submit`` waits this long for a broker before leaving SubmissionReady in the outbox
SUBMIT_PUBLISH_TIMEOUT = 5.0
REPOSITORY_CONFIGURATION_VAR = "PASS_DEPOSIT_REPOSITORY_CONFIGURATION"
# The installed package's repository root (a checkout, or an editable install)
PACKAGE_ROOT = Path(deposit_services.__file__).resolve().parent.parent

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"

log = logging.getLogger("deposit_services.cli")


class _LogHandler(logging.StreamHandler[TextIO]):
    """Our stderr handler (a class of its own so that a second set-up replaces it)."""


def configure_logging(level: str, fmt: str = "text") -> None:
    """One stderr handler on the root logger whose SafeFormatter escapes, cuts and
    redacts every record's arguments (``fmt`` json: one JSON object a line), and masks
    the configuration's secret values: the one place log output is made safe, for our
    loggers and the libraries' alike."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _LogHandler)]:
        root.removeHandler(old)
    handler = _LogHandler(sys.stderr)
    handler.setFormatter(formatter(fmt, LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for noisy in ("stomp.py", "paramiko", "urllib3", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def bootstrap(settings: Settings, with_broker: bool = True,
              with_repositories: bool | None = None) -> App:
    """``bootstrap.bootstrap`` for a command: one without a broker is read-only and
    reads no repositories.json (``status``), unless told otherwise."""
    app = _bootstrap.bootstrap(settings, with_broker=with_broker,
                               with_repositories=(with_broker if with_repositories is None
                                                  else with_repositories))
    protect(secret_values(settings, app.repositories))  # masked in every log line
    return app


def repository_configuration_candidates(settings: Settings) -> list[Path]:
    """Where repositories.json is looked for when PASS_DEPOSIT_REPOSITORY_CONFIGURATION
    is not set: ``config/repositories.json`` in the current directory, then
    ``repositories.json`` in the data directory, then ``config/repositories.json`` in
    the installed package's repository root."""
    return [Path.cwd() / DEFAULT_REPOSITORY_CONFIGURATION,
            settings.data_dir / "repositories.json",
            PACKAGE_ROOT / DEFAULT_REPOSITORY_CONFIGURATION]


def locate_repositories(settings: Settings, required: bool) -> Settings:
    """Settings whose repositories.json default (a relative path) is resolved to the
    first candidate that exists, so that commands work from any directory. Not found
    and ``required``: a ConfigurationError naming every place looked at."""
    if (os.environ.get(REPOSITORY_CONFIGURATION_VAR)
            or settings.repository_configuration != DEFAULT_REPOSITORY_CONFIGURATION):
        return settings
    candidates = repository_configuration_candidates(settings)
    for candidate in candidates:
        if candidate.is_file():
            return replace(settings, repository_configuration=str(candidate))
    if required:
        raise ConfigurationError(
            f"no repositories.json found; looked at {', '.join(map(str, candidates))}: set "
            f"{REPOSITORY_CONFIGURATION_VAR} to its path or URL")
    return settings


def _print_problems(exc: ConfigurationError) -> None:
    print(f"configuration error: {safe(str(exc))}", file=sys.stderr)
    if exc.problems != [str(exc)]:
        for problem in exc.problems:
            print(f"  - {safe(problem)}", file=sys.stderr)


def _shown(outcome: Outcome) -> Outcome:
    """An Outcome whose texts are ``safe`` to print (the batch commands' table and
    progress lines show them)."""
    return replace(outcome, deposit_id=safe(outcome.deposit_id), status=safe(outcome.status),
                   message=safe(outcome.message))


# --- commands ------------------------------------------------------------------------


def cmd_listen(settings: Settings, args: argparse.Namespace) -> int:
    from deposit_services.entrypoints.progress import say_what_listen_waits_for
    from deposit_services.entrypoints.worker import MessageHandler, Worker
    from deposit_services.observability.ops import Operations

    log.info("deposit-services %s; settings (secrets masked): %s", __version__,
             " ".join(f"{name}={value}" for name, value in settings.masked().items()))
    app = bootstrap(settings)
    try:
        app.database.check()
    except BaseException:
        app.close()
        raise
    stop = threading.Event()
    from deposit_services.web.app import create_app

    # metrics; with DEPOSIT_HTTP_PORT /metrics, /readyz, and the dashboard on other paths
    ops = Operations(app, fallback=create_app(app)).start()
    if app.search is not None:
        app.search.start()  # writes to the index what this and other processes commit
    ctx = replace(app.context(), metrics=ops.metrics)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            _abort(name)
        stop.set()
        # the store is read on a thread of its own, never inside the handler
        threading.Thread(target=say_what_listen_waits_for, args=(ctx, name, EXIT_ABORTED),
                         daemon=True, name="stopping").start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    jobs = None
    try:
        if settings.jobs_disabled:
            log.info("scheduled jobs disabled (PASS_DEPOSIT_JOBS_DISABLED)")
        else:
            from deposit_services.entrypoints.jobs import Jobs

            jobs = Jobs(ctx, settings)
            # the message threads keep their own lease owner; a RETRY they record wakes
            # the retry job at its time
            ctx = replace(ctx, retry_scheduled=jobs.wake_retry)
            jobs.start()
        handler = MessageHandler(ctx, ops.broker,
                                 touch_interval=max(settings.lease_seconds / 3, 0.2))
        worker = Worker(handler, [settings.queue_submission, settings.queue_deposit],
                        settings.workers_concurrency)
        worker.run(stop)
    finally:
        if jobs is not None:
            jobs.shutdown()
        ops.close()
        app.close()
    return EXIT_OK


def _abort(signal_name: str) -> None:
    """Second signal: exit now. Safe: every transfer writes to a temporary name and its
    intent is in the attempt log, so the next start reconciles it (and leases run out)."""
    log.warning("%s received again: aborting the transfers in flight and exiting (%d); "
                "they are reconciled and resumed on the next start", signal_name,
                EXIT_ABORTED)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(EXIT_ABORTED)


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
    from deposit_services.entrypoints.reports import print_json, status_report

    app = bootstrap(settings, with_broker=False)
    try:
        try:
            report = status_report(app.database, args.submission)
        except NotFound as exc:
            print(f"no such submission: {safe(str(exc))}", file=sys.stderr)
            return EXIT_FAILURE
    finally:
        app.close()
    if args.json:
        print_json(report)
    else:
        print(_status_table(report))
    return EXIT_OK


def _status_table(report: list[dict[str, Any]]) -> str:
    """One row per submission and per deposit (reports.status_table)."""
    from deposit_services.entrypoints.reports import status_table

    return status_table(report)


def cmd_config_check(settings: Settings, args: argparse.Namespace) -> int:
    """Load repositories.json (every problem listed at once) and say, per repository,
    which package format it gets and why (PASS's beanName or the specification)."""
    config = load_repositories_config(settings)  # raises ConfigurationError listing problems
    print(f"{safe(settings.repository_configuration)}: {len(config.entries)} repositories, OK")
    for key, entry in config.entries.items():
        protocol = entry.protocol_binding.get("protocol", "")
        print(f"  {safe(key)}: {safe(entry.assembler.choice.describe())} over {safe(protocol)}")
    if settings.pass_core_url:
        from deposit_services.store.passcore.client import PassCoreClient

        client = PassCoreClient(settings.pass_core_url, settings.pass_core_user,
                                settings.pass_core_password, user_agent=settings.http_agent)
        try:
            client.check()  # refused credentials: ConfigurationError (exit 2)
        finally:
            client.close()
        print(f"pass-core {safe(settings.pass_core_url)}: credentials accepted")
    return EXIT_OK


def cmd_config_show(settings: Settings, args: argparse.Namespace) -> int:
    """The effective settings, secrets masked (reads neither repositories.json nor the
    store)."""
    from deposit_services.entrypoints.reports import Column, print_json, render_table

    shown = settings.masked()
    if getattr(args, "json", False):
        print_json(shown)
    else:
        print(render_table([Column("SETTING"), Column("VALUE", cut=True)],
                           list(shown.items())))
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


def cmd_retry(settings: Settings, args: argparse.Namespace) -> int:
    return _deposit_batch(settings, args, "retry")


def cmd_pause(settings: Settings, args: argparse.Namespace) -> int:
    from deposit_services.entrypoints.repositories import cmd_pause as run

    return run(settings, args)


def cmd_resume(settings: Settings, args: argparse.Namespace) -> int:
    from deposit_services.entrypoints.repositories import cmd_resume as run

    return run(settings, args)


def cmd_refresh(settings: Settings, args: argparse.Namespace) -> int:
    return _deposit_batch(settings, args, "refresh")


def _deposit_batch(settings: Settings, args: argparse.Namespace, command: str) -> int:
    """``retry`` / ``refresh``: the work is in service.operations; here parse and show."""
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
                                                                    _shown(outcome)))
    finally:
        app.close()
    if args.json:
        print_json(summary_data(outcomes, command))
    else:
        print(summary_table([_shown(o) for o in outcomes], command))
    return EXIT_OK if all(o.ok for o in outcomes) else EXIT_FAILURE


def cmd_dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    """List, show, requeue or purge the dead letters of the submission and deposit
    queues, whichever broker holds them (the Broker port's dead-letter operations)."""
    from deposit_services.entrypoints.reports import Column, print_json, render_table

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


def cmd_check_target(settings: Settings, args: argparse.Namespace) -> int:
    """Prove, without depositing, that deposits to the named repositories (all when none
    are named) could succeed: one line per repository and check (service.preflight)."""
    from deposit_services.service.preflight import check_targets

    config = load_repositories_config(settings)
    checks = check_targets(config, args.keys, settings.http_agent)
    if args.json:
        from deposit_services.entrypoints.reports import print_json

        print_json([{"repository": c.repository, "check": c.check, "status": c.status,
                     "detail": c.detail} for c in checks])
    else:
        for c in checks:
            print(f"{safe(c.repository)}  {c.check:<7} {c.status.upper():<4}  "
                  f"{safe(c.detail, 2000)}")
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAILURE


def cmd_reindex(settings: Settings, args: argparse.Namespace) -> int:
    from deposit_services.search.commands import cmd_reindex as run

    return run(settings, args)


def cmd_search(settings: Settings, args: argparse.Namespace) -> int:
    from deposit_services.search.commands import cmd_search as run

    return run(settings, args)


def cmd_web(settings: Settings, args: argparse.Namespace) -> int:
    from deposit_services.web.serve import cmd_web as run

    return run(settings, args)


def cmd_nihms_mail(settings: Settings, args: argparse.Namespace) -> int:
    from deposit_services.entrypoints.nihms_mail import cmd_nihms_mail as run

    return run(settings, args)


# --- parsing -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deposit-services",
        description="Deposit research outputs from PASS into repositories.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("listen", help="run the daemon until SIGTERM/SIGINT")
    p.set_defaults(func=cmd_listen)

    p = sub.add_parser("submit", help="load a pass-core JSON graph and announce its submission")
    p.add_argument("graph", help="pass-core JSON graph (a list of entities)")
    p.add_argument("--files-dir", help="base directory for relative/classpath file URIs "
                                       "(default: the graph's directory)")
    p.add_argument("--replace", action="store_true",
                   help="replace the graph of a NOT_STARTED or FAILED submission (nothing "
                        "deposited yet), e.g. after adding its manuscript")
    p.set_defaults(func=cmd_submit, repositories=False, quiet=True)

    p = sub.add_parser("status", help="submissions, their deposits and copies")
    p.add_argument("submission", nargs="?", help="one submission id (default: all)")
    p.add_argument("--json", action="store_true", help="JSON for scripts")
    p.set_defaults(func=cmd_status, repositories=False, quiet=True)

    p = sub.add_parser("package", help="build the package a repository would get (dry run)")
    p.add_argument("graph", help="pass-core JSON graph")
    p.add_argument("--repository", required=True, help="repositories.json key")
    p.add_argument("-o", "--output", default=".", help="directory for the package (default .)")
    p.add_argument("--files-dir", help="base directory for relative/classpath file URIs")
    p.set_defaults(func=cmd_package)

    p = sub.add_parser("retry", help="transfer FAILED and RETRY deposits again")
    p.add_argument("--uri", action="extend", nargs="+", metavar="URI",
                   help="a deposit id or URL ending in it (repeatable; default: every FAILED "
                        "and RETRY deposit)")
    p.add_argument("--force", action="store_true",
                   help="send even a duplicate (its DOI already in the repository)")
    p.add_argument("--json", action="store_true", help="the summary as JSON for scripts")
    p.set_defaults(func=cmd_retry)

    p = sub.add_parser("pause", help="hold a repository's deposits (not attempted)")
    p.add_argument("key", help="repositories.json key")
    p.add_argument("--until", help="a duration (90m, 2h, 1d) or an ISO time; default: "
                                   "until resume")
    p.add_argument("--reason", help="why, shown in status and the deposits' messages")
    p.set_defaults(func=cmd_pause, quiet=True)

    p = sub.add_parser("resume", help="let a paused repository's deposits go again")
    p.add_argument("key", help="repositories.json key")
    p.set_defaults(func=cmd_resume, quiet=True)

    p = sub.add_parser("refresh", help="check the repository status of SUBMITTED deposits")
    p.add_argument("--uri", action="extend", nargs="+", metavar="URI",
                   help="a deposit id or URL ending in it (repeatable; default: every "
                        "SUBMITTED deposit)")
    p.add_argument("--json", action="store_true", help="the summary as JSON for scripts")
    p.set_defaults(func=cmd_refresh)

    p = sub.add_parser("dead-letters", help="list, show, requeue or purge dead letters")
    p.add_argument("action", nargs="?", choices=("list", "show", "requeue", "purge"),
                   help="list (default), show ID, requeue ID... | --all, purge ID... | --all")
    p.add_argument("ids", nargs="*", metavar="ID", help="dead-letter ids (as listed)")
    p.add_argument("--all", action="store_true", help="requeue or purge every dead letter")
    p.add_argument("--json", action="store_true", help="JSON for scripts")
    p.set_defaults(func=cmd_dead_letters, repositories=False, quiet=True)

    p = sub.add_parser("check-target",
                       help="prove without depositing that deposits could succeed")
    p.add_argument("keys", nargs="*", metavar="KEY",
                   help="repositories.json keys (default: every repository)")
    p.add_argument("--json", action="store_true", help="JSON for scripts")
    p.set_defaults(func=cmd_check_target, quiet=True)

    p = sub.add_parser("nihms-mail", help="read NIHMS's Bulk submission mails once and "
                                          "record what they say (PASS_DEPOSIT_NIHMS_EMAIL_*)")
    p.set_defaults(func=cmd_nihms_mail, repositories=False)

    p = sub.add_parser("reindex", help="rebuild the search index from the records")
    p.add_argument("--index", help="write into this index instead (default DEPOSIT_SEARCH_INDEX)")
    p.set_defaults(func=cmd_reindex, repositories=False)

    p = sub.add_parser("search", help="find submissions and deposits (query-string syntax)")
    p.add_argument("query", nargs="*", help='e.g. depositStatus:FAILED, doi:"10.1/x", refused')
    p.add_argument("--limit", type=int, default=50, help="show at most this many (default 50)")
    p.add_argument("--json", action="store_true", help="JSON for scripts")
    p.set_defaults(func=cmd_search, repositories=False, quiet=True)

    p = sub.add_parser("web", help="serve the operator's dashboard over HTTP")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any free)")
    p.add_argument("--hash-password", action="store_true",
                   help="read a password on stdin, print its DEPOSIT_WEB_PASSWORD hash, exit")
    p.set_defaults(func=cmd_web)

    config = sub.add_parser("config", help="check or show the configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    p = config_sub.add_parser("check", help="validate repositories.json (exit 2 on problems)")
    p.set_defaults(func=cmd_config_check)
    p = config_sub.add_parser("show", help="print the effective settings, secrets masked")
    p.add_argument("--json", action="store_true", help="JSON for scripts")
    p.set_defaults(func=cmd_config_show, repositories=False, quiet=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        _print_problems(exc)
        return EXIT_CONFIG
    # short commands print their result; their INFO lines only at DEPOSIT_LOG_LEVEL=DEBUG
    quiet = getattr(args, "quiet", False) and settings.log_level.upper() == "INFO"
    configure_logging("WARNING" if quiet else settings.log_level, settings.log_format)
    try:
        settings = locate_repositories(settings, required=getattr(args, "repositories", True))
        code: int = args.func(settings, args)
    except ConfigurationError as exc:
        _print_problems(exc)
        return EXIT_CONFIG
    except DepositServicesError as exc:
        print(f"error: {safe(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    return code
