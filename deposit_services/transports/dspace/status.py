"""The status resolver of DSpace deposits: the item's state, mapped to a DepositStatus.

The status ref is the item's API URL (``{api}/core/items/{uuid}``). The item says
``inArchive`` and ``withdrawn``; one neither archived nor withdrawn is in review while
a workflow item holds it (``/workflow/workflowitems/search/item?uuid=``), otherwise a
reviewer sent it back to the workspace (rejected). A deleted item is rejected too.
The states are named as DSpace's SWORD statements name them, so a repository's
``deposit-config.mapping`` reads alike for both protocols; states it does not map
take the defaults below.
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
from deposit_services.transports.base import parse_binding
from deposit_services.transports.dspace.client import DSpaceClient
from deposit_services.transports.dspace.transport import DSpaceBinding, account_for

ARCHIVED = "http://dspace.org/state/archived"
WITHDRAWN = "http://dspace.org/state/withdrawn"
IN_REVIEW = "http://dspace.org/state/inreview"
REJECTED = "http://dspace.org/state/rejected"
DELETED = "http://dspace.org/state/deleted"

DEFAULT_MAPPING: dict[str, str] = {
    ARCHIVED: "accepted",
    WITHDRAWN: "rejected",
    REJECTED: "rejected",
    DELETED: "rejected",
    IN_REVIEW: "submitted",
}


class DSpaceItemResolver(StatusResolver):
    """Resolves a DSpace item URL into ACCEPTED / REJECTED / SUBMITTED."""

    def __init__(self, client: DSpaceClient, mapping: Mapping[str, Any]) -> None:
        self.client = client
        self.mapping = StatusMapping({**DEFAULT_MAPPING, **mapping})

    @classmethod
    def from_binding(cls, mapping: Mapping[str, Any], binding: Mapping[str, Any],
                     user_agent: str) -> DSpaceItemResolver:
        parsed: DSpaceBinding = parse_binding(DSpaceBinding, binding)
        return cls(DSpaceClient(account_for(parsed, user_agent)),
                   {**parsed.status_mapping, **mapping})

    def close(self) -> None:
        self.client.close()

    def state(self, status_ref: str) -> tuple[str, str]:
        """The item's state URI and a few words about it."""
        item = self.client.call("GET", status_ref, "DSpace item", missing_ok=True)
        if item is None:
            return DELETED, "the item no longer exists"
        if not isinstance(item, dict) or "inArchive" not in item:
            raise PermanentTransferError(f"DSpace item {status_ref}: not an item: {item!r:.200}")
        if item.get("withdrawn"):
            return WITHDRAWN, "the item was withdrawn"
        if item.get("inArchive"):
            return ARCHIVED, f"archived as {item.get('handle') or item.get('uuid')}"
        workflow = self.client.call("GET", "workflow/workflowitems/search/item",
                                    "DSpace workflow item", params={"uuid": str(item["uuid"])},
                                    missing_ok=True)
        if workflow:
            return IN_REVIEW, f"in review as workflow item {workflow.get('id')}"
        return REJECTED, "returned to the submitter's workspace by a reviewer"

    def resolve(self, status_ref: str) -> ResolvedStatus:
        try:
            state, words = self.state(status_ref)
        except TransientTransferError as exc:
            raise StatusUnavailable(str(exc)) from exc
        except PermanentTransferError as exc:
            raise StatusDocumentError(str(exc)) from exc
        return self.mapping.resolve(status_ref, state, words)
