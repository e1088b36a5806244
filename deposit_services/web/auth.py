"""Who may do what on the dashboard: the operator's password check, the signed session
cookie and the CSRF token of every form.

The operator and the password come from settings (``DEPOSIT_WEB_USER``,
``DEPOSIT_WEB_PASSWORD``: plain, or ``pbkdf2_sha256$iterations$salt$hash`` as printed by
``deposit-services web --hash-password``); a password is compared as digests in
constant time, never as text. The session is a cookie signed with HMAC-SHA256
(``DEPOSIT_WEB_SESSION_KEY``, or a key new to each process): who is signed in, until when,
and the session's CSRF token, which every form carries back (``check_csrf``). The
cookie is HttpOnly and SameSite=Strict (and Secure when the page came over HTTPS).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

COOKIE = "ds_session"
SESSION_SECONDS = 8 * 3600
PBKDF2 = "pbkdf2_sha256"
PBKDF2_ITERATIONS = 310_000


def hash_password(password: str, iterations: int = PBKDF2_ITERATIONS) -> str:
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"{PBKDF2}${iterations}${salt}${digest.hex()}"


def check_password(given: str, stored: str) -> bool:
    """Whether ``given`` is the password ``stored`` (a pbkdf2 hash, or plain text)."""
    if stored.startswith(PBKDF2 + "$"):
        try:
            _, iterations, salt, expected = stored.split("$", 3)
            digest = hashlib.pbkdf2_hmac("sha256", given.encode(), salt.encode(),
                                         int(iterations)).hex()
        except ValueError:
            return False
        return hmac.compare_digest(digest, expected)
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(),
                               hashlib.sha256(stored.encode()).digest())


@dataclass(frozen=True)
class Session:
    user: str | None
    csrf: str
    expires: float


class Sessions:
    """Signs and reads session cookies with ``key``."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def new(self, user: str | None = None) -> Session:
        return Session(user, secrets.token_urlsafe(24), time.time() + SESSION_SECONDS)

    def _sign(self, payload: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self.key, payload, hashlib.sha256).digest()
                                        ).decode().rstrip("=")

    def dump(self, session: Session) -> str:
        payload = base64.urlsafe_b64encode(json.dumps(
            {"u": session.user, "c": session.csrf, "e": int(session.expires)}).encode())
        return f"{payload.decode()}.{self._sign(payload)}"

    def load(self, cookie: str | None) -> Session | None:
        """The session of a cookie this process (or its key) signed and that has not
        expired; None for anything else."""
        if not cookie or "." not in cookie:
            return None
        payload, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(self._sign(payload.encode()), signature):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload.encode()))
            session = Session(data["u"], str(data["c"]), float(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires < time.time():
            return None
        return session

    def cookie_header(self, session: Session, secure: bool) -> str:
        return (f"{COOKIE}={self.dump(session)}; Path=/; HttpOnly; SameSite=Strict; "
                f"Max-Age={SESSION_SECONDS}" + ("; Secure" if secure else ""))


def check_csrf(session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf.encode(), (token or "").encode())
