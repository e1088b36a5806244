"""The dashboard's WSGI application (``create_app``).

Pages: ``/`` the overview, ``/search?q=`` (the index when configured, the records' own
search otherwise), ``/submissions/<id>``, ``/deposits/<id>``, ``/login``. Actions, by
POST only, for the signed-in operator only, each form with the session's CSRF token:
``/deposits/<id>/retry`` and ``/deposits/<id>/refresh`` (what the CLI's ``retry`` and
``refresh`` do), ``/logout``. With ``DEPOSIT_WEB_READ_ACCESS=operator`` (the default)
every page but ``/login`` needs the operator to be signed in; ``anyone`` lets anyone
read. Every value shown is escaped by Jinja2's autoescape; responses forbid scripts and
framing (Content-Security-Policy).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape

from deposit_services.errors import DepositServicesError
from deposit_services.safetext import safe
from deposit_services.search.base import SearchIndex
from deposit_services.web import views
from deposit_services.web.auth import COOKIE, Session, Sessions, check_csrf, check_password

if TYPE_CHECKING:
    from deposit_services.bootstrap import App

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 64 * 1024
# Failed sign-ins one address may make within the window before it must wait.
MAX_FAILED_SIGN_INS = 5
SIGN_IN_WINDOW_S = 300.0
PAGE_SIZE = 50
SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                                "img-src 'self'; form-action 'self'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    session: Session
    secure: bool
    new_session: bool = False
    client: str = ""


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


class Forbidden(Exception):
    """An action refused (not signed in, no CSRF token): shown with status 403."""


class Dashboard:
    """The WSGI callable (see the module doc)."""

    def __init__(self, app: App, search: SearchIndex) -> None:
        self.app = app
        self.settings = app.settings
        self.search_index = search
        self.sessions = Sessions((self.settings.web_session_key or secrets.token_hex(32)).encode())
        self.jinja = Environment(
            loader=FileSystemLoader(Path(__file__).with_name("templates")),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
        self.jinja.filters["link"] = link
        self._failed: dict[str, deque[float]] = {}  # address -> times of failed sign-ins
        self._failed_lock = threading.Lock()
        if not (self.settings.web_user and self.settings.web_password):
            log.info("dashboard: DEPOSIT_WEB_USER and DEPOSIT_WEB_PASSWORD are not set: "
                        "nobody can sign in, so no action (retry, refresh) is possible%s",
                        "" if self.settings.web_read_access == "anyone"
                        else " and no page can be read")

    # -- WSGI ---------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        request = self._request(environ)
        try:
            response = self._route(request)
        except Forbidden as exc:
            response = self._page("error.html", request, status=403, message=str(exc))
        except DepositServicesError as exc:
            log.warning("dashboard: %s %s failed: %s", request.method, request.path, exc)
            response = self._page("error.html", request, status=502, message=str(exc))
        if request.new_session:
            response.headers.append(("Set-Cookie", self.sessions.cookie_header(
                request.session, request.secure)))
        status = HTTPStatus(response.status)
        start_response(f"{status.value} {status.phrase}", [*response.headers,
                                                            *SECURITY_HEADERS])
        return [response.body]

    def _request(self, environ: dict[str, Any]) -> Request:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        form: dict[str, str] = {}
        if method == "POST":
            try:
                length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_FORM_BYTES)
            except ValueError:
                length = 0
            body = environ["wsgi.input"].read(length) if length else b""
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        session = None
        try:
            cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
            if COOKIE in cookie:
                session = self.sessions.load(cookie[COOKIE].value)
        except CookieError:
            session = None
        new = session is None
        return Request(method, str(environ.get("PATH_INFO") or "/"), query, form,
                       session or self.sessions.new(),
                       environ.get("wsgi.url_scheme") == "https", new_session=new,
                       client=str(environ.get("REMOTE_ADDR") or ""))

    # -- routing ------------------------------------------------------------------------

    def _route(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if parts == ["login"]:
            return self._login(request)
        if request.method == "POST":
            return self._action(request, parts)
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed", [("Allow", "GET, HEAD, POST")])
        if self.settings.web_read_access != "anyone" and not request.session.user:
            return _redirect("/login?" + urlencode({"next": request.path}))
        if not parts:
            return self._overview(request)
        if parts == ["search"]:
            return self._search(request)
        if len(parts) == 2 and parts[0] == "deposits":
            return self._deposit(request, parts[1])
        if len(parts) == 2 and parts[0] == "submissions":
            return self._submission(request, parts[1])
        return self._page("error.html", request, status=404, message="no such page")

    def _page(self, template: str, request: Request, status: int = 200, **values: Any
              ) -> Response:
        body = self.jinja.get_template(template).render(
            user=request.session.user, csrf=request.session.csrf,
            query=request.query.get("q", ""), notice=request.query.get("notice"),
            **values)
        return Response(status, body.encode(), [("Content-Type", "text/html; charset=utf-8")])

    # -- pages --------------------------------------------------------------------------

    def _overview(self, request: Request) -> Response:
        settings = self.settings
        data = views.overview(self.app.database, self.app.broker,
                              [settings.queue_submission, settings.queue_deposit],
                              self.app.clock.now())
        pending = None
        if self.app.search is not None:
            try:
                pending = self.app.search.marks.count()
            except DepositServicesError:
                pending = None
        return self._page("overview.html", request, data=data,
                          statuses=views.DEPOSIT_STATUSES, pending=pending,
                          failure_days=views.FAILURE_DAYS)

    def _search(self, request: Request) -> Response:
        text = request.query.get("q", "").strip()
        result = None
        error = None
        if text:
            try:
                result = self.search_index.search(text, size=PAGE_SIZE)
            except DepositServicesError as exc:
                error = str(exc)
        return self._page("search.html", request, result=result, error=error,
                          source=self.search_index.name)

    def _deposit(self, request: Request, deposit_id: str) -> Response:
        data = views.deposit_page(self.app.database, deposit_id)
        if data is None:
            return self._page("error.html", request, status=404,
                              message=f"no deposit {deposit_id}")
        return self._page("deposit.html", request, **data)

    def _submission(self, request: Request, submission_id: str) -> Response:
        data = views.submission_page(self.app.database, submission_id)
        if data is None:
            return self._page("error.html", request, status=404,
                              message=f"no submission {submission_id}")
        return self._page("submission.html", request, **data)

    # -- signing in and actions ---------------------------------------------------------

    def _login(self, request: Request) -> Response:
        target = request.query.get("next") or request.form.get("next") or "/"
        if not target.startswith("/") or target[1:2] in ("/", "\\"):
            target = "/"  # never an open redirect
        if request.method != "POST":
            return self._page("login.html", request, next=target)
        if not check_csrf(request.session, request.form.get("csrf")):
            raise Forbidden("the form's CSRF token is missing or out of date: reload the page "
                            "and try again")
        wait = self._sign_in_wait(request.client)
        if wait > 0:
            return self._page("login.html", request, status=429, next=target,
                              message=f"too many failed sign-ins from this address: try again "
                                      f"in {wait:.0f} s")
        user, password = self.settings.web_user, self.settings.web_password
        if (user and password and secrets.compare_digest(request.form.get("user", ""), user)
                and check_password(request.form.get("password", ""), password)):
            log.info("dashboard: operator %s signed in", safe(user))
            request.session = self.sessions.new(user)  # a new session: new CSRF token
            request.new_session = True
            return _redirect(target)
        log.warning("dashboard: a sign-in as %s from %s was refused",
                    safe(request.form.get("user", "")), safe(request.client))
        with self._failed_lock:
            self._failed.setdefault(request.client, deque()).append(self.app.clock.monotonic())
        return self._page("login.html", request, status=403, next=target,
                          message="wrong user name or password")

    def _sign_in_wait(self, client: str) -> float:
        """Seconds ``client`` must wait before trying to sign in again (0: none)."""
        now = self.app.clock.monotonic()
        with self._failed_lock:
            times = self._failed.get(client)
            while times and times[0] <= now - SIGN_IN_WINDOW_S:
                times.popleft()
            if not times:
                self._failed.pop(client, None)
                return 0.0
            return times[0] + SIGN_IN_WINDOW_S - now if len(times) >= MAX_FAILED_SIGN_INS \
                else 0.0

    def _action(self, request: Request, parts: list[str]) -> Response:
        if not request.session.user:
            raise Forbidden("sign in as the operator to do this")
        if not check_csrf(request.session, request.form.get("csrf")):
            raise Forbidden("the form's CSRF token is missing or out of date: reload the page "
                            "and try again")
        if parts == ["logout"]:
            request.session = self.sessions.new()
            request.new_session = True
            return _redirect("/login")
        if len(parts) == 3 and parts[0] == "deposits" and parts[2] in ("retry", "refresh"):
            from deposit_services.service import operations

            log.info("dashboard: operator %s asked to %s deposit %s",
                     safe(request.session.user or ""), parts[2], safe(parts[1]))
            outcome = operations.run(self.app.context(), parts[2], [parts[1]], named=True)[0]
            notice = (f"{parts[2]} of deposit {parts[1]}: {outcome.status}"
                      + (f" ({outcome.message})" if outcome.message else ""))
            return _redirect(f"/deposits/{quote(parts[1])}?" + urlencode({"notice": notice}))
        return Response(404, b"no such action")


def link(url: object) -> str:
    """A URL from outside (a repository's access URL) as a link target: http(s) only,
    anything else (``javascript:``) becomes a link to nowhere."""
    text = str(url or "")
    return text if urlsplit(text).scheme.lower() in ("http", "https") else "#"


def _redirect(location: str) -> Response:
    return Response(303, b"", [("Location", location)])


def create_app(app: App, search: SearchIndex | None = None) -> WsgiApp:
    """The dashboard over ``app`` (bootstrap's); searches ``search``, by default the index
    when DEPOSIT_SEARCH_URL is set, else the records' own search."""
    if search is None:
        from deposit_services.search.commands import searcher

        search = searcher(app.settings, app.database)
    return Dashboard(app, search)
