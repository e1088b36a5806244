"""InvenioRDM deposits (protocol ``invenioRdm``), as PASS's InvenioRDM transport makes
them and a little safer.

PASS's sequence: delete an earlier unpublished draft of the same submission, create a
draft with the metadata (``POST /records``), for each file ``POST
/records/{id}/draft/files`` (init), ``PUT .../files/{key}/content`` (streamed),
``POST .../files/{key}/commit``, then ``POST /records/{id}/draft/actions/publish``
(5xx retried with backoff). With a ``community`` in the binding the draft is submitted
to that community's review instead (``PUT .../draft/review``, ``POST
.../draft/actions/submit-review``) and followed until a curator accepts (published,
ACCEPTED) or declines (REJECTED).

The draft carries a marker (``metadata.identifiers``: ``urn:deposit-services:<submission>:
<package>``, scheme ``urn``): a restarted worker searches the account's records for it
and takes a published or in-review record as the outcome, or deletes an unfinished
draft and starts again, so there is never a second record. A draft, upload, publish
or review request sent whole and left unanswered is ``OutcomeUnknown``: the attempt
stays open and the next one (on any replica) runs ``reconcile`` first.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import date
from typing import Any
from urllib.parse import quote

from pydantic import AliasChoices, Field

from deposit_services.assemblers.base import Package
from deposit_services.errors import PermanentTransferError
from deposit_services.model.submission import DepositSubmission
from deposit_services.transports.base import (
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
from deposit_services.transports.pass_environment import PassEnvironmentBinding

logger = logging.getLogger(__name__)


def _key(*names: str) -> Any:
    return AliasChoices(*names)


class InvenioRdmBinding(PassEnvironmentBinding):
    """The invenioRdm protocol-binding: PASS's setting names, plus ours."""

    pass_environment = ("INVENIORDM_API_BASE_URL", "INVENIORDM_API_TOKEN",
                        "INVENIORDM_VERIFY_SSL_CERT")

    api_url: str = Field(validation_alias=_key(
        "INVENIORDM_API_BASE_URL", "inveniordm.api.baseUrl", "api-url"))
    token: str = Field(repr=False, validation_alias=_key(
        "INVENIORDM_API_TOKEN", "inveniordm.api.token", "api-token"))
    verify_tls: bool = Field(default=True, validation_alias=_key(
        "INVENIORDM_VERIFY_SSL_CERT", "inveniordm.api.verifySslCertificate", "verify-tls"))
    community: str | None = Field(default=None, validation_alias=_key("community"))
    resource_type: str = Field(default="publication-article",
                               validation_alias=_key("resource-type"))
    connect_timeout: float = Field(default=10.0, gt=0, validation_alias=_key("connect-timeout"))
    read_timeout: float = Field(default=600.0, gt=0, validation_alias=_key("read-timeout"))
    publish_attempts: int = Field(default=4, ge=1, validation_alias=_key("publish-attempts"))
    # for the status resolver (status.py), kept here so the binding validates
    status_mapping: dict[str, str] = Field(default_factory=dict,
                                           validation_alias=_key("status-mapping"))


def rdm_client(binding: InvenioRdmBinding, context: TransportContext) -> InvenioClient:
    account = InvenioAccount(binding.api_url, binding.token, "INVENIORDM_API_TOKEN",
                             context.user_agent, binding.connect_timeout,
                             binding.read_timeout, binding.verify_tls)
    return InvenioClient(account, context.clock)


def rdm_record(submission: DepositSubmission, mark: str, resource_type: str,
               today: date) -> dict[str, Any]:
    """The draft's body: PASS's fields (creators, title, publication date, resource
    type) and description, publisher, the article's DOI, funding, embargo, marker."""
    meta = record_metadata(submission)
    creators = []
    for c in meta.creators:
        person: dict[str, Any] = {"type": "personal", "name": c.name}
        if c.family:
            person["family_name"] = c.family
        if c.given:
            person["given_name"] = c.given
        if c.orcid:
            person["identifiers"] = [{"scheme": "orcid", "identifier": c.orcid}]
        entry: dict[str, Any] = {"person_or_org": person}
        if c.affiliations:
            entry["affiliations"] = [{"name": a} for a in c.affiliations]
        creators.append(entry)
    published = meta.publication_date or (
        submission.submitted_date.date().isoformat() if submission.submitted_date else None)
    metadata: dict[str, Any] = {
        "resource_type": {"id": resource_type},
        "title": meta.title,
        "publication_date": published,
        "creators": creators,
        "identifiers": [{"identifier": mark, "scheme": "urn"}],
    }
    if meta.description:
        metadata["description"] = meta.description
    if meta.publisher:
        metadata["publisher"] = meta.publisher
    if meta.doi:
        metadata["related_identifiers"] = [{
            "identifier": meta.doi, "scheme": "doi", "relation_type": {"id": "isversionof"}}]
    if meta.funding:
        metadata["funding"] = [
            {"funder": {"name": f.funder},
             **({"award": {"number": f.award, "title": {"en": f.award}}} if f.award else {})}
            for f in meta.funding]
    access: dict[str, Any] = {"record": "public", "files": "public"}
    if meta.embargo_end_date is not None and meta.embargo_end_date > today:
        access = {"record": "public", "files": "restricted", "embargo": {
            "active": True, "until": meta.embargo_end_date.isoformat(),
            "reason": "embargoed by the publisher's agreement"}}
    return {"metadata": {k: v for k, v in metadata.items() if v is not None},
            "files": {"enabled": True}, "access": access}


class InvenioRdmTransport(Transport):
    """Deposits the files of a package as one InvenioRDM record."""

    protocol = "invenioRdm"
    binding_model = InvenioRdmBinding
    binding: InvenioRdmBinding
    supports_update = True

    def __init__(self, binding: Any, context: TransportContext | None = None) -> None:
        super().__init__(binding, context)
        self.client = rdm_client(self.binding, self.context)

    def close(self) -> None:
        self.client.close()

    # -- finding what an earlier attempt made --------------------------------------------

    def _find(self, package: Package, mark: str | None) -> list[dict[str, Any]]:
        """The account's records and drafts marked for ``package`` (for this submission
        when ``mark`` is given), newest versions included."""
        suffix = urn_suffix(package.name)
        escaped = re.sub(r'([+\-=&|><!(){}\[\]^"~*?:\\/])', r"\\\1", suffix)
        query = (f'metadata.identifiers.identifier:"{mark}"' if mark
                 else f"metadata.identifiers.identifier:*{escaped}")
        what = f"InvenioRDM search for {package.name}"
        page = json_object(self.client.call(
            "GET", "user/records", what,
            params={"q": query, "size": "100", "allversions": "true"}), what)
        hits = json_field(page, "hits.hits", what)
        if not isinstance(hits, list):
            raise PermanentTransferError(f"{what}: hits.hits is not a list")
        found = [json_object(h, what) for h in hits]
        marks = [(h, marked_urn(h, "identifiers", suffix)) for h in found]
        return [h for h, m in marks if (m == mark if mark else m)]

    def _review_status(self, record_id: str) -> str | None:
        review = self.client.call("GET", f"records/{record_id}/draft/review",
                                  f"InvenioRDM review of draft {record_id}", missing_ok=True)
        return str(review.get("status")) if isinstance(review, dict) else None

    def _outcome(self, hits: list[dict[str, Any]]) -> Receipt | None:
        """The Receipt of a published or in-review record among ``hits``; None when
        there is none. Unfinished drafts are deleted (PASS deletes them too)."""
        for hit in hits:
            if hit.get("is_published"):  # also a published record with an edit draft
                logger.info("InvenioRDM already holds published record %s", hit.get("id"))
                return self._receipt(hit, accepted=True)
        for hit in hits:
            record_id = str(json_field(hit, "id", "InvenioRDM record"))
            if self.binding.community and self._review_status(record_id) in (
                    "submitted", "accepted"):
                logger.info("InvenioRDM draft %s is already in review", record_id)
                return self._receipt(hit, accepted=False)
        for hit in hits:
            record_id = str(hit["id"])
            logger.warning("deleting the unfinished InvenioRDM draft %s of an earlier attempt",
                           record_id)
            self.client.call("DELETE", f"records/{record_id}/draft",
                             f"InvenioRDM deletion of draft {record_id}", missing_ok=True)
        return None

    def reconcile(self, package: Package, evidence: Mapping[str, str]) -> Receipt | None:
        hits = self._find(package, None)
        return self._outcome(hits)

    # -- deposit --------------------------------------------------------------------------

    def send(self, package: Package, submission: DepositSubmission) -> Receipt:
        mark = marker_urn(submission.id, package.name)
        done = self._outcome(self._find(package, mark))
        if done is not None:
            return done
        body = rdm_record(submission, mark, self.binding.resource_type,
                          self.context.clock.now().date())
        what = f"InvenioRDM draft for submission {submission.id}"
        draft = json_object(self.client.call("POST", "records", what, json_body=body,
                                             changes=True), what)
        record_id = str(json_field(draft, "id", what))
        return self._finish(package, record_id, review=bool(self.binding.community))

    def update(self, package: Package, submission: DepositSubmission,
               prior: PriorItem) -> Receipt:
        """A new version of the record ``prior`` names: files and metadata replaced."""
        mark = marker_urn(submission.id, package.name)
        done = self._outcome(self._find(package, mark))
        if done is not None:
            return done
        previous = prior.evidence.get("record_id") or (
            (prior.status_ref or "").rstrip("/").rsplit("/", 1)[-1])
        if not previous:
            raise PermanentTransferError(
                "InvenioRDM update: the earlier deposit recorded no record id; deposit anew")
        what = f"InvenioRDM new version of record {previous}"
        draft = json_object(self.client.call("POST", f"records/{previous}/versions", what),
                            what)
        record_id = str(json_field(draft, "id", what))
        body = rdm_record(submission, mark, self.binding.resource_type,
                          self.context.clock.now().date())
        self.client.call("PUT", f"records/{record_id}/draft",
                         f"InvenioRDM metadata of draft {record_id}", json_body=body)
        existing = self.client.call("GET", f"records/{record_id}/draft/files",
                                    f"InvenioRDM files of draft {record_id}")
        for entry in (json_object(existing, what).get("entries") or []):
            key = quote(str(entry.get("key")), safe="")
            self.client.call("DELETE", f"records/{record_id}/draft/files/{key}",
                             f"InvenioRDM removal of {entry.get('key')}", missing_ok=True)
        # a new version of a record already in a community is published without review
        return self._finish(package, record_id, review=False)

    def _finish(self, package: Package, record_id: str, review: bool) -> Receipt:
        """Upload the files to draft ``record_id``, then publish or submit for review."""
        base = f"records/{record_id}/draft"
        for file in record_files(package):
            key = quote(file.key, safe="")
            what = f"InvenioRDM upload of {file.key} ({file.size} bytes) to draft {record_id}"
            logger.info("%s", what)
            self.client.call("POST", f"{base}/files", what, json_body=[{"key": file.key}])
            _, md5 = upload(self.client, f"{base}/files/{key}/content", package, file, what)
            check_md5(self.client.call("POST", f"{base}/files/{key}/commit", what), md5, what)
        if review:
            return self._submit_review(record_id)
        what = f"InvenioRDM publication of draft {record_id}"

        def published() -> dict[str, Any] | None:
            record = self.client.call("GET", f"records/{record_id}", what, missing_ok=True)
            return record if isinstance(record, dict) and record.get("is_published") else None

        record = publish(self.client, f"{base}/actions/publish", what,
                         self.binding.publish_attempts, published)
        return self._receipt(record, accepted=True)

    def _submit_review(self, record_id: str) -> Receipt:
        community = self.binding.community
        what = f"InvenioRDM review request of draft {record_id} to community {community}"
        self.client.call("PUT", f"records/{record_id}/draft/review", what,
                         json_body={"receiver": {"community": community},
                                    "type": "community-submission"})
        self.client.call_retrying(
            "POST", f"records/{record_id}/draft/actions/submit-review", what,
            self.binding.publish_attempts, changes=True,
            json_body={"payload": {"content": "Deposited by deposit-services for PASS",
                                   "format": "html"}})
        draft = json_object(self.client.call("GET", f"records/{record_id}/draft", what), what)
        return self._receipt(draft, accepted=False)

    def _receipt(self, record: dict[str, Any], accepted: bool) -> Receipt:
        what = "InvenioRDM record"
        record_id = str(json_field(record, "id", what))
        # a draft's record_html is where the record will be once published (self_html is
        # the upload form): the copy's access URL stays right after a curator accepts
        links = record.get("links") or {}
        access_url = str(links.get("record_html") if isinstance(links, dict)
                         and links.get("record_html") else
                         json_field(record, "links.self_html", what))
        doi = ((record.get("pids") or {}).get("doi") or {}).get("identifier")
        details = {"record_id": record_id}
        if doi:
            details["doi"] = str(doi)
        return Receipt(
            accepted=accepted,
            status_ref=self.client.url(f"records/{record_id}"),
            access_url=access_url,
            external_ids=tuple(str(i) for i in (doi, record_id) if i),
            message=None if accepted else "in review by the community",
            details=details,
        )
