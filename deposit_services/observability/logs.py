"""Structured logs: DEPOSIT_LOG_FORMAT=json gives one JSON object a line.

Each line carries the time, level, logger, thread and message, and the ids of what the
thread is working on (``submission``, ``deposit``, ``repository``, ``attempt``) from a
context variable: the broker wrapper binds the message's id when it hands a delivery
over, the deposit task binds the deposit, its repository and attempt (``bind``), a job
run starts clean (``clear``). The message and every field go through ``SafeFormatter``'s
rules (escaped, cut, URL credentials masked) and, in both formats, every secret value
the configuration holds is replaced by ``***`` (``Scrubbed``, given them by ``protect``).
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from deposit_services.safetext import MASK, SafeFormatter, is_secret_key, safe

LOG_FORMATS = ("text", "json")
FIELDS = ("submission", "deposit", "repository", "attempt")
MIN_SECRET = 4  # shorter values would mask ordinary words

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "deposit_log_context", default=None)


def bind(**fields: Any) -> None:
    """Add ``fields`` to this thread's log context (None removes one)."""
    current = dict(_context.get() or {})
    for key, value in fields.items():
        if value is None:
            current.pop(key, None)
        else:
            current[key] = value
    _context.set(current)


def clear(**fields: Any) -> None:
    """Start this thread's log context afresh, with ``fields``."""
    _context.set({k: v for k, v in fields.items() if v is not None})


def current() -> dict[str, Any]:
    return dict(_context.get() or {})


class JsonFormatter(SafeFormatter):
    """One JSON object a line; values made safe as the text format makes them."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "thread": record.threadName,
            "message": self.safe_message(record),
        }
        for key, value in current().items():
            entry[key] = value if isinstance(value, int) else safe(str(value))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def formatter(fmt: str, text_format: str) -> Scrubbed:
    """The formatter for DEPOSIT_LOG_FORMAT ``fmt`` (``text_format``: the text layout)."""
    return Scrubbed(JsonFormatter() if fmt == "json" else SafeFormatter(text_format))


def secret_values(*sources: object) -> set[str]:
    """The values under secret-like keys (password, token, passphrase, api-key ...)
    anywhere in ``sources`` (mappings, lists, dataclasses, pydantic models); of the
    settings, those ``Settings.masked`` hides. A bare ``key`` is a repository's name in
    repositories.json, not a secret."""
    found: set[str] = set()

    def walk(value: object, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, str(k))
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, key)
        elif isinstance(value, str):
            if key and key != "key" and is_secret_key(key) and len(value) >= MIN_SECRET:
                found.add(value)
        elif callable(masked := getattr(value, "masked", None)):  # Settings: its own rule
            shown: dict[str, str] = masked()
            found.update(str(getattr(value, name)) for name, text in shown.items()
                         if text == MASK and len(str(getattr(value, name))) >= MIN_SECRET)
        elif hasattr(value, "__dataclass_fields__") or hasattr(value, "model_dump"):
            dumped = (value.model_dump(by_alias=True)
                      if hasattr(value, "model_dump") else vars(value))
            walk(dumped, key)

    for source in sources:
        walk(source)
    return found


class Scrubbed(logging.Formatter):
    """``inner``'s text with every known secret value replaced by ``***``: the last line
    of defence for a secret that reaches a message other than inside a URL (a library
    error that quotes it). ``protect`` adds the values the configuration holds."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner
        self.secrets: list[str] = []

    def protect(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({*self.secrets, *(s for s in secrets if len(s) >= MIN_SECRET)},
                              key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(self.inner.format(record))


def protect(secrets: Iterable[str]) -> None:
    """Every ``Scrubbed`` formatter of the root logger's handlers masks ``secrets`` too."""
    values = list(secrets)
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, Scrubbed):
            handler.formatter.protect(values)
