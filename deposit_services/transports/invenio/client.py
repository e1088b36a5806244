"""HTTP for Invenio's REST APIs (InvenioRDM and Zenodo): a bearer token, JSON answers,
streamed uploads, and errors mapped to ours.

Faults: 401/403 AuthenticationError (with the server's message); 400 and 422
PermanentTransferError naming each field the server's ``errors`` list names; other
4xx permanent; 5xx, 429 (with ``Retry-After``), connection errors and time-outs
transient; an answer that is not the JSON object expected is a PermanentTransferError,
never a crash. The token is never logged: it travels only in the header.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import requests

from deposit_services.assemblers.base import BackgroundHasher, Package
from deposit_services.clock import Clock, SystemClock
from deposit_services.errors import (
    PermanentTransferError,
    TransferError,
    TransientTransferError,
)
from deposit_services.safetext import mask_url
from deposit_services.transports.files import RecordFile, open_file
from deposit_services.transports.http import (
    SessionPool,
    raise_for_status,
    read_json,
    retry_after,
    transfer_errors,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InvenioAccount:
    """Where the API is and the token that opens it."""

    api_url: str
    token: str
    token_setting: str  # the setting an operator fixes when the token is refused
    user_agent: str = "deposit-services"
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    verify: bool | str = True

    def __repr__(self) -> str:  # never show the token
        return f"InvenioAccount(api_url={self.api_url!r})"


class SizedStream:
    """A file-like body of known length read in blocks of up to ``BLOCK`` bytes, so a
    PUT streams a file of any size in bounded memory; ``hasher`` sees every block."""

    BLOCK = 1024 * 1024

    def __init__(self, stream: BinaryIO, size: int, hasher: Any = None) -> None:
        self._stream, self._size, self._left = stream, size, size
        self._hasher = hasher

    def __len__(self) -> int:
        return self._size

    def read(self, amount: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        data = self._stream.read(min(max(amount, self.BLOCK), self._left))
        if not data:
            raise OSError(f"a file ended {self._left} bytes early while being sent")
        self._left -= len(data)
        if self._hasher is not None:
            self._hasher.update(data)
        return data


class InvenioClient:
    """Requests to one Invenio API with one token; safe to use from several threads."""

    def __init__(self, account: InvenioAccount, clock: Clock | None = None) -> None:
        if account.verify is False:
            logger.warning("TLS certificates of %s are NOT verified (the binding turns it "
                           "off): the token can be read by anyone in between", account.api_url)
        self.account = account
        self.api = account.api_url.rstrip("/")
        self.clock = clock or SystemClock()
        self.sessions = SessionPool(self._configure_session)

    def _configure_session(self, session: requests.Session) -> None:
        session.headers["User-Agent"] = self.account.user_agent
        session.headers["Accept"] = "application/json"
        session.headers["Authorization"] = f"Bearer {self.account.token}"
        session.trust_env = False  # the token goes only where the binding says

    def close(self) -> None:
        self.sessions.close()

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.api}/{path.lstrip('/')}"

    def call(self, method: str, path: str, what: str, *, json_body: Any = None,
             params: Mapping[str, str] | None = None, missing_ok: bool = False,
             stream: SizedStream | None = None, changes: bool = False) -> Any:
        """``method path``; the JSON answer (None for 204, or for 404/410 when
        ``missing_ok``). ``stream`` is sent as ``application/octet-stream``. ``changes``:
        the request makes or publishes something, so a lost answer is OutcomeUnknown."""
        url = self.url(path)
        a = self.account
        kwargs: dict[str, Any] = {"params": params}
        if json_body is not None:
            kwargs["json"] = json_body
        if stream is not None:
            kwargs["data"] = stream
            kwargs["headers"] = {"Content-Type": "application/octet-stream"}
        with transfer_errors(what, mask_url(url), changes):
            response = self.sessions.get().request(
                method, url, timeout=(a.connect_timeout, a.read_timeout), verify=a.verify,
                allow_redirects=False, stream=True, **kwargs)
        with response:
            if missing_ok and response.status_code in (404, 410):
                return None
            self.raise_for_status(response, what)
            if response.status_code == 204:
                return None
            return read_json(response, what)

    def call_retrying(self, method: str, path: str, what: str, attempts: int = 4,
                      first_delay: float = 1.0, **kwargs: Any) -> Any:
        """``call``, repeating a transient fault (5xx, 429, time-out) with exponential
        backoff (``Retry-After`` honoured, capped at a minute); the last fault raised."""
        delay = first_delay
        for attempt in range(1, attempts + 1):
            try:
                return self.call(method, path, what, **kwargs)
            except TransientTransferError as exc:
                if attempt == attempts:
                    raise
                wait = min(_seconds(retry_after(exc)) or delay, 60.0)
                self.clock.sleep(wait)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def raise_for_status(self, response: requests.Response, what: str) -> None:
        """Turn a non-2xx answer into our error, quoting the server's message and fields."""
        token = self.account.token_setting
        fields = "correct the submission's metadata (the fields named) and retry"
        raise_for_status(response, what, {
            401: f"the token was refused: check {token}",
            403: f"the token may not do this: give {token} the deposit scopes "
                 "(deposit:write, deposit:actions) or the community rights",
            400: fields, 422: fields,
        }, "the API URL setting", field_errors)


def upload(client: InvenioClient, url: str, package: Package, file: RecordFile,
           what: str) -> tuple[Any, str]:
    """PUT ``file`` of ``package`` to ``url`` as a stream: the JSON answer and the md5
    of what was sent. A checksum
    in the answer (``md5:<hex>``, as both InvenioRDM and Zenodo give it, possibly only
    later, at the commit) is compared by ``check_md5`` with the md5 returned here."""
    if file.md5 is not None:  # the package itself: its md5 is known
        hasher, md5 = None, None
    else:  # a file out of the zip: hashed in a thread while it is sent
        md5 = hashlib.md5(usedforsecurity=False)
        hasher = BackgroundHasher([md5], name="upload-md5")
    try:
        with open_file(package, file) as stream:
            answer = client.call("PUT", url, what, stream=SizedStream(stream, file.size, hasher),
                                 changes=True)
    except OSError as exc:
        raise TransientTransferError(f"{what}: cannot read the package: {exc}") from exc
    finally:
        if hasher is not None:
            hasher.close()
    return answer, md5.hexdigest() if md5 is not None else (file.md5 or "")


def check_md5(answer: Any, md5: str, what: str) -> None:
    """A TransientTransferError (send again) if the server's checksum is not ours."""
    checksum = str(answer.get("checksum") or "") if isinstance(answer, dict) else ""
    if checksum and checksum.lower() != f"md5:{md5}":
        raise TransientTransferError(
            f"{what}: the server holds checksum {checksum}, we sent md5:{md5}; the file "
            "was damaged on the way and is sent again")


def publish(client: InvenioClient, path: str, what: str, attempts: int,
            published: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    """POST the publish action at ``path``, a transient fault retried with backoff. A
    try whose answer was lost may have published it, and the next try is then refused:
    when the action fails, ``published()`` (the record if it is published, else None)
    decides before the fault is raised."""
    try:
        return json_object(client.call_retrying("POST", path, what, attempts, changes=True),
                           what)
    except TransferError:
        try:
            found = published()
        except TransferError:
            found = None
        if found is None:
            raise
        logger.warning("%s: the answer was lost, but the record is published", what)
        return found


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None  # an HTTP date: the backoff's own delay instead


def field_errors(body: Any) -> list[str]:
    """``field: message`` for each entry of Invenio's ``errors`` list (InvenioRDM writes
    ``messages``, Zenodo ``message``)."""
    found: list[str] = []
    errors = body.get("errors") if isinstance(body, dict) else None
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict):
            continue
        messages = error.get("messages") or [error.get("message") or "invalid"]
        if not isinstance(messages, list):
            messages = [messages]
        text = "; ".join(str(m) for m in messages)
        found.append(f"{error.get('field') or '(record)'}: {text}"[:300])
    return found


def json_object(value: Any, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else a clear PermanentTransferError."""
    if not isinstance(value, dict):
        raise PermanentTransferError(f"{what}: unexpected answer: {value!r:.200}")
    return value


def json_field(value: dict[str, Any], path: str, what: str) -> Any:
    """``value[a][b]...`` for ``path`` "a.b...", or a PermanentTransferError naming it."""
    current: Any = value
    for part in path.split("."):
        if not isinstance(current, dict) or current.get(part) is None:
            raise PermanentTransferError(f"{what}: the answer has no {path}: {value!r:.300}")
        current = current[part]
    return current
