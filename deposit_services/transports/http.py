"""HTTP pieces every HTTP protocol family uses (SWORD, DSpace ...): a session per
thread, bounded reading of a response, a cached document, ``requests``' errors mapped
to ours in one place (TLS and bad URLs permanent, time-outs and connection faults
transient; a request whose body went out whole and whose answer did not come in time
``OutcomeUnknown``), and a REST API's HTTP status mapped to ours (``raise_for_status``:
3xx and 4xx permanent, 401/403 AuthenticationError, 429 and 5xx transient)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import requests

from deposit_services.errors import (
    AuthenticationError,
    OutcomeUnknown,
    PermanentTransferError,
    TransientTransferError,
)
from deposit_services.http_status import http_status

BLOCK = 64 * 1024
MAX_JSON_BYTES = 16 * 1024 * 1024  # a REST API answer read whole (read_json)


@contextmanager
def transfer_errors(what: str, url: str, changes: bool = False) -> Iterator[None]:
    """``requests``' exceptions raised inside as TransferErrors naming ``what`` and
    ``url``: a TLS failure or a bad URL will not go away, anything else may. With
    ``changes`` (a request that makes or changes something at the target), a read
    time-out is OutcomeUnknown: the request went out whole and the target may have
    done it, so the next attempt asks the target (``Transport.reconcile``) first."""
    try:
        yield
    except requests.exceptions.SSLError as exc:
        raise PermanentTransferError(f"{what}: TLS failure talking to {url}: {exc}") from exc
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
        raise PermanentTransferError(f"{what}: bad URL {url}: {exc}") from exc
    except requests.exceptions.ReadTimeout as exc:
        if changes:
            raise OutcomeUnknown(
                f"{what}: sent to {url}, no answer in time ({exc}); outcome unknown"
            ) from exc
        raise TransientTransferError(f"{what}: {url} timed out: {exc}") from exc
    except requests.exceptions.Timeout as exc:
        raise TransientTransferError(f"{what}: {url} timed out: {exc}") from exc
    except requests.RequestException as exc:
        raise TransientTransferError(f"{what}: {url} failed: {exc}") from exc


T = TypeVar("T")


class Cached(Generic[T]):
    """One value fetched on demand and kept for ``ttl`` seconds (thread-safe): a
    service document, read once per TTL by every thread."""

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._value: T | None = None
        self._at = 0.0

    def get(self, fetch: Callable[[], T], refresh: bool = False) -> T:
        with self._lock:
            if (self._value is not None and not refresh
                    and time.monotonic() - self._at < self._ttl):
                return self._value
        value = fetch()  # outside the lock: a slow server holds no other thread
        with self._lock:
            self._value, self._at = value, time.monotonic()
        return value


class DocumentTooLarge(ValueError):
    """A response body is larger than the limit given to ``read_limited``."""


class SessionPool:
    """One ``requests.Session`` per thread, made by ``configure``; all closed by ``close``."""

    def __init__(self, configure: Callable[[requests.Session], None]) -> None:
        self._configure = configure
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[requests.Session] = []

    def get(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._configure(session)
            self._local.session = session
            with self._lock:
                self._all.append(session)
        return session

    def close(self) -> None:
        """Close every thread's session; a thread that asks again gets a new one."""
        with self._lock:
            sessions, self._all = self._all, []
        for session in sessions:
            session.close()
        self._local = threading.local()


def read_limited(response: requests.Response, limit: int) -> bytes:
    """The body of ``response`` (opened with ``stream=True``), at most ``limit`` bytes.

    Raises DocumentTooLarge past the limit; requests' own errors pass through.
    """
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_content(BLOCK):
        total += len(chunk)
        if total > limit:
            raise DocumentTooLarge(f"the response is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def read_json(response: requests.Response, what: str, limit: int = MAX_JSON_BYTES) -> Any:
    """A REST API's JSON answer (None when empty), read within ``limit``: too large or
    not JSON is permanent, a read cut short transient."""
    try:
        raw = read_limited(response, limit)
    except DocumentTooLarge as exc:
        raise PermanentTransferError(f"{what}: {exc}") from exc
    except requests.RequestException as exc:
        raise TransientTransferError(f"{what}: reading the answer failed: {exc}") from exc
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise PermanentTransferError(
            f"{what}: the answer is not JSON ({exc}): {raw[:200]!r}") from exc


def retry_after(error: BaseException) -> str | None:
    """The ``Retry-After`` a 429 or 5xx answer carried (``raise_for_status``), if any."""
    value = getattr(error, "retry_after", None)
    return str(value) if value else None


def error_reason(response: requests.Response,
                 details: Callable[[Any], list[str]] | None = None) -> str:
    """``: <message> (detail; ...)`` from a REST API's JSON error body (``message``,
    and what ``details`` finds in the body), or "" when it has none."""
    try:
        raw = read_limited(response, 64 * 1024)
        body = json.loads(raw) if raw.strip() else None
    except (ValueError, DocumentTooLarge, requests.RequestException):
        return ""
    if not isinstance(body, dict):
        return ""
    message = str(body.get("message") or "")[:500]
    found = details(body) if details else []
    text = message + (f" ({'; '.join(found)})" if found else "")
    return f": {text}" if text else ""


def raise_for_status(response: requests.Response, what: str, advice: Mapping[int, str],
                     api_setting: str, details: Callable[[Any], list[str]] | None = None
                     ) -> None:
    """A REST API's non-2xx answer as our error, the one mapping of HTTP status to
    error class: 3xx permanent (put the final URL in ``api_setting``), 429 and 5xx
    transient (``Retry-After`` kept, see ``retry_after``), 401 and 403
    AuthenticationError, any other 4xx permanent; each quotes the server's own message
    (``error_reason`` with ``details``). ``advice`` maps a status to what the operator
    fixes."""
    status = response.status_code
    if status < 300:
        return
    reason = error_reason(response, details)
    words = f"{what} refused: {http_status(status, response.reason)}{reason}"
    fix = f"; {advice[status]}" if status in advice else ""
    if status < 400:
        raise PermanentTransferError(
            f"{words}; redirected to {response.headers.get('Location')!r}: put the "
            f"final URL in {api_setting}")
    if status == 429 or status >= 500:
        after = response.headers.get("Retry-After")
        error = TransientTransferError(words + (f" (Retry-After: {after})" if after else ""))
        error.retry_after = after  # type: ignore[attr-defined]
        raise error
    if status in (401, 403):
        raise AuthenticationError(words + fix)
    raise PermanentTransferError(words + fix)
