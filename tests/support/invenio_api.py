"""What the Invenio test servers (InvenioRDM, Zenodo) share: Invenio's JSON errors, a
bearer token with a write or read scope, routes answered by ``_<step>`` methods, steps
that can be told to fail or to pause (``Faults``), request bodies written to disk as
they arrive with their md5."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

BLOCK = 1024 * 1024


class Fail(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None,
                 errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.headers, self.errors = headers or {}, errors


@dataclass
class StoredFile:
    key: str
    path: Path | None = None
    size: int = 0
    md5: str | None = None
    committed: bool = False

    def data(self) -> bytes:
        return self.path.read_bytes() if self.path else b""


class Faults:
    """Failing and pausing named steps, shared by the Invenio and Zenodo servers."""

    def __init__(self) -> None:
        self.failures: dict[str, tuple[int, bool, dict[str, str]]] = {}
        self.pauses: dict[str, threading.Event] = {}
        self.reached: dict[str, threading.Event] = {}
        self.released = threading.Event()

    def fail(self, step: str, status: int, *, after: bool = False,
             headers: dict[str, str] | None = None) -> None:
        """Answer the next ``step`` with ``status``; ``after``: do it, lose the answer."""
        self.failures[step] = (status, after, headers or {})

    def pause(self, step: str) -> threading.Event:
        """Do the next ``step``, then hold its answer until ``release``; the Event is
        set when the step has been done."""
        self.released.clear()
        self.reached[step] = threading.Event()
        self.pauses[step] = self.reached[step]
        return self.reached[step]

    def release(self) -> None:
        self.released.set()

    def run(self, step: str, action: Callable[[], Response]) -> Response:
        failure = self.failures.pop(step, None)
        if failure and not failure[1]:
            raise Fail(failure[0], f"injected failure of {step}", failure[2])
        response = action()
        if failure:
            raise Fail(failure[0], f"injected failure after {step}", failure[2])
        reached = self.pauses.pop(step, None)
        if reached is not None:
            reached.set()
            self.released.wait(120)
        return response


def store_body(request: Request, directory: Path, name: str) -> tuple[Path, int, str]:
    """Write the request body to ``directory/name`` in blocks: (path, size, md5)."""
    length = request.content_length
    if length is None:
        raise Fail(411, "Content-Length required")
    path = directory / name
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    stream = request.stream
    with path.open("wb") as out:
        while size < length:
            data = stream.read(min(BLOCK, length - size))
            if not data:
                raise Fail(400, f"the body ended after {size} of {length} bytes")
            out.write(data)
            md5.update(data)
            size += len(data)
    return path, size, md5.hexdigest()


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def error_response(fail: Fail) -> Response:
    body: dict[str, Any] = {"status": fail.status, "message": fail.message}
    if fail.errors:
        body["errors"] = fail.errors
    response = json_response(body, fail.status)
    for name, value in fail.headers.items():
        response.headers[name] = value
    return response


class JsonApi:
    """What both Invenio APIs share: a bearer token (or ``?access_token=``) with a
    write or read scope, routes of (method, pattern, step) answered by ``_<step>``,
    each step run through ``faults``, errors as Invenio's JSON, every call listed."""

    ROUTES: tuple[tuple[str, str, str], ...] = ()

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens  # token -> "write" | "read"
        self.base = ""
        self.lock = threading.RLock()
        self.calls: list[tuple[str, str]] = []
        self.faults = Faults()
        self.fail, self.pause, self.release = (
            self.faults.fail, self.faults.pause, self.faults.release)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            self.calls.append((request.method, request.path))
        try:
            response = self.dispatch(request)
        except Fail as fail:
            response = error_response(fail)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        for method, pattern, step in self.ROUTES:
            match = re.fullmatch(pattern, path)
            if match and request.method == method:
                self._authorise(request)
                args = {k: unquote(v) for k, v in match.groupdict().items()}
                handler = getattr(self, f"_{step}")
                return self.faults.run(step, functools.partial(handler, request, **args))
        raise Fail(405 if any(re.fullmatch(p, path) for _, p, _ in self.ROUTES) else 404,
                   f"The requested URL was not found on the server: {path}")

    def _authorise(self, request: Request) -> None:
        header = request.headers.get("Authorization", "")
        token = (header.removeprefix("Bearer ") if header.startswith("Bearer ")
                 else request.args.get("access_token"))
        scope = self.tokens.get(token or "")
        if scope is None:
            raise Fail(401, "The server could not verify that you are authorized to access "
                            "the URL requested.")
        if scope != "write" and request.method != "GET":
            raise Fail(403, "You don't have the permission to access the requested resource.")
