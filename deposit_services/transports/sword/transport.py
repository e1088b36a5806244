"""SWORDv2 transport (protocol ``SWORDv2``): binary deposit of a package to a Col-IRI.

PASS's protocol-binding keys are accepted unchanged; ours are added beside them.
``send`` checks the chosen collection against the (cached) service document, streams
the package file with Content-MD5 (hex), Packaging, In-Progress: false, a deterministic
Slug and On-Behalf-Of when set, then reads the deposit receipt. DSpace decides later,
so the Receipt is not ``accepted``: ``status_ref`` is the Atom statement URL (ORE if the
server publishes no Atom statement), ``access_url`` the splash page.

Faults (mapped by ``client.SwordClient``): 401/403/412/413/415 and any other 4xx are
permanent (the server's error document summary is quoted); 5xx, 429, connection errors
and timeouts are transient.

An upload that went out whole and got no answer (a read timeout during a slow ingest)
is not simply retried: the collection's listing is searched for it at once
(``lookup``); found, its receipt is the outcome; not there (yet), ``OutcomeUnknown``:
the service keeps the attempt open and the next attempt, on any replica and after a
restart, calls ``reconcile`` before anything is sent again. Where the server offers no
way to tell, the deposit is FAILED naming the package, its MD5 and Slug.

Reconciliation (``reconcile``): with the Edit-IRI the attempt log kept
(``Receipt.details["edit_iri"]``), ``find_existing`` GETs it and rebuilds the Receipt,
or returns None when the server no longer has it. Without one (a crash before the
receipt was recorded, an upload that got no answer) the listing of every collection
the binding can choose is searched: found, its receipt; in none of them, None (sent
again); cannot be told, FAILED naming what to look for, never sent twice blindly.

Updates (``update``): a corrected resubmission replaces the content through the
EM-IRI and the metadata through the Edit-IRI the earlier deposit recorded.

The ``status-*`` keys configure the statement resolver of the same repository
(``statement.SwordStatementResolver.from_binding``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote

import requests
from pydantic import Field

from deposit_services.assemblers.base import Package
from deposit_services.errors import (
    OutcomeUnknown,
    PermanentTransferError,
    TransientTransferError,
)
from deposit_services.model.submission import DepositSubmission
from deposit_services.transports.base import (
    Binding,
    PriorItem,
    Receipt,
    Transport,
    TransportContext,
)
from deposit_services.transports.http import Cached
from deposit_services.transports.sword.client import Connection, Credentials, SwordClient
from deposit_services.transports.sword.documents import (
    DepositReceipt,
    ServiceDocument,
    XmlError,
    parse_receipt,
    parse_service_document,
)
from deposit_services.transports.sword.entry import metadata_entry
from deposit_services.transports.sword.lookup import Found, look_for, slug_for

logger = logging.getLogger(__name__)

T = TypeVar("T")


class SwordBinding(Binding):
    """PASS's SWORD protocol-binding keys (v2 and 1.3 alike), plus ours (hints,
    timeouts, TLS, cache)."""

    username: str
    password: str = Field(repr=False)
    service_doc: str = Field(alias="service-doc")
    default_collection: str = Field(alias="default-collection")
    server_fqdn: str | None = Field(default=None, alias="server-fqdn")
    server_port: int | str | None = Field(default=None, alias="server-port")
    on_behalf_of: str | None = Field(default=None, alias="on-behalf-of")
    deposit_receipt: bool = Field(default=True, alias="deposit-receipt")
    user_agent: str | None = Field(default=None, alias="user-agent")
    collection_hints: dict[str, str] = Field(default_factory=dict, alias="collection-hints")
    connect_timeout: float = Field(default=10.0, alias="connect-timeout", gt=0)
    # DSpace ingests before it answers: a large METS package can take minutes.
    read_timeout: float = Field(default=600.0, alias="read-timeout", gt=0)
    service_doc_ttl: float = Field(default=300.0, alias="service-doc-ttl", ge=0)
    verify_tls: bool = Field(default=True, alias="verify-tls")
    ca_bundle: str | None = Field(default=None, alias="ca-bundle")
    check_collection: bool = Field(default=True, alias="check-collection")

    def collection_for(self, submission: DepositSubmission) -> str:
        """The ``collection-hints`` entry of the first matching tag, else the default."""
        hints = {k.strip().casefold(): v for k, v in self.collection_hints.items()}
        for tag in submission.collection_tags:
            hinted = hints.get(tag.strip().casefold())
            if hinted:
                logger.debug("collection tag %r selects %s", tag, hinted)
                return hinted
        return self.default_collection


class SwordV2Binding(SwordBinding):
    """SWORDv2's binding: the SWORD keys and the statement resolver's."""

    # for the statement resolver (statement.py), kept here so the binding validates
    status_follow_redirects: bool = Field(default=False, alias="status-follow-redirects")
    status_url_rewrite: dict[str, str] = Field(default_factory=dict, alias="status-url-rewrite")
    status_read_timeout: float = Field(default=60.0, alias="status-read-timeout", gt=0)


class CountingReader:
    """Wraps the package file for requests: streams it, and counts what was sent.

    ``__len__`` gives requests the Content-Length, ``read`` is called by http.client per
    block, so the whole file is never in memory. It asks for 16 KiB blocks; handing it
    1 MiB at a time costs a bounded 1 MiB and makes ~15% fewer round trips through
    Python on a large package.
    """

    BLOCK = 1024 * 1024

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream = stream
        self._size = size
        self.sent = 0

    def __len__(self) -> int:
        return self._size

    def read(self, amount: int = -1) -> bytes:
        data = self._stream.read(max(amount, self.BLOCK) if amount >= 0 else self.BLOCK)
        self.sent += len(data)
        return data


def _quote_filename(name: str) -> str:
    """Content-Disposition value; non-ASCII names get an RFC 5987 filename* as well."""
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "'").replace("?", "_")
    value = f'attachment; filename="{ascii_name}"'
    if ascii_name != name:
        value += "; filename*=UTF-8''" + quote(name, safe="")
    return value


class SwordV2Transport(Transport):
    """Deposits packages to a SWORDv2 server (DSpace's or any profile-following one)."""

    protocol = "SWORDv2"
    binding_model = SwordV2Binding
    binding: SwordV2Binding

    def __init__(self, binding: Any, context: TransportContext | None = None) -> None:
        super().__init__(binding, context)
        b = self.binding
        self.client = SwordClient(
            Credentials(b.username, b.password, b.on_behalf_of),
            Connection(self.user_agent, b.connect_timeout, b.read_timeout,
                       b.ca_bundle or b.verify_tls),  # ca-bundle names the CAs to trust
        )
        self._service_doc: Cached[ServiceDocument] = Cached(b.service_doc_ttl)

    # -- plumbing ---------------------------------------------------------------------

    @property
    def user_agent(self) -> str:
        return self.binding.user_agent or self.context.user_agent

    def close(self) -> None:
        self.client.close()

    # -- service document and collection ----------------------------------------------

    def service_document(self, refresh: bool = False) -> ServiceDocument:
        """The service document, cached for ``service-doc-ttl`` seconds."""
        url = self.binding.service_doc
        what = f"SWORD service document {url}"
        return self._service_doc.get(lambda: _parsed(
            parse_service_document, self.client.get(url, what) or b"", what), refresh)

    def choose_collection(self, submission: DepositSubmission) -> str:
        return self.binding.collection_for(submission)

    def check_collection(self, collection: str, package: Package) -> None:
        """PermanentTransferError saying what to change unless ``collection`` is in the
        service document and takes the package's packaging and size (also what
        ``check-target`` proves)."""
        document = self.service_document()
        info = document.collection(collection)
        if info is None:  # maybe created since we cached: look again once
            document = self.service_document(refresh=True)
            info = document.collection(collection)
        if info is None:
            known = ", ".join(sorted(document.collections)) or "none"
            raise PermanentTransferError(
                f"collection {collection} is not in the service document "
                f"{self.binding.service_doc} (collections: {known}); correct "
                "default-collection / collection-hints, or set check-collection to false "
                "if the server lists it elsewhere"
            )
        if info.accept_packaging and package.specification not in info.accept_packaging:
            raise PermanentTransferError(
                f"collection {collection} does not accept packaging {package.specification} "
                f"(accepts: {', '.join(info.accept_packaging)})"
            )
        limit = document.max_upload_size_kb
        if self.binding.on_behalf_of and info.mediation is False:
            raise PermanentTransferError(
                f"collection {collection} does not allow mediated deposit (sword:mediation "
                f"false), but the protocol-binding sets on-behalf-of "
                f"{self.binding.on_behalf_of!r}; remove it or enable mediation on the server"
            )
        if limit is not None and package.size > limit * 1024:
            raise PermanentTransferError(
                f"package {package.name} has {package.size} bytes, more than the server's "
                f"maxUploadSize of {limit} kB"
            )

    # -- deposit ----------------------------------------------------------------------

    def send(self, package: Package, submission: DepositSubmission) -> Receipt:
        collection = self.choose_collection(submission)
        if self.binding.check_collection:
            self.check_collection(collection, package)
        what = f"SWORD deposit of {package.name} ({package.size} bytes) to {collection}"
        logger.info("depositing %s (%d bytes) to %s", package.name, package.size, collection)
        started = time.monotonic()
        headers = {"In-Progress": "false", "Slug": slug_for(package)}
        try:
            response = self._upload("POST", collection, package, headers, what)
        except OutcomeUnknown as exc:
            # every byte went out and no answer came: the server may hold it (a slow
            # ingest). Look for it now; not there yet, the next attempt looks again.
            logger.warning("%s; looking for it in the collection", exc)
            return self._look_now(collection, package, submission, exc)
        with response:
            self.client.raise_for_status(response, what)
            location = response.headers.get("Location")
            body = self.client.read_body(response, what)
        logger.info(
            "deposited %s to %s in %.2fs: HTTP %d, Edit-IRI %s",
            package.name,
            collection,
            time.monotonic() - started,
            response.status_code,
            location,
        )
        receipt = self._receipt_from(body, location, what)
        return self._to_receipt(receipt, collection)

    def _upload(self, method: str, url: str, package: Package, headers: Mapping[str, str],
                what: str) -> requests.Response:
        """``method`` the package's bytes to ``url``, streamed with its Content-MD5 (hex),
        Packaging and file name. OutcomeUnknown when every byte went out and no answer
        came."""
        headers = {
            "Content-Type": package.mime_type or "application/octet-stream",
            "Content-Disposition": _quote_filename(package.name),
            "Content-MD5": package.md5,
            "Content-Length": str(package.size),
            "Packaging": package.specification,
            **headers,
        }
        try:
            with package.open() as stream:
                reader = CountingReader(stream, package.size)
                try:
                    return self.client.request(
                        method, url, what, data=reader, headers=headers,
                        allow_redirects=False, stream=True,
                    )
                except TransientTransferError as exc:
                    if reader.sent >= package.size:
                        raise OutcomeUnknown(
                            f"{exc} (outcome unknown: the whole package was sent; the "
                            "server may have accepted it)"
                        ) from exc.__cause__
                    raise
        except OSError as exc:
            raise TransientTransferError(f"{what}: cannot read the package: {exc}") from exc

    def _look_now(self, collection: str, package: Package, submission: DepositSubmission,
                  unanswered: OutcomeUnknown) -> Receipt:
        """Right after an unanswered upload: the item's Receipt if the listing shows it;
        else OutcomeUnknown (the next attempt reconciles); PermanentTransferError where
        the server cannot tell."""
        try:
            earlier = self._look_for(collection, package, submission.title)
        except TransientTransferError as exc:
            raise OutcomeUnknown(
                f"{unanswered}; looking in the collection's listing failed too ({exc})"
            ) from exc
        if earlier is not None:
            return earlier
        raise OutcomeUnknown(
            f"{unanswered}; it is not in the collection's listing yet"
        ) from unanswered.__cause__

    def _look_for(self, collection: str, package: Package,
                  title: str | None) -> Receipt | None:
        """The Receipt of an earlier deposit of ``package`` found in ``collection``'s
        listing; None when the listing has none (sending is safe); PermanentTransferError
        (``lookup.cannot_tell``) when it cannot be told."""
        found = look_for(self.client, collection, package, title)
        if not isinstance(found, Found):
            return None
        links = found.links
        edit_iri = links.edit_iri or links.entry_id  # DSpace's listing: id = Edit-IRI
        fetched = self._fetch_receipt(edit_iri) if edit_iri else None
        return self._to_receipt(fetched or links, collection)

    def _receipt_from(self, body: bytes, location: str | None, what: str) -> DepositReceipt:
        if body.strip():
            try:
                receipt = parse_receipt(body)
            except XmlError as exc:
                if not location:
                    raise PermanentTransferError(
                        f"{what}: the deposit receipt is unreadable ({exc}) and there is no "
                        "Location header; the package may have been deposited"
                    ) from exc
                logger.warning("%s: unreadable receipt (%s); fetching %s", what, exc, location)
            else:
                if receipt.edit_iri is None and location:
                    receipt = _with_edit_iri(receipt, location)
                return receipt
        if location and self.binding.deposit_receipt:
            fetched = self._fetch_receipt(location)
            if fetched is not None:
                return fetched
        return DepositReceipt(edit_iri=location)

    def _fetch_receipt(self, edit_iri: str) -> DepositReceipt | None:
        what = f"SWORD deposit receipt {edit_iri}"
        body = self.client.get(edit_iri, what, missing_ok=True)
        if body is None:
            return None
        receipt = _parsed(parse_receipt, body, what)
        return receipt if receipt.edit_iri else _with_edit_iri(receipt, edit_iri)

    def _to_receipt(self, receipt: DepositReceipt, collection: str) -> Receipt:
        details = {
            key: value
            for key, value in (
                ("collection", collection),
                ("edit_iri", receipt.edit_iri),
                ("em_iri", receipt.em_iri),
                ("se_iri", receipt.se_iri),
                ("atom_statement", receipt.atom_statement),
                ("ore_statement", receipt.ore_statement),
                ("splash", receipt.splash),
            )
            if value
        }
        status_ref = receipt.atom_statement or receipt.ore_statement
        message = None
        if status_ref is None:
            message = "the deposit receipt has no statement link; status cannot be followed"
            logger.warning("SWORD deposit %s: %s", receipt.edit_iri, message)
        return Receipt(
            accepted=False,
            status_ref=status_ref,
            access_url=receipt.splash,
            external_ids=(receipt.splash,) if receipt.splash else (),
            message=message,
            details=details,
        )

    def reconcile(self, package: Package, evidence: Mapping[str, str]) -> Receipt | None:
        """The Receipt of an earlier deposit of ``package``, None when the server does
        not have it (it is sent again).

        By the Edit-IRI in ``evidence`` when one was recorded; else (SWORDv2 has no
        lookup by Slug) in the listing of each collection the binding can choose (the
        default and every collection-hints target: the hints of the submission may have
        chosen any), ``evidence["title"]`` telling an entry that may be ours. An entry
        found wins; else any collection that cannot tell raises its
        PermanentTransferError (``lookup.cannot_tell``), so nothing is sent twice blindly.
        """
        edit_iri = evidence.get("edit_iri")
        if edit_iri:
            return self.find_existing(edit_iri)
        doubt: PermanentTransferError | None = None
        for collection in self.candidate_collections():
            try:
                found = self._look_for(collection, package, evidence.get("title"))
            except PermanentTransferError as exc:  # cannot tell here: maybe elsewhere
                doubt = doubt or exc
                continue
            if found is not None:
                return found
        if doubt is not None:
            raise doubt
        return None

    def candidate_collections(self) -> list[str]:
        """Every collection ``choose_collection`` can answer, the default first."""
        return list(dict.fromkeys([self.binding.default_collection,
                                   *self.binding.collection_hints.values()]))

    supports_update = True

    def update(self, package: Package, submission: DepositSubmission,
               prior: PriorItem) -> Receipt:
        """Replace the item an earlier deposit left: the content by a PUT of ``package``
        on its EM-IRI, then the metadata by a PUT of an Atom entry on its Edit-IRI
        (profile 6.5); the Edit-IRI stays the same."""
        edit_iri = prior.evidence.get("edit_iri")
        if not edit_iri:
            raise PermanentTransferError(
                f"cannot update the earlier item with {package.name}: its deposit recorded "
                "no Edit-IRI; send it as a new deposit or update the item by hand")
        current = self._fetch_receipt(edit_iri)
        if current is None:
            raise PermanentTransferError(
                f"cannot update {edit_iri} with {package.name}: the server no longer has "
                "that item (404/410); send it as a new deposit")
        em_iri = current.em_iri or prior.evidence.get("em_iri")
        if not em_iri:
            raise PermanentTransferError(
                f"cannot update {edit_iri} with {package.name}: the server advertises no "
                "EM-IRI (edit-media link) for it, so its content cannot be replaced")
        what = f"SWORD content replacement of {em_iri} by {package.name} ({package.size} bytes)"
        logger.info("replacing the content of %s with %s", edit_iri, package.name)
        try:
            response = self._upload("PUT", em_iri, package, {}, what)
        except OutcomeUnknown as exc:  # a PUT replaces: sending it again is safe
            raise TransientTransferError(f"{exc}; the replacement is sent again") from exc
        with response:
            self.client.raise_for_status(response, what)
            self.client.read_body(response, what)
        what = f"SWORD metadata replacement of {edit_iri}"
        with self.client.request(
            "PUT", edit_iri, what, data=metadata_entry(submission), stream=True,
            allow_redirects=False, headers={"Content-Type": "application/atom+xml;type=entry",
                                            "In-Progress": "false"},
        ) as response:
            self.client.raise_for_status(response, what)
            body = self.client.read_body(response, what)
        receipt = self._receipt_from(body, edit_iri, what)
        return self._to_receipt(receipt, prior.evidence.get("collection", ""))

    def find_existing(self, edit_iri: str) -> Receipt | None:
        """The Receipt of a deposit made before (by its Edit-IRI), or None if it is gone.

        For crash reconciliation: an Edit-IRI recorded after a send whose outcome was
        not recorded. Transient faults raise TransientTransferError (try again later).
        """
        receipt = self._fetch_receipt(edit_iri)
        if receipt is None:
            return None
        return self._to_receipt(receipt, "")


def _parsed(parse: Callable[[bytes], T], body: bytes, what: str) -> T:
    try:
        return parse(body)
    except XmlError as exc:
        raise PermanentTransferError(f"{what} is unreadable: {exc}") from exc


def _with_edit_iri(receipt: DepositReceipt, edit_iri: str) -> DepositReceipt:
    return replace(receipt, edit_iri=edit_iri)
