"""A package file's MIME type: what its bytes say, weighed against what the graph declares.

PASS sniffs each file's content (Apache Tika), so a PDF declared ``text/plain`` is sent
as ``application/pdf``. We sniff the first bytes too, kept while the file is packed (the
file is not read again, memory does not grow with its size), with ``filetype`` from
PyPI: pure Python, no libmagic, and it tells OOXML/ODF documents from plain zips
(puremagic, the other pure-Python sniffer, calls every zip a .docx). The sniffed type
wins when the declared one is missing, generic (``application/octet-stream``) or
contradicts it; a declared type the bytes cannot contradict (a CSV, a docx declared as
such and sniffed as a zip) is kept.
"""

from __future__ import annotations

import logging
import mimetypes

import filetype

from deposit_services.model.submission import DepositFile

log = logging.getLogger(__name__)

GENERIC = frozenset({"application/octet-stream", "binary/octet-stream",
                     "application/unknown", "application/binary", "unknown/unknown"})
# Python's built-in table only (not /etc/mime.types), so a package is the same everywhere.
_MIME = mimetypes.MimeTypes(filenames=())
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg",
            "application/x-pdf": "application/pdf", "text/xml": "application/xml",
            "application/x-gzip": "application/gzip", "audio/x-wav": "audio/wav",
            "application/x-zip-compressed": "application/zip",
            "image/x-ms-bmp": "image/bmp"}
# sniffed container -> does a declared type name a format stored in that container?
_CONTAINERS = {
    "application/zip": lambda d: (d.startswith(("application/vnd.", "application/x-"))
                                  or d.endswith("+zip") or d == "application/java-archive"),
    "application/x-tar": lambda d: d.startswith("application/x-"),
    "application/gzip": lambda d: d.startswith("application/x-") or d.endswith("+gzip"),
}


def normalise(declared: str | None) -> str | None:
    """A declared type in lower case without parameters, common misspellings fixed."""
    text = (declared or "").split(";", 1)[0].strip().lower()
    if "/" not in text:
        return None
    return _ALIASES.get(text, text)


def sniff(head: bytes) -> str | None:
    """The MIME type the first bytes of a file show, None when they show none."""
    if not head:
        return None
    found = filetype.guess_mime(head)
    return normalise(found) if found else None


def guess_from_name(name: str) -> str | None:
    guessed, _ = _MIME.guess_type(name, strict=False)
    return normalise(guessed)


def _subtype(mime: str) -> str:
    return mime.partition("/")[2].removeprefix("x-")


def _same_kind(declared: str, sniffed: str) -> bool:
    """Whether ``declared`` agrees with ``sniffed`` (equal, a format inside the sniffed
    container, or the same subtype under another top-level type: audio/mp4, video/mp4)."""
    if declared == sniffed:
        return True
    inside = _CONTAINERS.get(sniffed)
    if inside is not None and inside(declared):
        return True
    return _subtype(declared) == _subtype(sniffed)


def choose(file: DepositFile, name: str, head: bytes = b"") -> str:
    """The MIME type to write for ``file`` (packed as ``name``, starting with ``head``)."""
    declared = normalise(file.mime_type)
    sniffed = sniff(head)
    by_name = guess_from_name(name)
    if sniffed is None:
        if declared and declared not in GENERIC:
            return declared
        return by_name or declared or "application/octet-stream"
    if declared is None or declared in GENERIC:
        # a zip named .docx is a docx: the name refines a container the bytes show
        if by_name and by_name != sniffed and _same_kind(by_name, sniffed):
            return by_name
        return sniffed
    if _same_kind(declared, sniffed):
        return declared
    log.info("file %r (%s) is declared %s but its content is %s; sent as %s", file.name,
             file.id, declared, sniffed, sniffed)
    return sniffed
