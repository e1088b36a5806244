"""HTTP plumbing shared by the SWORDv2 transport and the SWORD statement resolver.

``SessionPool`` gives each worker thread its own ``requests.Session`` (a Session is not
safe to share between threads) and closes all of them on ``close``; ``read_limited``
reads a response body in blocks and refuses one larger than a limit, so a misbehaving
server cannot make us hold an unbounded document in memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import requests

BLOCK = 64 * 1024


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
