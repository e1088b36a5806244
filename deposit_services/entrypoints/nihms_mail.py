"""NIHMS's status mails, driven: the ``nihms-mail`` command (one pass) and the job's run.

The reader is built from the ``PASS_DEPOSIT_NIHMS_EMAIL_*`` settings. A pass that cannot
read the mailbox (login refused, server down, a certificate that does not verify) says
why in the log and ends; nothing was flagged seen, the next pass tries again, and the
daemon that runs the job stays up.
"""

from __future__ import annotations

import argparse
import logging

from deposit_services.entrypoints.command import EXIT_FAILURE, EXIT_OK, bootstrap
from deposit_services.nihms_mail.imap import ImapMailbox
from deposit_services.nihms_mail.mailbox import MailboxError, MailboxUnavailable
from deposit_services.nihms_mail.reader import NihmsMailReader, PassSummary
from deposit_services.nihms_mail.settings import MailSettings
from deposit_services.safetext import safe
from deposit_services.service.context import ServiceContext
from deposit_services.settings import Settings

log = logging.getLogger(__name__)

JOB = "nihms-mail"


def mail_enabled(settings: Settings) -> bool:
    """The job runs when a mail host is set and PASS_DEPOSIT_NIHMS_EMAIL_ENABLED is not false."""
    return bool(settings.nihms_email_host) and settings.nihms_email_enabled


def build_reader(ctx: ServiceContext, settings: Settings) -> NihmsMailReader:
    """ConfigurationError naming the missing settings."""
    mail = MailSettings.from_settings(settings)
    return NihmsMailReader(ctx, mail.senders, lambda: ImapMailbox(mail))


def run_pass(reader: NihmsMailReader) -> PassSummary | None:
    """One pass; a mailbox fault is logged (what to do) and gives None, never raises."""
    try:
        return reader.run_once()
    except MailboxUnavailable as exc:
        log.warning("NIHMS mail: %s; nothing was flagged seen", exc)
    except MailboxError as exc:
        log.error("NIHMS mail: %s", exc)
    return None


def cmd_nihms_mail(settings: Settings, args: argparse.Namespace) -> int:
    """``deposit-services nihms-mail``: read the mailbox once (exit 1 if it could not)."""
    mail = MailSettings.from_settings(settings)  # before any connection: exit 2 on problems
    app = bootstrap(settings, with_repositories=False)
    try:
        reader = NihmsMailReader(app.context(), mail.senders, lambda: ImapMailbox(mail))
        summary = run_pass(reader)
    finally:
        app.close()
    if summary is None:
        return EXIT_FAILURE
    print(safe(summary.line()))
    for deposit_id, now in summary.changed:
        print(f"  deposit {safe(deposit_id)}: {safe(now)}")
    for message_id in summary.left:
        print(f"  left unseen for an operator: {safe(message_id)} (see the log)")
    return EXIT_OK
