"""The repository commands. ``deposit-services pause KEY [--until WHEN] [--reason TEXT]``
and ``resume KEY``: an operator holds a repository's deposits (maintenance, an outage
announced) or lets them go again; the rules are in service/health.py, here parse, run,
print. ``check-target [KEY...]``: prove without depositing that deposits could succeed
(service/preflight.py)."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from deposit_services.bootstrap import App, load_repositories_config
from deposit_services.entrypoints.command import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, bootstrap
from deposit_services.errors import RepositoryConfigError
from deposit_services.model.entities import Deposit, DepositStatus, Repository
from deposit_services.safetext import safe
from deposit_services.service import health
from deposit_services.settings import Settings
from deposit_services.store.uow import UnitOfWork, run_unit

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_until(text: str, now: datetime) -> datetime:
    """``--until``: a duration from now (``90m``, ``2h``, ``1d``) or an ISO 8601 time (no
    zone: UTC). ValueError saying what is accepted."""
    found = _DURATION.match(text)
    if found:
        return now + timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2).lower()])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--until {text!r}: give a duration (90m, 2h, 1d) or an ISO 8601 "
                         "time (2026-12-01T08:00:00Z)") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when <= now:
        raise ValueError(f"--until {text!r} is not in the future")
    return when


def cmd_pause(settings: Settings, args: argparse.Namespace) -> int:
    def pause(app: App, key: str, now: datetime) -> str:
        until = parse_until(args.until, now) if args.until else None
        state = health.operator_pause(app.database, key, now, until, args.reason)
        return (f"{health.describe(state)}; its deposits wait (RETRY) and are not "
                f"attempted; `deposit-services resume {key}` lets them go")

    return _on_repository(settings, args.key, pause)


def cmd_resume(settings: Settings, args: argparse.Namespace) -> int:
    def resume(app: App, key: str, now: datetime) -> str:
        state = health.operator_resume(app.database, key, now)

        def due_now(uow: UnitOfWork) -> int:
            """The waiting deposits of the repository are due now (the retry job's)."""
            ids = [r.id for r in uow.records.find(Repository)
                   if (found := app.repositories.find(r)) is not None and found.key == key]
            moved = 0
            for repository_id in ids:
                for deposit in uow.records.find(Deposit, repository=repository_id,
                                                deposit_status=DepositStatus.RETRY):
                    if deposit.next_attempt_at is not None and deposit.next_attempt_at > now:
                        deposit.next_attempt_at = now
                        moved += 1
            return moved

        moved = run_unit(app.database, due_now, what=f"repository {key} resume")
        return (f"{health.describe(state)}; {moved} waiting deposit(s) are due now (the "
                "retry job takes them)")

    return _on_repository(settings, args.key, resume)


def _on_repository(settings: Settings, name: str,
                   act: Callable[[App, str, datetime], str]) -> int:
    """Run ``act`` on the repositories.json entry ``name``; print what it says."""
    app = bootstrap(settings, with_broker=False, with_repositories=True)
    try:
        key = health.known_key(app.repositories, name)
        said = act(app, key, app.clock.now())
    except ValueError as exc:
        print(f"usage error: {safe(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG
    except RepositoryConfigError as exc:
        print(f"error: {safe(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        app.close()
    print(f"{safe(key)}: {safe(said)}")
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
