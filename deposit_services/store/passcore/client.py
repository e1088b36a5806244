"""HTTP to pass-core: Basic auth on every request (pass-core sends no challenge), the
double-submit CSRF token on every other than GET, one reused session, time-outs, and
pass-core's answers mapped to our exception tree: connection faults, time-outs and 5xx
transient (``StoreUnavailable``), 404 ``NotFound``, 409 ``StaleVersion``, 401/403 a
configuration problem named as such."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Mapping
from typing import Any

import requests

from deposit_services.errors import (
    ConfigurationError,
    NotFound,
    StaleVersion,
    StoreError,
    StoreUnavailable,
)
from deposit_services.settings import mask_url

log = logging.getLogger(__name__)

JSON_API = "application/vnd.api+json"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0


class PassCoreAuthError(StoreUnavailable):
    """pass-core refused our credentials (401) or the request (403). Transient for a
    running worker (credentials may be rotated); at start-up it is a configuration
    error (``PassCoreClient.check``)."""


class PassCoreClient:
    """JSON:API requests to one pass-core (``base_url`` without ``/data``). Thread-safe:
    ``requests.Session`` is shared for its connection pool; ``requests`` counts every
    request made (the benchmarks print it)."""

    def __init__(self, base_url: str, user: str | None, password: str | None, *,
                 user_agent: str = "deposit-services") -> None:
        self.base_url = base_url.rstrip("/")
        self._where = mask_url(self.base_url)
        self._session = requests.Session()
        if user is not None:
            self._session.auth = (user, password or "")
        token = secrets.token_urlsafe(16)  # double submit: any value, sent twice
        self._csrf = {"X-XSRF-TOKEN": token}
        self._session.cookies.set("XSRF-TOKEN", token)
        self._session.headers.update({"User-Agent": user_agent, "Accept": JSON_API})
        self._lock = threading.Lock()
        self.requests = 0

    @property
    def session(self) -> requests.Session:
        """The authenticated session (file downloads from pass-core use it too)."""
        return self._session

    def check(self) -> None:
        """One cheap authenticated read at start-up: ConfigurationError if pass-core
        refuses the credentials, StoreUnavailable if it cannot be reached."""
        try:
            self.request("GET", "/data/repository", params={"page[limit]": "1"})
        except PassCoreAuthError as exc:
            raise ConfigurationError(
                f"pass-core at {self._where} refused the credentials ({exc}); check "
                "PASS_CORE_USER and PASS_CORE_PASSWORD") from exc

    def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                document: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The JSON:API document pass-core answered (None for 204)."""
        headers = {} if method == "GET" else dict(self._csrf)
        if document is not None:
            headers["Content-Type"] = JSON_API
        with self._lock:
            self.requests += 1
        url = self.base_url + path
        try:
            response = self._session.request(
                method, url, params=params, json=document, headers=headers,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise StoreUnavailable(f"pass-core unavailable ({self._where}): {exc}") from exc
        except requests.RequestException as exc:
            raise StoreError(f"pass-core request failed ({self._where}): {exc}") from exc
        status = response.status_code
        if status < 300:
            return response.json() if status != 204 and response.content else None
        detail = _detail(response)
        what = f"{method} {path}: HTTP {status}{': ' + detail if detail else ''}"
        if status == 404:
            raise NotFound(f"pass-core {what}")
        if status == 409:
            raise StaleVersion(f"pass-core {what}")
        if status in (401, 403):
            raise PassCoreAuthError(f"pass-core {what}")
        if status >= 500 or status == 429:
            raise StoreUnavailable(f"pass-core unavailable ({self._where}) {what}")
        raise StoreError(f"pass-core refused {what}")

    def close(self) -> None:
        self._session.close()


def _detail(response: requests.Response) -> str:
    """The first JSON:API error's detail, or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors:
        first = errors[0]
        if isinstance(first, dict):
            return str(first.get("detail") or first.get("title") or first)[:300]
        return str(first)[:300]
    return ""
