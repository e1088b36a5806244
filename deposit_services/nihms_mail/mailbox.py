"""The mailbox port: the unseen mails of one folder, each flagged \\Seen when done.

``mails`` yields unseen mails without marking them (IMAP ``BODY.PEEK``); ``mark_seen``
flags one, and is called only after what the mail says is committed, so a worker that
dies in between reads the mail again (applying it twice changes nothing).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

from deposit_services.errors import DepositServicesError, Transient


class MailboxError(DepositServicesError):
    """The mailbox refused us: login refused, a certificate that does not verify, a
    folder that does not exist. Retrying will not help until an operator fixes it.
    (Lives here until errors.py grows a branch for status sources.)"""


class MailboxUnavailable(MailboxError, Transient):
    """The mail server cannot be reached now (refused, timed out, dropped)."""


@dataclass(frozen=True)
class Mail:
    """One mail: its id in the folder (IMAP UID) and its bytes."""

    uid: str
    raw: bytes


class Mailbox(ABC):
    """One folder of one account, opened for a run (a context manager)."""

    @abstractmethod
    def open(self) -> None:
        """Connect, log in, select the folder. MailboxError / MailboxUnavailable."""

    @abstractmethod
    def unseen(self, subject: str) -> list[str]:
        """The uids of the unseen mails whose subject holds ``subject``, oldest first."""

    @abstractmethod
    def fetch(self, uid: str) -> Mail | None:
        """The mail, not marked seen; None if it is gone."""

    @abstractmethod
    def mark_seen(self, uid: str) -> None:
        """Flag the mail \\Seen."""

    @abstractmethod
    def close(self) -> None:
        """Log out; never raises."""

    def mails(self, subject: str) -> Iterator[Mail]:
        for uid in self.unseen(subject):
            mail = self.fetch(uid)
            if mail is not None:
                yield mail

    def __enter__(self) -> Mailbox:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
