"""HTTP for SWORD servers: sessions, credentials, TLS, bounded reads and error mapping.

``SessionPool`` gives each worker thread its own ``requests.Session`` (a Session is not
safe to share between threads) and closes all of them on ``close``; ``read_limited``
reads a response body in blocks and refuses one larger than a limit, so a misbehaving
server cannot make us hold an unbounded document in memory. ``SwordClient`` is what a
SWORD transport talks through: Basic credentials, On-Behalf-Of, User-Agent, timeouts
and TLS verification on every request, and a non-2xx answer turned into our
TransferErrors with the server's ``sword:error`` document quoted (the error IRIs are
those of the SWORD profiles, 1.3 and v2 alike).

Faults: 401/403 are AuthenticationErrors, 3xx (a deposit is never re-sent to a
redirect target) and any other 4xx permanent; 5xx, 429, connection errors and
timeouts transient; TLS failures and bad URLs permanent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from deposit_services.errors import (
    AuthenticationError,
    PermanentTransferError,
    TransientTransferError,
)
from deposit_services.http_status import http_status
from deposit_services.transports.http import (
    DocumentTooLarge,
    SessionPool,
    read_limited,
    transfer_errors,
)
from deposit_services.transports.sword.documents import parse_error_document

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024

# what the operator can do about each SWORD error (by the error IRI's last segment)
ERROR_ADVICE: dict[str, str] = {
    "ErrorChecksumMismatch": "the server received other bytes than the package holds; "
    "check for a proxy that alters uploads, then retry the deposit",
    "MaxUploadSizeExceeded": "the package is larger than the repository accepts; raise its "
    "upload limit (DSpace: upload.max) or send a smaller package, then retry",
    "ErrorContent": "the collection does not accept this packaging or content type; check "
    "the assembler specification and the collection",
    "TargetOwnerUnknown": "the repository does not know the on-behalf-of user; correct the "
    "protocol-binding's on-behalf-of",
    "MediationNotAllowed": "the repository does not allow mediated deposit; remove "
    "on-behalf-of from the protocol-binding or enable mediation",
    "ErrorBadRequest": "the server could not understand the deposit request",
}



@dataclass(frozen=True)
class Credentials:
    """Who deposits: Basic credentials and, for mediated deposit, On-Behalf-Of."""

    username: str
    password: str
    on_behalf_of: str | None = None

    def __repr__(self) -> str:  # never show the password
        return f"Credentials(username={self.username!r}, on_behalf_of={self.on_behalf_of!r})"


@dataclass(frozen=True)
class Connection:
    """How to reach the server: User-Agent, (connect, read) timeouts and TLS verification
    (True, False, or the path of the CA bundle to trust)."""

    user_agent: str
    connect_timeout: float
    read_timeout: float
    verify: bool | str = True


class SwordClient:
    """Requests to one SWORD server as one account; safe to use from several threads."""

    def __init__(self, credentials: Credentials, connection: Connection) -> None:
        self.credentials = credentials
        self.connection = connection
        self.sessions = SessionPool(self._configure_session)

    def _configure_session(self, session: requests.Session) -> None:
        session.auth = (self.credentials.username, self.credentials.password)
        session.headers["User-Agent"] = self.connection.user_agent
        if self.credentials.on_behalf_of:
            session.headers["On-Behalf-Of"] = self.credentials.on_behalf_of

    def close(self) -> None:
        self.sessions.close()

    def request(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        """``method url`` with this client's session; ``what`` names it in error messages."""
        c = self.connection
        with transfer_errors(what, url):
            # verify per request: a Session's own verify loses to REQUESTS_CA_BUNDLE
            return self.sessions.get().request(
                method, url, timeout=(c.connect_timeout, c.read_timeout), verify=c.verify,
                **kwargs
            )

    @staticmethod
    def read_body(response: requests.Response, what: str) -> bytes:
        """The body of a streamed response, at most MAX_DOCUMENT_BYTES."""
        try:
            return read_limited(response, MAX_DOCUMENT_BYTES)
        except DocumentTooLarge as exc:
            raise PermanentTransferError(f"{what}: {exc}") from exc
        except requests.RequestException as exc:
            raise TransientTransferError(f"{what}: reading the response failed: {exc}") from exc

    def get(self, url: str, what: str, missing_ok: bool = False) -> bytes | None:
        """GET a SWORD document's bytes; None for 404/410 when ``missing_ok``."""
        with self.request("GET", url, what, stream=True) as response:
            if missing_ok and response.status_code in (404, 410):
                return None
            self.raise_for_status(response, what)
            return self.read_body(response, what)

    def raise_for_status(self, response: requests.Response, what: str) -> None:
        """Turn a non-2xx answer into our error, quoting the server's error document."""
        status = response.status_code
        if status < 300:
            return
        if status < 400:
            raise PermanentTransferError(
                f"{what} refused: {http_status(status, response.reason)} redirects to "
                f"{response.headers.get('Location')!r}; put the final URL in the "
                "protocol-binding (a deposit is never re-sent to a redirect target)"
            )
        body = self.read_body(response, what) if status != 401 else b""
        error = parse_error_document(body) if body else None
        words = f"{http_status(status, response.reason)}"
        if error is not None:
            words += f": {error.name or error.href}"
            if error.summary:
                words += f": {error.summary}"
            if error.verbose and error.verbose != error.summary:
                words += f" ({error.verbose[:500]})"
            if error.name in ERROR_ADVICE:
                words += f"; {ERROR_ADVICE[error.name]}"
        message = f"{what} refused: {words}"
        if status == 429 or status >= 500:
            retry_after = response.headers.get("Retry-After")
            suffix = f" (Retry-After: {retry_after})" if retry_after else ""
            raise TransientTransferError(message + suffix)
        username = self.credentials.username
        if status == 401:
            raise AuthenticationError(
                f"{message}: authentication failed for user {username!r}; "
                "check the protocol-binding's username and password"
            )
        if status == 403 and not (error and error.name == "TargetOwnerUnknown"):
            raise AuthenticationError(
                f"{message}: user {username!r} is not allowed to do this; "
                "check the account's rights on the collection"
            )
        raise PermanentTransferError(message)
