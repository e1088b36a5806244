"""The article's DOI and PubMed id as each package format can take them.

The DepositSubmission keeps a DOI as the submission gave it, even one that does not
parse (PASS deposits those too). Each assembler asks here: a DOI that parses is
written normalised (``10.1234/abc``, no resolver prefix); one that does not is written
as given where the format takes free text (METS DC, bag-info.txt) and left out where
a format would become invalid or wrong (NIHMS bulk_meta.xml), each time with a warning
that ends in the Deposit's statusMessage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DOI_PATTERN = re.compile(r"^10\.\d{4,9}/\S+$")
_DOI_PREFIXES = ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/",
                 "http://dx.doi.org/", "doi:")
_PMID = re.compile(r"^(?:pmid:?\s*)?(\d{1,9})$", re.IGNORECASE)


@dataclass(frozen=True)
class Doi:
    """A DOI as given (``raw``) and, when it parses, normalised (``value``)."""

    raw: str
    value: str | None

    @property
    def valid(self) -> bool:
        return self.value is not None

    def left_out(self, where: str) -> str:
        return f"doi {self.raw!r} is not a DOI (10.<registrant>/<suffix>): left out of {where}"

    def as_given(self, where: str) -> str:
        return (f"doi {self.raw!r} is not a DOI (10.<registrant>/<suffix>): written as given "
                f"in {where}")


def parse_doi(raw: str | None) -> Doi | None:
    """The article's DOI; None when there is none (empty or white space only)."""
    text = " ".join((raw or "").split())
    if not text:
        return None
    doi = text
    for prefix in _DOI_PREFIXES:
        if doi.lower().startswith(prefix):
            doi = doi[len(prefix):].strip()
            break
    return Doi(text, doi if DOI_PATTERN.match(doi) else None)


def parse_pmid(raw: str | None) -> tuple[str | None, str | None]:
    """(PubMed id digits, None), or (None, the text given) when it is not a PubMed id,
    or (None, None) when there is none."""
    text = (raw or "").strip()
    if not text:
        return None, None
    match = _PMID.match(text)
    if match and int(match.group(1)) > 0:
        return match.group(1), None
    return None, text


def pmid_left_out(raw: str, where: str) -> str:
    return f"pmid {raw!r} is not a PubMed id (digits only): left out of {where}"
