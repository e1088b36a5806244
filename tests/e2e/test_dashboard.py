"""The dashboard in a real browser (Debian's chromium, headless, driven by Playwright):
sign in, the overview's counts equal ``status --json``'s, search, open a deposit, press
retry and see its state change; an anonymous retry and a form without its CSRF token
are refused; hostile content (a ``<script>`` title, HTML in a status message) is shown
as text. Screenshots of the pages visited are kept in build/artefacts/dashboard."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.conftest import Daemon, wait_until
from tests.support.graphs import make_graph, write_graph

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
ARTEFACTS = Path(__file__).resolve().parents[2] / "build" / "artefacts" / "dashboard"
HOSTILE_TITLE = "<script>window.pwned = 1</script>Paper <b>bold</b>"
HOSTILE_FILE = "<img src=x onerror=window.pwned=2>.txt"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test.sh does)",
                    pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _shot(page: Page, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


def _submit(daemon: Daemon, sid: str, hostile: bool = False) -> None:
    files = {"manuscript.txt": b"manuscript\n" * 10}
    if hostile:
        files = {HOSTILE_FILE: b"manuscript\n"}
    graph = make_graph(sid, daemon.root, files=files)
    if hostile:
        for entity in graph:
            if entity["@type"] == "Publication":
                entity["title"] = HOSTILE_TITLE
    daemon.cli("submit", str(write_graph(daemon.root / f"{sid}.json", graph)))


@pytest.fixture
def dashboard(daemon: Daemon) -> Iterator[str]:
    """Three submissions deposited by a worker (one fails: its file is gone, and its
    title and file name are hostile), and the dashboard served by ``web``."""
    daemon.env.update({"DEPOSIT_WEB_USER": "operator", "DEPOSIT_WEB_PASSWORD": "s3cret pass",
                       "PASS_DEPOSIT_JOBS_DISABLED": "true"})
    for n in (1, 2):
        _submit(daemon, f"ok-{n}")
    _submit(daemon, "bad", hostile=True)
    moved = daemon.root / "bad" / HOSTILE_FILE
    shutil.move(moved, daemon.root / "kept.txt")
    worker = daemon.listen()

    def settled() -> bool:
        states = [d["depositStatus"] for s in daemon.status() for d in s["deposits"]]
        return len(states) == 3 and None not in states
    wait_until(settled, 120, "three deposits settled", [worker])
    daemon.stop_all()
    shutil.move(daemon.root / "kept.txt", moved)  # fixed: a retry can now succeed
    port = _free_port()
    log = (daemon.root / "web.log").open("ab")
    web = subprocess.Popen([sys.executable, "-m", "deposit_services", "web", "--port", str(port)],
                           env=daemon.env, stdout=log, stderr=subprocess.STDOUT)
    daemon.processes.append(web)

    def answers() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0
    wait_until(answers, 30, "the dashboard to listen", [web])
    yield f"http://127.0.0.1:{port}"


def test_dashboard_in_a_browser(dashboard: str, daemon: Daemon, browser: Browser) -> None:
    report = daemon.status()
    bad = next(d for s in report if s["id"] == "bad" for d in s["deposits"])
    assert bad["depositStatus"] == "FAILED"
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()

    # anonymous: pages need the operator (default read access), actions are refused
    page.goto(dashboard + "/")
    assert page.url.startswith(dashboard + "/login")
    _shot(page, "login")
    anonymous = page.request.post(f"{dashboard}/deposits/{bad['id']}/retry",
                                  form={"csrf": "guess"})
    assert anonymous.status == 403 and "sign in" in anonymous.text()

    # sign in (a wrong password first)
    page.fill("input[name=user]", "operator")
    page.fill("input[name=password]", "wrong")
    page.click("form[action='/login'] button")
    assert "wrong user name or password" in page.inner_text("#error")
    page.fill("input[name=user]", "operator")
    page.fill("input[name=password]", "s3cret pass")
    page.click("form[action='/login'] button")
    page.wait_for_url(dashboard + "/")
    cookie = next(c for c in context.cookies() if c["name"] == "ds_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # the overview's counts are status --json's
    shown: Counter[str] = Counter()
    for cell in page.query_selector_all("#counts td[data-status]"):
        if cell.inner_text().strip() != "0":
            shown[f"{cell.get_attribute('data-repository')}/{cell.get_attribute('data-status')}"
                  ] = int(cell.inner_text())
    expected = Counter(f"{d['repositoryKey']}/{d['depositStatus']}" for s in report
                       for d in s["deposits"])
    assert shown == expected
    assert bad["id"] in page.inner_text("#failures")
    _shot(page, "overview")

    # search, then open the failed deposit from the results
    page.fill("input[name=q]", "depositStatus:FAILED")
    page.click("header button[type=submit]")
    page.wait_for_url(re.compile(r".*/search\?q=.*"))
    assert page.inner_text("#total").startswith("1 found")
    _shot(page, "search")
    page.click(f"#results a[href='/deposits/{bad['id']}']")
    page.wait_for_url(f"{dashboard}/deposits/{bad['id']}")
    _shot(page, "deposit-failed")

    # hostile content is text, never markup or script
    assert page.inner_text("#title") == HOSTILE_TITLE
    assert HOSTILE_FILE in page.inner_text("#message")
    assert page.evaluate("() => window.pwned") is None
    assert page.query_selector("#title b") is None and page.query_selector("#message img") is None

    # a form without its CSRF token is refused, and changes nothing
    forged = page.request.post(f"{dashboard}/deposits/{bad['id']}/retry", form={})
    assert forged.status == 403 and "CSRF" in forged.text()
    assert daemon.status("bad")[0]["deposits"][0]["depositStatus"] == "FAILED"

    # retry: the file is back, the deposit is accepted
    assert page.inner_text("#status") == "FAILED"
    page.click("#retry")
    page.wait_for_url(re.compile(rf".*/deposits/{bad['id']}\?notice=.*"))
    assert "retry of deposit" in page.inner_text("#notice")
    assert page.inner_text("#status") == "ACCEPTED"
    assert page.inner_text("#attempts").count("operator") >= 1
    _shot(page, "deposit-retried")
    assert daemon.status("bad")[0]["deposits"][0]["depositStatus"] == "ACCEPTED"
    context.close()


def test_listen_serves_the_dashboard_beside_metrics(daemon: Daemon) -> None:
    port = _free_port()
    worker = daemon.listen(extra_env={"DEPOSIT_HTTP_PORT": str(port),
                                      "DEPOSIT_WEB_READ_ACCESS": "anyone"})
    base = f"http://127.0.0.1:{port}"

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(base + path, timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""
    wait_until(lambda: get("/healthz")[0] == 200, 60, "listen's HTTP port", [worker])
    status, page = get("/")
    assert status == 200 and "Deposits by repository and status" in page
    status, page = get("/deposits/nothing-here")
    assert status == 404 and "no deposit nothing-here" in page
    assert get("/metrics")[1].count("deposit_services_") > 0
