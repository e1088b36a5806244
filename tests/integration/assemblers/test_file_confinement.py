"""A hostile graph cannot make the worker read a file it was not given: local files only
from the submission's own directory (``submit --files-dir``) and DEPOSIT_FILE_ROOTS,
http(s) only from configured origins, never by a redirect or through a name that
resolves to an internal address. Refused before a byte is read, naming the file and
the rule."""

from __future__ import annotations

import http.server
import ipaddress
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deposit_services.assemblers.base import create_assembler
from deposit_services.assemblers.sources import FileSources
from deposit_services.bootstrap import file_sources
from deposit_services.errors import AssemblyError
from deposit_services.model.builder import build_deposit_submission
from deposit_services.service.intake import load_submission_graph
from deposit_services.settings import load_settings
from deposit_services.store.sql import SqlDatabase
from tests.support.graphs import make_graph
from tests.support.packages import PACKAGE_TIME


def graph_with(tmp_path: Path, uri: str) -> Path:
    """A graph whose second file's uri is ``uri`` (the first is a real, allowed one)."""
    entities = make_graph("s1", tmp_path / "files")
    files = [e for e in entities if e["@type"] == "File"]
    files[1]["uri"] = uri
    path = tmp_path / "files" / "graph.json"
    path.write_text(json.dumps(entities))
    return path


def sources_for(tmp_path: Path, **env: str) -> FileSources:
    settings = load_settings({"DEPOSIT_DATA_DIR": str(tmp_path / "data"), **env})
    database = SqlDatabase(settings.store_url)
    try:
        return file_sources(settings, database)
    finally:
        database.close()


def assemble(tmp_path: Path, graph: Path, sources: FileSources) -> Any:
    loaded = load_submission_graph(graph, None)
    content = build_deposit_submission(loaded.submission, loaded)
    assembler = create_assembler("simple", {"archive": "ZIP"}, sources)
    return assembler.assemble(content, tmp_path / "work", PACKAGE_TIME)


@pytest.mark.parametrize("uri", [
    "/etc/hosts", "file:///etc/shadow", "file:///etc/passwd", "../../../../etc/passwd",
    "classpath:../../../../etc/passwd", "encodedclasspath:..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "s1/../../../../../etc/passwd",
])
def test_local_files_outside_the_submissions_directory_are_refused(tmp_path: Path,
                                                                   uri: str) -> None:
    with pytest.raises(AssemblyError, match="outside the directories files may be read from"
                       ) as caught:
        assemble(tmp_path, graph_with(tmp_path, uri), sources_for(tmp_path))
    assert "--files-dir" in str(caught.value) and "DEPOSIT_FILE_ROOTS" in str(caught.value)
    assert not list((tmp_path / "work").glob("*.zip")), "no package was made"


def test_a_symbolic_link_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "files" / "s1").mkdir(parents=True)
    (tmp_path / "files" / "s1" / "innocent.pdf").symlink_to("/etc/passwd")
    with pytest.raises(AssemblyError, match="outside the directories"):
        assemble(tmp_path, graph_with(tmp_path, "s1/innocent.pdf"), sources_for(tmp_path))


def test_files_in_the_submissions_directory_and_configured_roots_are_read(
    tmp_path: Path,
) -> None:
    package = assemble(tmp_path, graph_with(tmp_path, "s1/manuscript.txt"),
                       sources_for(tmp_path))
    assert package.size > 0
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "data.csv").write_text("a,b\n")
    package = assemble(tmp_path, graph_with(tmp_path, str(shared / "data.csv")),
                       sources_for(tmp_path, DEPOSIT_FILE_ROOTS=str(shared)))
    assert package.size > 0


class _Files(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/moved"):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        body = b"remote bytes"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def origin() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("uri", [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://127.0.0.1:9/secret", "https://example.org/paper.pdf",
])
def test_urls_outside_the_configured_origins_are_refused(tmp_path: Path, uri: str) -> None:
    with pytest.raises(AssemblyError, match="not under an origin files may be fetched from"):
        assemble(tmp_path, graph_with(tmp_path, uri), sources_for(tmp_path))


def test_a_configured_origin_is_fetched_and_its_redirects_are_not(tmp_path: Path,
                                                                   origin: str) -> None:
    sources = sources_for(tmp_path, DEPOSIT_FILE_ORIGINS=origin)
    package = assemble(tmp_path, graph_with(tmp_path, f"{origin}/paper.pdf"), sources)
    assert package.size > 0
    with pytest.raises(AssemblyError, match="redirects are not followed"):
        assemble(tmp_path, graph_with(tmp_path, f"{origin}/moved"), sources)
    # an origin's look-alike prefix is not the origin
    with pytest.raises(AssemblyError, match="not under an origin"):
        assemble(tmp_path, graph_with(tmp_path, f"{origin}0/paper.pdf"), sources)


def test_a_host_name_that_resolves_to_an_internal_address_is_refused(tmp_path: Path) -> None:
    host = socket.gethostname()  # this machine's name: a loopback or private address
    addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    assert any(ipaddress.ip_address(a).is_loopback or ipaddress.ip_address(a).is_private
               for a in addresses), f"{host} resolves to {addresses}: pick another name"
    sources = sources_for(tmp_path, DEPOSIT_FILE_ORIGINS=f"http://{host}:9")
    with pytest.raises(AssemblyError, match="an internal address"):
        assemble(tmp_path, graph_with(tmp_path, f"http://{host}:9/x.pdf"), sources)
