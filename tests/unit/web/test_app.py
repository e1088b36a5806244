"""The dashboard's WSGI app without a browser: who may read and act, redirects kept
on this site, and methods."""

from __future__ import annotations

import io
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from deposit_services.search.records import RecordSearch
from deposit_services.settings import load_settings
from deposit_services.store.sql import SqlDatabase
from deposit_services.web.app import MAX_FAILED_SIGN_INS, SIGN_IN_WINDOW_S, Dashboard, link
from tests.support.clock import FakeClock


class Client:
    def __init__(self, app: Dashboard) -> None:
        self.app = app
        self.cookie = ""

    def call(self, method: str, path: str, query: str = "", body: str = ""
             ) -> tuple[int, dict[str, str], str]:
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            answer["status"], answer["headers"] = int(status.split()[0]), dict(headers)

        data = body.encode()
        page = b"".join(self.app({
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
            "wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data)),
            "HTTP_COOKIE": self.cookie, "wsgi.url_scheme": "http"}, start_response))
        if "Set-Cookie" in answer["headers"]:
            self.cookie = answer["headers"]["Set-Cookie"].split(";")[0]
        return answer["status"], answer["headers"], page.decode()

    def csrf(self) -> str:
        _, _, page = self.call("GET", "/login")
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found
        return found.group(1)


@pytest.fixture
def client(tmp_path: Path) -> Client:
    settings = load_settings({"DEPOSIT_DATA_DIR": str(tmp_path), "DEPOSIT_WEB_USER": "op",
                              "DEPOSIT_WEB_PASSWORD": "pw"})
    database = SqlDatabase(settings.store_url)
    app = SimpleNamespace(settings=settings, database=database, broker=None,
                          clock=FakeClock(), search=None)
    return Client(Dashboard(app, RecordSearch(database)))  # type: ignore[arg-type]


def test_pages_need_the_operator_and_redirects_stay_on_this_site(client: Client) -> None:
    status, headers, _ = client.call("GET", "/deposits/1")
    assert status == 303 and headers["Location"] == "/login?next=%2Fdeposits%2F1"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    for target, expected in (("/deposits/1", "/deposits/1"), ("//evil.example", "/"),
                             ("/\\evil.example", "/"), ("https://evil.example", "/")):
        client.cookie = ""
        csrf = client.csrf()
        status, headers, _ = client.call(
            "POST", "/login", body=f"csrf={csrf}&user=op&password=pw&next={target}")
        assert (status, headers["Location"]) == (303, expected)
    status, _, page = client.call("GET", "/")
    assert status == 200 and "Overview" in page


def test_signing_in_needs_the_csrf_token_and_the_password(client: Client) -> None:
    client.csrf()
    status, _, page = client.call("POST", "/login", body="user=op&password=pw")
    assert status == 403 and "CSRF" in page
    csrf = client.csrf()
    status, _, page = client.call("POST", "/login", body=f"csrf={csrf}&user=op&password=no")
    assert status == 403 and "wrong user name or password" in page
    status, _, _ = client.call("POST", "/logout", body=f"csrf={csrf}")
    assert status == 403  # not signed in: no action at all


def test_other_methods_and_unknown_pages(client: Client) -> None:
    csrf = client.csrf()
    client.call("POST", "/login", body=f"csrf={csrf}&user=op&password=pw")
    assert client.call("DELETE", "/")[0] == 405
    assert client.call("GET", "/nowhere")[0] == 404
    status, _, page = client.call("GET", "/deposits/<i>x<i>")
    assert status == 404 and "no deposit &lt;i&gt;x&lt;i&gt;" in page and "<i>x" not in page


def test_outside_links_are_http_only() -> None:
    assert link("https://repo.example/item/1") == "https://repo.example/item/1"
    assert link("javascript:alert(1)") == "#"
    assert link(" JavaScript:alert(1)") == "#"
    assert link(None) == "#"


def test_failed_sign_ins_from_one_address_must_wait(client: Client) -> None:
    clock = client.app.app.clock
    for _ in range(MAX_FAILED_SIGN_INS):
        csrf = client.csrf()
        assert client.call("POST", "/login", body=f"csrf={csrf}&user=op&password=no")[0] == 403
    csrf = client.csrf()
    status, _, page = client.call("POST", "/login", body=f"csrf={csrf}&user=op&password=pw")
    assert status == 429 and "too many failed sign-ins" in page  # even the right password
    clock.advance(SIGN_IN_WINDOW_S + 1)  # type: ignore[attr-defined]
    status, headers, _ = client.call("POST", "/login", body=f"csrf={csrf}&user=op&password=pw")
    assert status == 303 and headers["Location"] == "/"


def test_the_overview_shows_each_repository_that_is_not_healthy_and_why(
        client: Client, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from deposit_services.store.base import RepositoryState
    from deposit_services.store.uow import run_unit

    database = SqlDatabase(load_settings({"DEPOSIT_DATA_DIR": str(tmp_path)}).store_url)
    since = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    run_unit(database, lambda uow: [uow.state.put_repository_state(state) for state in (
        RepositoryState("jscholarship", "paused", 5, "HTTP 503 <b>x</b>", since,
                        paused_until=since + timedelta(minutes=5)),
        RepositoryState("pmc", "degraded", 2, "timed out", since),
        RepositoryState("zenodo", "healthy"))])
    csrf = client.csrf()
    client.call("POST", "/login", body=f"csrf={csrf}&user=op&password=pw&next=/")
    status, _, page = client.call("GET", "/")
    assert status == 200
    table = page[page.index('<table id="health">'):]
    table = table[:table.index("</table>")]
    assert "jscholarship" in table and "next probe at 2026-11-01T10:05:00+00:00" in table
    assert "pmc" in table and "degraded (timed out)" in table
    assert "zenodo" not in table, "a healthy repository is not listed"
    assert "&lt;b&gt;x&lt;/b&gt;" in table and "<b>x</b>" not in table


def test_the_overview_says_when_every_repository_is_healthy(client: Client) -> None:
    csrf = client.csrf()
    client.call("POST", "/login", body=f"csrf={csrf}&user=op&password=pw&next=/")
    _, _, page = client.call("GET", "/")
    assert "Every repository is healthy." in page and '<table id="health">' not in page
