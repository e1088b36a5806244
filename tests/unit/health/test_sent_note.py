"""What a refresh writes on a SUBMITTED deposit keeps what its transfer recorded, from
the transfer's own message, a refresh's earlier word or a STALLED message alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from deposit_services.service.lifecycle import with_sent_note
from deposit_services.service.stale import stale_message

NOTE = "a corrected resubmission of DOI 10.5555/x: updated the item of deposit d1"


def test_the_transfers_note_follows_each_refresh_word() -> None:
    first = with_sent_note("still in progress at the repository (inprogress)", NOTE)
    assert first == f"still in progress at the repository (inprogress); when sent: {NOTE}"
    again = with_sent_note("still in progress at the repository (review)", first)
    assert again == f"still in progress at the repository (review); when sent: {NOTE}"
    now = datetime(2026, 11, 30, tzinfo=UTC)
    stalled = stale_message(now - timedelta(days=20), timedelta(days=14), now, again)
    assert stalled is not None
    assert with_sent_note("cannot follow the status: gone", stalled) == (
        f"cannot follow the status: gone; when sent: {NOTE}")


def test_without_a_transfer_note_a_refresh_word_replaces_the_last() -> None:
    earlier = with_sent_note("status check failed: 404", None)
    assert earlier == "status check failed: 404"
    assert with_sent_note("still in progress at the repository (x)", earlier) == (
        "still in progress at the repository (x)")
