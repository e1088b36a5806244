"""NIHMS's "Bulk submission" mails: which mails they are and what they say of each package.

NIHMS writes an HTML table, one row per package; the text is in cells of class
``message`` or, in mails without the class, in each row's second cell (the first says
the kind, e.g. "Error"). Each text names the package (``Package ID=<id>``) and says:

- "... for Manuscript ID <n> was submitted successfully": NIHMS took the package and
  made manuscript <n> of it (the deposit stays SUBMITTED, with the manuscript id);
- "failed because", "was not submitted", "is corrupt", "was already used (for
  Manuscript ... submission not created)", "submitted with the following problem",
  "contains unrecognized": NIHMS refused it (REJECTED, the text is the reason).

HTML is parsed with lxml.html (no network, no entities from outside); a text that names
no package or says neither is reported in ``MailReport.unknown``, never guessed at.
"""

from __future__ import annotations

import email.policy
import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses

import lxml.html
from lxml import etree

SUBJECT_MARK = "bulk submission"

# The package id: NIHMS echoes the name we gave (letters, digits, '-', '_', '.').
_PACKAGE = r"package\s+id\s*=\s*(?P<package>[^\s,;]+?)"
SUCCESS = re.compile(_PACKAGE + r"\s+for\s+manuscript\s+id\s+(?P<manuscript>[\w.-]+)\s+"
                                r"was\s+submitted\s+successfully", re.IGNORECASE)
REJECTIONS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(_PACKAGE + tail, re.IGNORECASE) for tail in (
    r"\s+failed\s+because",
    r"\s+was\s+not\s+submitted",
    r"\s+is\s+corrupt",
    r"\s+was\s+already\s+used",
    r"\s+for\s+manuscript\b.*?\bsubmitted\s+with\s+the\s+following\s+problem",
    r"\s+contains\s+unrecognized",
))
_MENTION = re.compile(r"package\s+id\s*=", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


class Outcome(enum.Enum):
    SUBMITTED = "submitted"  # NIHMS made a manuscript of the package
    REJECTED = "rejected"  # NIHMS refused the package


@dataclass(frozen=True)
class Notice:
    """What one row of a mail says of one package."""

    package: str
    outcome: Outcome
    text: str
    manuscript: str | None = None


@dataclass(frozen=True)
class MailReport:
    """What a mail says: a notice per package row; ``unknown`` holds the texts that
    name no package or say neither outcome (an operator must read them)."""

    notices: tuple[Notice, ...] = ()
    unknown: tuple[str, ...] = field(default_factory=tuple)


class UnreadableMail(ValueError):
    """The mail has no HTML body or no rows to read."""


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def read_notice(text: str) -> Notice | None:
    """The notice one cell's text carries, or None if it says nothing we know."""
    text = normalise(text)
    found = SUCCESS.search(text)
    if found is not None:
        return Notice(found["package"], Outcome.SUBMITTED, text, found["manuscript"])
    for pattern in REJECTIONS:
        found = pattern.search(text)
        if found is not None:
            return Notice(found["package"], Outcome.REJECTED, text)
    return None


def _html_parser() -> lxml.html.HTMLParser:
    """No network, no huge trees: the body is from outside."""
    return lxml.html.HTMLParser(no_network=True, huge_tree=False, remove_comments=True)


def message_cells(html: str) -> list[str]:
    """The texts of the ``.message`` cells, else of every row's second cell."""
    try:
        document = lxml.html.document_fromstring(html, parser=_html_parser())
    except (etree.ParserError, ValueError) as exc:
        raise UnreadableMail(f"the HTML body cannot be parsed: {exc}") from exc
    cells = [c for c in document.iter() if isinstance(c.tag, str)
             and "message" in (c.get("class") or "").split()]
    if not cells:
        cells = [row[1] for row in document.iter("tr")
                 if len([c for c in row if c.tag in ("td", "th")]) >= 2
                 and row[1].tag == "td"]
    return [t for t in (normalise(c.text_content()) for c in cells) if t]


def parse_html(html: str) -> MailReport:
    """Every package notice in a mail's HTML body. UnreadableMail if it has no rows."""
    texts = message_cells(html)
    if not texts:
        raise UnreadableMail("the HTML body has no message cells (class 'message') and no "
                             "table rows with a second cell")
    notices: list[Notice] = []
    unknown: list[str] = []
    for text in texts:
        notice = read_notice(text)
        if notice is not None:
            notices.append(notice)
        elif _MENTION.search(text) or not notices:
            unknown.append(text)
    if not notices and not unknown:
        raise UnreadableMail("no row of the mail names a package")
    return MailReport(tuple(notices), tuple(unknown))


# --- the mail around it -------------------------------------------------------------------

def parse_mail(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def message_id(message: EmailMessage) -> str:
    return normalise(str(message.get("Message-ID") or "")) or "(no Message-ID)"


def senders(message: EmailMessage) -> list[str]:
    """The From addresses, lower case."""
    return [addr.lower() for _, addr in getaddresses(message.get_all("From") or []) if addr]


def is_from_nihms(message: EmailMessage, nihms: Sequence[str]) -> bool:
    """From one of NIHMS's addresses (``nihms``, lower case) with "Bulk submission" in
    the subject (also "Fwd: Bulk submission ...", as PASS accepts)."""
    subject = normalise(str(message.get("Subject") or "")).lower()
    return SUBJECT_MARK in subject and any(s in nihms for s in senders(message))


def html_body(message: EmailMessage) -> str:
    """The HTML part (preferred over plain text, as NIHMS sends both in multipart mails).
    UnreadableMail if there is none."""
    part = message.get_body(preferencelist=("html",))
    if part is None:
        raise UnreadableMail("the mail has no text/html part")
    try:
        content = part.get_content()
    except (LookupError, ValueError) as exc:  # unknown charset, broken encoding
        raise UnreadableMail(f"the HTML part cannot be decoded: {exc}") from exc
    return str(content)


def read_mail(message: EmailMessage) -> MailReport:
    return parse_html(html_body(message))


def addresses(configured: str | Iterable[str]) -> tuple[str, ...]:
    """NIHMS's sender addresses from the setting (comma-separated, as PASS's)."""
    items = configured.split(",") if isinstance(configured, str) else configured
    return tuple(a.strip().lower() for a in items if a.strip())
