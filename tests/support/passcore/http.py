"""The HTTP side of the test pass-core: Spring Security in front of Elide and the file service.

Order per request, as pass-core's filter chain has it (SecurityConfiguration): queued
faults first (they stand for the network or a proxy), then the CSRF filter for every
method but GET/HEAD/TRACE/OPTIONS (double submit: header ``X-XSRF-TOKEN`` must equal the
``XSRF-TOKEN`` cookie, any value; 403 otherwise, before authentication), then HTTP Basic
(401 with no ``WWW-Authenticate``, so browsers show no popup), then the endpoint. Any
response to a request without the ``XSRF-TOKEN`` cookie sets one (CsrfCookieFilter loads
the token for every request; CookieCsrfTokenRepository.withHttpOnlyFalse, Path=/).
Messages are published after the change is stored and before the answer is written, as
pass-core's POSTCOMMIT hooks run inside the request; a publisher failure is a 500 although
the change stays committed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.support.passcore.errors import JSON_API, ApiError, SpringError, spring_error_body
from tests.support.passcore.files import MAX_FILE_SIZE, FileStore, guess_type, parse_multipart
from tests.support.passcore.jsonapi import JsonApi, Outcome
from tests.support.passcore.store import Message, Store

CSRF_COOKIE = "XSRF-TOKEN"
CSRF_HEADER = "X-XSRF-TOKEN"
SAFE_METHODS = frozenset({"GET", "HEAD", "TRACE", "OPTIONS"})

OnMessage = Callable[[str, str, dict[str, str]], None]


@dataclass
class Request:
    """One request the server received (for counting round trips and asserting on them)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = b""  # kept for /data requests only
    status: int = 0

    @property
    def params(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for key, value in parse_qsl(self.query, keep_blank_values=True):
            found.setdefault(key, []).append(value)
        return found

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Fault:
    kind: str  # "status", "delay" or "drop"
    remaining: int
    path_prefix: str = ""
    status: int = 500
    seconds: float = 0.0
    after_commit: bool = False


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: Iterator[bytes] | None = None
    length: int | None = None


class _Dropped(Exception):
    """The connection is to be closed without an answer."""


class App:
    """The server's state: the store, the files, the requests seen, the faults queued."""

    def __init__(self, store: Store, files: FileStore, username: str, password: str,
                 on_message: OnMessage | None) -> None:
        self.store = store
        self.files = files
        self.username = username
        self.password = password
        self.on_message = on_message
        self.base_url = ""
        self.jsonapi = JsonApi(store, "")
        self.requests: list[Request] = []
        self.messages: list[Message] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()

    def set_base_url(self, base_url: str) -> None:
        self.base_url = base_url
        self.jsonapi.base_url = base_url + "/data"

    def take_fault(self, path: str, after_commit: bool) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.after_commit == after_commit and path.startswith(fault.path_prefix):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def publish(self, messages: list[Message]) -> None:
        for message in messages:
            with self.lock:
                self.messages.append(message)
            if self.on_message is not None:
                self.on_message(message.kind, message.body, dict(message.properties))


class PassCoreHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, app: App) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.app = app

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # clients hanging up are no news
            super().handle_error(request, client_address)


def _accepts_json_api(accept: str) -> bool:
    if not accept.strip():
        return True
    for item in accept.split(","):
        media = item.split(";")[0].strip().lower()
        if media in ("*/*", "application/*", JSON_API, "application/*+json"):
            return True
    return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: PassCoreHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    # -- plumbing ----------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send(self, response: _Response, new_token: str | None) -> None:
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers:
            self.send_header(name, value)
        if new_token is not None:
            self.send_header("Set-Cookie", f"{CSRF_COOKIE}={new_token}; Path=/")
        length = response.length if response.stream is not None else len(response.body)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD":
            return
        if response.stream is not None:
            for chunk in response.stream:
                self.wfile.write(chunk)
        else:
            self.wfile.write(response.body)

    def _error_type(self) -> str:
        accept = self.headers.get("Accept", "")
        if JSON_API in accept and "application/json" not in accept:
            return JSON_API
        return "application/json"

    def _handle(self) -> None:
        app = self.server.app
        parts = urlsplit(self.path)
        path = parts.path
        record = Request(self.command, path, parts.query, dict(self.headers.items()))
        with app.lock:
            app.requests.append(record)
        body = self._read_body()
        if path.startswith("/data"):
            record.body = body
        cookies = SimpleCookie()
        with contextlib.suppress(CookieError):
            cookies.load(self.headers.get("Cookie", ""))
        token = cookies[CSRF_COOKIE].value if CSRF_COOKIE in cookies else None
        new_token = None if token else str(uuid.uuid4())
        try:
            response = self._respond(app, path, parts.query, body, token)
        except _Dropped:
            record.status = 0
            self._drop()
            return
        record.status = response.status
        try:
            self._send(response, new_token)
        except OSError:
            self.close_connection = True

    def _respond(self, app: App, path: str, query: str, body: bytes,
                 token: str | None) -> _Response:
        fault = app.take_fault(path, after_commit=False)
        if fault is not None:
            if fault.kind == "delay":
                time.sleep(fault.seconds)
            elif fault.kind == "drop":
                raise _Dropped
            else:
                return self._fault_response(fault.status, path)
        try:
            outcome = self._guarded(app, path, query, body, token)
            if isinstance(outcome, _Response):
                response = outcome
            else:
                app.publish(outcome.messages)
                response = self._outcome_response(outcome)
        except ApiError as exc:
            return _Response(exc.status, exc.body(), JSON_API)
        except SpringError as exc:
            return _Response(exc.status, exc.body(path), self._error_type())
        except Exception:
            traceback.print_exc()
            return _Response(500, spring_error_body(500, path), self._error_type())
        late = app.take_fault(path, after_commit=True)
        if late is not None:
            if late.kind == "drop":
                raise _Dropped
            return self._fault_response(late.status, path)
        return response

    def _fault_response(self, status: int, path: str) -> _Response:
        if 400 <= status < 500:
            return _Response(status, ApiError(status, HTTPStatus(status).phrase).body(), JSON_API)
        return _Response(status, spring_error_body(status, path), self._error_type())

    @staticmethod
    def _outcome_response(outcome: Outcome) -> _Response:
        if outcome.document is None:
            return _Response(outcome.status)
        body = json.dumps(outcome.document, separators=(",", ":")).encode()
        return _Response(outcome.status, body, JSON_API)

    def _guarded(self, app: App, path: str, query: str, body: bytes,
                 token: str | None) -> Outcome | _Response:
        """Spring Security's checks, then the endpoint."""
        if self.command not in SAFE_METHODS:
            header = self.headers.get(CSRF_HEADER, "")
            if not header.strip() or token is None or header != token:
                raise SpringError(403)
        if not self._authenticated(app):
            raise SpringError(401)
        segments = [unquote(s) for s in path.split("/")[1:]]
        if segments and segments[0] == "data" and len(segments) > 1 and segments[1]:
            while segments[-1] == "":  # Elide normalises away a trailing slash
                segments.pop()
            return self._data(app, segments[1:], query, body)
        if segments and segments[0] == "file":
            return self._file(app, segments[1:], body)
        raise SpringError(404)

    def _authenticated(self, app: App) -> bool:
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return user == app.username and password == app.password

    def _data(self, app: App, parts: list[str], query: str, body: bytes) -> Outcome:
        method = "GET" if self.command == "HEAD" else self.command
        if method not in ("GET", "POST", "PATCH", "DELETE"):
            raise SpringError(405)
        if not _accepts_json_api(self.headers.get("Accept", "")):
            raise SpringError(406)
        if method in ("POST", "PATCH"):
            media = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if media != JSON_API:
                raise SpringError(415)
        if method == "GET":
            params: dict[str, list[str]] = {}
            for key, value in parse_qsl(query, keep_blank_values=True):
                params.setdefault(key, []).append(value)
            return app.jsonapi.get(parts, params)
        if method == "POST":
            return app.jsonapi.post(parts, body)
        if method == "PATCH":
            return app.jsonapi.patch(parts, body)
        return app.jsonapi.delete(parts)

    def _file(self, app: App, parts: list[str], body: bytes) -> _Response:
        """The file service (PassFileServiceController)."""
        if parts in ([], [""]):
            if self.command != "POST":
                raise SpringError(405)
            if len(body) > MAX_FILE_SIZE:
                raise SpringError(413)
            try:
                found = parse_multipart(self.headers.get("Content-Type", ""), body)
            except ValueError as exc:
                raise SpringError(500, str(exc)) from exc
            upload = next((p for p in found if p.name == "file" and p.filename is not None), None)
            if upload is None:
                raise SpringError(400, "Required part 'file' is not present.")
            if not upload.data:
                return _Response(400)
            stored = app.files.put(upload.filename or "", upload.data)
            payload = json.dumps(app.files.describe(stored)).encode()
            return _Response(201, payload, "application/json", [("Location", stored.uuid)])
        if len(parts) != 2 or not all(parts):
            raise SpringError(404)
        if self.command in ("GET", "HEAD"):
            stored_file = app.files.get(parts[0], parts[1])
            if stored_file is None:
                return _Response(404)
            content_type = guess_type(stored_file.name) or "application/octet-stream"
            disposition = f'attachment; filename="{stored_file.name}"'
            return _Response(
                200, content_type=content_type, headers=[("Content-Disposition", disposition)],
                stream=_chunks(stored_file.path), length=stored_file.size,
            )
        if self.command == "DELETE":
            if not app.files.delete(parts[0], parts[1]):
                return _Response(404)
            return _Response(200, b"Deleted", "text/plain;charset=UTF-8")
        raise SpringError(405)


def _chunks(path: Any, size: int = 64 * 1024) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(size):
            yield chunk
