"""RO-Crate 1.1 packages (``ro-crate-1.1``): the submission's files and an
``ro-crate-metadata.json`` that describes them, built with the ``rocrate`` library.

``archive`` ZIP (default): the files at the crate root, then ``manifest-<alg>.txt`` for
each configured algorithm (as SimpleZip writes them), then the metadata file *last*:
every File entity's ``contentSize`` and ``sha256`` come from the one streaming pass that
wrote the file into the zip, so memory stays flat whatever the file sizes. ``archive``
NONE: a detached crate, the metadata file alone, whose File entities are the files'
http(s) URLs; each file is read once (streamed) for its size and SHA-256.

The root Dataset carries the article's title (``name``), abstract (``description``),
publication date (``datePublished``, else the submission date), DOI (``identifier``
and ``@id`` of the ScholarlyArticle it ``cite-as``), ``license`` (option ``license``, a
URL), authors as Person (ORCID as ``@id`` when known), funders as Organization and
grants as Grant (``funding``), and the journal article as ``ScholarlyArticle`` in a
``Periodical``. Options: ``archive`` (ZIP or NONE), ``compression``, ``algorithms``,
``license`` (URL), ``publisher`` (the root's publisher, an organization's name) and
``organizations`` (organization name or funder key -> URL, e.g. a ROR id: RO-Crate
recommends a URL for every Organization, and a submission names funders and
affiliations only by name), ``packaging`` (what the package says it is to a SWORD
server: default SimpleZip for a zip, Binary for a detached crate; usable with every
transport).
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rocrate.model.contextentity import ContextEntity
from rocrate.rocrate import ROCrate

from deposit_services.assemblers.archive import ArchiveFormat, ArchiveOptions, EntryNames, utc
from deposit_services.assemblers.base import CHUNK_SIZE, Assembler, AssemblerContext, Package
from deposit_services.assemblers.common import (
    PackageBuilder,
    file_name,
    package_basename,
    require_files,
)
from deposit_services.assemblers.identifiers import parse_doi
from deposit_services.assemblers.sources import open_file
from deposit_services.errors import AssemblyError, RepositoryConfigError
from deposit_services.model.submission import DepositSubmission, Person, PersonType

METADATA = "ro-crate-metadata.json"
PREVIEW = "ro-crate-preview.html"
_ORCID = re.compile(r"(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")
_OPTIONS = ("archive", "compression", "algorithms", "license", "publisher", "organizations",
            "packaging")
SIMPLE_ZIP = "http://purl.org/net/sword/package/SimpleZip"
BINARY = "http://purl.org/net/sword/package/Binary"


class RoCrateAssembler(Assembler):
    specification = "ro-crate-1.1"

    def __init__(self, options: Mapping[str, Any] | None = None,
                 context: AssemblerContext | None = None) -> None:
        super().__init__(options, context)
        self.archive = ArchiveOptions.from_options(self.options)
        if self.archive.archive is ArchiveFormat.TAR:
            raise RepositoryConfigError("ro-crate-1.1: assembler option archive must be ZIP "
                                        "(a crate in a zip) or NONE (a detached crate)")
        for warning in self.archive.warnings:
            self.warn(warning)
        license_url = self.options.get("license")
        if license_url is not None and not _is_url(str(license_url)):
            raise RepositoryConfigError(f"assembler option license={license_url!r} must be "
                                        "the license's URL (e.g. https://spdx.org/licenses/"
                                        "CC-BY-4.0)")
        self.license = str(license_url) if license_url else None
        organizations = self.options.get("organizations") or {}
        if not isinstance(organizations, Mapping) or not all(
                _is_url(str(url)) for url in organizations.values()):
            raise RepositoryConfigError("assembler option organizations must map organization "
                                        "names (or funder keys) to their URLs (e.g. ROR ids)")
        self.organizations = {str(k): str(v) for k, v in organizations.items()}
        self.organizations.update({k.casefold(): v for k, v in self.organizations.items()})
        publisher = self.options.get("publisher")
        self.publisher: tuple[str] | None = None
        if publisher is not None:
            if not isinstance(publisher, str) or not publisher.strip():
                raise RepositoryConfigError("assembler option publisher must be the name of the "
                                            "organization that publishes the datasets")
            self.publisher = (publisher.strip(),)
        # what the package says it is to a SWORD server (its Packaging header): a crate in
        # a zip is a SimpleZip, a detached crate one Binary file, unless configured
        default = BINARY if self.archive.archive is ArchiveFormat.NONE else SIMPLE_ZIP
        self.packaging = str(self.options.get("packaging") or default)
        unknown = sorted(set(self.options) - set(_OPTIONS))
        if unknown:
            self.warn(f"options {', '.join(unknown)} are not used")

    def assemble(
        self, submission: DepositSubmission, workdir: Path, timestamp: datetime
    ) -> Package:
        require_files(submission)
        if self.archive.archive is ArchiveFormat.NONE:
            return self._detached(submission, workdir, timestamp)
        options = self.archive
        name = package_basename("rocrate", submission, timestamp) + options.extension
        manifests = [f"manifest-{alg}.txt" for alg in options.algorithms]
        names = EntryNames(reserved=[METADATA, PREVIEW, *manifests])
        algorithms = tuple(dict.fromkeys((*options.algorithms, "sha256")))
        with PackageBuilder(workdir, name, options, timestamp,
                            specification=self.packaging, sources=self.sources) as builder:
            crate = self._crate(submission, timestamp, builder.warn)
            entries = []
            for file in submission.files:
                entry = builder.add_file(file, names.unique(file_name(file)), algorithms)
                entries.append(entry)
                _add_file(crate, entry.name, entry.size, entry.digests["sha256"],
                          _media_type(file.mime_type, entry.name), file.name)
            for alg, manifest in zip(options.algorithms, manifests, strict=True):
                lines = "".join(f"{e.digests[alg]}  {e.name}\n" for e in entries).encode()
                builder.add_bytes(manifest, lines)
                _add_file(crate, manifest, len(lines), hashlib.sha256(lines).hexdigest(),
                          "text/plain", f"{alg} checksums of the files")
            builder.add_bytes(METADATA, metadata_bytes(crate))
            return builder.package()

    def _detached(self, submission: DepositSubmission, workdir: Path,
                  timestamp: datetime) -> Package:
        """The metadata file alone; each file is identified by its http(s) URL."""
        name = f"{package_basename('rocrate', submission, timestamp)}-{METADATA}"
        with PackageBuilder(workdir, name, self.archive, timestamp,
                            specification=self.packaging, sources=self.sources,
                            mime_type="application/ld+json") as builder:
            crate = self._crate(submission, timestamp, builder.warn)
            for file in submission.files:
                if not _is_url(file.location):
                    raise AssemblyError(
                        f"file {file.name!r} is at {file.location!r}, not an http(s) URL: a "
                        "detached RO-Crate (archive NONE) can only point at files on the web; "
                        "set assembler option archive to ZIP to package the files")
                size, sha256 = self._digest(file)
                _add_file(crate, file.location, size, sha256,
                          _media_type(file.mime_type, file_name(file)), file.name)
            builder.add_bytes(name, metadata_bytes(crate))
            return builder.package()

    def _digest(self, file: Any) -> tuple[int, str]:
        """Size and SHA-256 of a file, streamed."""
        digest = hashlib.sha256()
        size = 0
        with open_file(file, self.sources) as (stream, _):
            while chunk := stream.read(CHUNK_SIZE):
                digest.update(chunk)
                size += len(chunk)
        return size, digest.hexdigest()

    def _crate(self, submission: DepositSubmission, timestamp: datetime, warn: Any) -> ROCrate:
        """The crate with its root Dataset and contextual entities; files come later."""
        crate = ROCrate(gen_preview=False, version="1.1")
        article, journal = submission.article, submission.journal
        root = crate.root_dataset
        root["name"] = _text(article.title) or f"Submission {submission.id}"
        root["description"] = _text(article.abstract) or root["name"]
        root["datePublished"] = _date(article.publication_date, submission.submitted_date,
                                      timestamp, warn)
        root["identifier"] = submission.id
        if self.license:
            crate.add(ContextEntity(crate, self.license, properties={
                "@type": "CreativeWork", "name": self.license.rstrip("/").rsplit("/", 1)[-1]}))
            root["license"] = {"@id": self.license}
        else:
            warn("no license: set assembler option license to the license's URL "
                 "(RO-Crate recommends one on the root Dataset)")
        doi = parse_doi(article.doi)
        if doi is not None and doi.valid:
            doi_url = f"https://doi.org/{doi.value}"
            root["identifier"] = [doi_url, submission.id]
            root["cite-as"] = doi_url
        elif doi is not None:
            warn(doi.left_out(METADATA))
        authors = [self._person(crate, person, index) for index, person in enumerate(
            p for p in submission.persons if p.type is PersonType.AUTHOR)]
        if authors:
            root["author"] = _one_or_list([{"@id": a} for a in authors])
        grants: list[dict[str, str]] = []
        funders: list[dict[str, str]] = []
        for index, grant in enumerate(submission.grants):
            funder_ref = None
            if grant.funder_name:
                funder_ref = self._organization(crate, grant.funder_name, grant.funder_local_key)
                if {"@id": funder_ref} not in funders:
                    funders.append({"@id": funder_ref})
            grant_ref = f"#grant-{index + 1}"
            properties: dict[str, Any] = {"@type": "Grant",
                                          "name": grant.award_number or grant_ref[1:]}
            if grant.award_number:
                properties["identifier"] = grant.award_number
            if funder_ref:
                properties["funder"] = {"@id": funder_ref}
            crate.add(ContextEntity(crate, grant_ref, properties=properties))
            grants.append({"@id": grant_ref})
        if funders:
            root["funder"] = _one_or_list(funders)
        if grants:
            root["funding"] = _one_or_list(grants)
        if self.publisher is not None:
            root["publisher"] = {"@id": self._organization(crate, *self.publisher)}
        if article.title or doi is not None:
            article_id = f"https://doi.org/{doi.value}" if doi and doi.valid else "#article"
            props: dict[str, Any] = {"@type": "ScholarlyArticle",
                                     "name": _text(article.title) or root["name"]}
            if authors:
                props["author"] = _one_or_list([{"@id": a} for a in authors])
            if journal.title:
                periodical: dict[str, Any] = {"@type": "Periodical", "name": journal.title}
                issns = [i.issn for i in journal.issns if i.issn]
                if issns:
                    periodical["issn"] = issns[0] if len(issns) == 1 else issns
                if journal.publisher:
                    periodical["publisher"] = journal.publisher
                crate.add(ContextEntity(crate, "#journal", properties=periodical))
                props["isPartOf"] = {"@id": "#journal"}
            for key, value in (("volumeNumber", article.volume),
                               ("issueNumber", article.issue)):
                if value:
                    props[key] = value
            crate.add(ContextEntity(crate, article_id, properties=props))
            root["citation"] = {"@id": article_id}
        return crate


    def _person(self, crate: ROCrate, person: Person, index: int) -> str:
        """Add ``person`` as a Person; its ``@id`` is its ORCID URL when it has one, its
        affiliations Organizations."""
        orcid = _ORCID.search((person.orcid or "").strip())
        identifier = f"https://orcid.org/{orcid.group(1)}" if orcid else f"#author-{index + 1}"
        name = person.full_name or " ".join(
            p for p in (person.first_name, person.middle_name, person.last_name) if p
        ) or identifier
        properties: dict[str, Any] = {"@type": "Person", "name": name}
        if person.first_name:
            properties["givenName"] = person.first_name
        if person.last_name:
            properties["familyName"] = person.last_name
        if person.email:
            properties["email"] = person.email
        affiliations = [{"@id": self._organization(crate, a)} for a in person.affiliation if a]
        if affiliations:
            properties["affiliation"] = _one_or_list(affiliations)
        if crate.get(identifier) is None:
            crate.add(ContextEntity(crate, identifier, properties=properties))
        return identifier

    def _organization(self, crate: ROCrate, name: str, key: str | None = None) -> str:
        """An Organization for ``name`` (once per crate); its ``@id`` and ``url`` are the
        URL option ``organizations`` gives for its name or key, else a local id."""
        url = self.organizations.get(name) or (self.organizations.get(key) if key else None)
        if url is None:
            url = self.organizations.get(name.casefold())
        identifier = url or f"#organization-{_slug(name)}"
        if crate.get(identifier) is None:
            properties = {"@type": "Organization", "name": name}
            if url:
                properties["url"] = url
            crate.add(ContextEntity(crate, identifier, properties=properties))
        return identifier


def metadata_bytes(crate: ROCrate) -> bytes:
    """``ro-crate-metadata.json`` of ``crate``: UTF-8 JSON-LD, keys sorted, deterministic."""
    document = crate.metadata.generate()
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False).encode()


def _add_file(crate: ROCrate, identifier: str, size: int, sha256: str, media_type: str,
              name: str) -> None:
    """A File data entity (linked from the root's hasPart by the library)."""
    properties = {"name": name or identifier, "contentSize": str(size), "sha256": sha256,
                  "encodingFormat": media_type}
    if _is_url(identifier):
        crate.add_file(identifier, properties=properties)
    else:
        crate.add_file(dest_path=identifier, properties=properties)


def _date(published: str | None, submitted: datetime | None, timestamp: datetime,
          warn: Any) -> str:
    """ISO 8601 ``datePublished``: the article's date when it parses, else the
    submission's date, else the package time."""
    text = (published or "").strip()
    if text:
        for parse in (date.fromisoformat, datetime.fromisoformat):
            try:
                return parse(text).isoformat()
            except ValueError:
                continue
        warn(f"publication date {text!r} is not an ISO 8601 date: datePublished is the "
             "submission date instead")
    return utc(submitted or timestamp).date().isoformat()


def _one_or_list(values: list[dict[str, str]]) -> dict[str, str] | list[dict[str, str]]:
    """A single reference as itself, several as a list (RO-Crate 1.1's compact form)."""
    return values[0] if len(values) == 1 else values


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-") or "unnamed"


def _media_type(declared: str | None, name: str) -> str:
    if declared and "/" in declared:
        return declared.strip()
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _text(value: str | None) -> str:
    return " ".join((value or "").split())

