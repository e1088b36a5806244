"""A SWORDv2 server for tests and benches: a WSGI app on a real loopback port.

Follows the SWORDv2 profile closely enough for the PyPI ``sword2`` client and our own
transport: service document, binary, metadata-only and multipart deposit to a Col-IRI
(Basic auth, On-Behalf-Of, Packaging, Content-MD5 as hex, maximum upload size, Slug
as the item's id), deposit receipt (201 + Location = Edit-IRI), the collection's
listing (GET on the Col-IRI; ``listing=False``: 405), PUT/POST/DELETE on the Edit-IRI
(replace or add metadata, complete an In-Progress deposit, delete), GET/PUT/POST/DELETE
on the EM-IRI (tests.support.sword_edit), Atom and ORE statements with a DSpace-like
state, and ``sword:error`` documents with the profile's status codes. Faults are
switched on per test. The application itself is tests.support.sword_app; its
documents tests.support.sword_documents.

Usage::

    with running_sword_server() as server:
        server.service_document_url, server.collection_url("theses")
        server.username, server.password          # the depositing user
        ...deposit...
        dep = server.deposits[deposit_id]         # ReceivedDeposit: md5, size, headers...
        server.set_state(dep.id, "archived")      # or set_state(ALL, "withdrawn")
        server.fail_next(3, status=503)           # next 3 requests answer 503, then normal
        server.delay_next(1, seconds=2.0)         # next request waits before answering
        server.drop_next(1)                       # next deposit: connection closed mid-body
        server.answer_late_next(event)            # next deposit stored, answered on event.set()
        server.clear_faults()                     # forget faults not yet used
        server.add_document("/statements/x.atom", body, auth=("u", "p"))
        server.add_redirect("/old", "/statements/x.atom")

``running_sword_server(max_upload_size=..., advertise_limits=False, store_dir=...,
tls=True)``: with ``advertise_limits`` False the service document omits maxUploadSize
and the collections accept any packaging in the document (the server still enforces
both), so a client's own pre-checks can be bypassed to see the server's 413/415.
Without ``store_dir`` the bytes are hashed and discarded (enough for a 1 GB bench);
with it each deposit is streamed to ``store_dir/<id>``. With ``tls`` the server speaks
HTTPS with a certificate signed by a throwaway CA (``server.ca_file``), which clients
do not trust unless told to. With ``receipt_in_response`` False a deposit is
answered 201 with a Location and no body (the profile lets the client GET the receipt).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server

from tests.support.sword_app import RequestRecord, SwordApp, _Aborted, _Document
from tests.support.sword_documents import (
    ALL,
    BINARY,
    METS_DSPACE,
    SIMPLE_ZIP,
    STATE_PREFIX,
    ReceivedDeposit,
)

__all__ = [
    "ALL",
    "BINARY",
    "METS_DSPACE",
    "SIMPLE_ZIP",
    "ReceivedDeposit",
    "RequestRecord",
    "SwordApp",
    "SwordServer",
    "running_sword_server",
]


class _QuietServerHandler(ServerHandler):
    def log_exception(self, exc_info: Any) -> None:
        if not isinstance(exc_info[1], (_Aborted, OSError)):
            super().log_exception(exc_info)

    def handle_error(self) -> None:
        if not self.headers_sent and not self.environ.get("sword.aborted"):  # type: ignore[attr-defined]
            super().handle_error()


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ["sword.abort"] = lambda: self._abort(environ)
        return environ

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):  # handshake here, not in accept()
            self.connection.do_handshake()

    def _abort(self, environ: dict[str, Any]) -> None:
        environ["sword.aborted"] = True
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536 or not self.parse_request():
            return
        if self.headers.get("Expect", "").strip().lower() == "100-continue":
            # curl asks before large uploads; without this it waits a second per request
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
        handler = _QuietServerHandler(
            self.rfile, self.wfile, self.get_stderr(), self.get_environ(),  # type: ignore[arg-type]
            multithread=True,
        )
        handler.request_handler = self  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            handler.run(self.server.get_app())  # type: ignore[attr-defined]


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up or refuse our certificate are part of the tests: no noise."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class SwordServer:
    """A running SwordApp on 127.0.0.1 and a port picked by the OS."""

    def __init__(self, app: SwordApp, username: str, password: str, tls: bool = False) -> None:
        self.app = app
        self.username = username
        self.password = password
        self._httpd = make_server(
            "127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_Handler
        )
        self.port = self._httpd.server_address[1]
        self.ca_file: Path | None = None
        self._cert_dir: Path | None = None
        if tls:
            from tests.support.ftp_server import make_certificates

            self._cert_dir = Path(tempfile.mkdtemp(prefix="sword-tls-"))
            self.ca_file, certfile = make_certificates(self._cert_dir)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(certfile)
            self._httpd.socket = context.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        scheme = "https" if tls else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"
        app.base_url = self.base_url
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> SwordServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        if self._cert_dir is not None:
            shutil.rmtree(self._cert_dir, ignore_errors=True)

    @property
    def service_document_url(self) -> str:
        return self.base_url + "/swordv2/servicedocument"

    def collection_url(self, name: str) -> str:
        return f"{self.base_url}/swordv2/collection/{name}"

    def edit_url(self, deposit_id: str) -> str:
        return f"{self.base_url}/swordv2/edit/{deposit_id}"

    def statement_url(self, deposit_id: str, kind: str = "atom") -> str:
        ext = "atom" if kind == "atom" else "rdf"
        return f"{self.base_url}/swordv2/statement/{deposit_id}.{ext}"

    @property
    def deposits(self) -> dict[str, ReceivedDeposit]:
        with self.app._lock:
            return {k: v for k, v in self.app.deposits.items() if v is not None}

    @property
    def requests(self) -> list[RequestRecord]:
        with self.app._lock:
            return list(self.app.requests)

    def set_state(self, deposit_id: str, state: str) -> None:
        """Move one deposit (or ``ALL``) to ``state``: a DSpace short name or a full URI."""
        uri = state if "://" in state else STATE_PREFIX + state
        with self.app._lock:
            targets = [d for d in self.app.deposits.values() if d is not None]
            if deposit_id != ALL:
                targets = [d for d in targets if d.id == deposit_id]
                if not targets:
                    raise KeyError(deposit_id)
            for deposit in targets:
                deposit.state = uri

    def fail_next(self, count: int = 1, status: int = 503, retry_after: int | None = None) -> None:
        """The next ``count`` requests answer ``status`` (4xx: with an error document)."""
        self.app.add_fault("status", (status, retry_after), count)

    def delay_next(self, count: int = 1, seconds: float = 1.0) -> None:
        """The next ``count`` requests read the body, then wait ``seconds`` before answering."""
        self.app.add_fault("delay", seconds, count)

    def answer_late_next(self, release: threading.Event, ingested: bool = True) -> None:
        """The next deposit (POST/PUT) is handled (stored) but answered only when
        ``release`` is set: a client with a shorter read timeout gives up after its
        upload. ``ingested`` False: the item stays out of the collection's listing
        until then too (a slow ingest)."""
        self.app.add_fault("late", (release, not ingested), 1)

    def drop_next(self, count: int = 1) -> None:
        """The next ``count`` deposits (POST/PUT): read part of the body, then close the
        connection; requests without a body in between are answered normally."""
        self.app.add_fault("drop", None, count)

    def clear_faults(self) -> None:
        """Forget the faults queued and not yet used."""
        self.app.clear_faults()

    def add_document(
        self,
        path: str,
        body: bytes,
        content_type: str = "application/atom+xml;type=feed",
        auth: tuple[str, str] | None = None,
    ) -> str:
        """Serve ``body`` at ``path`` (Basic ``auth`` required if given); returns its URL."""
        self.app.documents[path] = _Document(body, content_type, auth)
        return self.base_url + path

    def add_redirect(self, path: str, target: str, status: int = 302) -> str:
        self.app.redirects[path] = (target, status)
        return self.base_url + path


@contextmanager
def running_sword_server(
    *,
    username: str = "sword@example.org",
    password: str = "s3cret-sword",  # noqa: S107 - a test server's throwaway user
    extra_users: dict[str, str] | None = None,
    collections: dict[str, tuple[str, ...]] | None = None,
    max_upload_size: int | None = None,
    advertise_limits: bool = True,
    store_dir: Path | None = None,
    mediation: bool = True,
    known_owners: Iterable[str] = ("owner@example.org",),
    tls: bool = False,
    receipt_in_response: bool = True,
    listing: bool = True,
) -> Iterator[SwordServer]:
    """Start a SWORDv2 server on a free loopback port; stop it on exit.

    Default collections: ``default`` and ``theses`` (METSDSpaceSIP, SimpleZip, Binary).
    """
    users = {username: password, **(extra_users or {})}
    packagings = (METS_DSPACE, SIMPLE_ZIP, BINARY)
    app = SwordApp(
        users=users,
        collections=collections or {"default": packagings, "theses": packagings},
        max_upload_size=max_upload_size,
        advertise_limits=advertise_limits,
        store_dir=store_dir,
        mediation=mediation,
        known_owners=known_owners,
        receipt_in_response=receipt_in_response,
        listing=listing,
    )
    server = SwordServer(app, username, password, tls=tls).start()
    try:
        yield server
    finally:
        server.stop()
