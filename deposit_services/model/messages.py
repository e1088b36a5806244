"""Broker messages in pass-core's JSON form.

``{"submission": "15", "type": "SubmissionReady"}`` and
``{"deposit": "31", "type": "DepositStatus"}``; the type may also come as a ``type``
header. Extra fields are tolerated; anything else is a ``MalformedMessage``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deposit_services.errors import MalformedMessage

SUBMISSION_READY = "SubmissionReady"
DEPOSIT_STATUS = "DepositStatus"


@dataclass(frozen=True)
class SubmissionReady:
    submission: str

    def to_json(self) -> str:
        return json.dumps({"submission": self.submission, "type": SUBMISSION_READY})


@dataclass(frozen=True)
class DepositStatusChanged:
    deposit: str

    def to_json(self) -> str:
        return json.dumps({"deposit": self.deposit, "type": DEPOSIT_STATUS})


Message = SubmissionReady | DepositStatusChanged


def _id(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise MalformedMessage(f"{data.get('type')} message needs a non-empty {key!r} id")
    return value.strip()


def parse_message(body: str | bytes, headers: Mapping[str, str] | None = None) -> Message:
    """Decode a broker message body (and ``type`` header) into a command."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedMessage(f"message body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedMessage(f"message body is not a JSON object: {str(body)[:80]!r}")
    kind = data.get("type") or (headers or {}).get("type")
    if kind == SUBMISSION_READY:
        return SubmissionReady(_id(data, "submission"))
    if kind == DEPOSIT_STATUS:
        return DepositStatusChanged(_id(data, "deposit"))
    raise MalformedMessage(f"unknown message type {kind!r}")
