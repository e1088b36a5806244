"""Opening a submission file's bytes: file: URIs, paths and http(s) URLs, streamed.

Every failure becomes an ``AssemblyError`` that names the file, so it ends as the
Deposit's status message.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

import requests

from deposit_services.errors import AssemblyError
from deposit_services.model.submission import DepositFile

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
CHUNK_SIZE = 1024 * 1024


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


@contextmanager
def open_file(file: DepositFile) -> Iterator[tuple[BinaryIO, int]]:
    """Yield ``(stream, size)`` for the file's bytes.

    Local files are read in place; http(s) files are streamed once into a temporary
    file first (an archive entry needs its size before its bytes).
    """
    path = local_path(file.location)
    if path is not None:
        try:
            stream = path.open("rb")
        except OSError as exc:
            raise AssemblyError(
                f"file {file.name!r} ({file.location}) cannot be read: {exc.strerror or exc}"
            ) from exc
        with stream:
            size = os.fstat(stream.fileno()).st_size
            yield stream, size
        return
    with _download(file) as (stream, size):
        yield stream, size


@contextmanager
def _download(file: DepositFile) -> Iterator[tuple[BinaryIO, int]]:
    try:
        response = requests.get(
            file.location, stream=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)
        )
    except requests.RequestException as exc:
        raise AssemblyError(f"file {file.name!r} ({file.location}) cannot be fetched: {exc}") from exc
    with response, tempfile.TemporaryFile() as spool:
        if response.status_code != 200:
            raise AssemblyError(
                f"file {file.name!r} ({file.location}) cannot be fetched: "
                f"HTTP {response.status_code} {response.reason}"
            )
        try:
            response.raw.decode_content = True
            shutil.copyfileobj(response.raw, spool, CHUNK_SIZE)
        except (requests.RequestException, OSError) as exc:
            raise AssemblyError(
                f"file {file.name!r} ({file.location}) download failed: {exc}"
            ) from exc
        size = spool.tell()
        spool.seek(0)
        yield spool, size
