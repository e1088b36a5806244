"""The mail reader's settings (PASS's ``PASS_DEPOSIT_NIHMS_EMAIL_*``), from Settings."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from deposit_services.errors import ConfigurationError
from deposit_services.nihms_mail.mailbox import MailboxError
from deposit_services.settings import Settings

AUTH_LOGIN = "LOGIN"
AUTH_XOAUTH2 = "XOAUTH2"
# PASS's name of the Microsoft 365 / Exchange mode: XOAUTH2 with a token
AUTH_MODES = {"LOGIN": AUTH_LOGIN, "XOAUTH2": AUTH_XOAUTH2, "MS_EXCHANGE_OAUTH2": AUTH_XOAUTH2}
TOKEN_COMMAND_TIMEOUT = 60.0


@dataclass(frozen=True)
class MailSettings:
    """Where NIHMS's mails are and how to log in. ``senders``: NIHMS's addresses."""

    host: str
    port: int
    user: str
    senders: tuple[str, ...]
    folder: str = "INBOX"
    auth: str = AUTH_LOGIN
    password: str | None = None
    token_command: str | None = None
    token_file: str | None = None
    ca_file: str | None = None
    timeout: float = 60.0

    def __repr__(self) -> str:  # never the password or token command
        return (f"MailSettings(host={self.host!r}, port={self.port}, user={self.user!r}, "
                f"folder={self.folder!r}, auth={self.auth!r})")

    @classmethod
    def from_settings(cls, settings: Settings) -> MailSettings:
        """ConfigurationError listing what is missing (the variables to set)."""
        from deposit_services.nihms_mail.parser import addresses

        problems: list[str] = []
        if not settings.nihms_email_host:
            problems.append("PASS_DEPOSIT_NIHMS_EMAIL_HOST is not set (the IMAPS server)")
        if not settings.nihms_email_user:
            problems.append("PASS_DEPOSIT_NIHMS_EMAIL_USER is not set (the mailbox's account)")
        senders = addresses(settings.nihms_email_from or "")
        if not senders:
            problems.append("PASS_DEPOSIT_NIHMS_EMAIL_FROM is not set (NIHMS's sender "
                            "addresses, comma-separated)")
        auth = AUTH_MODES.get((settings.nihms_email_auth or AUTH_LOGIN).strip().upper())
        if auth is None:
            problems.append(f"PASS_DEPOSIT_NIHMS_EMAIL_AUTH={settings.nihms_email_auth!r}: use "
                            f"one of {', '.join(AUTH_MODES)}")
        elif auth == AUTH_LOGIN and not settings.nihms_email_password:
            problems.append("PASS_DEPOSIT_NIHMS_EMAIL_PASSWORD is not set (LOGIN needs it)")
        elif auth == AUTH_XOAUTH2 and not (settings.nihms_email_token_command
                                           or settings.nihms_email_token_file):
            problems.append("XOAUTH2 needs a token: set PASS_DEPOSIT_NIHMS_EMAIL_TOKEN_COMMAND "
                            "(prints an access token) or PASS_DEPOSIT_NIHMS_EMAIL_TOKEN_FILE")
        if problems:
            raise ConfigurationError("NIHMS mail settings: " + "; ".join(problems), problems)
        return cls(host=str(settings.nihms_email_host), port=settings.nihms_email_port,
                   user=str(settings.nihms_email_user), senders=senders,
                   folder=settings.nihms_email_folder, auth=auth or AUTH_LOGIN,
                   password=settings.nihms_email_password,
                   token_command=settings.nihms_email_token_command,
                   token_file=settings.nihms_email_token_file,
                   ca_file=settings.nihms_email_ca_file)

    def token(self) -> str:
        """The XOAUTH2 access token, from the command (its stdout) or the file, read
        afresh for each login (tokens expire). MailboxError saying why, never the token."""
        if self.token_command:
            try:
                done = subprocess.run(shlex.split(self.token_command), capture_output=True,
                                      text=True, timeout=TOKEN_COMMAND_TIMEOUT, check=False)
            except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
                raise MailboxError(f"the token command (PASS_DEPOSIT_NIHMS_EMAIL_TOKEN_COMMAND) "
                                   f"could not be run: {type(exc).__name__}") from exc
            if done.returncode != 0 or not done.stdout.strip():
                raise MailboxError("the token command (PASS_DEPOSIT_NIHMS_EMAIL_TOKEN_COMMAND) "
                                   f"exited with {done.returncode} and printed "
                                   f"{'no token' if not done.stdout.strip() else 'a token'}; "
                                   "run it by hand to see why")
            return done.stdout.strip()
        assert self.token_file is not None
        try:
            token = Path(self.token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise MailboxError(f"the token file {self.token_file} cannot be read: "
                               f"{type(exc).__name__}") from exc
        if not token:
            raise MailboxError(f"the token file {self.token_file} is empty")
        return token
