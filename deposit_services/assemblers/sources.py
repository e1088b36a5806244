"""Opening a submission file's bytes: file: URIs, paths and http(s) URLs, streamed.

Every failure becomes an ``AssemblyError`` that names the file, so it ends as the
Deposit's status message; network faults that may go away (refused, timeout, 5xx, 429,
a broken download) are ``TransientAssemblyError``s so the deposit is retried.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, cast
from urllib.parse import unquote, urlsplit

import requests
import urllib3

from deposit_services.errors import AssemblyError, TransientAssemblyError
from deposit_services.model.submission import DepositFile

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
CHUNK_SIZE = 1024 * 1024
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def local_path(location: str) -> Path | None:
    """The filesystem path for a file: URI or a plain path; None for http(s)."""
    parts = urlsplit(location)
    if parts.scheme in ("http", "https"):
        return None
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme and len(parts.scheme) > 1:
        raise AssemblyError(f"unsupported file location scheme {parts.scheme!r} in {location!r}")
    return Path(location)


class FileSources:
    """Where http(s) files come from: a URL under one of ``origins`` (a base URL, such as
    pass-core's) is fetched with that origin's session (its credentials, its pooled
    connections); any other with a plain request."""

    def __init__(self, origins: Mapping[str, requests.Session] | None = None) -> None:
        self._origins = sorted((origins or {}).items(), key=lambda o: -len(o[0]))

    def session_for(self, url: str) -> requests.Session | None:
        for base, session in self._origins:
            if url == base or url.startswith(base.rstrip("/") + "/"):
                return session
        return None


ANONYMOUS = FileSources()


@contextmanager
def open_file(file: DepositFile, sources: FileSources = ANONYMOUS
              ) -> Iterator[tuple[BinaryIO, int]]:
    """Yield ``(stream, size)`` for the file's bytes, to be read once.

    Local files are read in place. An http(s) response with a Content-Length and no
    content coding is streamed straight through; otherwise it is spooled into a
    temporary file first (an archive entry needs its size before its bytes).
    """
    path = local_path(file.location)
    if path is not None:
        try:
            stream = path.open("rb")
            size = os.fstat(stream.fileno()).st_size
        except OSError as exc:
            raise AssemblyError(
                f"file {file.name!r} ({file.location}) cannot be read: {exc.strerror or exc}"
            ) from exc
        with stream:
            yield stream, size
        return
    with _download(file, sources.session_for(file.location)) as (body, length):
        yield body, length


class _ResponseReader:
    """``response.raw`` as a file whose read errors are AssemblyErrors naming the file."""

    def __init__(self, response: requests.Response, file: DepositFile) -> None:
        self._raw = response.raw
        self._file = file

    def read(self, size: int = -1) -> bytes:
        try:
            data: bytes = self._raw.read(size if size >= 0 else None, decode_content=True)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientAssemblyError(
                f"file {self._file.name!r} ({self._file.location}) download failed: {exc}"
            ) from exc
        return data


@contextmanager
def _download(file: DepositFile, session: requests.Session | None
              ) -> Iterator[tuple[BinaryIO, int]]:
    try:
        response = (session or requests).get(
            file.location, stream=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            headers={"Accept-Encoding": "identity"},
        )
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientAssemblyError(
            f"file {file.name!r} ({file.location}) cannot be fetched: {exc}"
        ) from exc
    except requests.RequestException as exc:
        raise AssemblyError(
            f"file {file.name!r} ({file.location}) cannot be fetched: {exc}"
        ) from exc
    with response:
        if response.status_code != 200:
            cls = (TransientAssemblyError if response.status_code in TRANSIENT_STATUS
                   else AssemblyError)
            raise cls(f"file {file.name!r} ({file.location}) cannot be fetched: "
                      f"HTTP {response.status_code} {response.reason}")
        reader = _ResponseReader(response, file)
        length = response.headers.get("Content-Length", "")
        coding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if length.isdigit() and coding in ("", "identity"):
            yield cast(BinaryIO, reader), int(length)
            return
        with tempfile.TemporaryFile() as spool:
            shutil.copyfileobj(cast(BinaryIO, reader), spool, CHUNK_SIZE)
            size = spool.tell()
            spool.seek(0)
            yield spool, size
