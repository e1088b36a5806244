"""The status-resolver port: turn a Deposit's ``depositStatusRef`` into a DepositStatus.

A resolver is built once per repository from plain values taken from repositories.json
(``deposit-config.mapping``, ``transport-config.auth-realms``, options), so it does not
depend on the config module. ``resolve`` fetches the remote status document, reads the
remote state (a URI or term) and maps it through the repository's mapping:

- ``ResolvedStatus.deposit_status`` is ACCEPTED / REJECTED / FAILED when the mapping
  says so (terminal or failed: the service layer records it), SUBMITTED when the state
  maps to ``submitted`` (directly or through ``default-mapping``: nothing to change yet),
  and ``None`` only when neither the state nor ``default-mapping`` is mapped (PASS
  leaves the deposit alone in that case, and so should the caller).
- Faults: ``StatusUnavailable`` (transient: network, timeout, 5xx, 429) and
  ``StatusDocumentError`` (permanent for this document: 4xx, malformed XML, no state,
  ambiguous state). Both are raised, never returned. A status fault says nothing about
  the package, which the repository already holds: callers should leave the deposit
  SUBMITTED and report the message, not FAIL the deposit.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deposit_services.errors import (
    PermanentTransferError,
    RepositoryConfigError,
    TransientTransferError,
)
from deposit_services.model.entities import DepositStatus

logger = logging.getLogger(__name__)

DEFAULT_MAPPING_KEY = "default-mapping"

# repositories.json mapping values (PASS's vocabulary) -> our DepositStatus.
MAPPING_TERMS: dict[str, DepositStatus] = {
    "accepted": DepositStatus.ACCEPTED,
    "rejected": DepositStatus.REJECTED,
    "submitted": DepositStatus.SUBMITTED,
    "failed": DepositStatus.FAILED,
}


class StatusUnavailable(TransientTransferError):
    """The status document cannot be fetched right now (network, timeout, 5xx, 429).

    Lives here until errors.py grows a StatusError branch (proposed to the lead).
    """


class StatusDocumentError(PermanentTransferError):
    """The status document was refused (4xx) or says nothing usable (malformed, no state,
    ambiguous state). Retrying the same document will not help."""


@dataclass(frozen=True)
class ResolvedStatus:
    """What a status document said and what it means for the Deposit."""

    status_ref: str
    """The reference that was resolved (as stored on the Deposit, before any rewrite)."""
    state: str
    """The remote state (e.g. ``http://dspace.org/state/archived``)."""
    mapped_term: str | None
    """The mapping value applied (``accepted``...), ``None`` when nothing mapped."""
    deposit_status: DepositStatus | None
    """ACCEPTED/REJECTED/FAILED/SUBMITTED, or ``None``: leave the deposit as it is."""
    description: str | None = None
    """The server's human-readable words about the state, if any."""
    via_default: bool = False
    """True when the state itself is not in the mapping and ``default-mapping`` applied."""

    @property
    def is_terminal(self) -> bool:
        return self.deposit_status is not None and self.deposit_status.is_terminal


class StatusMapping:
    """A repository's ``deposit-config.mapping``: remote state -> PASS deposit status.

    Keys are matched exactly first, then case-insensitively (DSpace state URIs are
    lower case, other servers' terms such as ``INFO`` are not). Values are validated at
    construction, so a typo fails at start-up rather than at the first status check.
    """

    def __init__(self, mapping: Mapping[str, Any]) -> None:
        self._exact: dict[str, str] = {}
        self._folded: dict[str, str] = {}
        self.default: str | None = None
        for key, raw in mapping.items():
            if raw is None:
                continue
            term = str(raw).strip().lower()
            if term not in MAPPING_TERMS:
                known = ", ".join(MAPPING_TERMS)
                raise RepositoryConfigError(
                    f"deposit-config.mapping[{key!r}] = {raw!r} is not one of: {known}"
                )
            if key == DEFAULT_MAPPING_KEY:
                self.default = term
            else:
                self._exact[key] = term
                self._folded.setdefault(key.strip().casefold(), term)

    def lookup(self, state: str) -> tuple[str | None, bool]:
        """The mapping term for ``state`` and whether ``default-mapping`` supplied it."""
        term = self._exact.get(state)
        if term is None:
            term = self._folded.get(state.strip().casefold())
        if term is not None:
            return term, False
        return self.default, self.default is not None

    def resolve(self, status_ref: str, state: str, description: str | None) -> ResolvedStatus:
        term, via_default = self.lookup(state)
        if term is None:
            logger.warning(
                "state %s from %s is not mapped and there is no default-mapping; "
                "the deposit is left as it is",
                state,
                status_ref,
            )
        return ResolvedStatus(
            status_ref=status_ref,
            state=state,
            mapped_term=term,
            deposit_status=MAPPING_TERMS[term] if term is not None else None,
            description=description,
            via_default=via_default,
        )


@dataclass(frozen=True)
class AuthRealm:
    """One ``auth-realms`` entry: Basic credentials for URLs under ``url``."""

    url: str
    username: str
    password: str
    mech: str = "basic"

    def __repr__(self) -> str:  # never show the password
        return f"AuthRealm(mech={self.mech!r}, url={self.url!r}, username={self.username!r})"


def parse_realms(realms: Sequence[Mapping[str, Any]]) -> tuple[AuthRealm, ...]:
    """Validate ``auth-realms`` entries; only ``basic`` is supported (as in PASS)."""
    parsed: list[AuthRealm] = []
    for index, realm in enumerate(realms):
        mech = str(realm.get("mech") or "basic").strip().lower()
        url = realm.get("url") or realm.get("baseUrl")
        if not url:
            raise RepositoryConfigError(f"auth-realms[{index}] has no 'url'")
        if mech != "basic":
            raise RepositoryConfigError(
                f"auth-realms[{index}] mech {mech!r} is not supported (only 'basic')"
            )
        parsed.append(
            AuthRealm(
                url=str(url),
                username=str(realm.get("username") or ""),
                password=str(realm.get("password") or ""),
                mech=mech,
            )
        )
    return tuple(parsed)


def select_realm(url: str, realms: Sequence[AuthRealm]) -> AuthRealm | None:
    """The realm whose URL is the longest prefix of ``url`` (PASS's rule), if any."""
    matches = [r for r in realms if url.startswith(r.url)]
    return max(matches, key=lambda r: len(r.url)) if matches else None


class StatusResolver(ABC):
    """Resolves a status reference into a ResolvedStatus. Safe to use from several threads."""

    @abstractmethod
    def resolve(self, status_ref: str) -> ResolvedStatus:
        """Fetch and interpret ``status_ref``.

        Raises StatusUnavailable (transient) or StatusDocumentError (permanent).
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; default: nothing to release."""
