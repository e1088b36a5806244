"""The command line: parse, configure logging, locate repositories.json, dispatch to the
command (each in an entrypoints module, with ``search`` and ``reindex`` in
search/commands.py and ``web`` in web/serve.py), exit with its code (the exit codes are
in entrypoints/command.py).

What it prints and logs may hold ids, messages and URLs from outside (a graph, a
repository's error document): every such value goes through ``safetext.safe`` (escaped,
cut, credentials masked) and every log record through ``safetext.SafeFormatter``;
``--json`` stays exact but for credentials (``redact_values``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TextIO

from deposit_services import __version__
from deposit_services.entrypoints.command import EXIT_CONFIG, EXIT_FAILURE
from deposit_services.entrypoints.configuration import (
    cmd_config_check,
    cmd_config_show,
    locate_repositories,
)
from deposit_services.entrypoints.dead_letters import cmd_dead_letters
from deposit_services.entrypoints.listen import cmd_listen
from deposit_services.entrypoints.nihms_mail import cmd_nihms_mail
from deposit_services.entrypoints.operations import cmd_refresh, cmd_retry
from deposit_services.entrypoints.repositories import cmd_check_target, cmd_pause, cmd_resume
from deposit_services.entrypoints.submissions import cmd_package, cmd_status, cmd_submit
from deposit_services.entrypoints.works_index import cmd_index_works
from deposit_services.errors import ConfigurationError, DepositServicesError
from deposit_services.observability.logs import formatter
from deposit_services.safetext import safe
from deposit_services.search.commands import cmd_reindex, cmd_search
from deposit_services.settings import load_settings
from deposit_services.web.serve import cmd_web

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"


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


def print_problems(exc: ConfigurationError) -> None:
    """A configuration error on stderr, each of its problems on a line of its own."""
    print(f"configuration error: {safe(str(exc))}", file=sys.stderr)
    if exc.problems != [str(exc)]:
        for problem in exc.problems:
            print(f"  - {safe(problem)}", file=sys.stderr)


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

    p = sub.add_parser("index-works", help="index the works of deposits made before the "
                       "duplicate check's index (pass-core deployments)")
    p.add_argument("--repository", metavar="KEY", help="only this repository (its repositoryKey)")
    p.set_defaults(func=cmd_index_works, repositories=False)

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
        print_problems(exc)
        return EXIT_CONFIG
    # short commands print their result; their INFO lines only at DEPOSIT_LOG_LEVEL=DEBUG
    quiet = getattr(args, "quiet", False) and settings.log_level.upper() == "INFO"
    configure_logging("WARNING" if quiet else settings.log_level, settings.log_format)
    try:
        settings = locate_repositories(settings, required=getattr(args, "repositories", True))
        code: int = args.func(settings, args)
    except ConfigurationError as exc:
        print_problems(exc)
        return EXIT_CONFIG
    except DepositServicesError as exc:
        print(f"error: {safe(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    return code
