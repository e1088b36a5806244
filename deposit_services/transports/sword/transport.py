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

Reconciliation after a crash (``reconcile`` / ``find_existing``): SWORDv2 has no
search by Slug, so the caller must keep the Edit-IRI (``Receipt.details["edit_iri"]``);
``find_existing`` GETs it and rebuilds the Receipt, or returns None when the server no
longer has it. Without an Edit-IRI the outcome cannot be told, and ``reconcile`` says
so (the deposit is FAILED for the operator to check) rather than deposit twice.

The ``status-*`` keys configure the statement resolver of the same repository
(``statement.SwordStatementResolver.from_binding``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote

from pydantic import Field

from deposit_services.assemblers.base import Package
from deposit_services.errors import PermanentTransferError, TransientTransferError
from deposit_services.model.submission import DepositSubmission
from deposit_services.transports.base import Binding, Receipt, Transport, TransportContext
from deposit_services.transports.http import Cached
from deposit_services.transports.sword.client import Connection, Credentials, SwordClient
from deposit_services.transports.sword.documents import (
    DepositReceipt,
    ServiceDocument,
    XmlError,
    parse_receipt,
    parse_service_document,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


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


class _CountingReader:
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


def slug_for(package: Package) -> str:
    """A deterministic Slug from the package name (extension dropped, unsafe chars -> '-')."""
    stem = package.name
    for ext in (".tar.gz", ".tar.bz2", ".tgz", ".zip", ".tar", ".gz"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    return _SLUG_UNSAFE.sub("-", stem).strip("-.") or "package"


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
        headers = {
            "Content-Type": package.mime_type or "application/octet-stream",
            "Content-Disposition": _quote_filename(package.name),
            "Content-MD5": package.md5,
            "Content-Length": str(package.size),
            "Packaging": package.specification,
            "In-Progress": "false",
            "Slug": slug_for(package),
        }
        what = f"SWORD deposit of {package.name} ({package.size} bytes) to {collection}"
        logger.info("depositing %s (%d bytes) to %s", package.name, package.size, collection)
        started = time.monotonic()
        try:
            with package.open() as stream:
                reader = _CountingReader(stream, package.size)
                try:
                    response = self.client.request(
                        "POST", collection, what, data=reader, headers=headers,
                        allow_redirects=False, stream=True,
                    )
                except TransientTransferError as exc:
                    if reader.sent >= package.size:
                        # every byte went out: the server may have taken it. The caller
                        # should reconcile rather than blindly send again.
                        raise TransientTransferError(
                            f"{exc} (outcome unknown: the whole package was sent; the "
                            "server may have accepted it)"
                        ) from exc.__cause__
                    raise
        except OSError as exc:
            raise TransientTransferError(f"{what}: cannot read the package: {exc}") from exc
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
        """The Receipt of an earlier deposit of ``package`` found by its Edit-IRI; None
        when the server says it does not have it (it is sent again).

        Without an Edit-IRI in ``evidence`` nothing can be checked (SWORDv2 has no
        lookup by Slug): PermanentTransferError, so the deposit is not sent twice blindly.
        """
        edit_iri = evidence.get("edit_iri")
        if not edit_iri:
            raise PermanentTransferError(
                f"cannot tell whether {package.name} (md5 {package.md5}) reached "
                f"{self.binding.default_collection}: SWORDv2 has no lookup by Slug "
                f"({slug_for(package)}) and no Edit-IRI was recorded"
            )
        return self.find_existing(edit_iri)

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
