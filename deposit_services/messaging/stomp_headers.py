"""What our STOMP messages carry in their headers: the attempt count and message id on
every message, the reason, original queue, attempts and last error on a dead letter;
and a dead letter read back from them (the operator's ``dead-letters`` listing)."""

from __future__ import annotations

from collections.abc import Mapping

from deposit_services.messaging.base import DeadLetter

REASON_MAX = 1000

ATTEMPT = "x-attempt"
MESSAGE_ID = "x-message-id"
REASON = "x-dead-letter-reason"
ORIGINAL_QUEUE = "x-original-queue"
ATTEMPTS = "x-attempts"
LAST_ERROR = "x-last-error"
# Frame headers that belong to one delivery, not to the message: dropped on republish.
DELIVERY_HEADERS = frozenset({
    "message-id", "destination", "subscription", "ack", "redelivered", "content-length",
    "content-type", "timestamp", "expires", "priority", "persistent", "receipt",
    "transaction", "original-destination", "message-id-original",
})
# What a dead letter carries about its death: dropped when it is requeued.
DEAD_LETTER_HEADERS = frozenset({REASON, ORIGINAL_QUEUE, ATTEMPTS, ATTEMPT, LAST_ERROR})


def message_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The message's own headers: neither a delivery's nor a dead letter's."""
    return {k: v for k, v in headers.items()
            if k not in DELIVERY_HEADERS and k not in DEAD_LETTER_HEADERS}


def dead_letter_of(headers: Mapping[str, str], body: bytes) -> DeadLetter:
    """A message of a dead-letter queue as the operator sees it."""
    try:
        attempts = int(headers.get(ATTEMPTS, "0"))
    except ValueError:
        attempts = 0
    return DeadLetter(
        queue=headers.get(ORIGINAL_QUEUE, ""),
        body=body.decode("utf-8", errors="replace"),
        reason=headers.get(REASON, "(no reason recorded)"),
        attempts=attempts,
        headers=message_headers(headers),
        id=headers.get(MESSAGE_ID) or headers.get("message-id", ""),
    )


def one_line(text: str) -> str:
    """A reason or error as one header line, cut to REASON_MAX."""
    return " ".join(text.split())[:REASON_MAX]
