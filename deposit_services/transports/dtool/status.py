"""The status resolver of dtool deposits: is the dataset still registered in dserver?

The status ref is the dataset's dserver entry (``{dserver}/uris/<suffix>``). States:
``registered`` (the entry is there, for the dataset URI) and ``missing`` (dserver has
no entry for it: 404, or it lists another URI); the repository's
``deposit-config.mapping`` maps them, with the defaults below.

An ACCEPTED dtool deposit is terminal, but its registration can vanish (an admin
removed it, dserver lost its index): ``recheck`` (the refresh of ACCEPTED deposits,
see service/lifecycle.py) says nothing when the entry is there, registers the frozen
dataset again when only the entry is missing (the transport's registration step, no new
dataset), and says what is missing and what to do when the dataset is gone too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from deposit_services.errors import PermanentTransferError, TransientTransferError
from deposit_services.safetext import mask_url
from deposit_services.status.base import (
    ResolvedStatus,
    StatusDocumentError,
    StatusMapping,
    StatusResolver,
    StatusUnavailable,
)
from deposit_services.transports.base import parse_binding
from deposit_services.transports.dtool.dserver import DServerClient
from deposit_services.transports.dtool.transport import DtoolBinding, client_for, registration

log = logging.getLogger(__name__)

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

    def _uri(self, status_ref: str) -> str:
        """The dataset URI of a status ref (``{dserver}/uris/<scheme>/<rest>``)."""
        prefix = f"{self.client.url}/uris/"
        if not status_ref.startswith(prefix):
            raise StatusDocumentError(f"{status_ref} is not an entry of dserver "
                                      f"{self.client.url}")
        scheme, _, rest = unquote(status_ref[len(prefix):]).partition("/")
        return f"{scheme}://{rest}"

    def _registered(self, uri: str) -> dict[str, Any] | None:
        """dserver's entry of ``uri``; None when it has none for that URI."""
        try:
            entry = self.client.entry(uri)
        except TransientTransferError as exc:
            raise StatusUnavailable(str(exc)) from exc
        except PermanentTransferError as exc:
            raise StatusDocumentError(str(exc)) from exc
        return entry if entry is not None and entry.get("uri") == uri else None

    def resolve(self, status_ref: str) -> ResolvedStatus:
        uri = self._uri(status_ref)
        entry = self._registered(uri)
        if entry is not None:
            return self.mapping.resolve(status_ref, REGISTERED,
                                        f"dataset {entry.get('uuid')} is registered")
        return self.mapping.resolve(status_ref, MISSING,
                                    f"dserver has no entry for {uri} any more")

    def recheck(self, status_ref: str) -> str | None:
        """Re-check an ACCEPTED deposit's registration: None when it is there; else the
        deposit's new statusMessage (registered again, or what is missing and what to do).
        Raises StatusUnavailable / StatusDocumentError when dserver cannot say."""
        uri = self._uri(status_ref)
        if self._registered(uri) is not None:
            return None
        dataset = _frozen(uri)
        shown, server = mask_url(uri), mask_url(self.client.url)
        if dataset is None:
            return (f"dtool dataset {shown} is gone and dserver {server} has no "
                    "entry for it any more: the deposit is no longer findable. Restore the "
                    "dataset at that URI (from a backup) and run `deposit-services refresh` "
                    "for this deposit to register it again, or deposit the submission anew")
        try:
            self.client.register(registration(dataset))
        except TransientTransferError as exc:
            raise StatusUnavailable(str(exc)) from exc
        except PermanentTransferError as exc:
            raise StatusDocumentError(f"registering {shown} again: {exc}") from exc
        log.warning("dtool dataset %s (%s) was no longer registered in dserver %s; "
                    "registered again", shown, dataset.uuid, server)
        return (f"dserver {server} had lost the registration of dtool dataset "
                f"{shown} ({dataset.uuid}); the frozen dataset is intact and was registered "
                "again")

    def close(self) -> None:
        self.client.close()


def _frozen(uri: str) -> Any | None:
    """The frozen dataset at ``uri``; None when there is none (gone, or only a proto)."""
    import dtoolcore

    try:
        return dtoolcore.DataSet.from_uri(uri)
    except (dtoolcore.DtoolCoreTypeError, OSError, KeyError, ValueError) as exc:
        log.debug("no frozen dtool dataset at %s: %s", uri, exc)
        return None
