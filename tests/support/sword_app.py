"""The WSGI application of the SWORDv2 test server (run by tests.support.sword_server).

Routes the profile's requests (service document, binary deposit to a Col-IRI, deposit
receipt, Atom and ORE statements), checks what a SWORDv2 server checks (Basic auth,
On-Behalf-Of and mediation, Packaging, Content-Length against the upload limit,
Content-MD5 as hex) and answers with the profile's status codes and ``sword:error``
documents. Request bodies are streamed (hashed, and written to ``store_dir`` when
given), never held in memory. Faults queued with ``add_fault`` apply to the next
matching requests.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from tests.support import sword_edit
from tests.support.sword_documents import (
    BINARY,
    CHUNK,
    ReceivedDeposit,
    Response,
    SwordDocuments,
    error_document,
)

# fault kinds that only make sense for a request with a body (a deposit)
BODY_FAULTS = frozenset({"drop", "late"})


@dataclass
class RequestRecord:
    method: str
    path: str
    headers: dict[str, str]
    status: int = 0


@dataclass
class _Document:
    body: bytes
    content_type: str
    auth: tuple[str, str] | None


class _Aborted(Exception):
    """Raised by the app after it has shut the connection down on purpose."""


_REASONS = {
    200: "OK", 201: "Created", 302: "Found", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 411: "Length Required",
    412: "Precondition Failed", 413: "Payload Too Large", 415: "Unsupported Media Type",
    429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable",
}


class SwordApp(SwordDocuments):
    """The WSGI application and its state (thread-safe)."""

    def __init__(
        self,
        users: dict[str, str],
        collections: dict[str, tuple[str, ...]],
        max_upload_size: int | None,
        advertise_limits: bool,
        store_dir: Path | None,
        mediation: bool,
        known_owners: Iterable[str],
        receipt_in_response: bool = True,
        listing: bool = True,
    ) -> None:
        self.users = users
        self.collections = collections
        self.max_upload_size = max_upload_size
        self.advertise_limits = advertise_limits
        self.store_dir = store_dir
        self.mediation = mediation
        self.known_owners = set(known_owners)
        self.receipt_in_response = receipt_in_response
        self.listing = listing
        self.base_url = ""
        self.deposits: dict[str, ReceivedDeposit | None] = {}
        self.requests: list[RequestRecord] = []
        self.documents: dict[str, _Document] = {}
        self.redirects: dict[str, tuple[str, int]] = {}
        self._faults: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    # -- WSGI -------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        headers = {
            key[5:].replace("_", "-").title(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").title()] = environ[key]
        record = RequestRecord(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), headers)
        with self._lock:
            self.requests.append(record)
            fault = self._next_fault(record)
        response = self._handle(environ, record, fault)
        record.status = response.status
        reason = _REASONS.get(response.status, "Status")
        start_response(f"{response.status} {reason}", response.headers)
        return [response.body]

    def _handle(
        self, environ: dict[str, Any], record: RequestRecord, fault: tuple[str, Any] | None
    ) -> Response:
        if fault is not None:
            kind, arg = fault
            if kind == "drop":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                environ["wsgi.input"].read(min(length // 2, CHUNK))
                environ["sword.abort"]()
                raise _Aborted
            if kind == "late":  # ingest, then answer only when released (or never)
                release, hidden = arg
                before = set(self.deposits)
                response = self._route(environ, record)
                created = [self.deposits[k] for k in set(self.deposits) - before]
                for deposit in created:
                    deposit.hidden = hidden  # type: ignore[union-attr]
                release.wait(60)
                for deposit in created:
                    deposit.hidden = False  # type: ignore[union-attr]
                return response
            _drain(environ)
            if kind == "delay":
                time.sleep(arg)
            elif kind == "status":
                status, retry_after = arg
                if status < 500 and status != 429:
                    response = self._error(status, "ErrorBadRequest", f"injected fault {status}")
                else:  # no SWORD error IRI exists for these: a plain body, as proxies send
                    body = f"{status} injected fault".encode()
                    response = Response(status, [("Content-Type", "text/plain")], body)
                if retry_after is not None:
                    response.headers.append(("Retry-After", str(retry_after)))
                return response
        try:
            return self._route(environ, record)
        finally:
            _drain(environ)

    def _route(self, environ: dict[str, Any], record: RequestRecord) -> Response:
        method, path = record.method, record.path
        if path in self.redirects:
            target, status = self.redirects[path]
            return Response(status, [("Location", self._absolute(target))])
        if path in self.documents:
            return self._document(self.documents[path], record)
        if path.startswith("/items/") and method == "GET":
            body = f"<html><body><h1>Item {escape(path[7:])}</h1></body></html>".encode()
            return Response(200, [("Content-Type", "text/html; charset=utf-8")], body)
        if not path.startswith("/swordv2/"):
            return Response(404, [("Content-Type", "text/plain")], b"not found")
        user = self._user(record)
        if user is None:
            return Response(401, [("WWW-Authenticate", 'Basic realm="SWORD"')])
        parts = path[len("/swordv2/") :].split("/", 1)
        route, rest = parts[0], parts[1] if len(parts) > 1 else ""
        if route == "servicedocument" and method == "GET":
            return self._xml(200, self._service_document())
        if route == "collection" and rest in self.collections:
            return sword_edit.col_iri(self, environ, record, rest)
        if route == "edit":
            return sword_edit.edit_iri(self, environ, record, rest)
        if route == "edit-media":
            return sword_edit.em_iri(self, environ, record, rest)
        if route == "statement" and method == "GET":
            ident, _, ext = rest.rpartition(".")
            deposit = self.deposits.get(ident)
            if deposit is None or ext not in ("atom", "rdf"):
                return _not_found()
            if ext == "atom":
                feed = "application/atom+xml;type=feed"
                return self._xml(200, self._atom_statement(deposit), feed)
            return self._xml(200, self._ore_statement(deposit), "application/rdf+xml")
        return _not_found()

    # -- handlers ---------------------------------------------------------------------

    def _user(self, record: RequestRecord) -> str | None:
        value = record.headers.get("Authorization", "")
        if not value.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user if self.users.get(user) == password else None

    def _document(self, document: _Document, record: RequestRecord) -> Response:
        if document.auth is not None:
            expected = "Basic " + base64.b64encode(":".join(document.auth).encode()).decode()
            if record.headers.get("Authorization") != expected:
                return Response(401, [("WWW-Authenticate", 'Basic realm="statements"')])
        return Response(200, [("Content-Type", document.content_type)], document.body)

    def _deposit(
        self, environ: dict[str, Any], record: RequestRecord, collection: str
    ) -> Response:
        h = record.headers
        owner = h.get("On-Behalf-Of")
        if owner:
            if not self.mediation:
                return self._error(412, "MediationNotAllowed", "mediated deposit is not allowed")
            if owner not in self.known_owners:
                return self._error(403, "TargetOwnerUnknown", f"unknown On-Behalf-Of user {owner}")
        packaging = h.get("Packaging", BINARY)
        if packaging not in self.collections[collection]:
            return self._error(
                415, "ErrorContent", f"packaging {packaging} is not accepted by {collection}"
            )
        if "Content-Length" not in h:
            return self._error(411, "ErrorBadRequest", "Content-Length is required")
        length = int(h["Content-Length"])
        if self.max_upload_size is not None and length > self.max_upload_size:
            return self._error(
                413,
                "MaxUploadSizeExceeded",
                f"{length} bytes exceed the maximum upload size of {self.max_upload_size} bytes",
            )
        disposition = h.get("Content-Disposition", "")
        match = re.search(r'filename="?([^";]+)"?', disposition)
        if not match:
            return self._error(400, "ErrorBadRequest", "Content-Disposition has no filename")
        deposit_id = uuid.uuid4().hex
        slug = h.get("Slug")
        with self._lock:
            if slug and re.fullmatch(r"[A-Za-z0-9._-]+", slug) and slug not in self.deposits:
                deposit_id = slug
            self.deposits[deposit_id] = None  # reserve the id
        md5, size, path = self._receive(environ, length, deposit_id)
        expected = h.get("Content-Md5")
        if size != length or (expected is not None and expected.strip().lower() != md5):
            with self._lock:
                del self.deposits[deposit_id]
            if path is not None:
                path.unlink(missing_ok=True)
            if size != length:
                return self._error(400, "ErrorBadRequest", f"received {size} of {length} bytes")
            return self._error(
                412, "ErrorChecksumMismatch", f"Content-MD5 {expected} does not match {md5}"
            )
        deposit = ReceivedDeposit(
            id=deposit_id,
            collection=collection,
            filename=match.group(1),
            packaging=packaging,
            content_type=h.get("Content-Type", ""),
            md5=md5,
            size=size,
            slug=slug,
            on_behalf_of=owner,
            in_progress=h.get("In-Progress", "false").strip().lower() == "true",
            headers=dict(h),
            path=path,
        )
        with self._lock:
            self.deposits[deposit_id] = deposit
        edit = self._url(f"/swordv2/edit/{deposit_id}")
        if not self.receipt_in_response:  # allowed: the client GETs the Edit-IRI
            return Response(201, [("Location", edit)])
        return self._xml(201, self._receipt(deposit), extra=[("Location", edit)])

    def _receive(
        self, environ: dict[str, Any], length: int, ident: str
    ) -> tuple[str, int, Path | None]:
        digest = hashlib.md5(usedforsecurity=False)
        stream = environ["wsgi.input"]
        size = 0
        path = self.store_dir / ident if self.store_dir is not None else None
        sink = path.open("wb") if path is not None else None
        try:
            while size < length:
                chunk = stream.read(min(CHUNK, length - size))
                if not chunk:
                    break
                digest.update(chunk)
                size += len(chunk)
                if sink is not None:
                    sink.write(chunk)
        finally:
            if sink is not None:
                sink.close()
        environ["sword.consumed"] = True
        return digest.hexdigest(), size, path

    # -- documents --------------------------------------------------------------------

    def _absolute(self, target: str) -> str:
        return target if "://" in target else self._url(target)

    def _xml(
        self,
        status: int,
        body: str,
        content_type: str = "application/atom+xml;type=entry",
        extra: list[tuple[str, str]] | None = None,
    ) -> Response:
        data = ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()
        return Response(status, [("Content-Type", content_type), *(extra or [])], data)

    def _error(self, status: int, name: str, summary: str) -> Response:
        return self._xml(status, error_document(name, summary), "application/xml")

    # -- control ------------------------------------------------------------------------

    def add_fault(self, kind: str, arg: Any, count: int) -> None:
        with self._lock:
            self._faults.extend([(kind, arg)] * count)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _next_fault(self, record: RequestRecord) -> tuple[str, Any] | None:
        """The first queued fault that applies to ``record`` (caller holds the lock):
        a body fault (a drop mid-upload) waits for a POST or PUT."""
        has_body = record.method in ("POST", "PUT")
        for index, (kind, arg) in enumerate(self._faults):
            if kind not in BODY_FAULTS or has_body:
                del self._faults[index]
                return kind, arg
        return None


def _not_found() -> Response:
    return Response(404, [("Content-Type", "text/plain")], b"not found")


def _drain(environ: dict[str, Any]) -> None:
    """Read what is left of the request body, so the client sees our answer (no RST)."""
    if environ.get("sword.consumed"):
        return
    environ["sword.consumed"] = True
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    while remaining > 0:
        chunk = stream.read(min(CHUNK, remaining))
        if not chunk:
            break
        remaining -= len(chunk)
