"""HTTP pieces every HTTP protocol family uses (SWORD, DSpace ...): a session per
thread, bounded reading of a response, a cached document, and ``requests``' errors
mapped to ours in one place (TLS and bad URLs permanent, time-outs and connection
faults transient)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

import requests

from deposit_services.errors import PermanentTransferError, TransientTransferError

BLOCK = 64 * 1024


@contextmanager
def transfer_errors(what: str, url: str) -> Iterator[None]:
    """``requests``' exceptions raised inside as TransferErrors naming ``what`` and
    ``url``: a TLS failure or a bad URL will not go away, anything else may."""
    try:
        yield
    except requests.exceptions.SSLError as exc:
        raise PermanentTransferError(f"{what}: TLS failure talking to {url}: {exc}") from exc
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
        raise PermanentTransferError(f"{what}: bad URL {url}: {exc}") from exc
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


