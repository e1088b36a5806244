"""Broker messages in pass-core's JSON form.

``{"submission": "15", "type": "SubmissionReady"}`` and
``{"deposit": "31", "type": "DepositStatus"}``; the type may also come as a ``type``
header (a header and a body that name different types contradict each other). Extra
fields are tolerated. Any body that cannot be turned into one of these commands (not
UTF-8, not JSON, too large or too deep, not an object, a missing, empty, oversized or
non-printable id) is a ``MalformedMessage`` on its first delivery, saying what is wrong:
it is dead-lettered at once, since redelivering it cannot help.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

from deposit_services.errors import MalformedMessage
from deposit_services.model.graph import (
    MAX_ID_LENGTH,
    format_path,
    json_kind,
    load_json,
    short,
    tree_problem,
)

SUBMISSION_READY = "SubmissionReady"
DEPOSIT_STATUS = "DepositStatus"
# pass-core's bodies are tens of bytes; SQS, the smallest broker limit, allows 256 KiB.
MAX_BODY_BYTES = 256 * 1024
# A message body is one flat object; a little slack for producers' extra fields.
MAX_BODY_DEPTH = 8
_CONTROL = re.compile("[\x00-\x1f\x7f]")


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
_ID_KEYS = {SUBMISSION_READY: "submission", DEPOSIT_STATUS: "deposit"}


def _keys(data: Mapping[str, Any]) -> str:
    names = [short(k, 30) for k in islice(data, 10)]
    return (", ".join(names) + (", ..." if len(data) > 10 else "")) if names else "none"


def _id(data: Mapping[str, Any], key: str, kind: str) -> str:
    """The ``key`` id of a ``kind`` message (``kind`` says where the type came from)."""
    value = data.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        found = "" if value is None else f" ({json_kind(value)}: {short(value)})"
        raise MalformedMessage(f"{kind} needs a non-empty {key!r} id (a string or an "
                               f"integer){found}; the body has keys: {_keys(data)}")
    value = value.strip()
    if len(value) > MAX_ID_LENGTH:
        raise MalformedMessage(f"{kind}: the {key!r} id is {len(value)} characters long; "
                               f"ids are at most {MAX_ID_LENGTH}")
    control = _CONTROL.search(value)
    if control is not None:
        raise MalformedMessage(f"{kind}: the {key!r} id {short(value)} contains the control "
                               f"character {control.group()!a}")
    return value


def _type(data: Mapping[str, Any], headers: Mapping[str, Any]) -> tuple[str, str]:
    """The message type, and how to name the message in errors (``DepositStatus message
    (type from the 'type' header)``); the body's ``type`` and the header must agree."""
    in_body, in_header = data.get("type"), headers.get("type")
    for where, value in (("'type' in the body", in_body), ("the 'type' header", in_header)):
        if value is not None and not isinstance(value, str):
            raise MalformedMessage(f"{where} must be a string, not {json_kind(value)}: "
                                   f"{short(value)}")
    if in_body and in_header and in_body != in_header:
        raise MalformedMessage(f"the body's type {short(in_body)} contradicts the 'type' "
                               f"header {short(in_header)}")
    kind = in_body or in_header
    if not kind:
        raise MalformedMessage(f"message has no type: neither 'type' in the body nor a 'type' "
                               f"header (one of {', '.join(_ID_KEYS)}); the body has keys: "
                               f"{_keys(data)}")
    if kind not in _ID_KEYS:
        raise MalformedMessage(f"unknown message type {short(kind)} "
                               f"(known: {', '.join(_ID_KEYS)})")
    return kind, f"{kind} message" + ("" if in_body else " (type from the 'type' header)")


def parse_message(body: str | bytes, headers: Mapping[str, Any] | None = None) -> Message:
    """Decode a broker message body (and ``type`` header) into a command, or raise
    MalformedMessage saying what is wrong with it."""
    if len(body) > MAX_BODY_BYTES:
        unit = "bytes" if isinstance(body, bytes) else "characters"
        raise MalformedMessage(f"message body is {len(body)} {unit} long; a message is at "
                               f"most {MAX_BODY_BYTES} bytes")
    data = load_json(body, "message body", MalformedMessage, max_depth=MAX_BODY_DEPTH)
    if not isinstance(data, dict):
        raise MalformedMessage(f"message body is {json_kind(data)}, not a JSON object: "
                               f"{short(body, 80)}")
    problem = tree_problem(data, MAX_BODY_DEPTH)
    if problem is not None:
        raise MalformedMessage(f"message body at {format_path(problem[0])}: {problem[1]}")
    kind, described = _type(data, headers or {})
    parsed_id = _id(data, _ID_KEYS[kind], described)
    return SubmissionReady(parsed_id) if kind == SUBMISSION_READY else (
        DepositStatusChanged(parsed_id))
