"""The dashboard's password check, signed sessions and CSRF tokens."""

from __future__ import annotations

import pytest

from deposit_services.web.auth import (
    Session,
    Sessions,
    check_csrf,
    check_password,
    hash_password,
)


def test_hashed_and_plain_passwords() -> None:
    stored = hash_password("s3cret pass", iterations=1000)
    assert stored.startswith("pbkdf2_sha256$1000$")
    assert check_password("s3cret pass", stored)
    assert not check_password("s3cret pas", stored)
    assert check_password("plain", "plain") and not check_password("plain ", "plain")
    assert not check_password("x", "pbkdf2_sha256$broken")


def test_a_session_cookie_is_signed_and_expires() -> None:
    sessions = Sessions(b"key")
    session = sessions.new("operator")
    cookie = sessions.dump(session)
    assert sessions.load(cookie) == Session("operator", session.csrf, int(session.expires))
    signature = cookie.rpartition(".")[2]
    forged = Sessions(b"key").dump(Session("admin", session.csrf, session.expires))
    assert sessions.load(forged.rpartition(".")[0] + "." + signature) is None  # tampered
    assert Sessions(b"other key").load(cookie) is None
    assert sessions.load(sessions.dump(Session("operator", "t", 1.0))) is None  # expired
    for junk in ("", "no-dot", "a.b", None):
        assert sessions.load(junk) is None
    header = sessions.cookie_header(session, secure=True)
    for part in ("HttpOnly", "SameSite=Strict", "Secure", "Path=/"):
        assert part in header


@pytest.mark.parametrize("token", [None, "", "wrong"])
def test_csrf_token_must_match(token: str | None) -> None:
    session = Sessions(b"k").new()
    assert check_csrf(session, session.csrf)
    assert not check_csrf(session, token)
