"""HTTP for the DSpace 7+ REST API: CSRF token, JWT login, HAL JSON and error mapping.

DSpace guards every changing request with a CSRF token: ``GET {api}/security/csrf``
answers with a ``DSPACE-XSRF-TOKEN`` header, which is sent back as the
``X-XSRF-TOKEN`` header and the ``DSPACE-XSRF-COOKIE`` cookie; any response may carry
a new one, which replaces it. ``POST /authn/login`` (form ``user``, ``password``)
answers with the JWT in its ``Authorization`` header; when the server later answers
401 the JWT has expired and the client logs in again, once, and repeats the request.

Faults: 401/403 AuthenticationError (with the server's message), 422 and other 4xx
permanent (422 quotes what DSpace says is wrong), 5xx, 429 (with Retry-After) and
connection errors or timeouts transient; a body that is not the JSON expected is a
PermanentTransferError, never a crash.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import requests

from deposit_services.errors import (
    AuthenticationError,
    PermanentTransferError,
)
from deposit_services.http_status import http_status
from deposit_services.transports.http import (
    SessionPool,
    error_reason,
    raise_for_status,
    read_json,
    transfer_errors,
)

CSRF_HEADER = "DSPACE-XSRF-TOKEN"
CSRF_REQUEST_HEADER = "X-XSRF-TOKEN"
CSRF_COOKIE = "DSPACE-XSRF-COOKIE"
CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class DSpaceAccount:
    """Where the API is and who logs in."""

    api_url: str
    user: str
    password: str
    user_agent: str = "deposit-services"
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    verify: bool | str = True

    def __repr__(self) -> str:  # never show the password
        return f"DSpaceAccount(api_url={self.api_url!r}, user={self.user!r})"


class MultipartBody:
    """A ``multipart/form-data`` body read block by block from the files themselves, so
    memory does not grow with the package; ``__len__`` gives requests the length."""

    BLOCK = 1024 * 1024

    def __init__(self, parts: Iterable[tuple[str, str, str, BinaryIO, int]],
                 boundary: str) -> None:
        self.boundary = boundary
        self._segments: list[bytes | tuple[BinaryIO, int]] = []
        length = 0
        for field_name, filename, mime_type, stream, size in parts:
            safe = filename.replace('"', "'").replace("\r", " ").replace("\n", " ")
            head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field_name}\"; "
                    f"filename=\"{safe}\"\r\nContent-Type: {mime_type}\r\n\r\n").encode()
            self._segments += [head, (stream, size), b"\r\n"]
            length += len(head) + size + 2
        tail = f"--{boundary}--\r\n".encode()
        self._segments.append(tail)
        self._length = length + len(tail)
        self._index = 0
        self._left: int | None = None
        self.sent = 0

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._length

    def read(self, amount: int = -1) -> bytes:
        want = max(amount, self.BLOCK) if amount >= 0 else self.BLOCK
        while self._index < len(self._segments):
            segment = self._segments[self._index]
            if isinstance(segment, bytes):
                self._index += 1
                self.sent += len(segment)
                return segment
            stream, size = segment
            if self._left is None:
                self._left = size
            if self._left == 0:
                self._index, self._left = self._index + 1, None
                continue
            data = stream.read(min(want, self._left))
            if not data:
                raise OSError(f"a file ended {self._left} bytes early while being sent")
            self._left -= len(data)
            self.sent += len(data)
            return data
        return b""


class DSpaceClient:
    """Requests to one DSpace API as one account; safe to use from several threads."""

    def __init__(self, account: DSpaceAccount) -> None:
        self.account = account
        self.api = account.api_url.rstrip("/")
        self.sessions = SessionPool(self._configure_session)
        self._lock = threading.Lock()
        self._csrf: str | None = None
        self._jwt: str | None = None
        self.logins = 0

    def _configure_session(self, session: requests.Session) -> None:
        session.headers["User-Agent"] = self.account.user_agent
        session.headers["Accept"] = "application/json, application/hal+json"

    def close(self) -> None:
        self.sessions.close()

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.api}/{path.lstrip('/')}"

    # -- tokens -------------------------------------------------------------------------

    def _remember_csrf(self, response: requests.Response) -> None:
        token = response.headers.get(CSRF_HEADER)
        if token:
            with self._lock:
                self._csrf = token

    def _csrf_token(self) -> str:
        with self._lock:
            token = self._csrf
        if token is None:
            response = self._send("GET", self.url("security/csrf"), "DSpace CSRF token", {})
            response.close()
            with self._lock:
                token = self._csrf
            if token is None:
                raise PermanentTransferError(
                    f"DSpace CSRF token: {self.url('security/csrf')} answered "
                    f"{http_status(response.status_code, response.reason)} without a "
                    f"{CSRF_HEADER} header; is DSPACE_API_URL the REST API (…/server/api)?")
        return token

    def login(self) -> str:
        """Log in and keep the JWT; returns it."""
        what = f"DSpace login as {self.account.user!r}"
        for attempt in range(2):
            csrf = self._csrf_token()
            response = self._send(
                "POST", self.url("authn/login"), what,
                {"data": {"user": self.account.user, "password": self.account.password},
                 "headers": self._csrf_headers(csrf)})
            if (attempt == 0 and response.status_code == 403
                    and response.headers.get(CSRF_HEADER, csrf) != csrf):
                response.close()  # stale CSRF token; the answer carried the new one
                continue
            break
        with response:
            if response.status_code in (401, 403):
                raise AuthenticationError(
                    f"{what} refused: {http_status(response.status_code, response.reason)}"
                    f"{error_reason(response)}; check DSPACE_USER and DSPACE_PASSWORD")
            self.raise_for_status(response, what)
            jwt = response.headers.get("Authorization")
        if not jwt:
            raise PermanentTransferError(f"{what}: the answer has no Authorization header")
        with self._lock:
            self._jwt = jwt
            self.logins += 1
        return jwt

    @staticmethod
    def _csrf_headers(token: str) -> dict[str, str]:
        return {CSRF_REQUEST_HEADER: token, "Cookie": f"{CSRF_COOKIE}={token}"}

    # -- requests -----------------------------------------------------------------------

    def _send(self, method: str, url: str, what: str, kwargs: Mapping[str, Any],
              changes: bool = False) -> requests.Response:
        a = self.account
        with transfer_errors(what, url, changes):
            response = self.sessions.get().request(
                method, url, timeout=(a.connect_timeout, a.read_timeout), verify=a.verify,
                allow_redirects=False, stream=True, **kwargs)
        self._remember_csrf(response)
        return response

    def call(self, method: str, path: str, what: str, *,
             body: Callable[[], dict[str, Any]] | None = None,
             params: Mapping[str, str] | None = None,
             missing_ok: bool = False, changes: bool = False) -> Any:
        """``method path`` logged in, with the CSRF token on changing requests; the JSON
        answer (None for 204, or 404/410 when ``missing_ok``). ``body`` makes the
        request's ``data``/``json``/``headers`` afresh for each try (a stream is read once).
        ``changes``: the request makes something (an item, a workflow item) that sending
        it again would make twice, so a lost answer is OutcomeUnknown.
        """
        url = self.url(path)
        for attempt in range(3):
            with self._lock:
                jwt = self._jwt
            if jwt is None:
                jwt = self.login()
            kwargs: dict[str, Any] = dict(body() if body else {})
            headers = dict(kwargs.pop("headers", {}))
            headers["Authorization"] = jwt
            if method in CHANGING:
                headers.update(self._csrf_headers(self._csrf_token()))
            used_csrf = headers.get(CSRF_REQUEST_HEADER)
            response = self._send(method, url, what,
                                  {"headers": headers, "params": params, **kwargs},
                                  changes)
            with response:
                if attempt < 2 and response.status_code == 401:
                    with self._lock:  # expired JWT: log in again (once per request)
                        if self._jwt == jwt:
                            self._jwt = None
                    continue
                if (attempt < 2 and response.status_code == 403 and used_csrf
                        and response.headers.get(CSRF_HEADER, used_csrf) != used_csrf):
                    continue  # stale CSRF token, the answer carried the new one
                if missing_ok and response.status_code in (404, 410):
                    return None
                self.raise_for_status(response, what)
                if response.status_code == 204:
                    return None
                return read_json(response, what)
        raise AssertionError("unreachable")  # pragma: no cover

    def raise_for_status(self, response: requests.Response, what: str) -> None:
        """Turn a non-2xx answer into our error, quoting DSpace's message."""
        user = self.account.user
        raise_for_status(response, what, {
            401: f"authentication failed for {user!r}: check DSPACE_USER and DSPACE_PASSWORD",
            403: f"{user!r} is not allowed to do this: check the account's rights on the "
                 "collection (it must be a submitter)",
            422: "DSpace refused the submission's content: correct the field named above "
                 "(or the collection's submission form) and retry",
        }, "DSPACE_API_URL")
