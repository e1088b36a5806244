"""SWORDv2 statement resolver (the StatusResolver of protocol ``SWORDv2``): GET the Atom
or ORE statement, read the state, map it.

Atom statements carry the state as a feed-level ``atom:category`` with scheme
``http://purl.org/net/sword/terms/state`` (the term is the state URI); ORE statements
carry ``sword:state rdf:resource="..."``. Both are read by local name. Behaviour on the
DSpace reference statements, following PASS (``AtomUtil.parseSwordState`` +
``DefaultDepositStatusProcessor``):

- archived / withdrawn: mapped through ``deposit-config.mapping``.
- inprogress / inreview / an unknown term: not in the mapping, so ``default-mapping``
  applies (``submitted`` in PASS's configuration): the deposit stays SUBMITTED.
- categories in other schemes are ignored (the "multiple" statement is archived).
- no state category at all: PASS returned null and left the deposit alone; we raise
  StatusDocumentError naming the URL, so the operator sees why nothing moves.
- several state categories with different terms: PASS took the first silently; we
  refuse (StatusDocumentError) because the server contradicts itself. Repeats of the
  same term are fine.

Credentials come from the ``auth-realms`` entry whose URL is the longest prefix of the
URL fetched (after rewrite; the stored URL is tried if no realm matches the rewritten
one). Redirects are followed only when configured; requests drops the Authorization
header when a redirect leaves the host.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from deposit_services.http_status import http_status
from deposit_services.status.base import (
    ResolvedStatus,
    StatusDocumentError,
    StatusMapping,
    StatusResolver,
    StatusUnavailable,
    parse_realms,
    select_realm,
)
from deposit_services.transports.base import parse_binding
from deposit_services.transports.http import DocumentTooLarge, SessionPool, read_limited
from deposit_services.transports.sword.client import MAX_DOCUMENT_BYTES
from deposit_services.transports.sword.documents import STATE_SCHEME, XmlError, parse_statement
from deposit_services.transports.sword.transport import SwordV2Binding

logger = logging.getLogger(__name__)

ACCEPT = "application/atom+xml;type=feed, application/rdf+xml;q=0.9, application/xml;q=0.5"


@dataclass(frozen=True)
class StatementTimeouts:
    """Connect and read timeouts (seconds) for fetching statements."""

    connect: float = 10.0
    read: float = 60.0


def rewrite_url(url: str, rewrite: Mapping[str, str] | None) -> str:
    """Apply the longest matching ``prefix -> replacement`` of ``rewrite`` to ``url``."""
    if not rewrite:
        return url
    matches = [prefix for prefix in rewrite if url.startswith(prefix)]
    if not matches:
        return url
    prefix = max(matches, key=len)
    return rewrite[prefix] + url[len(prefix) :]


def read_state(data: bytes, where: str) -> tuple[str, str | None]:
    """The (state, description) of an Atom or ORE statement. Raises StatusDocumentError."""
    try:
        statement = parse_statement(data)
    except XmlError as exc:
        raise StatusDocumentError(f"SWORD statement {where} is unreadable: {exc}") from exc
    if statement.format is None:
        raise StatusDocumentError(
            f"SWORD statement {where} is neither an Atom feed nor an ORE (RDF) document "
            f"(root element <{statement.root}>)"
        )
    found = statement.states
    if not found:
        raise StatusDocumentError(
            f"SWORD statement {where} has no state (no atom:category with scheme "
            f"{STATE_SCHEME} / no sword:state)"
        )
    if any(not state.term for state in found):
        raise StatusDocumentError(f"SWORD statement {where} has a state with an empty term")
    terms = {state.term for state in found}
    if len(terms) > 1:
        raise StatusDocumentError(
            f"SWORD statement {where} has contradictory states: {', '.join(sorted(terms))}"
        )
    return found[0].term, found[0].description


class SwordStatementResolver(StatusResolver):
    """Resolves SWORDv2 statement URLs (Atom or ORE) into a ResolvedStatus."""

    def __init__(
        self,
        mapping: Mapping[str, Any],
        auth_realms: Sequence[Mapping[str, Any]] = (),
        *,
        follow_redirects: bool = False,
        rewrite: Mapping[str, str] | None = None,
        user_agent: str = "deposit-services",
        timeouts: StatementTimeouts | None = None,
        verify: bool | str = True,
        max_document_bytes: int = MAX_DOCUMENT_BYTES,
    ) -> None:
        self.mapping = StatusMapping(mapping)
        self.realms = parse_realms(auth_realms)
        self.follow_redirects = follow_redirects
        self.rewrite = dict(rewrite or {})
        self.user_agent = user_agent
        self.timeouts = timeouts or StatementTimeouts()
        self.verify = verify
        self.max_document_bytes = max_document_bytes
        self._sessions = SessionPool(self._configure_session)

    @classmethod
    def from_binding(
        cls,
        mapping: Mapping[str, Any],
        auth_realms: Sequence[Mapping[str, Any]],
        binding: Mapping[str, Any],
        user_agent: str = "deposit-services",
    ) -> SwordStatementResolver:
        """The resolver for a repository whose SWORDv2 ``protocol-binding`` is ``binding``:
        its TLS settings, connect timeout, binding user-agent and ``status-*`` keys. The
        binding's own credentials serve statements on the service document's origin
        when no ``auth-realms`` entry covers them (PASS needs the realm repeated)."""
        parsed: SwordV2Binding = parse_binding(SwordV2Binding, binding)
        parts = urlsplit(parsed.service_doc)
        fallback = {"mech": "basic", "url": f"{parts.scheme}://{parts.netloc}/",
                    "username": parsed.username, "password": parsed.password}
        return cls(
            mapping,
            [*auth_realms, fallback],
            follow_redirects=parsed.status_follow_redirects,
            rewrite=parsed.status_url_rewrite,
            user_agent=parsed.user_agent or user_agent,
            timeouts=StatementTimeouts(parsed.connect_timeout, parsed.status_read_timeout),
            verify=parsed.ca_bundle or parsed.verify_tls,
        )

    def _configure_session(self, session: requests.Session) -> None:
        session.headers["User-Agent"] = self.user_agent
        session.max_redirects = 10

    def resolve(self, status_ref: str) -> ResolvedStatus:
        if not status_ref or not status_ref.strip():
            raise StatusDocumentError("the deposit has no status reference to resolve")
        url = rewrite_url(status_ref.strip(), self.rewrite)
        if not url.startswith(("http://", "https://")):
            raise StatusDocumentError(f"status reference {url!r} is not an http(s) URL")
        data = self._fetch(url, status_ref.strip())
        where = url if url == status_ref else f"{url} (rewritten from {status_ref})"
        state, description = read_state(data, where)
        resolved = self.mapping.resolve(status_ref, state, description)
        logger.debug(
            "statement %s: state %s -> %s", url, state, resolved.deposit_status or "unmapped"
        )
        return resolved

    def _fetch(self, url: str, original: str) -> bytes:
        realm = select_realm(url, self.realms) or select_realm(original, self.realms)
        auth = (realm.username, realm.password) if realm and realm.username else None
        if realm is None:
            logger.warning("no auth realm matches statement URL %s; no credentials sent", url)
        else:
            logger.debug("statement %s fetched with the credentials of %s as %r", url,
                         realm.url, realm.username)
        try:
            response = self._sessions.get().get(
                url,
                auth=auth,
                headers={"Accept": ACCEPT},
                allow_redirects=self.follow_redirects,
                timeout=(self.timeouts.connect, self.timeouts.read),
                verify=self.verify,
                stream=True,
            )
        except requests.exceptions.TooManyRedirects as exc:
            raise StatusDocumentError(f"SWORD statement {url}: too many redirects") from exc
        except (requests.exceptions.SSLError, requests.exceptions.InvalidURL) as exc:
            raise StatusDocumentError(f"SWORD statement {url} cannot be fetched: {exc}") from exc
        except requests.RequestException as exc:
            raise StatusUnavailable(f"SWORD statement {url} cannot be fetched: {exc}") from exc
        with response:
            status = response.status_code
            if 300 <= status < 400:
                raise StatusDocumentError(
                    f"SWORD statement {url} redirects ({status}) to "
                    f"{response.headers.get('Location')!r}; set follow-redirects or a URL rewrite"
                )
            if status == 429 or status >= 500:
                raise StatusUnavailable(
                    f"SWORD statement {url}: {http_status(status, response.reason)}")
            if status in (401, 403):
                who = f"realm {realm.url} as {realm.username!r}" if realm else "no credentials"
                raise StatusDocumentError(
                    f"SWORD statement {url}: {http_status(status, response.reason)} ({who})"
                )
            if status >= 400:
                raise StatusDocumentError(
                    f"SWORD statement {url}: {http_status(status, response.reason)}")
            try:
                return read_limited(response, self.max_document_bytes)
            except DocumentTooLarge as exc:
                raise StatusDocumentError(f"SWORD statement {url}: {exc}") from exc
            except requests.RequestException as exc:
                raise StatusUnavailable(f"SWORD statement {url}: reading failed: {exc}") from exc

    def close(self) -> None:
        self._sessions.close()
