"""The two kinds of error body pass-core answers with.

- ``ApiError``: an Elide error, a JSON:API error document ``{"errors": [{"detail": ...}]}``
  whose detail is HTML-encoded (Elide's JsonApiErrorSerializer uses OWASP Encode.forHtml).
- ``SpringError``: anything refused before or outside Elide (Spring Security's 401/403,
  no route, wrong media type, an exception Elide does not map): Spring Boot's error JSON
  ``{"timestamp", "status", "error", "path"}``. ``ServerFault`` is the 500 of that kind.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

JSON_API = "application/vnd.api+json"


def encode_for_html(text: str) -> str:
    """OWASP ``Encode.forHtml``: what Elide does to every error detail."""
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace('"', "&#34;").replace("'", "&#39;")
    )


def _java_text(value: Any) -> str:
    """``String.valueOf`` of a value that came from JSON (how Elide prints it)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_java_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java_text(v)}" for k, v in value.items()) + "}"
    return str(value)


class ApiError(Exception):
    """An error Elide maps to a status and a JSON:API error document."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    @classmethod
    def invalid_value(cls, value: Any) -> ApiError:
        """Elide's ``InvalidValueException(value)``: 400 ``Invalid value: <value>``."""
        return cls(400, f"Invalid value: {_java_text(value)}")

    @classmethod
    def unknown_identifier(cls, id: Any, type_name: str) -> ApiError:
        return cls(404, f"Unknown identifier {_java_text(id)} for {type_name}")

    @classmethod
    def unknown_attribute(cls, name: str, type_name: str) -> ApiError:
        return cls(404, f"Unknown attribute {name} in {type_name}")

    @classmethod
    def bad_body(cls, body: str) -> ApiError:
        """Elide's ``InvalidEntityBodyException``."""
        return cls(400, f"Bad Request Body'{body}'")

    def document(self) -> dict[str, Any]:
        return {"errors": [{"detail": encode_for_html(self.detail)}]}

    def body(self) -> bytes:
        return json.dumps(self.document(), separators=(",", ":")).encode()


class SpringError(Exception):
    """An error answered by Spring (Security) itself, outside Elide."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message or HTTPStatus(status).phrase)
        self.status = status
        self.message = message

    def body(self, path: str) -> bytes:
        return spring_error_body(self.status, path)


class ServerFault(SpringError):
    """An exception Elide does not map (e.g. a DateTimeParseException): Spring's 500."""

    def __init__(self, message: str) -> None:
        super().__init__(500, message)


def spring_error_body(status: int, path: str) -> bytes:
    """Spring Boot's default error JSON (BasicErrorController)."""
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+00:00"
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    document = {"timestamp": stamp, "status": status, "error": phrase, "path": path}
    return json.dumps(document, separators=(",", ":")).encode()
