"""bag-info.txt from a Handlebars template, as PASS's BagIt assembler writes it.

PASS renders the template its ``baginfo-template-resource`` option names (a classpath
resource such as ``/bag-info.hbm``) with Handlebars.java over a ``BagModel``. Here the
template is rendered with pybars3 (Handlebars for Python: the same ``{{name}}``,
``{{{raw}}}``, ``{{#if}}``, ``{{#each}}``, ``{{#with}}``, dotted paths and HTML escaping
of ``{{name}}``) over a model with the BagModel's field names (``bag_model``).

Where a template is found: never at an arbitrary path. The option's value, without a
leading ``/`` or ``classpath:`` (PASS's classpath root), is a path relative to each of
the context's template directories in turn (repositories.json's own directory, then
the configured template directory); ``..`` is refused, and so is a symbolic link that
leads outside the directory. ``bag-info.hbm`` found in none of them is PASS's own
template (``DEFAULT_TEMPLATE``, written here with PASS's bugs fixed); no option at all
means that one too. The template is read and test-rendered when the assembler is
built, so ``config check`` reports a missing or broken one.

After rendering: blank lines and fields with an empty value are dropped, Payload-Oxum
is set to the payload's real ``octets.count`` (PASS's template writes them swapped,
which no BagIt validator accepts), fields set by the assembler options replace the
template's, and the ``bag-info`` option's extra fields are appended.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import pybars

from deposit_services.assemblers.archive import utc
from deposit_services.assemblers.identifiers import parse_doi
from deposit_services.errors import AssemblyError, RepositoryConfigError
from deposit_services.model.submission import DepositSubmission, Person

log = logging.getLogger(__name__)

TEMPLATE_OPTION = "baginfo-template-resource"
DEFAULT_TEMPLATE_NAME = "bag-info.hbm"
MAX_TEMPLATE_BYTES = 64 * 1024
BAGIT_VERSION = "1.0"
# PASS's bag-info.hbm with its bugs fixed (Contact-Phone/-Email swapped, Payload-Oxum
# as count.octets, Bagging-Date from a field it never set) and triple braces: bag-info.txt
# is plain text, so "&" stays "&" (PASS's Handlebars writes "&amp;").
DEFAULT_TEMPLATE = """\
Source-Organization: {{{sourceOrganization}}}
Organization-Address: {{{organizationAddress}}}
Contact-Name: {{{contactName}}}
Contact-Phone: {{{contactPhone}}}
Contact-Email: {{{contactEmail}}}
External-Description: Submitted as {{{submissionUri}}} to PASS on {{{submissionDate}}} by \
{{{submissionUserFullName}}} ({{{submissionUserEmail}}}){{#if publisherId}}, published at \
{{{publisherId}}}{{/if}}
Bagging-Date: {{{currentDate}}}
External-Identifier: {{{publisherId}}}
Bag-Size: {{{bagSizeHumanReadable}}}
Payload-Oxum: {{{bagSizeBytes}}}.{{{custodialFileCount}}}
Internal-Sender-Identifier: {{{submissionUri}}}
Internal-Sender-Description: Submitted as {{{submissionUri}}} to PASS on \
{{{submissionDate}}} by {{{submissionUserFullName}}} ({{{submissionUserEmail}}})\
{{#if publisherId}}, published at {{{publisherId}}}{{/if}}
"""
# option name -> BagModel field (PASS's model has them; PASS never filled them)
MODEL_OPTIONS = {"source-organization": "sourceOrganization",
                 "organization-address": "organizationAddress", "contact-name": "contactName",
                 "contact-phone": "contactPhone", "contact-email": "contactEmail"}
_COMPILE_LOCK = threading.Lock()  # pybars' compiler keeps state while it compiles


def one_line(value: Any) -> str:
    """A bag-info value on one line: line breaks and runs of white space become a space."""
    return " ".join(str(value).split())


def find_template(name: str, dirs: Sequence[Path]) -> tuple[str, str]:
    """(template text, where it came from) for the option's value; RepositoryConfigError
    when it names no file in ``dirs`` (PASS's own ``bag-info.hbm`` excepted)."""
    text = name.strip()
    if text.lower().startswith("classpath:"):
        text = text[len("classpath:"):]
    relative = PurePosixPath(text.lstrip("/"))
    if not relative.parts or ".." in relative.parts or "\\" in text:
        raise RepositoryConfigError(
            f"assembler option {TEMPLATE_OPTION}={name!r} must name a file inside the "
            "template directories (repositories.json's directory, DEPOSIT_TEMPLATE_DIR); "
            "'..' is not allowed")
    for folder in dirs:
        base = Path(os.path.realpath(folder))
        candidate = Path(os.path.realpath(base / relative))
        if not candidate.is_relative_to(base):
            raise RepositoryConfigError(
                f"assembler option {TEMPLATE_OPTION}={name!r}: {base / relative} leads "
                f"outside {base} (a symbolic link); templates must be inside it")
        if candidate.is_file():
            return _read(candidate, name), str(candidate)
    if relative.parts == (DEFAULT_TEMPLATE_NAME,):
        return DEFAULT_TEMPLATE, "PASS's bag-info.hbm (built in)"
    looked = ", ".join(str(d) for d in dirs) or "no template directory configured"
    raise RepositoryConfigError(
        f"assembler option {TEMPLATE_OPTION}={name!r}: no such file in {looked} (put it "
        "beside repositories.json or in DEPOSIT_TEMPLATE_DIR)")


def _read(path: Path, name: str) -> str:
    try:
        if path.stat().st_size > MAX_TEMPLATE_BYTES:
            raise RepositoryConfigError(f"assembler option {TEMPLATE_OPTION}={name!r}: {path} "
                                        f"is larger than {MAX_TEMPLATE_BYTES} bytes")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RepositoryConfigError(
            f"assembler option {TEMPLATE_OPTION}={name!r}: cannot read {path}: {exc}") from exc


def human_size(octets: int) -> str:
    """Bag-Size as PASS writes it: whole units of 1024, rounded down."""
    for power, unit in ((4, "TiB"), (3, "GiB"), (2, "MiB"), (1, "KiB")):
        if octets >= 1024 ** power:
            return f"{octets // 1024 ** power} {unit}"
    return f"{octets} bytes"


def java_offset_time(moment: datetime | None) -> str | None:
    """``ISO_OFFSET_DATE_TIME`` as Java formats it (``Z`` for UTC, no trailing zeros)."""
    if moment is None:
        return None
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    offset = moment.strftime("%z")
    return text + ("Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}")


def _person(person: Person | None) -> dict[str, Any] | None:
    if person is None:
        return None
    return {"fullName": person.full_name, "firstName": person.first_name,
            "middleName": person.middle_name, "lastName": person.last_name,
            "email": person.email, "displayName": person.name, "name": person.name,
            "orcidId": person.orcid, "type": person.type.value}


def bag_model(submission: DepositSubmission, octets: int, count: int, timestamp: datetime,
              options: Mapping[str, Any]) -> dict[str, Any]:
    """The fields PASS's BagModel hands its template, by the same names; ``submission``
    and ``depositSubmission`` carry what this service knows of PASS's objects."""
    doi = parse_doi(submission.article.doi)
    submitter = _person(submission.submitter)
    article, journal = submission.article, submission.journal
    metadata = json.dumps(submission.metadata, ensure_ascii=False) if submission.metadata else None
    model: dict[str, Any] = {
        "submissionUri": submission.id,
        "submissionMetadata": metadata,
        "publisherId": (doi.value or doi.raw) if doi else None,
        "currentDate": utc(timestamp).date().isoformat(),
        "bagSizeBytes": octets,
        "bagSizeHumanReadable": human_size(octets),
        "custodialFileCount": count,
        "bagItVersion": BAGIT_VERSION,
        "submissionDate": java_offset_time(submission.submitted_date),
        "submissionUserFullName": submitter["displayName"] if submitter else None,
        "submissionUserEmail": submitter["email"] if submitter else None,
        "submissionUserUri": None,
        "submissionUser": submitter,
        "submission": {"id": submission.id, "metadata": metadata, "submitter": submitter,
                       "submittedDate": java_offset_time(submission.submitted_date)},
        "depositSubmission": {
            "id": submission.id, "name": article.title,
            "submissionDate": java_offset_time(submission.submitted_date),
            "metadata": {
                "manuscriptMetadata": {"title": article.title, "msAbstract": article.abstract},
                "articleMetadata": {"title": article.title, "volume": article.volume,
                                    "issue": article.issue,
                                    "doi": (doi.value or doi.raw) if doi else None,
                                    "embargoLiftDate": (article.embargo_end_date.isoformat()
                                                        if article.embargo_end_date else None)},
                "journalMetadata": {"journalTitle": journal.title, "journalId": journal.nlmta,
                                    "publisherName": journal.publisher},
                "persons": [_person(p) for p in submission.persons],
                "grantsMetadata": [{"grantId": g.award_number, "funder": g.funder_name,
                                    "funderLocalKey": g.funder_local_key,
                                    "grantPi": _person(g.pi)} for g in submission.grants],
            },
        },
    }
    for option, field in MODEL_OPTIONS.items():
        model[field] = options.get(option)
    lined: dict[str, Any] = _one_lined(model)
    return lined


def _one_lined(value: Any) -> Any:
    """Every string in the model on one line: a value cannot break a bag-info line."""
    if isinstance(value, str):
        return one_line(value)
    if isinstance(value, Mapping):
        return {k: _one_lined(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_one_lined(v) for v in value]
    return value


class BagInfoTemplate:
    """A compiled bag-info.txt template; ``render`` is safe to call from several threads."""

    def __init__(self, text: str, where: str) -> None:
        self.where = where
        try:
            with _COMPILE_LOCK:
                self._template = pybars.Compiler().compile(text)
        except Exception as exc:  # pybars raises bare Exceptions on syntax
            raise RepositoryConfigError(f"bag-info template {where} does not compile: "
                                        f"{exc}") from exc

    def render(self, model: Mapping[str, Any]) -> list[tuple[str, str]]:
        """The rendered template as (label, value) fields, blank ones dropped."""
        try:
            text = str(self._template(dict(model)))
        except Exception as exc:  # a template error, whatever pybars raised
            raise AssemblyError(f"bag-info template {self.where} cannot be rendered: "
                                f"{exc}") from exc
        fields: list[tuple[str, str]] = []
        for line in text.replace("\r\n", "\n").split("\n"):
            if not line.strip():
                continue
            if line[0] in " \t" and fields:  # RFC 8493 2.2.2: a continuation line
                label, value = fields[-1]
                fields[-1] = (label, one_line(f"{value} {line}"))
                continue
            label, colon, value = line.partition(":")
            if not colon or not label.strip():
                raise AssemblyError(f"bag-info template {self.where} renders a line that is "
                                    f"not 'Label: value': {line[:80]!r}")
            fields.append((label.strip(), one_line(value)))
        return [(label, value) for label, value in fields if value]
