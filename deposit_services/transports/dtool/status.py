"""The status resolver of dtool deposits: is the dataset still registered in dserver?

The status ref is the dataset's dserver entry (``{dserver}/uris/<suffix>``). States:
``registered`` (the entry is there, for the dataset URI) and ``missing`` (dserver has
no entry for it: 404, or it lists another URI); the repository's
``deposit-config.mapping`` maps them, with the defaults below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from deposit_services.errors import PermanentTransferError, TransientTransferError
from deposit_services.status.base import (
    ResolvedStatus,
    StatusDocumentError,
    StatusMapping,
    StatusResolver,
    StatusUnavailable,
)
from deposit_services.transports.base import parse_binding
from deposit_services.transports.dtool.dserver import DServerClient
from deposit_services.transports.dtool.transport import DtoolBinding, client_for

REGISTERED = "registered"
MISSING = "missing"
DEFAULT_MAPPING: dict[str, str] = {REGISTERED: "accepted", MISSING: "failed"}


class DServerResolver(StatusResolver):
    def __init__(self, client: DServerClient, mapping: StatusMapping) -> None:
        self.client = client
        self.mapping = mapping

    @classmethod
    def from_binding(cls, mapping: Mapping[str, Any], binding: Mapping[str, Any],
                     user_agent: str) -> DServerResolver:
        parsed: DtoolBinding = parse_binding(DtoolBinding, binding)
        return cls(client_for(parsed, user_agent),
                   StatusMapping({**DEFAULT_MAPPING, **dict(mapping)}))

    def resolve(self, status_ref: str) -> ResolvedStatus:
        prefix = f"{self.client.url}/uris/"
        if not status_ref.startswith(prefix):
            raise StatusDocumentError(f"{status_ref} is not an entry of dserver "
                                      f"{self.client.url}")
        scheme, _, rest = unquote(status_ref[len(prefix):]).partition("/")
        uri = f"{scheme}://{rest}"
        try:
            entry = self.client.entry(uri)
        except TransientTransferError as exc:
            raise StatusUnavailable(str(exc)) from exc
        except PermanentTransferError as exc:
            raise StatusDocumentError(str(exc)) from exc
        if entry is not None and entry.get("uri") == uri:
            return self.mapping.resolve(status_ref, REGISTERED,
                                        f"dataset {entry.get('uuid')} is registered")
        return self.mapping.resolve(status_ref, MISSING,
                                    f"dserver has no entry for {uri} any more")

    def close(self) -> None:
        self.client.close()
