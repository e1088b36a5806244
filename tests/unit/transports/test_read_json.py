"""transports.http.read_json, the one reader of a REST API's JSON answer (DSpace,
InvenioRDM, Zenodo): against a real HTTP server on loopback, an empty answer is None,
a body too large or not JSON is permanent, a body cut short transient."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from deposit_services.errors import PermanentTransferError, TransientTransferError
from deposit_services.transports.http import read_json

BODIES = {
    "/json": b'{"id": "item-1", "files": [1, 2]}',
    "/empty": b"  \n",
    "/html": b"<html>maintenance</html>",
    "/large": b'{"padding": "' + b"x" * 5000 + b'"}',
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/cut":  # promises more than it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"partial": ')
            self.wfile.flush()
            self.close_connection = True
            return
        body = BODIES[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def answer(base_url: str, path: str) -> requests.Response:
    return requests.get(base_url + path, stream=True, timeout=5)


def test_json_is_parsed_and_an_empty_answer_is_none(base_url: str) -> None:
    with answer(base_url, "/json") as response:
        assert read_json(response, "reading item-1") == {"id": "item-1", "files": [1, 2]}
    with answer(base_url, "/empty") as response:
        assert read_json(response, "reading nothing") is None


def test_an_answer_that_is_not_json_is_permanent_and_quoted(base_url: str) -> None:
    with answer(base_url, "/html") as response, \
            pytest.raises(PermanentTransferError) as caught:
        read_json(response, "DSpace item lookup")
    assert str(caught.value).startswith("DSpace item lookup: the answer is not JSON")
    assert "maintenance" in str(caught.value)


def test_an_answer_over_the_limit_is_permanent(base_url: str) -> None:
    with answer(base_url, "/large") as response, \
            pytest.raises(PermanentTransferError, match="larger than 1000 bytes"):
        read_json(response, "record search", limit=1000)


def test_an_answer_cut_short_is_transient(base_url: str) -> None:
    with answer(base_url, "/cut") as response, \
            pytest.raises(TransientTransferError, match="reading the answer failed"):
        read_json(response, "upload status")
