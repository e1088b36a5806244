"""How an HTTP answer is named in our messages: ``HTTP 401 Unauthorized``, with the
standard phrase when the server sent none (HTTP/2 has none; some servers send "")."""

from __future__ import annotations

from http import HTTPStatus


def http_status(code: int, reason: str | None = None) -> str:
    phrase = (reason or "").strip()
    if not phrase:
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = ""
    return f"HTTP {code} {phrase}".rstrip()
