"""NIHMS bulk submission packages: ``nihms-native-2022-05`` and ``nihms-native-2017-07``.

A flat archive (tar.gz unless the options say otherwise) of ``manifest.txt``,
``bulk_meta.xml`` and the submission's files. manifest.txt has one
``<type>\\t<label>\\t<file name>`` line per file, each with a label as PASS writes it:
the file's description (PASS's sample files say "Custodial content"), "Submission
Metadata" for bulk_meta.xml; labels are unique per type, numbered ``-1``, ``-2`` as PASS
numbers them (``figure-1`` where a figure has none). User files called manifest.txt or
bulk_meta.xml are renamed ``SUBMISSION-...``. bulk_meta.xml follows the version's DTD:
``manuscript-submit`` (2022) or ``nihms-submit`` (2017), and is never invalid: a DOI
or PMID that does not parse, or a funder code the DTD does not define, is left out
with a warning (``Package.warnings``, the Deposit's statusMessage).

Options: ``archive``, ``compression``, ``funder-mapping`` (funder localKey -> NIHMS funder
code such as ``nih``; grants of other funders are left out of bulk_meta.xml; a code the
version does not define is an assembler warning, and that funder's grants are left out).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar

from lxml import etree

from deposit_services.assemblers.archive import (
    ArchiveFormat,
    ArchiveOptions,
    Compression,
    EntryNames,
    utc,
)
from deposit_services.assemblers.base import Assembler, AssemblerContext, Package
from deposit_services.assemblers.common import (
    PackageBuilder,
    file_name,
    package_basename,
    require_files,
    xml_document,
)
from deposit_services.assemblers.identifiers import parse_doi, parse_pmid, pmid_left_out
from deposit_services.errors import AssemblyError, RepositoryConfigError
from deposit_services.model.entities import FileRole
from deposit_services.model.submission import (
    DepositFile,
    DepositSubmission,
    IssnPubType,
    Person,
)

log = logging.getLogger(__name__)

MANIFEST = "manifest.txt"
BULK_META = "bulk_meta.xml"
RENAME_PREFIX = "SUBMISSION-"
MAX_EMBARGO_MONTHS = 12


class FileType(enum.StrEnum):
    BULK_META = "bulksub_meta_xml"
    MANUSCRIPT = "manuscript"
    SUPPLEMENT = "supplement"
    FIGURE = "figure"
    TABLE = "table"


# NIHMS requires a label for these; PASS makes one from the type: figure-1, figure-2 ...
_REQUIRED_LABEL = (FileType.SUPPLEMENT, FileType.FIGURE, FileType.TABLE)
# every other line gets one too: PASS's for bulk_meta.xml, ours for an unlabelled manuscript
_DEFAULT_LABEL = {FileType.BULK_META: "Submission Metadata", FileType.MANUSCRIPT: "Manuscript"}
_ROLE_TYPES = {FileRole.FIGURE: FileType.FIGURE, FileRole.TABLE: FileType.TABLE,
               FileRole.SUPPLEMENTAL: FileType.SUPPLEMENT}


@dataclass(frozen=True)
class ManifestEntry:
    """One manifest.txt line and the file it names (None for bulk_meta.xml)."""

    type: FileType
    label: str
    name: str
    file: DepositFile | None

    def line(self) -> str:
        return f"{self.type}\t{self.label}\t{self.name}\n"


def _clean_label(label: str | None) -> str:
    """Tabs, newlines and runs of white space become one space."""
    return " ".join((label or "").split())


def plan_manifest(submission: DepositSubmission) -> list[ManifestEntry]:
    """The manifest lines in package order: bulk_meta.xml, then the files.

    The first MANUSCRIPT file is the manuscript (AssemblyError if there is none); other
    files are figures, tables or supplements by role (further manuscripts and files
    without a role are supplements).
    """
    names = EntryNames(reserved=[MANIFEST, BULK_META], flat=True)
    labels = LabelMaker()
    entries = [ManifestEntry(FileType.BULK_META, labels.label(FileType.BULK_META, None),
                             BULK_META, None)]
    manuscript = submission.manuscript
    if manuscript is None:
        raise AssemblyError(
            f"submission {submission.id} has no file with the MANUSCRIPT role; NIHMS needs one"
        )
    for file in submission.files:
        name = EntryNames.sanitise(file_name(file), flat=True)
        if name.casefold() in (MANIFEST, BULK_META):
            name = RENAME_PREFIX + name
        name = names.unique(name)
        if file is manuscript:
            entries.append(ManifestEntry(FileType.MANUSCRIPT,
                                         labels.label(FileType.MANUSCRIPT, file.label),
                                         name, file))
            continue
        if file.role is FileRole.MANUSCRIPT:
            log.warning("submission %s: %s is a second manuscript; sent as a supplement",
                        submission.id, name)
        kind = _ROLE_TYPES.get(file.role) if file.role else None
        kind = kind or FileType.SUPPLEMENT
        entries.append(ManifestEntry(kind, labels.label(kind, file.label), name, file))
    return entries


class LabelMaker:
    """Labels unique per file type, as PASS's manifest serializer makes them: a given
    label is kept, and a repeat becomes ``<label>-1``, ``<label>-2`` ...; a missing one
    is ``<type>-1``, ``<type>-2`` ... where NIHMS requires a label, else the type's
    default. Unlike PASS, line breaks and runs of white space become one space (a line
    break would end the manifest line)."""

    def __init__(self) -> None:
        self._used: dict[FileType, set[str]] = {t: set() for t in FileType}

    def label(self, kind: FileType, given: str | None) -> str:
        label = _clean_label(given)
        missing = not label and kind in _REQUIRED_LABEL
        if missing:
            label = kind.value
        elif not label:
            label = _DEFAULT_LABEL[kind]
        used = self._used[kind]
        candidate = f"{label}-1" if missing else label
        n = 2 if missing else 1
        while candidate in used:
            candidate = f"{label}-{n}"
            n += 1
        used.add(candidate)
        return candidate


def _base_date(publication_date: str | None, timestamp: datetime) -> date:
    """The article's publication date (yyyy, yyyy-MM or yyyy-MM-dd), else the package's."""
    text = (publication_date or "").strip()
    for fmt, length in (("%Y-%m-%d", 10), ("%Y-%m", 7), ("%Y", 4)):
        try:
            return datetime.strptime(text[:length], fmt).date()
        except ValueError:
            continue
    return utc(timestamp).date()


def embargo_months(submission: DepositSubmission, timestamp: datetime) -> int | None:
    """Whole months (rounded up) from publication to the embargo end, 0 to 12; None if
    there is no embargo or it is lifted by the package's date (as PASS leaves it out).
    NIHMS counts the embargo from the publication date."""
    end = submission.article.embargo_end_date
    if end is None or end <= utc(timestamp).date():
        return None
    base = _base_date(submission.article.publication_date, timestamp)
    months = (end.year - base.year) * 12 + end.month - base.month + (end.day > base.day)
    if months > MAX_EMBARGO_MONTHS:
        log.warning("submission %s: embargo until %s is %d months after %s; NIHMS allows at "
                    "most %d, sent as %d", submission.id, end, months, base,
                    MAX_EMBARGO_MONTHS, MAX_EMBARGO_MONTHS)
    return max(0, min(months, MAX_EMBARGO_MONTHS))


@dataclass(frozen=True)
class _Name:
    first: str
    middle: str | None
    last: str


def _split_name(person: Person, what: str) -> _Name:
    first, middle, last = person.first_name, person.middle_name, person.last_name
    if not (first and last) and person.full_name:
        parts = person.full_name.split()
        if len(parts) >= 2:
            first, middle, last = parts[0], " ".join(parts[1:-1]) or None, parts[-1]
    if not (first and last):
        raise AssemblyError(f"NIHMS needs a first and last name for the {what} "
                            f"({person.name or person.email or 'no name'})")
    return _Name(first.strip(), (middle or "").strip() or None, last.strip())


def _is_author(person: Person, submission: DepositSubmission) -> bool:
    """Whether the submitter is one of the article's authors (by name)."""
    def key(text: str) -> str:
        return " ".join(text.replace(".", " ").split()).casefold()
    wanted = {key(person.name)}
    if person.first_name and person.last_name:
        wanted.add(key(f"{person.first_name} {person.last_name}"))
    wanted.discard("")
    return any(key(a.name) in wanted for a in submission.authors)


class _NihmsAssembler(Assembler):
    """The parts both versions share; subclasses write their bulk_meta.xml."""

    funder_codes: ClassVar[tuple[str, ...]]

    def __init__(self, options: Mapping[str, Any] | None = None,
                 context: AssemblerContext | None = None) -> None:
        super().__init__(options, context)
        self.archive = ArchiveOptions.from_options(
            self.options, archive=ArchiveFormat.TAR, compression=Compression.GZIP
        )
        self.archive.require_archive(self.specification)
        raw = self.options.get("funder-mapping") or {}
        if not isinstance(raw, Mapping):
            raise RepositoryConfigError(
                "assembler option funder-mapping must map funder localKeys to NIHMS funder codes"
            )
        for warning in self.archive.warnings:
            self.warn(warning)
        self.funder_mapping: dict[str, str] = {}
        self.refused_funders: dict[str, str] = {}  # funder localKey -> code left out
        for key, value in raw.items():
            code = str(value).strip().lower()
            if code in self.funder_codes:
                self.funder_mapping[str(key).casefold()] = code
                continue
            self.refused_funders[str(key).casefold()] = code
            self.warn(f"funder-mapping: funder {key} maps to {str(value)!r}, which "
                      f"{self.specification} does not define (allowed: "
                      f"{', '.join(self.funder_codes)}); its grants are left out of "
                      f"{BULK_META}")

    def assemble(
        self, submission: DepositSubmission, workdir: Path, timestamp: datetime
    ) -> Package:
        require_files(submission)
        entries = plan_manifest(submission)
        notes: list[str] = []
        meta = self.bulk_meta(submission, timestamp, notes.append)
        name = package_basename(self.specification, submission, timestamp)
        with PackageBuilder(workdir, name + self.archive.extension, self.archive, timestamp,
                            specification=self.specification, label=self.label,
                            sources=self.sources) as builder:
            for note in notes:
                builder.warn(note)
            builder.add_bytes(MANIFEST, "".join(e.line() for e in entries).encode())
            builder.add_bytes(BULK_META, meta)
            for entry in entries:
                if entry.file is not None:
                    builder.add_file(entry.file, entry.name, ())
            return builder.package()

    def funded_grants(self, submission: DepositSubmission, warn: Callable[[str], Any]
                      ) -> list[tuple[str | None, str, Person | None]]:
        """(award number, funder code, PI) for grants whose funder is mapped, deduplicated."""
        found: dict[tuple[str | None, str], Person | None] = {}
        for grant in submission.grants:
            key = (grant.funder_local_key or "").casefold()
            code = self.funder_mapping.get(key)
            if key in self.refused_funders:
                warn(f"grant {grant.award_number} of funder {grant.funder_local_key} left out "
                     f"of {BULK_META}: funder-mapping code {self.refused_funders[key]!r} is "
                     f"not a {self.specification} funder")
                continue
            if code is None:
                log.debug("submission %s: grant %s of funder %s is not in funder-mapping",
                          submission.id, grant.award_number, grant.funder_local_key)
                continue
            found.setdefault((grant.award_number, code), grant.pi)
        return [(award, code, pi) for (award, code), pi in found.items()]

    def bulk_meta(self, submission: DepositSubmission, timestamp: datetime,
                  warn: Callable[[str], Any] = log.warning) -> bytes:
        """bulk_meta.xml; ``warn`` hears what was left out."""
        return xml_document(self.metadata_tree(submission, timestamp, warn))

    def metadata_tree(self, submission: DepositSubmission, timestamp: datetime,
                      warn: Callable[[str], Any]) -> Any:
        raise NotImplementedError

    @staticmethod
    def identifiers(submission: DepositSubmission, warn: Callable[[str], Any]
                    ) -> tuple[str | None, str | None]:
        """(DOI, PMID) as bulk_meta.xml takes them; one that does not parse is left out."""
        doi = parse_doi(submission.article.doi)
        if doi is not None and not doi.valid:
            warn(doi.left_out(BULK_META))
        pmid, bad_pmid = parse_pmid(submission.article.pmid)
        if bad_pmid is not None:
            warn(pmid_left_out(bad_pmid, BULK_META))
        return (doi.value if doi else None), pmid

    @staticmethod
    def journal_meta(root: Any, submission: DepositSubmission, nlm_ta: Any,
                     issn_attribute: str, issn_types: tuple[str, str]) -> None:
        """``journal-meta``: the NLM TA in element ``nlm_ta``, typed ISSNs (print, then
        electronic code), the title; AssemblyError if neither NLM TA nor typed ISSN."""
        journal = submission.journal
        meta = etree.SubElement(root, "journal-meta")
        if journal.nlmta:
            nlm_ta.text = journal.nlmta
            meta.append(nlm_ta)
        for issn in journal.issns:
            if issn.pub_type is None:
                log.info("submission %s: ISSN %s has no type; left out", submission.id,
                         issn.issn)
                continue
            kind = issn_types[0] if issn.pub_type is IssnPubType.PRINT else issn_types[1]
            etree.SubElement(meta, "issn", {issn_attribute: kind}).text = issn.issn
        if not len(meta):
            raise AssemblyError(f"submission {submission.id}: NIHMS needs the journal's NLM "
                                "title abbreviation or a typed ISSN; it has neither")
        if journal.title:
            etree.SubElement(meta, "journal-title").text = journal.title

    @staticmethod
    def title(submission: DepositSubmission) -> str:
        if not submission.title:
            raise AssemblyError(f"submission {submission.id} has no article title; NIHMS "
                                "needs one")
        return submission.title

    @staticmethod
    def contact(submission: DepositSubmission) -> Person:
        submitter = submission.submitter
        if submitter is None:
            raise AssemblyError(f"submission {submission.id} has no submitter; NIHMS needs "
                                "a contact person")
        return submitter


def _set(element: Any, **attributes: str | None) -> Any:
    for key, value in attributes.items():
        if value is not None:
            element.set(key.replace("_", "-"), value)
    return element


class Nihms2022Assembler(_NihmsAssembler):
    """``nihms-native-2022-05``: bulk_meta.xml with root ``manuscript-submit``."""

    specification = "nihms-native-2022-05"
    funder_codes = ("nih", "ahrq", "aspr", "cdc", "epa", "fda", "hhmi", "nasa", "nist", "va")

    def metadata_tree(self, submission: DepositSubmission, timestamp: datetime,
                      warn: Callable[[str], Any]) -> Any:
        months = embargo_months(submission, timestamp)
        doi, pmid = self.identifiers(submission, warn)
        root = _set(etree.Element("manuscript-submit"),
                    embargo_months=None if months is None else str(months),
                    pmid=pmid, doi=doi)
        self.journal_meta(root, submission, etree.Element("nlm-ta"),
                          "issn-type", ("print", "electronic"))
        etree.SubElement(root, "manuscript-title").text = self.title(submission)
        contact = self.contact(submission)
        name = _split_name(contact, "submitter")
        if not contact.email:
            raise AssemblyError(f"submission {submission.id}: NIHMS needs the submitter's "
                                "email address")
        contacts = etree.SubElement(root, "contacts")
        # PASS writes its submitter as person-type "author", whoever they are
        _set(etree.SubElement(contacts, "person"), fname=name.first, mname=name.middle,
             lname=name.last, email=contact.email, person_type="author")
        grants = self.funded_grants(submission, warn)
        if grants:
            element = etree.SubElement(root, "grants")
            for award, code, pi in grants:
                grant = _set(etree.SubElement(element, "grant"), id=award, funder=code)
                if pi is not None:
                    pi_name = _split_name(pi, f"PI of grant {award}")
                    _set(etree.SubElement(grant, "PI"), fname=pi_name.first,
                         lname=pi_name.last, email=pi.email)
        return root


class Nihms2017Assembler(_NihmsAssembler):
    """``nihms-native-2017-07`` (what PASS 3.4 sent): root ``nihms-submit``."""

    specification = "nihms-native-2017-07"
    funder_codes = ("nih", "wt", "hhmi", "era", "nasa")

    def metadata_tree(self, submission: DepositSubmission, timestamp: datetime,
                      warn: Callable[[str], Any]) -> Any:
        months = embargo_months(submission, timestamp)
        doi, pmid = self.identifiers(submission, warn)
        root = etree.Element("nihms-submit")
        _set(etree.SubElement(root, "manuscript"), doi=doi, pmid=pmid,
             embargo=None if months is None else str(months))
        self.journal_meta(root, submission,
                          etree.Element("journal-id", {"journal-id-type": "nlm-ta"}),
                          "pub-type", ("ppub", "epub"))
        etree.SubElement(root, "title").text = self.title(submission)
        contacts = etree.SubElement(root, "contacts")
        for person, is_pi, grants in self._people(submission, warn):
            name = _split_name(person, "PI" if is_pi else "submitter")
            element = _set(etree.SubElement(contacts, "person"), fname=name.first,
                           mname=name.middle, lname=name.last, email=person.email,
                           pi="yes" if is_pi else "no",
                           author="yes" if _is_author(person, submission) else "no")
            for award, code in grants:
                _set(etree.SubElement(element, "grant"), id=award, authority=code)
        return root

    def _people(
        self, submission: DepositSubmission, warn: Callable[[str], Any]
    ) -> list[tuple[Person, bool, list[tuple[str | None, str]]]]:
        """The submitter first, then each PI of a mapped grant with their grants; one
        entry per person (matched by email, else by name)."""
        def key(p: Person) -> str:
            return (p.email or p.name).strip().casefold()
        people: dict[str, tuple[Person, bool, list[tuple[str | None, str]]]] = {}
        contact = self.contact(submission)
        people[key(contact)] = (contact, False, [])
        for award, code, pi in self.funded_grants(submission, warn):
            if pi is None:
                continue
            person, _, grants = people.get(key(pi), (pi, True, []))
            people[key(pi)] = (person, True, [*grants, (award, code)])
        return list(people.values())

