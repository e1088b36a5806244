"""Submission files behind http(s) URLs, served by a real loopback HTTP server: streamed
into the package in one pass, and every failure an AssemblyError naming the file."""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deposit_services.assemblers import sources
from deposit_services.assemblers.bagit import BagItAssembler
from deposit_services.assemblers.simple import SimpleZipAssembler
from deposit_services.errors import AssemblyError, Transient
from deposit_services.model.entities import FileRole
from deposit_services.model.submission import DepositFile, DepositSubmission
from tests.unit.assemblers.helpers import (
    STAMP,
    assert_figures_match_disk,
    extract,
    members,
    no_spool_left,
)

BIG = os.urandom(3 * 1024 * 1024 + 11)
SMALL = b"a small text file\n" * 100


class Handler(BaseHTTPRequestHandler):
    """Paths: /big.bin and /small.txt with Content-Length, /chunked.bin without it,
    /gzip.txt gzip-encoded, /short.bin promises more than it sends, /stall.bin stops
    sending, /busy.pdf is a 503, anything else a 404."""

    requests_seen: list[str] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(200)
        for key, value in (headers or {"Content-Length": str(len(body))}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.requests_seen.append(self.path)
        if self.path == "/big.bin":
            self._send(BIG)
        elif self.path == "/small.txt":
            self._send(SMALL)
        elif self.path == "/chunked.bin":
            self.protocol_version = "HTTP/1.1"
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(BIG), 700_000):
                piece = BIG[start:start + 700_000]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/gzip.txt":
            body = gzip.compress(SMALL)
            self._send(body, {"Content-Length": str(len(body)), "Content-Encoding": "gzip"})
        elif self.path == "/short.bin":
            self._send(BIG[:1000], {"Content-Length": str(len(BIG))})
        elif self.path == "/busy.pdf":
            self.send_error(503, "Service Unavailable")
        elif self.path == "/stall.bin":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            time.sleep(3)
        else:
            self.send_error(404, "Not Found")


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Handler.requests_seen = []
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def remote(url: str, name: str) -> DepositFile:
    return DepositFile(id=name, name=name, location=url, role=FileRole.SUPPLEMENTAL)


def test_http_files_are_streamed_into_the_package_once(server: str, tmp_path: Path) -> None:
    submission = DepositSubmission(id="h", files=(
        remote(f"{server}/big.bin", "big.bin"), remote(f"{server}/small.txt", "small.txt"),
        remote(f"{server}/chunked.bin", "chunked.bin"),
        remote(f"{server}/gzip.txt", "gzip.txt")))
    package = SimpleZipAssembler({"archive": "TAR", "algorithms": ["md5"]}).assemble(
        submission, tmp_path / "work", STAMP)
    assert_figures_match_disk(package)
    found = members(package)
    assert found["big.bin"] == BIG and found["chunked.bin"] == BIG
    assert found["small.txt"] == SMALL and found["gzip.txt"] == SMALL  # decoded once
    assert found["manifest-md5.txt"].decode().splitlines()[0] == (
        f"{hashlib.md5(BIG).hexdigest()}  big.bin")
    assert sorted(Handler.requests_seen) == sorted(
        ["/big.bin", "/small.txt", "/chunked.bin", "/gzip.txt"])  # one request per file


def test_http_files_make_a_valid_bag(server: str, tmp_path: Path) -> None:
    import bagit

    submission = DepositSubmission(id="h", files=(
        remote(f"{server}/big.bin", "big.bin"), remote(f"{server}/chunked.bin", "c.bin")))
    package = BagItAssembler({"archive": "ZIP"}).assemble(submission, tmp_path / "w", STAMP)
    top = next(extract(package, tmp_path / "x").iterdir())
    bagit.Bag(str(top)).validate()


@pytest.mark.parametrize(
    ("path", "message", "transient"),
    [
        ("/missing.pdf", r"file 'x' \(http://127.0.0.1:\d+/missing.pdf\) cannot be fetched: "
                         r"HTTP 404 Not Found", False),
        ("/busy.pdf", r"file 'x' \(http://127.0.0.1:\d+/busy.pdf\) cannot be fetched: "
                      r"HTTP 503 Service Unavailable", True),
        ("/short.bin", r"file 'x' \(http://127.0.0.1:\d+/short.bin\) download failed", True),
    ],
)
def test_http_failures_name_the_file(server: str, tmp_path: Path, path: str,
                                     message: str, transient: bool) -> None:
    submission = DepositSubmission(id="h", files=(remote(server + path, "x"),))
    with pytest.raises(AssemblyError, match=message) as err:
        SimpleZipAssembler().assemble(submission, tmp_path / "work", STAMP)
    assert isinstance(err.value, Transient) is transient  # 5xx and broken downloads are retried
    assert no_spool_left(tmp_path / "work")


def test_a_stalled_download_times_out(server: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "READ_TIMEOUT", 0.5)
    submission = DepositSubmission(id="h", files=(remote(f"{server}/stall.bin", "stall.bin"),))
    started = time.monotonic()
    with pytest.raises(AssemblyError, match=r"'stall.bin'.*download failed.*timed out") as err:
        SimpleZipAssembler().assemble(submission, tmp_path / "work", STAMP)
    assert isinstance(err.value, Transient)
    assert time.monotonic() - started < 2.5
    assert no_spool_left(tmp_path / "work")


def test_connection_refused_names_the_file(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nobody listens
    submission = DepositSubmission(id="h", files=(
        remote(f"http://127.0.0.1:{port}/a.pdf", "a.pdf"),))
    with pytest.raises(AssemblyError, match=r"file 'a.pdf' \(http://127.0.0.1:\d+/a.pdf\) "
                                            r"cannot be fetched") as err:
        SimpleZipAssembler().assemble(submission, tmp_path / "work", STAMP)
    assert isinstance(err.value, Transient)
