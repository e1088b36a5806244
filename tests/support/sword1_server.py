"""A SWORD 1.3 server for tests, behaving as MyCoRe's SWORD 1.3 interface is documented.

What it does, as MyCoRe does: HTTP Basic on every request; one collection; the upload
limit configured in bytes and advertised in the service document in kB
(``sword:maxUploadSize``, rounded down); METS DSpace SIP zips only (``X-Packaging``
``http://purl.org/net/sword-types/METSDSpaceSIP``, the v2 spelling accepted too), the
zip must hold ``mets.xml`` and its files are ingested flat (folders are dropped, as
MyCoRe's derivate import does); ``X-No-Op`` checks everything and stores nothing;
``X-Verbose`` adds a ``sword:verboseDescription``; the answer is 201 Created with an
Atom entry whose ``sword:treatment`` says what was done (or 202 Accepted when
``queue`` is set: the entry link then answers 202 until ``process()``, 410 after
``drop(id)``); faults are ``sword:error`` documents with the 1.3 error URIs.
It runs on a real loopback port with the v2 test server's WSGI plumbing.

Usage::

    with running_sword1_server(max_upload_bytes=...) as server:
        server.service_document_url, server.collection_url, server.username/password
        server.items          # id -> Item (files ingested, treatment, headers)
        server.requests       # (method, path, headers, status) of every request
"""

from __future__ import annotations

import base64
import hashlib
import io
import posixpath
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from wsgiref.simple_server import make_server
from xml.sax.saxutils import escape, quoteattr

from tests.support.sword_server import _Handler, _ThreadingWSGIServer

ATOM_NS = "http://www.w3.org/2005/Atom"
APP_NS = "http://www.w3.org/2007/app"
SWORD_NS = "http://purl.org/net/sword/"
DC_NS = "http://purl.org/dc/terms/"
ERROR_PREFIX = "http://purl.org/net/sword/error/"
METS_V1 = "http://purl.org/net/sword-types/METSDSpaceSIP"
METS_V2 = "http://purl.org/net/sword/package/METSDSpaceSIP"
COLLECTION = "mycore"
MAX_BODY = 64 * 1024 * 1024

_STATUS = {200: "OK", 201: "Created", 202: "Accepted", 400: "Bad Request",
           401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           410: "Gone",
           412: "Precondition Failed", 413: "Request Entity Too Large",
           415: "Unsupported Media Type"}


@dataclass
class Item:
    """What the repository holds after one (non No-Op) deposit."""

    id: str
    filename: str
    packaging: str
    files: dict[str, bytes]
    dropped_folders: tuple[str, ...]
    treatment: str
    headers: dict[str, str]
    queued: bool = False  # 202 Accepted: not ingested until process() says so


@dataclass
class Request1:
    method: str
    path: str
    headers: dict[str, str]
    status: int = 0


@dataclass
class Sword1App:
    """The WSGI application and its state (thread-safe)."""

    users: dict[str, str]
    max_upload_bytes: int
    mediation: bool = True
    known_owners: frozenset[str] = frozenset({"owner@example.org"})
    queue: bool = False
    base_url: str = ""
    items: dict[str, Item] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    requests: list[Request1] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> list[bytes]:
        headers = {k[5:].replace("_", "-").title(): str(v)
                   for k, v in environ.items() if k.startswith("HTTP_")}
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").title()] = environ[key]
        record = Request1(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), headers)
        with self.lock:
            self.requests.append(record)
        status, extra, body = self._route(environ, record)
        # read what is left of a refused body so the client sees the answer
        remaining = int(environ.get("CONTENT_LENGTH") or 0) - environ.get("sword1.read", 0)
        while remaining > 0 and (chunk := environ["wsgi.input"].read(min(remaining, 65536))):
            remaining -= len(chunk)
        record.status = status
        start(f"{status} {_STATUS.get(status, 'Status')}", extra)
        return [body]

    # -- routing ----------------------------------------------------------------------

    def _route(self, environ: dict[str, Any], r: Request1) -> tuple[int, list[tuple[str, str]],
                                                                       bytes]:
        if self._user(r) is None:
            return 401, [("WWW-Authenticate", 'Basic realm="MyCoRe SWORD"')], b""
        if r.path == "/sword/servicedocument" and r.method == "GET":
            return self._xml(200, self._service_document(), "application/atomsvc+xml")
        if r.path == f"/sword/collection/{COLLECTION}":
            if r.method != "POST":
                return self._error(405, "ErrorBadRequest", f"{r.method} is not allowed here")
            return self._deposit(environ, r)
        kind, _, ident = r.path.strip("/").rpartition("/")
        item = self.items.get(ident)
        if kind == "sword/entry" and ident in self.gone:
            return 410, [("Content-Type", "text/plain")], b"the queued package was dropped"
        if item is not None and kind == "sword/entry" and r.method == "GET":
            entry = self._entry(item.id, item.filename, item.packaging, item.treatment,
                                no_op=False, verbose=None)
            return self._xml(202 if item.queued else 200, entry)
        if item is not None and kind == "receive" and r.method == "GET":
            page = f"<html><body><h1>MyCoRe object {escape(ident)}</h1></body></html>"
            return 200, [("Content-Type", "text/html")], page.encode()
        return 404, [("Content-Type", "text/plain")], b"not found"

    def _user(self, r: Request1) -> str | None:
        value = r.headers.get("Authorization", "")
        if not value.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user if self.users.get(user) == password else None

    # -- deposit ----------------------------------------------------------------------

    def _deposit(self, environ: dict[str, Any], r: Request1) -> tuple[int, list[tuple[str, str]],
                                                                         bytes]:
        h = r.headers
        owner = h.get("X-On-Behalf-Of")
        if owner and not self.mediation:
            return self._error(412, "MediationNotAllowed", "mediated deposit is not allowed")
        if owner and owner not in self.known_owners:
            return self._error(403, "TargetOwnerUnknown", f"unknown user {owner}")
        packaging = h.get("X-Packaging", "")
        if packaging not in (METS_V1, METS_V2):
            return self._error(415, "ErrorContent",
                               f"packaging {packaging or '(none)'} is not supported; "
                               f"this collection accepts {METS_V1}")
        length = int(h.get("Content-Length") or 0)
        if length > self.max_upload_bytes:
            return self._error(413, "MaxUploadSizeExceeded",
                               f"{length} bytes exceed the limit of {self.max_upload_bytes} "
                               "bytes")
        filename = _filename(h.get("Content-Disposition", ""))
        if filename is None:
            return self._error(400, "ErrorBadRequest", "Content-Disposition has no filename")
        body = environ["wsgi.input"].read(min(length, MAX_BODY))
        environ["sword1.read"] = len(body)
        md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
        expected = (h.get("Content-Md5") or "").strip().lower()
        if expected and expected != md5:
            return self._error(412, "ErrorChecksumMismatch",
                               f"Content-MD5 {expected} does not match {md5}")
        try:
            files, dropped = _unpack(body)
        except ValueError as exc:
            return self._error(415, "ErrorContent", str(exc))
        no_op = h.get("X-No-Op", "").strip().lower() == "true"
        verbose = h.get("X-Verbose", "").strip().lower() == "true"
        treatment = (f"Deposited {filename} as a new MyCoRe object with {len(files)} "
                     "file(s) in one derivate; mets.xml mapped to MODS")
        if dropped:
            treatment += f"; folders dropped: {', '.join(dropped)}"
        ident = uuid.uuid4().hex[:12]
        log = (f"received {length} bytes, MD5 {md5}; zip holds {len(files)} file(s)"
               if verbose else None)
        if no_op:
            ident = "noop"
            treatment = "No-Op: nothing stored. " + treatment
        else:
            with self.lock:
                self.items[ident] = Item(ident, filename, packaging, files, dropped, treatment,
                                         dict(h), queued=self.queue)
        status = 202 if self.queue and not no_op else 201
        extra = [("Location", self._url(f"/sword/entry/{ident}"))] if not no_op else []
        return self._xml(status, self._entry(ident, filename, packaging, treatment,
                                             no_op=no_op, verbose=log), extra=extra)

    # -- documents --------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _service_document(self) -> str:
        return (
            f'<service xmlns="{APP_NS}" xmlns:atom="{ATOM_NS}" xmlns:sword="{SWORD_NS}" '
            f'xmlns:dcterms="{DC_NS}"><sword:version>1.3</sword:version>'
            "<sword:verbose>true</sword:verbose><sword:noOp>true</sword:noOp>"
            f"<sword:maxUploadSize>{self.max_upload_bytes // 1024}</sword:maxUploadSize>"
            "<workspace><atom:title>MyCoRe</atom:title>"
            f'<collection href="{self._url("/sword/collection/" + COLLECTION)}">'
            "<atom:title>MyCoRe objects</atom:title><accept>application/zip</accept>"
            f'<sword:acceptPackaging q="1.0">{METS_V1}</sword:acceptPackaging>'
            "<sword:collectionPolicy>Open access publications</sword:collectionPolicy>"
            "<sword:treatment>METS zips become a MyCoRe object and a derivate</sword:treatment>"
            f"<sword:mediation>{'true' if self.mediation else 'false'}</sword:mediation>"
            "</collection></workspace></service>"
        )

    def _entry(self, ident: str, filename: str, packaging: str, treatment: str, *,
               no_op: bool, verbose: str | None) -> str:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        edit = self._url(f"/sword/entry/{ident}")
        verbose_xml = (f"<sword:verboseDescription>{escape(verbose)}</sword:verboseDescription>"
                       if verbose else "")
        links = "" if no_op else (
            f'<link rel="edit" href={quoteattr(edit)}/>'
            f'<link rel="alternate" href={quoteattr(self._url("/receive/" + ident))}/>'
            f'<content type="application/zip" src={quoteattr(self._url("/receive/" + ident))}/>'
        )
        return (
            f'<entry xmlns="{ATOM_NS}" xmlns:sword="{SWORD_NS}"><id>{escape(edit)}</id>'
            f"<title>{escape(filename)}</title><updated>{now}</updated>"
            '<generator uri="https://www.mycore.de/" version="1.3"/>'
            f"{links}<sword:treatment>{escape(treatment)}</sword:treatment>{verbose_xml}"
            f"<sword:noOp>{'true' if no_op else 'false'}</sword:noOp>"
            f"<sword:packaging>{escape(packaging)}</sword:packaging>"
            "<sword:userAgent>deposit-services</sword:userAgent></entry>"
        )

    @staticmethod
    def _xml(status: int, body: str, content_type: str = "application/atom+xml;type=entry",
             extra: list[tuple[str, str]] | None = None
             ) -> tuple[int, list[tuple[str, str]], bytes]:
        data = ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()
        return status, [("Content-Type", content_type), *(extra or [])], data

    def _error(self, status: int, name: str, summary: str
               ) -> tuple[int, list[tuple[str, str]], bytes]:
        body = (
            f'<sword:error xmlns="{ATOM_NS}" xmlns:sword="{SWORD_NS}" '
            f'href="{ERROR_PREFIX}{name}"><title>ERROR</title>'
            '<generator uri="https://www.mycore.de/" version="1.3"/>'
            f"<summary>{escape(summary)}</summary>"
            "<sword:treatment>processing failed</sword:treatment>"
            f"<sword:verboseDescription>{escape(name)}: {escape(summary)}"
            "</sword:verboseDescription></sword:error>"
        )
        return self._xml(status, body, "application/xml")


def _filename(disposition: str) -> str | None:
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "filename" and value.strip():
            return value.strip().strip('"')
    return None


def _unpack(body: bytes) -> tuple[dict[str, bytes], tuple[str, ...]]:
    """The zip's files flattened (MyCoRe drops folders) and the folders dropped."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
    except zipfile.BadZipFile as exc:
        raise ValueError(f"the package is not a zip file: {exc}") from exc
    files: dict[str, bytes] = {}
    folders: set[str] = set()
    with archive:
        for info in archive.infolist():
            folder = posixpath.dirname(info.filename.rstrip("/"))
            if info.is_dir():
                folders.add(info.filename.rstrip("/"))
                continue
            if folder:
                folders.add(folder)
            files[posixpath.basename(info.filename)] = archive.read(info)
    if "mets.xml" not in files:
        raise ValueError("the zip holds no mets.xml (METS DSpace SIP required)")
    return files, tuple(sorted(folders))


class Sword1Server:
    """A running Sword1App on 127.0.0.1 and a port picked by the OS."""

    def __init__(self, app: Sword1App, username: str, password: str) -> None:
        self.app, self.username, self.password = app, username, password
        self._httpd = make_server("127.0.0.1", 0, app, server_class=_ThreadingWSGIServer,
                                  handler_class=_Handler)
        self.port = self._httpd.server_address[1]
        self.base_url = app.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def service_document_url(self) -> str:
        return self.base_url + "/sword/servicedocument"

    @property
    def collection_url(self) -> str:
        return f"{self.base_url}/sword/collection/{COLLECTION}"

    @property
    def items(self) -> dict[str, Item]:
        with self.app.lock:
            return dict(self.app.items)

    @property
    def requests(self) -> list[Request1]:
        with self.app.lock:
            return list(self.app.requests)

    def process(self) -> None:
        """The queue is done: every queued item is ingested (its entry answers 200)."""
        with self.app.lock:
            for item in self.app.items.values():
                item.queued = False

    def drop(self, ident: str) -> None:
        """The repository drops a queued package: its entry answers 410 Gone."""
        with self.app.lock:
            del self.app.items[ident]
            self.app.gone.add(ident)

    def binding(self, **overrides: Any) -> dict[str, Any]:
        """A PASS-style SWORD1 protocol-binding for this server."""
        binding: dict[str, Any] = {
            "protocol": "SWORD1", "username": self.username, "password": self.password,
            "service-doc": self.service_document_url,
            "default-collection": self.collection_url,
            "connect-timeout": 2, "read-timeout": 20,
        }
        binding.update(overrides)
        return binding

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@contextmanager
def running_sword1_server(
    *,
    username: str = "depositor",
    password: str = "mycore-s3cret",  # noqa: S107 - a test server's throwaway user
    max_upload_bytes: int = 10 * 1024 * 1024,
    mediation: bool = True,
    queue: bool = False,
) -> Iterator[Sword1Server]:
    """Start the SWORD 1.3 test server on a free loopback port; stop it on exit."""
    app = Sword1App(users={username: password}, max_upload_bytes=max_upload_bytes,
                    mediation=mediation, queue=queue)
    server = Sword1Server(app, username, password)
    server._thread.start()
    try:
        yield server
    finally:
        server.stop()
