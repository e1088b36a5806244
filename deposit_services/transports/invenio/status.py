"""The status resolver of InvenioRDM deposits: the record's state, mapped to a
DepositStatus.

The status ref is the record's API URL (``{api}/records/{id}``). A published record is
ACCEPTED; one removed (410) or gone with its draft (404 for both) is REJECTED; a draft
in community review is SUBMITTED until the curator accepts (the record is published)
or declines, cancels or lets the request expire (REJECTED). A repository's
``deposit-config.mapping`` may map the state URIs below otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deposit_services.errors import PermanentTransferError, TransientTransferError
from deposit_services.status.base import (
    ResolvedStatus,
    StatusDocumentError,
    StatusMapping,
    StatusResolver,
    StatusUnavailable,
)
from deposit_services.transports.base import TransportContext, parse_binding
from deposit_services.transports.invenio.client import InvenioClient
from deposit_services.transports.invenio.rdm import InvenioRdmBinding, rdm_client

PUBLISHED = "https://inveniordm.docs.cern.ch/state/published"
IN_REVIEW = "https://inveniordm.docs.cern.ch/state/in_review"
DECLINED = "https://inveniordm.docs.cern.ch/state/declined"
DRAFT = "https://inveniordm.docs.cern.ch/state/draft"
DELETED = "https://inveniordm.docs.cern.ch/state/deleted"

DEFAULT_MAPPING: dict[str, str] = {
    PUBLISHED: "accepted",
    IN_REVIEW: "submitted",
    DRAFT: "submitted",
    DECLINED: "rejected",
    DELETED: "rejected",
}
ENDED_REVIEWS = ("declined", "cancelled", "expired")


class InvenioRdmResolver(StatusResolver):
    """Resolves an InvenioRDM record URL into ACCEPTED / REJECTED / SUBMITTED."""

    def __init__(self, client: InvenioClient, mapping: Mapping[str, Any]) -> None:
        self.client = client
        self.mapping = StatusMapping({**DEFAULT_MAPPING, **mapping})

    @classmethod
    def from_binding(cls, mapping: Mapping[str, Any], binding: Mapping[str, Any],
                     user_agent: str) -> InvenioRdmResolver:
        parsed: InvenioRdmBinding = parse_binding(InvenioRdmBinding, binding)
        client = rdm_client(parsed, TransportContext(user_agent=user_agent))
        return cls(client, {**parsed.status_mapping, **mapping})

    def close(self) -> None:
        self.client.close()

    def state(self, status_ref: str) -> tuple[str, str]:
        """The record's state URI and a few words about it."""
        record = self.client.call("GET", status_ref, "InvenioRDM record", missing_ok=True)
        if record is not None:
            if not isinstance(record, dict) or "id" not in record:
                raise PermanentTransferError(
                    f"InvenioRDM record {status_ref}: not a record: {record!r:.200}")
            doi = ((record.get("pids") or {}).get("doi") or {}).get("identifier")
            return PUBLISHED, f"published as {doi or record['id']}"
        review = self.client.call("GET", f"{status_ref}/draft/review", "InvenioRDM review",
                                  missing_ok=True)
        if review is None:
            draft = self.client.call("GET", f"{status_ref}/draft", "InvenioRDM draft",
                                     missing_ok=True)
            if draft is None:
                return DELETED, "the record and its draft no longer exist"
            return DRAFT, "a draft, not yet published"
        if not isinstance(review, dict) or "status" not in review:
            raise PermanentTransferError(
                f"InvenioRDM review of {status_ref}: not a request: {review!r:.200}")
        status = str(review["status"])
        if status in ENDED_REVIEWS:
            return DECLINED, f"the community review request was {status}"
        if status == "accepted":  # accepted means published: the record is gone since
            return DELETED, "accepted by the community, but the record no longer exists"
        return IN_REVIEW, f"in community review (request {review.get('id')}: {status})"

    def resolve(self, status_ref: str) -> ResolvedStatus:
        try:
            state, words = self.state(status_ref)
        except TransientTransferError as exc:
            raise StatusUnavailable(str(exc)) from exc
        except PermanentTransferError as exc:
            raise StatusDocumentError(str(exc)) from exc
        return self.mapping.resolve(status_ref, state, words)
