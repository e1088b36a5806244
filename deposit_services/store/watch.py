"""The worker state as a unit of work hands it out: every call goes to the adapter's,
and the deposits whose attempt log the unit writes are noted (``attempted``), so the
unit's commit hooks hear of an attempt recorded without a write of its Deposit (the
transfer's intent) as they hear of entity writes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from deposit_services.model.works import SentWork
from deposit_services.store.base import (
    Attempt,
    AttemptOutcome,
    OutboxMessage,
    PackageInfo,
    RepositoryState,
    WorkerState,
)


class WatchedState(WorkerState):
    """``state`` with the ids of the deposits whose attempts it wrote in ``attempted``."""

    def __init__(self, state: WorkerState) -> None:
        self.inner = state
        self.attempted: dict[str, None] = {}  # insertion-ordered set

    def begin_attempt(self, deposit_id: str, *, trigger: str, owner: str,
                      package: PackageInfo | None = None) -> Attempt:
        attempt = self.inner.begin_attempt(deposit_id, trigger=trigger, owner=owner,
                                           package=package)
        self.attempted[deposit_id] = None
        return attempt

    def end_attempt(self, deposit_id: str, number: int, outcome: AttemptOutcome, *,
                    error: str | None = None, status_ref: str | None = None,
                    edit_iri: str | None = None, access_url: str | None = None) -> Attempt:
        attempt = self.inner.end_attempt(deposit_id, number, outcome, error=error,
                                         status_ref=status_ref, edit_iri=edit_iri,
                                         access_url=access_url)
        self.attempted[deposit_id] = None
        return attempt

    def note_attempt(self, deposit_id: str, number: int, error: str) -> None:
        self.inner.note_attempt(deposit_id, number, error)
        self.attempted[deposit_id] = None

    # -- the rest as the adapter has it -------------------------------------------------

    def acquire_lease(self, key: str, owner: str, seconds: float) -> bool:
        return self.inner.acquire_lease(key, owner, seconds)

    def release_lease(self, key: str, owner: str) -> None:
        self.inner.release_lease(key, owner)

    def attempts(self, deposit_id: str) -> list[Attempt]:
        return self.inner.attempts(deposit_id)

    def attempt_counts(self, deposit_ids: Sequence[str]) -> dict[str, int]:
        return self.inner.attempt_counts(deposit_ids)

    def repository_states(self, keys: Sequence[str] = ()) -> list[RepositoryState]:
        return self.inner.repository_states(keys)

    def put_repository_state(self, state: RepositoryState) -> bool:
        return self.inner.put_repository_state(state)

    def add_message(self, queue: str, body: str, headers: Mapping[str, str]) -> OutboxMessage:
        return self.inner.add_message(queue, body, headers)

    def messages(self, older_than: float) -> list[OutboxMessage]:
        return self.inner.messages(older_than)

    def remove_messages(self, ids: Sequence[int]) -> None:
        self.inner.remove_messages(ids)

    def discard_messages(self, body: str) -> None:
        self.inner.discard_messages(body)

    def record_sent_work(self, work: SentWork) -> None:
        self.inner.record_sent_work(work)

    def backfill_sent_works(self, works: Sequence[SentWork]) -> int:
        return self.inner.backfill_sent_works(works)

    def sent_works(self, repository: str, doi: str) -> list[SentWork]:
        return self.inner.sent_works(repository, doi)
