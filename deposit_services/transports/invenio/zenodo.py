"""Zenodo deposits (protocol ``zenodo``) through its deposition API, the legacy
Invenio one: ``POST /deposit/depositions`` with the metadata, each file streamed to the
deposition's bucket (``PUT {links.bucket}/{key}``), then ``POST
/deposit/depositions/{id}/actions/publish`` (5xx retried with backoff). A published
deposition is in custody at once (ACCEPTED); its DOI and id go into the copy's
externalIds, its record page is the access URL.

The deposition carries a marker (a related identifier ``urn:deposit-services:
<submission>:<package>``, relation ``isAlternateIdentifier``): a restarted worker lists
the account's depositions, takes a published one as the outcome and deletes an
unfinished one before starting again, so there is never a second record. A
deposition, upload or publish request sent whole and left unanswered is
``OutcomeUnknown``: the attempt stays open and the next one (on any replica) runs
``reconcile`` first. An update is a new version (``actions/newversion``) whose files
and metadata are replaced.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date
from typing import Any
from urllib.parse import quote

from pydantic import AliasChoices, Field

from deposit_services.assemblers.base import Package
from deposit_services.errors import PermanentTransferError
from deposit_services.model.submission import DepositSubmission
from deposit_services.transports.base import (
    Binding,
    PriorItem,
    Receipt,
    Transport,
    TransportContext,
)
from deposit_services.transports.files import record_files
from deposit_services.transports.invenio.client import (
    InvenioAccount,
    InvenioClient,
    check_md5,
    json_field,
    json_object,
    publish,
    upload,
)
from deposit_services.transports.metadata import (
    marked_urn,
    marker_urn,
    record_metadata,
    urn_suffix,
)

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_PAGES = 100


def _key(*names: str) -> Any:
    return AliasChoices(*names)


class ZenodoBinding(Binding):
    """The zenodo protocol-binding: the API URL (``https://zenodo.org/api``) and token."""

    api_url: str = Field(validation_alias=_key("api-url", "ZENODO_API_URL"))
    token: str = Field(repr=False,
                       validation_alias=_key("access-token", "token", "ZENODO_ACCESS_TOKEN"))
    verify_tls: bool = Field(default=True, validation_alias=_key("verify-tls"))
    community: str | None = Field(default=None, validation_alias=_key("community"))
    upload_type: str = Field(default="publication", validation_alias=_key("upload-type"))
    publication_type: str = Field(default="article", validation_alias=_key("publication-type"))
    connect_timeout: float = Field(default=10.0, gt=0, validation_alias=_key("connect-timeout"))
    read_timeout: float = Field(default=600.0, gt=0, validation_alias=_key("read-timeout"))
    publish_attempts: int = Field(default=4, ge=1, validation_alias=_key("publish-attempts"))


def zenodo_metadata(submission: DepositSubmission, mark: str, binding: ZenodoBinding,
                    today: date) -> dict[str, Any]:
    """The deposition's ``metadata`` from the shared record metadata."""
    meta = record_metadata(submission)
    creators = []
    for c in meta.creators:
        creator: dict[str, Any] = {"name": c.name}
        if c.affiliations:
            creator["affiliation"] = "; ".join(c.affiliations)
        if c.orcid:
            creator["orcid"] = c.orcid
        creators.append(creator)
    published = meta.publication_date or (
        submission.submitted_date.date().isoformat() if submission.submitted_date else None)
    related = [{"identifier": mark, "relation": "isAlternateIdentifier", "scheme": "urn"}]
    if meta.doi:
        related.append({"identifier": meta.doi, "relation": "isVariantFormOf",
                        "scheme": "doi"})
    metadata: dict[str, Any] = {
        "upload_type": binding.upload_type,
        "title": meta.title,
        "creators": creators,
        "description": meta.description or meta.title,
        "publication_date": published,
        "related_identifiers": related,
        "access_right": "open",
        "license": "cc-by-4.0",
    }
    if binding.upload_type == "publication":
        metadata["publication_type"] = binding.publication_type
    if meta.journal_title:
        metadata["journal_title"] = meta.journal_title
    if meta.volume:
        metadata["journal_volume"] = meta.volume
    if meta.issue:
        metadata["journal_issue"] = meta.issue
    if meta.funding:  # Zenodo's grants take only OpenAIRE ids: the funding goes in notes
        metadata["notes"] = "Funding: " + "; ".join(
            f"{f.funder} {f.award}".strip() if f.award else f.funder for f in meta.funding)
    if meta.embargo_end_date is not None and meta.embargo_end_date > today:
        metadata["access_right"] = "embargoed"
        metadata["embargo_date"] = meta.embargo_end_date.isoformat()
    if binding.community:
        metadata["communities"] = [{"identifier": binding.community}]
    return {k: v for k, v in metadata.items() if v is not None}


class ZenodoTransport(Transport):
    """Deposits the files of a package as one Zenodo record."""

    protocol = "zenodo"
    binding_model = ZenodoBinding
    binding: ZenodoBinding
    supports_update = True

    def __init__(self, binding: Any, context: TransportContext | None = None) -> None:
        super().__init__(binding, context)
        b = self.binding
        account = InvenioAccount(b.api_url, b.token, "the zenodo binding's access-token",
                                 self.context.user_agent, b.connect_timeout, b.read_timeout,
                                 b.verify_tls)
        self.client = InvenioClient(account, self.context.clock)

    def close(self) -> None:
        self.client.close()

    # -- finding what an earlier attempt made --------------------------------------------

    def _find(self, package: Package, mark: str | None) -> list[dict[str, Any]]:
        """The account's depositions marked for ``package`` (for this submission when
        ``mark`` is given)."""
        suffix = urn_suffix(package.name)
        what = f"Zenodo depositions of {package.name}"
        found: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            # the whole list, newest first: a search would miss a draft not yet indexed
            listed = self.client.call("GET", "deposit/depositions", what, params={
                "sort": "mostrecent", "size": str(PAGE_SIZE), "page": str(page),
                "all_versions": "true"})
            if not isinstance(listed, list):
                raise PermanentTransferError(f"{what}: the answer is not a list: "
                                             f"{listed!r:.200}")
            for item in listed:
                deposition = json_object(item, what)
                value = marked_urn(deposition, "related_identifiers", suffix)
                if value and (mark is None or value == mark):
                    found.append(deposition)
            if len(listed) < PAGE_SIZE:
                break
        return found

    def _outcome(self, depositions: list[dict[str, Any]]) -> Receipt | None:
        """The Receipt of a published deposition; None when there is none, after
        deleting unfinished ones."""
        for deposition in depositions:
            if deposition.get("submitted") and deposition.get("state") == "done":
                logger.info("Zenodo already holds published deposition %s",
                            deposition.get("id"))
                return self._receipt(deposition)
        for deposition in depositions:
            ident = json_field(deposition, "id", "Zenodo deposition")
            logger.warning("deleting the unfinished Zenodo deposition %s of an earlier "
                           "attempt", ident)
            self.client.call("DELETE", f"deposit/depositions/{ident}",
                             f"Zenodo deletion of deposition {ident}", missing_ok=True)
        return None

    def reconcile(self, package: Package, evidence: Mapping[str, str]) -> Receipt | None:
        return self._outcome(self._find(package, None))

    # -- deposit --------------------------------------------------------------------------

    def send(self, package: Package, submission: DepositSubmission) -> Receipt:
        mark = marker_urn(submission.id, package.name)
        done = self._outcome(self._find(package, mark))
        if done is not None:
            return done
        metadata = zenodo_metadata(submission, mark, self.binding,
                                   self.context.clock.now().date())
        what = f"Zenodo deposition for submission {submission.id}"
        deposition = json_object(self.client.call(
            "POST", "deposit/depositions", what, json_body={"metadata": metadata},
            changes=True), what)
        return self._finish(package, deposition)

    def update(self, package: Package, submission: DepositSubmission,
               prior: PriorItem) -> Receipt:
        """A new version of the deposition ``prior`` names, files and metadata replaced."""
        mark = marker_urn(submission.id, package.name)
        done = self._outcome(self._find(package, mark))
        if done is not None:
            return done
        previous = prior.evidence.get("record_id") or (
            (prior.status_ref or "").rstrip("/").rsplit("/", 1)[-1])
        if not previous:
            raise PermanentTransferError(
                "Zenodo update: the earlier deposit recorded no deposition id; deposit anew")
        what = f"Zenodo new version of deposition {previous}"
        answer = json_object(self.client.call(
            "POST", f"deposit/depositions/{previous}/actions/newversion", what), what)
        latest = str(json_field(answer, "links.latest_draft", what))
        draft = json_object(self.client.call("GET", latest, what), what)
        ident = json_field(draft, "id", what)
        for entry in draft.get("files") or []:
            file_id = json_field(json_object(entry, what), "id", what)
            self.client.call("DELETE", f"deposit/depositions/{ident}/files/{file_id}",
                             f"Zenodo removal of {entry.get('filename')}", missing_ok=True)
        metadata = zenodo_metadata(submission, mark, self.binding,
                                   self.context.clock.now().date())
        draft = json_object(self.client.call(
            "PUT", f"deposit/depositions/{ident}", f"Zenodo metadata of deposition {ident}",
            json_body={"metadata": metadata}), what)
        return self._finish(package, draft)

    def _finish(self, package: Package, deposition: dict[str, Any]) -> Receipt:
        what = "Zenodo deposition"
        ident = json_field(deposition, "id", what)
        bucket = str(json_field(deposition, "links.bucket", what))
        for file in record_files(package):
            what = f"Zenodo upload of {file.key} ({file.size} bytes) to deposition {ident}"
            logger.info("%s", what)
            stored, md5 = upload(self.client, f"{bucket}/{quote(file.key, safe='')}",
                                 package, file, what)
            check_md5(json_object(stored, what), md5, what)
        what = f"Zenodo publication of deposition {ident}"

        def published() -> dict[str, Any] | None:
            found = self.client.call("GET", f"deposit/depositions/{ident}", what,
                                     missing_ok=True)
            done = isinstance(found, dict) and found.get("submitted")
            return found if done and isinstance(found, dict) else None

        return self._receipt(publish(self.client, f"deposit/depositions/{ident}/actions/"
                                     "publish", what, self.binding.publish_attempts, published))

    def _receipt(self, deposition: dict[str, Any]) -> Receipt:
        what = "Zenodo deposition"
        ident = str(json_field(deposition, "id", what))
        links = deposition.get("links") or {}
        doi = deposition.get("doi") or None
        access_url = links.get("record_html") or links.get("html") or deposition.get("doi_url")
        if not access_url:
            raise PermanentTransferError(f"{what} {ident}: the answer has no links.html")
        details = {"record_id": ident}
        if doi:
            details["doi"] = str(doi)
        return Receipt(
            accepted=True,
            status_ref=self.client.url(f"deposit/depositions/{ident}"),
            access_url=str(access_url),
            external_ids=tuple(str(i) for i in (doi, ident) if i),
            details=details,
        )
