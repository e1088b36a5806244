"""The Mailbox adapter for IMAP over TLS (imaplib): LOGIN or XOAUTH2.

TLS is always verified: the system's CAs, or ``PASS_DEPOSIT_NIHMS_EMAIL_CA_FILE``;
the host name is checked. imaplib's and ssl's errors become MailboxError (refused
login, a certificate that does not verify, a missing folder: an operator must act) or
MailboxUnavailable (the server cannot be reached now) here.
"""

from __future__ import annotations

import imaplib
import logging
import re
import ssl
from typing import Any

from deposit_services.nihms_mail.mailbox import Mail, Mailbox, MailboxError, MailboxUnavailable
from deposit_services.nihms_mail.settings import AUTH_XOAUTH2, MailSettings

log = logging.getLogger(__name__)

_UID = re.compile(rb"UID (\d+)")
# A NIHMS report is a few kB; a mail above this is not read (imaplib holds a fetched mail
# in memory), but logged for an operator.
MAX_MAIL_BYTES = 10_000_000


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verified TLS (certificate and host name), from the system's CAs or ``ca_file``."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise MailboxError(f"the CA file {ca_file} (PASS_DEPOSIT_NIHMS_EMAIL_CA_FILE) cannot "
                           f"be used: {exc}") from exc


class ImapMailbox(Mailbox):
    """One IMAPS connection to ``settings.folder``."""

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings
        self._imap: imaplib.IMAP4_SSL | None = None

    @property
    def where(self) -> str:
        return f"imaps://{self.settings.host}:{self.settings.port}"

    def open(self) -> None:
        s = self.settings
        context = tls_context(s.ca_file)
        try:
            self._imap = imaplib.IMAP4_SSL(s.host, s.port, ssl_context=context,
                                           timeout=s.timeout)
        except ssl.SSLCertVerificationError as exc:
            raise MailboxError(
                f"{self.where}: the server's certificate does not verify "
                f"({exc.verify_message or exc}); nothing was read. Give the CA that signed it "
                "in PASS_DEPOSIT_NIHMS_EMAIL_CA_FILE, or fix the server's certificate") from exc
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxUnavailable(f"{self.where} cannot be reached: {exc}; the mails are "
                                     "read at the next run") from exc
        try:
            self._login()
            status, data = self._imap.select(_quote(s.folder))
        except imaplib.IMAP4.abort as exc:
            self.close()
            raise MailboxUnavailable(f"{self.where}: the connection broke: {exc}") from exc
        except (OSError, imaplib.IMAP4.error) as exc:
            self.close()
            raise MailboxUnavailable(f"{self.where}: {exc}") from exc
        if status != "OK":
            self.close()
            raise MailboxError(f"{self.where}: folder {s.folder!r} cannot be opened "
                               f"({_text(data)}); check PASS_DEPOSIT_NIHMS_EMAIL_FOLDER")

    def _login(self) -> None:
        s = self.settings
        imap = self._conn()
        try:
            if s.auth == AUTH_XOAUTH2:
                token = s.token()
                blob = f"user={s.user}\x01auth=Bearer {token}\x01\x01".encode()
                imap.authenticate("XOAUTH2", lambda _challenge: blob)
            else:
                imap.login(s.user, s.password or "")
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            secret = ("PASS_DEPOSIT_NIHMS_EMAIL_PASSWORD" if s.auth != AUTH_XOAUTH2
                      else "the token (PASS_DEPOSIT_NIHMS_EMAIL_TOKEN_COMMAND / _TOKEN_FILE)")
            raise MailboxError(
                f"{self.where}: login of {s.user} refused: {exc}; nothing was read. "
                f"Check PASS_DEPOSIT_NIHMS_EMAIL_USER and {secret}") from exc

    def _conn(self) -> imaplib.IMAP4_SSL:
        if self._imap is None:
            raise MailboxError("the mailbox is not open")
        return self._imap

    def _command(self, *args: Any) -> list[Any]:
        try:
            status, data = self._conn().uid(*args)
        except imaplib.IMAP4.abort as exc:
            raise MailboxUnavailable(f"{self.where}: the connection broke: {exc}") from exc
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxUnavailable(f"{self.where}: {args[0]} failed: {exc}") from exc
        if status != "OK":
            raise MailboxError(f"{self.where}: {args[0]} refused: {_text(data)}")
        return list(data)

    def unseen(self, subject: str) -> list[str]:
        """Unseen mails with ``subject``, up to MAX_MAIL_BYTES (larger ones are logged)."""
        criteria = ("UNSEEN", "SUBJECT", _quote(subject))
        large = self._uids(*criteria, "LARGER", str(MAX_MAIL_BYTES - 1))
        if large:
            log.error("%s: mail(s) with uid %s in %s are larger than %d bytes and are not "
                      "read; look at them in the mailbox", self.where, ", ".join(large),
                      self.settings.folder, MAX_MAIL_BYTES)
        return self._uids(*criteria, "SMALLER", str(MAX_MAIL_BYTES))

    def _uids(self, *criteria: str) -> list[str]:
        data = self._command("SEARCH", None, *criteria)
        uids = b" ".join(d for d in data if isinstance(d, bytes)).split()
        return [uid.decode("ascii") for uid in sorted(uids, key=int)]

    def fetch(self, uid: str) -> Mail | None:
        data = self._command("FETCH", uid, "(BODY.PEEK[])")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2 and _UID.search(item[0]):
                return Mail(uid, bytes(item[1]))
        return None

    def mark_seen(self, uid: str) -> None:
        self._command("STORE", uid, "+FLAGS.SILENT", r"(\Seen)")

    def close(self) -> None:
        imap, self._imap = self._imap, None
        if imap is None:
            return
        try:
            imap.logout()
        except (OSError, imaplib.IMAP4.error) as exc:
            log.debug("%s: logout failed: %s", self.where, exc)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(data: object) -> str:
    if isinstance(data, list):
        return " ".join(_text(d) for d in data)
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(data)
