"""The NIHMS mail reader: one pass over the folder's unseen "Bulk submission" mails.

Each mail from NIHMS's sender is parsed and recorded in one unit of work
(``applier.record_mail``), then flagged \\Seen; a mail that names a package no deposit
has, or says something we cannot read, is logged with its Message-ID and left unseen
for an operator (it is read again at each run and changes nothing known twice). A mail
with "Bulk submission" in the subject from another sender is not ours: left alone.
Mailbox faults (login refused, server down, certificate) end the pass with
MailboxError; what was recorded and flagged before stays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from deposit_services.nihms_mail.applier import MailOutcome, record_mail
from deposit_services.nihms_mail.mailbox import Mail, Mailbox
from deposit_services.nihms_mail.parser import (
    SUBJECT_MARK,
    UnreadableMail,
    is_from_nihms,
    message_id,
    parse_mail,
    read_mail,
)
from deposit_services.service.context import ServiceContext

log = logging.getLogger(__name__)

SUBJECT = "Bulk submission"


@dataclass
class PassSummary:
    """What one pass did."""

    read: int = 0
    recorded: int = 0  # mails recorded and flagged seen
    left: list[str] = field(default_factory=list)  # Message-IDs left for an operator
    changed: list[tuple[str, str]] = field(default_factory=list)
    not_ours: int = 0

    def line(self) -> str:
        return (f"{self.read} mail(s) read, {self.recorded} recorded and flagged seen, "
                f"{len(self.changed)} deposit(s) changed, {len(self.left)} left for an "
                f"operator, {self.not_ours} from other senders left alone")


class NihmsMailReader:
    """Reads NIHMS's mails with a fresh Mailbox (``open_mailbox``) per pass."""

    def __init__(self, ctx: ServiceContext, senders: tuple[str, ...],
                 open_mailbox: Callable[[], Mailbox]) -> None:
        self.ctx = ctx
        self.senders = senders
        self.open_mailbox = open_mailbox
        self._reported: set[str] = set()  # mails already logged as left (log once each)

    def run_once(self) -> PassSummary:
        summary = PassSummary()
        with self.open_mailbox() as mailbox:
            for mail in mailbox.mails(SUBJECT):
                summary.read += 1
                self._one(mailbox, mail, summary)
        log.info("NIHMS mail: %s", summary.line())
        return summary

    def _one(self, mailbox: Mailbox, mail: Mail, summary: PassSummary) -> None:
        try:
            message = parse_mail(mail.raw)
            mid = message_id(message)
            ours = is_from_nihms(message, self.senders)
        except Exception as exc:  # noqa: BLE001 - bytes from outside: never a crash
            self._leave(summary, f"(uid {mail.uid})", f"its headers cannot be read: {exc}")
            return
        if not ours:
            summary.not_ours += 1
            log.debug("mail %s (uid %s) is not from NIHMS's sender or has no %r in its "
                      "subject; left alone", mid, mail.uid, SUBJECT_MARK)
            return
        try:
            report = read_mail(message)
        except UnreadableMail as exc:
            self._leave(summary, mid, f"it cannot be read: {exc}")
            return
        except Exception as exc:  # one odd mail must not block the others
            log.debug("parsing mail %s failed", mid, exc_info=True)
            self._leave(summary, mid, f"it cannot be read ({type(exc).__name__}: {exc})")
            return
        outcome = record_mail(self.ctx, report, mid)
        for deposit_id, now in outcome.changed:
            log.info("deposit %s: %s (NIHMS mail %s)", deposit_id, now, mid)
        summary.changed += outcome.changed
        if not outcome.complete:
            self._leave(summary, mid, _why(outcome))
            return
        mailbox.mark_seen(mail.uid)
        summary.recorded += 1

    def _leave(self, summary: PassSummary, mid: str, why: str) -> None:
        summary.left.append(mid)
        level = logging.DEBUG if mid in self._reported else logging.ERROR
        self._reported.add(mid)
        log.log(level, "NIHMS mail %s left unseen for an operator: %s; read it in the "
                "mailbox, record what it says (or fix the deposit it names), then flag it "
                "read", mid, why)


def _why(outcome: MailOutcome) -> str:
    parts = []
    if outcome.unknown:
        parts.append("no deposit has package id(s) " + ", ".join(outcome.unknown)
                     + " (not sent by this system, or its deposit was removed)")
    if outcome.unread:
        parts.append("text(s) that say nothing known: "
                     + " | ".join(t[:200] for t in outcome.unread))
    if outcome.changed:
        parts.append(f"the {len(outcome.changed)} other package(s) in it were recorded")
    return "; ".join(parts)
