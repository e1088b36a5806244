"""A dserver client: register a frozen dtool dataset and look it up again.

dserver (dservercore) routes, from its source: ``PUT /uris/<uri as URL suffix>`` with
the dataset description (``RegisterDatasetSchema``: uuid, base_uri, uri, name, type,
readme, manifest, creator_username, frozen_at, annotations, tags) registers or
replaces an entry (201 created, 200 updated); ``GET /uris/<suffix>`` reads one entry;
``GET /uuids/<uuid>`` lists every registered copy of a dataset. Auth is a JWT bearer
token (RS256 by default): either one the operator issued, or one the worker signs
itself with the private key whose public half dserver is configured with
(``JWT_PUBLIC_KEY``), for a user dserver knows.

Answers mapped once, here: 401 and 422 (a token dserver cannot verify, an expired
token, or a user it does not know) -> AuthenticationError; 403 on registering (the base
URI is not registered in dserver, or the user may not register on it) and 400 (a
description dserver refuses) -> PermanentTransferError saying what to fix; connection
failures, time-outs, 5xx and 429 -> TransientTransferError (the deposit is retried).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from deposit_services.clock import Clock, SystemClock
from deposit_services.errors import (
    AuthenticationError,
    PermanentTransferError,
    RepositoryConfigError,
    TransientTransferError,
)
from deposit_services.safetext import safe
from deposit_services.transports.http import SessionPool, transfer_errors

log = logging.getLogger(__name__)

TOKEN_LIFETIME = timedelta(minutes=5)  # a self-signed token lives this long
TOKEN_RENEW = timedelta(minutes=1)  # ... and is replaced this long before it expires
TIMEOUT = 30.0


def url_suffix(uri: str) -> str:
    """dserver's URL form of a dataset or base URI: ``scheme://host/path`` becomes
    ``scheme/host/path`` (dservercore's ``uri_to_url_suffix``), percent-quoted."""
    scheme, sep, rest = uri.partition("://")
    return quote(f"{scheme}/{rest}" if sep else uri, safe="/")


@dataclass(frozen=True)
class Credentials:
    """How the worker proves who it is to dserver: a ``token`` as issued, or a
    ``private_key`` (PEM file, RS256) to sign its own short-lived token for ``username``."""

    token: str | None = None
    private_key: Path | None = None
    username: str | None = None

    def __post_init__(self) -> None:
        if bool(self.token) == bool(self.private_key):
            raise RepositoryConfigError("dserver credentials: set exactly one of token and "
                                        "private-key-file")
        if self.private_key is not None and not self.username:
            raise RepositoryConfigError("dserver credentials: private-key-file needs username "
                                        "(the dserver user the signed token is for)")

    def __repr__(self) -> str:  # never show the token
        return (f"Credentials(token={'***' if self.token else None}, "
                f"private_key={self.private_key}, username={self.username!r})")


class TokenSource:
    """The bearer token to send: the configured one, or one signed here and renewed
    before it expires (thread-safe). A key that cannot be read or used is a
    configuration error, found at the first use."""

    def __init__(self, credentials: Credentials, lifetime: timedelta = TOKEN_LIFETIME,
                 clock: Clock | None = None) -> None:
        self._credentials = credentials
        self._lifetime = lifetime
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._token: str | None = credentials.token
        self._expires = float("inf") if credentials.token else 0.0

    @property
    def username(self) -> str | None:
        return self._credentials.username

    def get(self) -> str:
        with self._lock:
            now = self._clock.now().timestamp()
            if self._token is None or now > self._expires - TOKEN_RENEW.total_seconds():
                self._token, self._expires = self._sign()
            return self._token

    def _sign(self) -> tuple[str, float]:
        import jwt

        path = self._credentials.private_key
        assert path is not None and self._credentials.username
        try:
            key = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise RepositoryConfigError(
                f"dserver private-key-file {path} cannot be read: {exc}") from exc
        now = self._clock.now().astimezone(UTC)
        expires = now + self._lifetime
        claims = {"sub": self._credentials.username, "iat": now, "nbf": now, "exp": expires,
                  "type": "access", "fresh": False, "jti": os.urandom(12).hex()}
        try:
            token = jwt.encode(claims, key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise RepositoryConfigError(
                f"dserver private-key-file {path} is not an RSA private key in PEM: {exc}"
            ) from exc
        return token, expires.timestamp()


class DServerClient:
    """Registration and lookup of datasets in one dserver (thread-safe)."""

    def __init__(self, url: str, tokens: TokenSource, *, user_agent: str = "deposit-services",
                 timeout: float = TIMEOUT, verify: bool | str = True) -> None:
        self.url = url.rstrip("/")
        self._tokens = tokens
        self._timeout = timeout

        def configure(session: requests.Session) -> None:
            session.headers["User-Agent"] = user_agent
            session.verify = verify

        self._sessions = SessionPool(configure)

    def entry_url(self, uri: str) -> str:
        return f"{self.url}/uris/{url_suffix(uri)}"

    def _request(self, method: str, url: str, what: str, body: Any = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self._tokens.get()}", "Accept": "application/json"}
        with transfer_errors(what, url):
            response = self._sessions.get().request(method, url, json=body, headers=headers,
                                                   timeout=self._timeout)
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientTransferError(
                f"{what}: dserver at {self.url} answered {response.status_code}; "
                "the deposit is tried again later")
        if response.status_code in (401, 422):
            user = self._tokens.username or "the token's user"
            raise AuthenticationError(
                f"{what}: dserver at {self.url} refused the credentials "
                f"({response.status_code} {_reason(response)}): the token is invalid or "
                f"expired, or {user} is not a dserver user. Fix the binding's token or "
                f"private-key-file (dserver must have its public key), or have a dserver "
                f"admin add the user (`flask user add {user}` or PUT /users/{user}); then "
                "retry the deposit")
        return response

    def register(self, info: dict[str, Any]) -> int:
        """PUT the dataset description; 201 (created) or 200 (replaced)."""
        uri, base_uri = info["uri"], info["base_uri"]
        what = f"registering {uri} in dserver"
        response = self._request("PUT", self.entry_url(uri), what, info)
        if response.status_code == 403:
            user = self._tokens.username or "the token's user"
            raise PermanentTransferError(
                f"{what}: dserver refused (403): base URI {base_uri} is not registered in "
                f"dserver, or {user} may not register datasets on it. A dserver admin adds it "
                f"(`flask base_uri add {base_uri}` and `flask base_uri permission "
                f"--register {user} ...`, or PUT /base-uris/...); then retry the deposit "
                "(the frozen dataset is not written again)")
        if response.status_code == 400:
            raise PermanentTransferError(
                f"{what}: dserver refused the dataset description (400 {_reason(response)}); "
                "check that the base URI has no trailing slash and the dataset is frozen")
        if response.status_code not in (200, 201):
            raise PermanentTransferError(
                f"{what}: dserver answered {response.status_code} {_reason(response)}")
        return response.status_code

    def lookup(self, uuid: str) -> list[dict[str, Any]]:
        """Every registered copy of dataset ``uuid`` the user may see."""
        url = f"{self.url}/uuids/{quote(uuid, safe='')}"
        response = self._request("GET", url, f"looking up dataset {uuid} in dserver")
        if response.status_code != 200:
            raise PermanentTransferError(
                f"looking up dataset {uuid} in dserver: {response.status_code} "
                f"{_reason(response)}")
        entries = _json(response, url)
        if not isinstance(entries, list):
            raise PermanentTransferError(f"dserver {url} did not answer a list of datasets")
        return [e for e in entries if isinstance(e, dict)]

    def entry(self, uri: str) -> dict[str, Any] | None:
        """The registered entry of dataset ``uri``; None when dserver has none (404)."""
        url = self.entry_url(uri)
        response = self._request("GET", url, f"reading the dserver entry of {uri}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise PermanentTransferError(
                f"reading the dserver entry of {uri}: {response.status_code} "
                f"{_reason(response)} (403: the user may not search that base URI)")
        entry = _json(response, url)
        return entry if isinstance(entry, dict) else None

    def me(self) -> dict[str, Any]:
        """The user the credentials are for (dserver's ``GET /me``): ``username`` and the
        base URIs it may register (``register_permissions_on_base_uris``) and search on."""
        url = f"{self.url}/me"
        response = self._request("GET", url, "asking dserver who the credentials are for")
        if response.status_code != 200:
            raise PermanentTransferError(
                f"asking dserver at {self.url} who the credentials are for: "
                f"{response.status_code} {_reason(response)}; is dserver-url the dserver "
                "API's root?")
        user = _json(response, url)
        if not isinstance(user, dict):
            raise PermanentTransferError(f"dserver {url} did not answer a user")
        return user

    def close(self) -> None:
        self._sessions.close()


def _json(response: requests.Response, url: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise PermanentTransferError(f"dserver {url} answered something that is not JSON"
                                     ) from exc


def _reason(response: requests.Response) -> str:
    """dserver's short reason (flask-smorest's ``message``/``status``), made safe."""
    try:
        body = response.json()
    except ValueError:
        return safe(response.reason or "")
    if isinstance(body, dict):
        text = body.get("msg") or body.get("message") or body.get("status") or ""
        return safe(str(text), 200)
    return safe(response.reason or "")
