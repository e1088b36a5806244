"""Health per repository: healthy, degraded, paused, kept in the worker state.

A transient transfer fault counts against its repository (``failures``: degraded); at
the repository's threshold (repositories.json ``operations.pause-after-failures``,
default ``DEPOSIT_PAUSE_AFTER_FAILURES``) it is paused for ``pause-seconds``. While it
is paused its deposits are not attempted: each goes to RETRY with the pause's end as
its next attempt time (no attempt is begun, so the retry budget is untouched). When
the pause has run out, the first deposit to come claims the probe (a compare-and-set
that moves the pause's end on, so every other deposit and replica keeps waiting) and
its worker runs check-target's checks for that repository (``preflight``): answered ->
resumed, one failure short of the threshold (so the next transient fault pauses it
again at once); not answered -> paused for another period. Where preflight has no check
for the protocol, the deposit itself is the probe.

A permanent fault never counts (it is the item's, not the repository's); a success
makes the repository healthy. An operator's pause (``deposit-services pause``) is only
lifted by ``resume`` or by its ``--until`` running out, never by a probe. Other
repositories never wait: the state is per repositories.json key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from deposit_services.clock import Clock
from deposit_services.config.repositories import RepositoriesConfig, RepositoryConfig
from deposit_services.errors import RepositoryConfigError
from deposit_services.settings import Settings
from deposit_services.store.base import RepositoryState
from deposit_services.store.uow import Database, UnitOfWork, run_unit

log = logging.getLogger(__name__)

HEALTHY, DEGRADED, PAUSED = "healthy", "degraded", "paused"
# An operator's pause without --until: its deposits look again this often (until resume).
MANUAL_RECHECK = timedelta(hours=1)
_CAS_RUNS = 5

# Why a repository does not answer (None: it answers), from check-target's checks.
Probe = Callable[[RepositoryConfig], str | None]


@dataclass(frozen=True)
class HealthPolicy:
    """Global defaults; a repository's ``operations`` section overrides them."""

    pause_after_failures: int = 5
    pause_seconds: float = 300.0
    stale_after_days: float = 14.0

    @classmethod
    def from_settings(cls, settings: Settings) -> HealthPolicy:
        return cls(settings.pause_after_failures, settings.pause_seconds,
                   settings.stale_after_days)

    def threshold(self, config: RepositoryConfig) -> int:
        return config.operations.pause_after_failures or self.pause_after_failures

    def pause_for(self, config: RepositoryConfig) -> timedelta:
        return timedelta(seconds=config.operations.pause_seconds or self.pause_seconds)

    def stale_after(self, config: RepositoryConfig) -> timedelta:
        return timedelta(days=config.operations.stale_after_days or self.stale_after_days)


@dataclass(frozen=True)
class Gate:
    """What the intent unit decided for one deposit: go (``until`` None, no probe),
    wait until ``until`` (paused: ``why``, the held deposit's message, ``waiting``), or
    probe first (this worker claimed it)."""

    until: datetime | None = None
    probe: bool = False
    why: str = ""


def change(uow: UnitOfWork, key: str,
           edit: Callable[[RepositoryState], RepositoryState | None]) -> RepositoryState:
    """Apply ``edit`` to the repository's state in this unit (a compare-and-set, read
    again and re-applied when another replica wrote first); returns the state now."""
    for _ in range(_CAS_RUNS):
        found = uow.state.repository_states([key])
        current = found[0] if found else RepositoryState(key)
        new = edit(current)
        if new is None or new == current:
            return current
        if uow.state.put_repository_state(new):
            return replace(new, version=current.version + 1)
    log.warning("repository %s: its state kept changing under us; left as it is", key)
    return current


def admit(uow: UnitOfWork, config: RepositoryConfig, policy: HealthPolicy,
          now: datetime) -> Gate:
    """The gate a deposit to ``config`` passes in its intent unit (one read)."""
    found = uow.state.repository_states([config.key])
    if not found or found[0].health != PAUSED:
        return Gate()
    state = found[0]
    if state.manual and state.paused_until is None:  # until the operator resumes it
        return Gate(until=now + MANUAL_RECHECK, why=waiting(config.key, state))
    if state.paused_until is not None and state.paused_until > now:
        return Gate(until=state.paused_until, why=waiting(config.key, state))
    if state.manual:  # the operator's --until has run out: resumed
        change(uow, config.key, lambda s: _resumed(s, now, "the operator's pause ended", 0)
               if s.health == PAUSED and s.manual else None)
        return Gate()
    until = now + policy.pause_for(config)
    claimed = replace(state, paused_until=until, probes=state.probes + 1)
    # the probe is claimed by this compare-and-set on what was read: of the workers that
    # read the same version, only the first to write probes
    if not uow.state.put_repository_state(claimed):  # another worker probes: wait for it
        found = uow.state.repository_states([config.key])
        current = found[0] if found else state
        return (Gate(until=current.paused_until, why=waiting(config.key, current))
                if current.health == PAUSED and current.paused_until else Gate())
    return Gate(until=until, probe=True, why=waiting(config.key, claimed))


def after_probe(database: Database, config: RepositoryConfig, policy: HealthPolicy,
                now: datetime, failure: str | None) -> RepositoryState:
    """Record what the probe found: resumed (``failure`` None) or paused again."""

    def record(uow: UnitOfWork) -> RepositoryState:
        if failure is None:
            # resumed one short of the threshold: the next transient fault pauses again
            return change(uow, config.key, lambda s: _resumed(
                s, now, "the probe was answered", policy.threshold(config) - 1)
                if s.health == PAUSED and not s.manual else None)
        return change(uow, config.key, lambda s: replace(
            s, reason=f"still not answering: {failure}") if s.health == PAUSED else None)

    state = run_unit(database, record, what=f"repository {config.key} probe")
    log.info("repository %s probed: %s", config.key,
             "answered; deposits resume" if failure is None else describe(state))
    return state


def note_outcome(uow: UnitOfWork, config: RepositoryConfig, policy: HealthPolicy,
                 now: datetime, transient_fault: str | None) -> RepositoryState:
    """In a deposit's outcome unit: a success (``transient_fault`` None) makes the
    repository healthy; a transient fault counts, and pauses it at the threshold."""
    if transient_fault is None:
        return change(uow, config.key, lambda s: _resumed(s, now, "a deposit went through", 0)
                      if s.health != HEALTHY and not s.manual else None)

    def count(s: RepositoryState) -> RepositoryState | None:
        if s.health == PAUSED:
            return None  # already paused: deposits in flight when it began add nothing
        failures = s.failures + 1
        if failures >= policy.threshold(config):
            log.warning("repository %s paused for %s after %d transient failures in a row: "
                        "%s", config.key, policy.pause_for(config), failures, transient_fault)
            return replace(s, health=PAUSED, failures=failures, since=now,
                           paused_until=now + policy.pause_for(config), manual=False,
                           reason=f"{failures} transient failures in a row; last: "
                                  f"{transient_fault}")
        return replace(s, health=DEGRADED, failures=failures, since=s.since or now,
                       reason=f"{failures} transient failure(s) in a row; last: "
                              f"{transient_fault}")

    return change(uow, config.key, count)


def _resumed(state: RepositoryState, now: datetime, why: str, failures: int
             ) -> RepositoryState:
    return replace(state, health=DEGRADED if failures else HEALTHY, failures=failures,
                   reason=why, since=now, paused_until=None, manual=False)


def operator_pause(database: Database, key: str, now: datetime, until: datetime | None,
                   reason: str | None) -> RepositoryState:
    """``deposit-services pause KEY``: its deposits wait until ``until`` or ``resume``."""
    why = f"paused by the operator: {reason}" if reason else "paused by the operator"
    state = run_unit(database, lambda uow: change(uow, key, lambda s: replace(
        s, health=PAUSED, manual=True, reason=why, since=now,
        paused_until=until)), what=f"repository {key} pause")
    log.warning("repository %s %s (until %s)", key, why,
                until.isoformat(timespec="seconds") if until else "resumed")
    return state


def operator_resume(database: Database, key: str, now: datetime) -> RepositoryState:
    """``deposit-services resume KEY``: healthy again; its waiting deposits are due now
    (the caller moves their next attempt time)."""
    state = run_unit(database, lambda uow: change(
        uow, key, lambda s: _resumed(s, now, "resumed by the operator", 0)),
        what=f"repository {key} resume")
    log.info("repository %s resumed by the operator", key)
    return state


def waiting(key: str, state: RepositoryState) -> str:
    """A held deposit's statusMessage: the same for the whole pause, so a long one
    rewrites and announces nothing per period. When it is tried next is the deposit's
    nextAttemptAt; why the repository is paused, and its probes, are in ``status``."""
    # an operator's reason stays as given; a probe rewrites the automatic one
    what = (state.reason or "paused by the operator") if state.manual else (
        "paused after transient failures")
    since = f" since {state.since.isoformat(timespec='seconds')}" if state.since else ""
    return (f"not attempted: repository {key} is {what}{since}; the deposit waits for "
            "it (next try: nextAttemptAt; details: `deposit-services status`)")


def describe(state: RepositoryState) -> str:
    """One line for logs, status and messages: the state, why, since and until when."""
    parts = [state.health]
    if state.reason:
        parts.append(f"({state.reason})")
    if state.since is not None:
        parts.append(f"since {state.since.isoformat(timespec='seconds')}")
    if state.health == PAUSED and state.paused_until is not None:
        word = "until" if state.manual else "next probe at"
        parts.append(f"{word} {state.paused_until.isoformat(timespec='seconds')}")
    elif state.health == PAUSED:
        parts.append("until `deposit-services resume`")
    return " ".join(parts)


def known_key(config: RepositoriesConfig, key: str) -> str:
    """The configured spelling of ``key`` (case-insensitive); RepositoryConfigError
    naming the known keys when there is none."""
    for known in config.entries:
        if known.casefold() == key.casefold():
            return known
    raise RepositoryConfigError(f"no repository {key!r} in {config.source} (known: "
                                f"{', '.join(sorted(config.entries)) or 'none'})")


def preflight_probe(config: RepositoriesConfig, clock: Clock) -> Probe:
    """check-target's checks of one repository as the probe: the first failure's
    detail, or None when every check passed (or none applies to the protocol)."""
    from deposit_services.service.preflight import FAIL, check_targets

    def probe(entry: RepositoryConfig) -> str | None:
        failed = [c for c in check_targets(config, [entry.key], clock=clock)
                  if c.status == FAIL]
        return f"{failed[0].check}: {failed[0].detail}" if failed else None

    return probe
