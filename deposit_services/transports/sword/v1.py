"""SWORD 1.3 transport (protocol ``SWORD1``): one POST of the package to a collection.

SWORD 1.3 is fire-and-forget AtomPub: the client POSTs the package with
``Content-Type``, ``Content-Disposition: filename=...``, ``X-Packaging``,
``Content-MD5`` (hex, as DSpace and MyCoRe check it), and optionally
``X-On-Behalf-Of``, ``X-Verbose`` and ``X-No-Op``. The server answers 201 Created with
an Atom entry (``sword:treatment`` says what it did with the package) when the item is
in the repository, or 202 Accepted when it has queued the package. So 201 is a
Receipt with ``accepted`` True (the entry's alternate link is the access URL), 202 one
with ``accepted`` False and ``status_ref`` the entry's link where it offers one.

The binding takes the SWORDv2 keys (PASS-style: ``username``, ``password``,
``service-doc``, ``default-collection``, ``on-behalf-of``, ``collection-hints``, timeouts,
TLS) plus ``verbose`` and ``packaging`` (the X-Packaging URI, when the server spells the
format differently from the assembler). Before sending, the collection is checked
against the service document: listed, packaging accepted (q > 0), mediation allowed,
and the package within ``sword:maxUploadSize`` (kB), all refused as permanent errors.

HTTP, TLS, credentials and the mapping of faults are the v2 client's
(``client.SwordClient``): 401/403/4xx permanent with the ``sword:error`` summary quoted,
5xx, 429, connection errors and timeouts transient. An upload that went out whole and
got no answer is ``OutcomeUnknown``: the attempt stays open and the next attempt
reconciles first, which without an entry link (SWORD 1.3 has no lookup) FAILS the
deposit for the operator rather than sending it twice. ``deposit(..., no_op=True)`` is
the dry run ``check-target`` makes: the server checks everything and stores nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from deposit_services.assemblers.base import Package
from deposit_services.errors import (
    OutcomeUnknown,
    PermanentTransferError,
    TransientTransferError,
)
from deposit_services.model.submission import DepositSubmission
from deposit_services.transports.base import Receipt, Transport, TransportContext
from deposit_services.transports.http import Cached
from deposit_services.transports.sword.client import Connection, Credentials, SwordClient
from deposit_services.transports.sword.documents import XmlError
from deposit_services.transports.sword.transport import CountingReader, SwordBinding
from deposit_services.transports.sword.v1_documents import (
    DepositResponse1,
    ServiceDocument1,
    parse_deposit_response,
    parse_service_document_1,
)

logger = logging.getLogger(__name__)


class Sword1Binding(SwordBinding):
    """The SWORD keys, plus ``verbose`` and ``packaging`` (the X-Packaging to send when
    the server names the format otherwise)."""

    packaging: str | None = None
    verbose: bool = False

def content_disposition(name: str) -> str:
    """SWORD 1.3's ``filename=...`` (quoted when it has to be; non-ASCII replaced)."""
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "'")
    if any(c in ascii_name for c in ' ;,\t'):
        return f'filename="{ascii_name}"'
    return f"filename={ascii_name}"


class Sword1Transport(Transport):
    """Deposits packages to a SWORD 1.3 server (MyCoRe, DSpace 1.x-6 ``/sword``, EPrints)."""

    protocol = "SWORD1"
    binding_model = Sword1Binding
    binding: Sword1Binding

    def __init__(self, binding: Any, context: TransportContext | None = None) -> None:
        super().__init__(binding, context)
        b = self.binding
        # X-On-Behalf-Of is sent per deposit: the v2 client would send v2's On-Behalf-Of
        self.client = SwordClient(
            Credentials(b.username, b.password),
            Connection(b.user_agent or self.context.user_agent, b.connect_timeout,
                       b.read_timeout, b.ca_bundle or b.verify_tls),
        )
        self._document: Cached[ServiceDocument1] = Cached(b.service_doc_ttl)

    def close(self) -> None:
        self.client.close()

    def service_document(self, refresh: bool = False) -> ServiceDocument1:
        """The 1.3 service document, cached for ``service-doc-ttl`` seconds."""
        url = self.binding.service_doc
        what = f"SWORD 1.3 service document {url}"

        def fetch() -> ServiceDocument1:
            try:
                return parse_service_document_1(self.client.get(url, what) or b"")
            except XmlError as exc:
                raise PermanentTransferError(f"{what} is unreadable: {exc}") from exc

        return self._document.get(fetch, refresh)

    def choose_collection(self, submission: DepositSubmission) -> str:
        return self.binding.collection_for(submission)

    def check_collection(self, collection: str, package: Package) -> str:
        """Refuse what the service document says the server would refuse; returns the
        X-Packaging URI to send (the spelling the collection accepts)."""
        packaging = self.binding.packaging or package.specification
        document = self.service_document()
        info = document.collection(collection)
        if info is None:
            document = self.service_document(refresh=True)
            info = document.collection(collection)
        if info is None:
            known = ", ".join(sorted(document.collections)) or "none"
            raise PermanentTransferError(
                f"collection {collection} is not in the SWORD 1.3 service document "
                f"{self.binding.service_doc} (collections: {known}); correct "
                "default-collection / collection-hints"
            )
        accepted = info.accepted_packaging(packaging)
        if accepted is None:
            offered = ", ".join(f"{p};q={q:g}" for p, q in info.accept_packaging.items())
            raise PermanentTransferError(
                f"collection {collection} does not accept packaging {packaging} (accepts: "
                f"{offered}); choose an assembler the collection accepts or set the "
                "binding's packaging"
            )
        if self.binding.on_behalf_of and info.mediation is False:
            raise PermanentTransferError(
                f"collection {collection} does not allow mediated deposit (sword:mediation "
                f"false) but on-behalf-of is {self.binding.on_behalf_of!r}; remove it or "
                "enable mediation on the server"
            )
        limit = document.max_upload_size_kb
        if limit is not None and package.size > limit * 1024:
            raise PermanentTransferError(
                f"package {package.name} has {package.size} bytes, more than the server's "
                f"maxUploadSize of {limit} kB ({limit * 1024} bytes); raise the "
                "repository's upload limit or send a smaller package"
            )
        return accepted

    def send(self, package: Package, submission: DepositSubmission) -> Receipt:
        return self.deposit(package, submission)

    def deposit(self, package: Package, submission: DepositSubmission,
                no_op: bool = False) -> Receipt:
        """POST ``package``; with ``no_op`` the server only checks it (X-No-Op: true)."""
        collection = self.choose_collection(submission)
        packaging = self.binding.packaging or package.specification
        if self.binding.check_collection:
            packaging = self.check_collection(collection, package)
        headers = {
            "Content-Type": package.mime_type or "application/octet-stream",
            "Content-Disposition": content_disposition(package.name),
            "Content-MD5": package.md5,
            "Content-Length": str(package.size),
            "X-Packaging": packaging,
            "X-Verbose": "true" if self.binding.verbose else "false",
            "X-No-Op": "true" if no_op else "false",
        }
        if self.binding.on_behalf_of:
            headers["X-On-Behalf-Of"] = self.binding.on_behalf_of
        what = (f"SWORD 1.3 {'no-op ' if no_op else ''}deposit of {package.name} "
                f"({package.size} bytes) to {collection}")
        logger.info("%s", what)
        try:
            with package.open() as stream:
                reader = CountingReader(stream, package.size)
                try:
                    response = self.client.request(
                        "POST", collection, what, data=reader, headers=headers,
                        allow_redirects=False, stream=True,
                    )
                except TransientTransferError as exc:
                    if reader.sent >= package.size and not no_op:
                        raise OutcomeUnknown(
                            f"{exc} (outcome unknown: the whole package was sent; the "
                            "server may have accepted it)"
                        ) from exc.__cause__
                    raise
        except OSError as exc:
            raise TransientTransferError(f"{what}: cannot read the package: {exc}") from exc
        with response:
            self.client.raise_for_status(response, what)
            status = response.status_code
            location = response.headers.get("Location")
            body = self.client.read_body(response, what)
        entry = DepositResponse1()
        if body.strip():
            try:
                entry = parse_deposit_response(body)
            except XmlError as exc:
                logger.warning("%s: unreadable deposit response (%s)", what, exc)
        return self._receipt(entry, status, location, collection, no_op)

    @staticmethod
    def _receipt(entry: DepositResponse1, status: int, location: str | None,
                 collection: str, no_op: bool) -> Receipt:
        edit = entry.edit or location
        details = {
            key: value
            for key, value in (
                ("collection", collection),
                ("edit_iri", edit),
                ("entry_id", entry.entry_id),
                ("treatment", entry.treatment),
                ("packaging", entry.packaging),
                ("content", entry.content_src),
                ("no_op", "true" if entry.no_op else None),
                ("http_status", str(status)),
            )
            if value
        }
        access = entry.alternate or entry.content_src
        words = entry.treatment or ""
        if no_op and not entry.no_op:
            words = ("the server did not confirm X-No-Op (no sword:noOp true in its "
                     f"answer): it may have stored the package. {words}").strip()
        if status == 202:
            ref = entry.edit or location or entry.alternate or entry.content_src
            return Receipt(
                accepted=False, status_ref=ref, access_url=entry.alternate,
                message=("queued by the repository (202 Accepted)"
                         + (f": {words}" if words else "")),
                details=details,
            )
        return Receipt(
            accepted=True,
            access_url=access,
            external_ids=(access,) if access else (),
            message=words or None,
            details=details,
        )

    def reconcile(self, package: Package, evidence: Mapping[str, str]) -> Receipt | None:
        """SWORD 1.3 cannot look a deposit up; with a recorded edit link it is fetched,
        otherwise the outcome cannot be told and the deposit is FAILED for the operator
        (never sent twice blindly)."""
        edit = evidence.get("edit_iri")
        if not edit:
            raise PermanentTransferError(
                f"cannot tell whether {package.name} (md5 {package.md5}) reached "
                f"{self.binding.default_collection}: SWORD 1.3 has no lookup and no entry "
                "link was recorded; check the repository, then retry or mark it"
            )
        body = self.client.get(edit, f"SWORD 1.3 entry {edit}", missing_ok=True)
        if body is None:
            return None
        try:
            entry = parse_deposit_response(body)
        except XmlError as exc:
            raise PermanentTransferError(f"SWORD 1.3 entry {edit} is unreadable: {exc}") from exc
        return self._receipt(entry, 201, edit, evidence.get("collection", ""), False)
