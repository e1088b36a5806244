"""Opening a submission file's bytes: file: URIs, paths and http(s) URLs, streamed.

Every failure becomes an ``AssemblyError`` that names the file, so it ends as the
Deposit's status message; network faults that may go away (refused, timeout, 5xx, 429,
a broken download) are ``TransientAssemblyError``s so the deposit is retried.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, cast
from urllib.parse import unquote, urlsplit

import requests
import urllib3

from deposit_services.errors import AssemblyError, TransientAssemblyError
from deposit_services.http_status import http_status
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
    """Where a package's files may come from, and how they are fetched.

    ``confined`` (the worker's): a local file only from inside ``roots`` or its
    submission's own directory (``DepositFile.root``), after symbolic links are
    resolved; an http(s) file only from under one of ``origins`` (a base URL; its
    session, when it has one, brings its credentials: pass-core's file service), and
    never by a redirect. Anything else is refused before a byte is read, naming the
    file and the rule. Unconfined (the default, for a library caller that chose its
    own files): any path, any URL."""

    def __init__(self, origins: Mapping[str, requests.Session | None] | None = None,
                 roots: Sequence[Path] = (), *, confined: bool = False) -> None:
        self._origins = sorted(((base.rstrip("/"), session)
                                for base, session in (origins or {}).items()),
                               key=lambda o: -len(o[0]))
        self._roots = tuple(Path(os.path.realpath(root)) for root in roots)
        self.confined = confined

    def session_for(self, url: str) -> requests.Session | None:
        return self._origin(url)[1]

    def _origin(self, url: str) -> tuple[str | None, requests.Session | None]:
        for base, session in self._origins:
            if url == base or url.startswith(base + "/"):
                return base, session
        return None, None

    def check_url(self, file: DepositFile) -> None:
        if not self.confined:
            return
        base, _ = self._origin(file.location)
        if base is None:
            allowed = ", ".join(b for b, _ in self._origins) or "none configured"
            raise AssemblyError(
                f"file {file.name!r} ({file.location}) is not under an origin files may be "
                f"fetched from ({allowed}); add its origin to DEPOSIT_FILE_ORIGINS if it is "
                "to be trusted")
        _check_address(file, base)

    def check_path(self, file: DepositFile, path: Path) -> Path:
        """The real path of a local file, if it is inside an allowed root."""
        real = Path(os.path.realpath(path))
        if not self.confined:
            return real
        roots = self._roots + ((Path(os.path.realpath(file.root)),) if file.root else ())
        if not any(real == root or real.is_relative_to(root) for root in roots):
            allowed = ", ".join(str(r) for r in roots) or "none"
            raise AssemblyError(
                f"file {file.name!r} ({file.location}) is outside the directories files may "
                f"be read from ({allowed}): submit the graph with --files-dir naming its "
                "directory, or add the directory to DEPOSIT_FILE_ROOTS")
        return real


def _check_address(file: DepositFile, base: str) -> None:
    """A host name that resolves to a loopback, link-local or private address (a cloud
    metadata service, an internal server) is refused: such an address is trusted only
    when the origin names it itself (an IP address or ``localhost``)."""
    host = urlsplit(base).hostname or ""
    if host == "localhost" or _is_ip(host):
        return
    try:
        resolved = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return  # the fetch itself reports a host that does not resolve
    inner = sorted(a for a in resolved if _internal(a))
    if inner:
        raise AssemblyError(
            f"file {file.name!r} ({file.location}): {host} resolves to {', '.join(inner)}, "
            "an internal address; name it in DEPOSIT_FILE_ORIGINS by address if it is to be "
            "trusted")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return (ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_reserved
            or ip.is_multicast or ip.is_unspecified)


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
        path = sources.check_path(file, path)
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
    sources.check_url(file)
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
            headers={"Accept-Encoding": "identity"}, allow_redirects=False,
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
        if 300 <= response.status_code < 400:
            raise AssemblyError(
                f"file {file.name!r} ({file.location}) answered HTTP {response.status_code}, "
                f"a redirect to {response.headers.get('Location', '?')!r}: redirects are not "
                "followed (a file is fetched only from where it is said to be)")
        if response.status_code != 200:
            cls = (TransientAssemblyError if response.status_code in TRANSIENT_STATUS
                   else AssemblyError)
            raise cls(f"file {file.name!r} ({file.location}) cannot be fetched: "
                      f"{http_status(response.status_code, response.reason)}")
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
