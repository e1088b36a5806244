"""dtool transport (protocol ``dtool``): the package as a frozen dtool dataset at the
binding's ``base-uri``, registered in dserver and read back there by UUID.

The deposit is ACCEPTED only when both are done; the copy's accessUrl is the dataset
URI and its externalIds hold the dataset UUID. Writing is idempotent (see ``dataset``):
a retry after dserver was down, refused the token or did not know the base URI finds
the frozen dataset and repeats only the registration (dserver's PUT replaces an entry).
The status ref is the dataset's dserver entry, which the ``status`` resolver re-checks.

Binding keys: ``base-uri`` (``file:///path``, a path, or another dtool storage broker's
URI where its plug-in is installed), ``dserver-url``, and either ``token`` (a bearer
token as issued) or ``private-key-file`` + ``username`` (the worker signs its own
RS256 token, valid for minutes, for that dserver user); optional ``creator-username``
(default: ``username``, else ``deposit-services``), ``repository-key`` (annotation),
``tags``, ``timeout``, ``verify`` (TLS: true, or a CA bundle path).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, field_validator

from deposit_services.assemblers.base import Package
from deposit_services.assemblers.identifiers import parse_doi
from deposit_services.clock import Clock
from deposit_services.errors import TransientTransferError
from deposit_services.model.submission import DepositSubmission, PersonType
from deposit_services.transports.base import Binding, Receipt, Transport, TransportContext
from deposit_services.transports.dtool.dataset import DatasetMetadata, write_frozen
from deposit_services.transports.dtool.dserver import (
    TIMEOUT,
    Credentials,
    DServerClient,
    TokenSource,
)

log = logging.getLogger(__name__)

_TAG = r"^[A-Za-z0-9_.-]{1,80}$"


class DtoolBinding(Binding):
    base_uri: str = Field(alias="base-uri", min_length=1)
    dserver_url: str = Field(alias="dserver-url", pattern=r"^https?://")
    token: str | None = Field(default=None, repr=False)
    private_key_file: Path | None = Field(default=None, alias="private-key-file")
    username: str | None = None
    creator_username: str | None = Field(default=None, alias="creator-username")
    repository_key: str | None = Field(default=None, alias="repository-key")
    tags: list[str] = Field(default_factory=list)
    timeout: float = Field(default=TIMEOUT, gt=0)
    verify: bool | str = True

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        bad = [t for t in tags if not re.match(_TAG, t)]
        if bad:
            raise ValueError(f"dtool tags are letters, digits, '_', '.', '-': not {bad}")
        return tags

    @field_validator("verify", mode="before")
    @classmethod
    def _verify(cls, value: object) -> object:
        """``"true"``/``"false"`` (from ``${VAR}`` interpolation) are booleans, not paths."""
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return value

    def credentials(self) -> Credentials:
        return Credentials(token=self.token, private_key=self.private_key_file,
                           username=self.username)


class DtoolTransport(Transport):
    protocol = "dtool"
    binding_model = DtoolBinding
    binding: DtoolBinding

    def __init__(self, binding: Any, context: TransportContext | None = None) -> None:
        super().__init__(binding, context)
        import dtoolcore.utils

        self.base_uri = dtoolcore.utils.sanitise_uri(self.binding.base_uri).rstrip("/")
        self.client = client_for(self.binding, self.context.user_agent, self.context.clock)

    def send(self, package: Package, submission: DepositSubmission) -> Receipt:
        b = self.binding
        creator = b.creator_username or b.username or "deposit-services"
        dataset = write_frozen(package, self.base_uri, dataset_metadata(
            submission, b.repository_key, b.tags), creator)
        info = registration(dataset)
        created = self.client.register(info) == 201
        copies = [e for e in self.client.lookup(dataset.uuid) if e.get("uri") == dataset.uri]
        if not copies:
            raise TransientTransferError(
                f"dserver accepted the registration of {dataset.uri} but does not list it "
                f"under uuid {dataset.uuid} yet; the deposit is tried again (only the "
                "registration is repeated)")
        log.info("dtool dataset %s (%s) %s in dserver %s", dataset.uri, dataset.uuid,
                 "registered" if created else "registration replaced", self.client.url)
        return Receipt(
            accepted=True, status_ref=self.client.entry_url(dataset.uri),
            access_url=dataset.uri, external_ids=(dataset.uuid,),
            message=f"dtool dataset {dataset.name} frozen at {dataset.uri} and registered in "
                    f"dserver {self.client.url}",
            details={"dataset_uri": dataset.uri, "uuid": dataset.uuid,
                     "dserver": self.client.url})

    def close(self) -> None:
        self.client.close()


def client_for(binding: DtoolBinding, user_agent: str,
               clock: Clock | None = None) -> DServerClient:
    return DServerClient(binding.dserver_url, TokenSource(binding.credentials(), clock=clock),
                         user_agent=user_agent, timeout=binding.timeout, verify=binding.verify)


def registration(dataset: Any) -> dict[str, Any]:
    """The description dserver's ``PUT /uris/...`` takes, as dservercore's own
    ``generate_dataset_info`` builds it from a frozen dataset."""
    admin = dict(dataset.admin_metadata)
    manifest = dataset._manifest  # the stored manifest; dservercore reads it the same way
    info: dict[str, Any] = {
        "uuid": dataset.uuid,
        "base_uri": dataset.base_uri.rstrip("/"),
        "uri": dataset.uri,
        "name": dataset.name,
        "type": admin["type"],
        "readme": dataset.get_readme_content(),
        "manifest": manifest,
        "creator_username": admin["creator_username"],
        "frozen_at": str(admin["frozen_at"]),
        "created_at": str(admin.get("created_at", admin["frozen_at"])),
        "annotations": {n: dataset.get_annotation(n) for n in dataset.list_annotation_names()},
        "tags": dataset.list_tags(),
        "number_of_items": len(manifest.get("items", {})),
        "size_in_bytes": sum(int(i.get("size_in_bytes", 0))
                             for i in manifest.get("items", {}).values()),
    }
    plain: dict[str, Any] = json.loads(json.dumps(info, default=str))  # as dserver takes it
    return plain


def dataset_metadata(submission: DepositSubmission, repository_key: str | None,
                     tags: list[str]) -> DatasetMetadata:
    """README (YAML), annotations and tags of the submission's dataset."""
    article, journal = submission.article, submission.journal
    doi = parse_doi(article.doi)
    doi_text = (doi.value or doi.raw) if doi is not None else None
    authors = [{k: v for k, v in (("name", _name(p)), ("orcid", p.orcid),
                                  ("affiliation", "; ".join(p.affiliation) or None)) if v}
               for p in submission.persons if p.type is PersonType.AUTHOR]
    readme: dict[str, Any] = {
        "title": article.title or f"Submission {submission.id}",
        "doi": doi_text,
        "authors": authors or None,
        "journal": journal.title,
        "funders": sorted({g.funder_name for g in submission.grants if g.funder_name}) or None,
        "grants": [{k: v for k, v in (("award_number", g.award_number),
                                      ("funder", g.funder_name)) if v}
                   for g in submission.grants] or None,
        "abstract": article.abstract,
        "submission_id": submission.id,
    }
    text = yaml.safe_dump({k: v for k, v in readme.items() if v is not None},
                          sort_keys=False, allow_unicode=True, width=100)
    annotations = {"submission_id": submission.id}
    if doi_text:
        annotations["doi"] = doi_text
    if repository_key:
        annotations["repository_key"] = repository_key
    return DatasetMetadata(readme=text, annotations=annotations, tags=tuple(tags))


def _name(person: Any) -> str | None:
    return person.full_name or " ".join(
        p for p in (person.first_name, person.middle_name, person.last_name) if p) or None

