"""The status resolver of SWORD 1.3 deposits a server queued (``202 Accepted``).

SWORD 1.3 has no statement: a 202 answer means the package was queued, and the entry's
link (its ``edit`` link or the Location) is where the item will be. The resolver GETs
that link with the binding's account (as a v2 statement is fetched, see
``statement.py``) and names what it finds as a state, mapped like any other through
the repository's ``deposit-config.mapping`` over these defaults:

- ``200`` with an Atom entry: the repository holds the item -> ``deposited`` (accepted);
  the entry's ``sword:treatment`` is the description;
- ``202``, or ``404`` (servers that create the entry only when the queue is done):
  still queued -> ``queued`` (submitted: looked at again later);
- ``410 Gone``: the repository dropped the package -> ``gone`` (rejected).

Faults are the SWORD client's: 5xx, 429 and connection errors leave the deposit for a
later look (StatusUnavailable); 401/403 and other 4xx say what is wrong
(StatusDocumentError).
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
from deposit_services.transports.sword.client import Connection, Credentials, SwordClient
from deposit_services.transports.sword.documents import XmlError
from deposit_services.transports.sword.v1 import Sword1Binding
from deposit_services.transports.sword.v1_documents import parse_deposit_response

DEPOSITED = "deposited"
QUEUED = "queued"
GONE = "gone"

DEFAULT_MAPPING: dict[str, str] = {DEPOSITED: "accepted", QUEUED: "submitted",
                                   GONE: "rejected"}


class Sword1EntryResolver(StatusResolver):
    """Resolves the entry link of a queued SWORD 1.3 deposit."""

    def __init__(self, client: SwordClient, mapping: Mapping[str, Any]) -> None:
        self.client = client
        self.mapping = StatusMapping({**DEFAULT_MAPPING, **mapping})

    @classmethod
    def from_binding(cls, mapping: Mapping[str, Any], binding: Mapping[str, Any],
                     user_agent: str) -> Sword1EntryResolver:
        b: Sword1Binding = parse_binding(Sword1Binding, binding)
        client = SwordClient(
            Credentials(b.username, b.password, None),
            Connection(b.user_agent or user_agent, b.connect_timeout, b.read_timeout,
                       b.ca_bundle or b.verify_tls))
        return cls(client, mapping)

    def close(self) -> None:
        self.client.close()

    def state(self, status_ref: str) -> tuple[str, str]:
        """The entry's state and a few words about it."""
        what = f"SWORD 1.3 entry {status_ref}"
        with self.client.request("GET", status_ref, what, stream=True,
                                 allow_redirects=False) as response:
            status = response.status_code
            if status in (202, 404):
                return QUEUED, (f"the repository has queued the package (HTTP {status} on "
                                "its entry)")
            if status == 410:
                return GONE, "the repository dropped the queued package (410 Gone)"
            self.client.raise_for_status(response, what)
            body = self.client.read_body(response, what)
        try:
            entry = parse_deposit_response(body)
        except XmlError as exc:
            raise StatusDocumentError(f"{what} is unreadable: {exc}") from exc
        where = entry.alternate or entry.content_src or status_ref
        return DEPOSITED, (entry.treatment or f"the repository holds the item at {where}")

    def resolve(self, status_ref: str) -> ResolvedStatus:
        if not status_ref.startswith(("http://", "https://")):
            raise StatusDocumentError(f"status reference {status_ref!r} is not an http(s) URL")
        try:
            state, words = self.state(status_ref)
        except StatusDocumentError:
            raise
        except TransientTransferError as exc:
            raise StatusUnavailable(str(exc)) from exc
        except PermanentTransferError as exc:
            raise StatusDocumentError(str(exc)) from exc
        return self.mapping.resolve(status_ref, state, words)
