"""Stale deposits: SUBMITTED, and nothing has changed for too long.

A deposit is stale when it has been SUBMITTED for longer than its repository's
``operations.stale-after-days`` (default ``DEPOSIT_STALE_AFTER_DAYS``, 14) since it was
sent (the end of its last transfer in the attempt log; without one, its submission's
submittedDate). A refresh that leaves it SUBMITTED then makes its RepositoryCopy
STALLED (PASS's CopyStatus for a copy that stopped moving) and its statusMessage says
since when and what was last heard. It goes on being refreshed (the refresh job takes
deposits with a STALLED copy whatever their age), and leaves STALLED when the
repository answers: ACCEPTED -> COMPLETE, REJECTED -> REJECTED, as any answer does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from deposit_services.store.base import Attempt, AttemptOutcome

PREFIX = "stalled: "
_SENT = (AttemptOutcome.SENT, AttemptOutcome.RECONCILED)


def submitted_since(attempts: Sequence[Attempt], fallback: datetime | None) -> datetime | None:
    """When the deposit was sent: its last transfer's end, else ``fallback``."""
    sent = [a.ended_at for a in attempts if a.outcome in _SENT and a.ended_at is not None]
    return max(sent) if sent else fallback


def stale_message(since: datetime | None, limit: timedelta, now: datetime,
                  heard: str) -> str | None:
    """The STALLED statusMessage when ``since`` is more than ``limit`` ago, else None.
    The same from one refresh to the next while nothing changes (no write)."""
    if since is None or now - since < limit:
        return None
    days = limit.total_seconds() / 86400
    return (f"{PREFIX}SUBMITTED with no change since {since.isoformat(timespec='seconds')} "
            f"(stale after {days:g} days); last heard: {heard}")
