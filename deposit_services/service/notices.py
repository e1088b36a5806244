"""Notices to a repository's contacts: a digest of its failed, rejected and stale
deposits, by email, at most once per period.

Optional per repository (repositories.json ``operations.notices``: ``to`` addresses,
``every-hours``, default 24). The notices job (one replica per cycle) takes each
repository whose period has passed since its last notice (``RepositoryState.noticed_at``)
and lists its deposits that are FAILED, REJECTED, or SUBMITTED with a STALLED copy and
were not in the last notice (``RepositoryState.noticed``: so "since the last notice"
holds whatever the deposits' own dates). Nothing new: no mail.

Once per period, across replicas: the send is claimed first, a compare-and-set of
``noticed_at`` in the worker state, so a second replica (or a second run) finds the
period taken. A failed send gives the claim back, so the next run sends it again (it is
retried until the server takes it); what was reported is recorded only after the
server took it. Deposits are only read: a notice never changes one.

SMTP (``DEPOSIT_SMTP_*``): ``starttls`` (default) or ``ssl`` with a verified TLS
context (the system's CAs, or ``DEPOSIT_SMTP_CA_FILE``), or ``none`` for a relay on a
trusted network; login when a user is set.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.message import EmailMessage

from deposit_services.config.repositories import RepositoriesConfig, RepositoryConfig
from deposit_services.errors import ConfigurationError
from deposit_services.model.entities import (
    CopyStatus,
    Deposit,
    DepositStatus,
    Repository,
    RepositoryCopy,
)
from deposit_services.safetext import safe
from deposit_services.service.health import change
from deposit_services.settings import Settings
from deposit_services.store.base import RepositoryState
from deposit_services.store.uow import Database, UnitOfWork, run_unit

log = logging.getLogger(__name__)

SMTP_TIMEOUT_S = 30.0
STALLED = "STALLED"

Send = Callable[[EmailMessage], None]


@dataclass(frozen=True)
class Problem:
    """One deposit the contacts hear about."""

    deposit: Deposit
    status: str  # FAILED, REJECTED or STALLED

    @property
    def mark(self) -> str:
        return f"{self.deposit.id}:{self.status}"


class SmtpSender:
    """Sends one message per SMTP session, as the settings say (module doc)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.smtp_host:
            raise ConfigurationError("repositories.json asks for notices but DEPOSIT_SMTP_HOST "
                                     "is not set; set it (and DEPOSIT_SMTP_SENDER)")
        self.settings = settings

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.smtp_ca_file)

    def __call__(self, message: EmailMessage) -> None:
        s = self.settings
        host = s.smtp_host or ""
        client: smtplib.SMTP
        if s.smtp_tls == "ssl":
            client = smtplib.SMTP_SSL(host, s.smtp_port, timeout=SMTP_TIMEOUT_S,
                                      context=self._context())
        else:
            client = smtplib.SMTP(host, s.smtp_port, timeout=SMTP_TIMEOUT_S)
        with client:
            if s.smtp_tls == "starttls":
                client.starttls(context=self._context())
            if s.smtp_user:
                client.login(s.smtp_user, s.smtp_password or "")
            client.send_message(message)


def problems(uow: UnitOfWork, config: RepositoriesConfig, key: str) -> list[Problem]:
    """The repository's FAILED, REJECTED and stale (copy STALLED) deposits, by id."""
    ids = [r.id for r in uow.records.find(Repository)
           if (entry := config.find(r)) is not None and entry.key == key]
    found: list[Problem] = []
    for repository_id in ids:
        for status in (DepositStatus.FAILED, DepositStatus.REJECTED):
            found += [Problem(d, status.value) for d in uow.records.find(
                Deposit, repository=repository_id, deposit_status=status)]
        submitted = uow.records.find(Deposit, repository=repository_id,
                                     deposit_status=DepositStatus.SUBMITTED)
        stalled = {c.id for c in uow.records.get_many(
            RepositoryCopy, [d.repository_copy for d in submitted if d.repository_copy])
            if c.copy_status is CopyStatus.STALLED}
        found += [Problem(d, STALLED) for d in submitted if d.repository_copy in stalled]
    return sorted(found, key=lambda p: p.deposit.id)


def digest(key: str, entry: RepositoryConfig, new: Sequence[Problem], sender: str,
           since: datetime | None) -> EmailMessage:
    """The mail: one paragraph per deposit (status, submission, message, what to do)."""
    counts = {s: sum(p.status == s for p in new) for s in ("FAILED", "REJECTED", STALLED)}
    summary = ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n)
    message = EmailMessage()
    message["Subject"] = f"[deposit-services] {key}: {summary}"
    message["From"] = sender
    message["To"] = ", ".join(entry.operations.notices.to if entry.operations.notices else [])
    when = f" since the last notice ({since.isoformat(timespec='seconds')})" if since else ""
    lines = [f"Deposits to repository {key} that need attention{when}:", ""]
    for problem in new:
        deposit = problem.deposit
        lines += [f"- deposit {deposit.id} ({problem.status}), submission {deposit.submission}",
                  f"  {safe(deposit.status_message or '(no message)', 2000)}"]
        if problem.status == "FAILED":
            lines.append(f"  to try again: deposit-services retry --uri {deposit.id}")
        lines.append("")
    lines.append("This digest is sent at most every "
                 f"{entry.operations.notices.every_hours if entry.operations.notices else 0:g}"
                 " hours; deposits already reported are not repeated.")
    message.set_content("\n".join(lines))
    return message


def send_notices(database: Database, config: RepositoriesConfig, send: Send, sender: str,
                 now: datetime) -> list[str]:
    """One digest per repository whose period has passed and that has something new;
    returns the keys notified. A failed send is logged and retried on the next run."""
    sent: list[str] = []
    for key, entry in sorted(config.entries.items()):
        notices = entry.operations.notices
        if notices is None:
            continue
        period = timedelta(hours=notices.every_hours)
        try:
            if _notify(database, config, key, entry, period, send, sender, now):
                sent.append(key)
        except Exception as exc:  # noqa: BLE001 - a notice never stops the others
            log.warning("notice to %s's contacts not sent (%s); it is tried again on the "
                        "next run", key, exc)
    return sent


def _notify(database: Database, config: RepositoriesConfig, key: str,
            entry: RepositoryConfig, period: timedelta, send: Send, sender: str,
            now: datetime) -> bool:
    def claim(uow: UnitOfWork) -> tuple[RepositoryState, list[Problem], list[str]] | None:
        found = uow.state.repository_states([key])
        state = found[0] if found else RepositoryState(key)
        if state.noticed_at is not None and now - state.noticed_at < period:
            return None  # this period's notice has gone
        every = problems(uow, config, key)
        new = [p for p in every if p.mark not in set(state.noticed)]
        if not new:
            return None
        # the claim is this compare-and-set on what was read: a replica that read the
        # same version and wrote first (even at the same instant) wins, this one sends none
        if not uow.state.put_repository_state(replace(state, noticed_at=now)):
            return None  # another replica claimed it first
        return state, new, [p.mark for p in every]

    claimed = run_unit(database, claim, what=f"repository {key} notice")
    if claimed is None:
        return False
    before, new, marks = claimed
    try:
        send(digest(key, entry, new, sender, before.noticed_at))
    except Exception:
        run_unit(database, lambda uow: change(uow, key, lambda s: replace(
            s, noticed_at=before.noticed_at) if s.noticed_at == now else None),
            what=f"repository {key} notice given back")
        raise
    # what is a problem now, reported or before: a deposit that recovers and fails
    # again is reported again, and the list stays as short as the problems
    run_unit(database, lambda uow: change(uow, key, lambda s: replace(
        s, noticed=tuple(sorted(marks)))), what=f"repository {key} noticed")
    log.info("notice sent to %s's contacts (%s): %d deposit(s)", key,
             ", ".join(entry.operations.notices.to if entry.operations.notices else []),
             len(new))
    return True
