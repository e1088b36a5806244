"""The store contract: every test runs on the in-memory adapter, SQLite and PostgreSQL.

The service layer's unit tests run on the in-memory adapter; these tests are what
makes that honest: the same behaviour on all three (versions and compare-and-set,
unique deposits, leases, the unit of work's all-or-nothing commit, the outbox)."""

from __future__ import annotations

import socket
import threading

import pytest
from sqlalchemy import func, select

from deposit_services.errors import AlreadyExists, NotFound, StaleVersion, StoreUnavailable
from deposit_services.model.entities import (
    AggregatedDepositStatus,
    Deposit,
    DepositStatus,
    Repository,
    Submission,
    SubmissionStatus,
    User,
)
from deposit_services.store import schema
from deposit_services.store.base import AttemptOutcome
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import UnitOfWork, run_unit
from tests.support.store import StoreView


def test_add_get_update_bumps_version(store: StoreView) -> None:
    added = store.add(User(id="u1", first_name="Ada", email="ada@example.org"))
    assert added.version == 1
    got = store.get(User, "u1")
    assert (got.first_name, got.email, got.version) == ("Ada", "ada@example.org", 1)

    got.last_name = "Lovelace"
    updated = store.update(got)
    assert updated.version == 2
    again = store.get(User, "u1")
    assert (again.last_name, again.version) == ("Lovelace", 2)
    assert "version" not in again.to_json()


def test_unknown_fields_survive_the_round_trip(store: StoreView) -> None:
    store.add(Submission.model_validate({"id": "s1", "someFutureField": {"a": [1, 2]}}))
    assert store.get(Submission, "s1").to_json()["someFutureField"] == {"a": [1, 2]}


def test_get_missing_is_not_found(store: StoreView) -> None:
    with pytest.raises(NotFound, match="User nope"):
        store.get(User, "nope")


def test_add_twice_is_already_exists(store: StoreView) -> None:
    store.add(User(id="u1"))
    with pytest.raises(AlreadyExists):
        store.add(User(id="u1", first_name="other"))
    assert store.get(User, "u1").first_name is None


def test_stale_update_is_refused(store: StoreView) -> None:
    store.add(Submission(id="s1"))
    first = store.get(Submission, "s1")
    second = store.get(Submission, "s1")
    first.submission_status = SubmissionStatus.SUBMITTED
    store.update(first)
    second.submission_status = SubmissionStatus.CANCELLED
    with pytest.raises(StaleVersion):
        store.update(second)
    current = store.get(Submission, "s1")
    assert (current.submission_status, current.version) == (SubmissionStatus.SUBMITTED, 2)


def test_update_of_missing_entity_is_not_found(store: StoreView) -> None:
    with pytest.raises(NotFound):
        store.update(User(id="ghost", version=1))


def test_one_deposit_per_submission_and_repository(store: StoreView) -> None:
    store.add(Deposit(id="d1", submission="s1", repository="r1"))
    with pytest.raises(AlreadyExists):
        store.add(Deposit(id="d2", submission="s1", repository="r1"))
    store.add(Deposit(id="d3", submission="s1", repository="r2"))
    assert [d.id for d in store.find(Deposit, submission="s1")] == ["d1", "d3"]
    assert [d.id for d in store.find(Deposit, submission="s1", repository="r1")] == ["d1"]
    assert store.find(Deposit, submission="s1", repository="r9") == []


def test_find_by_indexed_fields(store: StoreView) -> None:
    store.add(Deposit(id="d2", submission="s1", repository="r1",
                      deposit_status=DepositStatus.SUBMITTED))
    store.add(Deposit(id="d1", submission="s1", repository="r2",
                      deposit_status=DepositStatus.ACCEPTED))
    store.add(Deposit(id="d3", submission="s2", repository="r1",
                      deposit_status=DepositStatus.SUBMITTED))
    store.add(Submission(id="s1", aggregated_deposit_status=AggregatedDepositStatus.NOT_STARTED))

    submitted = store.find(Deposit, deposit_status=DepositStatus.SUBMITTED)
    assert [d.id for d in submitted] == ["d2", "d3"]
    assert all(d.version == 1 for d in submitted)
    assert [d.id for d in store.find(Deposit, deposit_status="ACCEPTED")] == ["d1"]
    both = store.find(Deposit, submission="s1", repository="r1")
    assert [d.id for d in both] == ["d2"]
    assert [d.id for d in store.find(Deposit)] == ["d1", "d2", "d3"]
    assert store.find(Deposit, repository="r9") == []
    found = store.find(Submission, aggregated_deposit_status=AggregatedDepositStatus.NOT_STARTED)
    assert [s.id for s in found] == ["s1"]
    with pytest.raises(ValueError, match="status_message"):
        store.find(Deposit, status_message="x")


def test_find_orders_by_id_the_same_on_every_backend(store: StoreView) -> None:
    ids = ["b", "B", "a", "_x", "10", "9", "a-1", "A_2"]
    for i in ids:
        store.add(User(id=i))
    assert [u.id for u in store.find(User)] == sorted(ids)


def test_find_sees_indexed_field_changes(store: StoreView) -> None:
    store.add(Repository(id="r1", repository_key="old"))
    repo = store.get(Repository, "r1")
    repo.repository_key = "new"
    store.update(repo)
    assert store.find(Repository, repository_key="old") == []
    assert [r.id for r in store.find(Repository, repository_key="new")] == ["r1"]


def test_a_unit_left_without_commit_rolls_everything_back(store: StoreView) -> None:
    store.add(User(id="u0"))
    with pytest.raises(RuntimeError), store.database.unit_of_work() as uow:
        uow.records.add(User(id="u1"))
        uow.records.get(User, "u0").first_name = "changed"
        uow.state.acquire_lease("k", "me", 60)
        uow.publish("q", "{}")
        raise RuntimeError("boom")
    assert [u.id for u in store.find(User)] == ["u0"]
    assert store.get(User, "u0").first_name is None
    assert store.acquire_lease("k", "other", 60)  # the lease was rolled back too
    with store.database.unit_of_work(read_only=True) as uow:
        assert uow.state.messages(older_than=-3600) == []


def test_a_unit_commits_its_changes_and_only_the_changed_entities(store: StoreView) -> None:
    store.add(User(id="u0"))
    store.add(User(id="u1"))
    with store.database.unit_of_work() as uow:
        uow.records.get(User, "u0").first_name = "Ada"
        uow.records.get(User, "u1")  # read, not changed: not written
        uow.records.add(User(id="u2"))
        uow.commit()
    assert [(u.id, u.version) for u in store.find(User)] == [("u0", 2), ("u1", 1), ("u2", 1)]


def test_the_identity_map_reads_an_entity_once(store: StoreView) -> None:
    store.add(User(id="u0", first_name="Ada"))
    with store.database.unit_of_work(read_only=True) as uow:
        first = uow.records.get(User, "u0")
        first.first_name = "changed here"
        assert uow.records.get(User, "u0") is first
        assert uow.records.get_many(User, ["u0", "nobody"]) == [first]
        assert uow.records.find(User) == [first]
        assert uow.records.find(User, )[0].first_name == "changed here"


def test_find_in_a_unit_sees_its_own_changes(store: StoreView) -> None:
    store.add(Deposit(id="d1", submission="s1", repository="r1"))
    with store.database.unit_of_work() as uow:
        uow.records.get(Deposit, "d1").deposit_status = DepositStatus.ACCEPTED
        uow.records.add(Deposit(id="d2", submission="s1", repository="r2"))
        assert [d.id for d in uow.records.find(Deposit, deposit_status=None)] == ["d2"]
        assert [d.id for d in uow.records.find(Deposit, submission="s1")] == ["d1", "d2"]
        uow.commit()
    assert [d.id for d in store.find(Deposit, deposit_status="ACCEPTED")] == ["d1"]


def test_a_stale_write_fails_the_commit_and_writes_nothing(store: StoreView) -> None:
    store.add(User(id="u1"))
    store.add(Submission(id="s1"))
    old = store.get(Submission, "s1")
    newer = store.get(Submission, "s1")
    newer.submission_status = SubmissionStatus.SUBMITTED
    store.update(newer)
    with pytest.raises(StaleVersion), store.database.unit_of_work() as uow:
        uow.records.attach(old).submission_status = SubmissionStatus.CANCELLED
        uow.records.get(User, "u1").first_name = "written with it, or not at all"
        uow.commit()
    assert store.get(Submission, "s1").submission_status is SubmissionStatus.SUBMITTED
    assert store.get(User, "u1").first_name is None


def test_run_unit_runs_a_phase_again_on_fresh_reads_after_a_lost_race(store: StoreView) -> None:
    store.add(Submission(id="s1"))
    stale = store.get(Submission, "s1")
    moved = store.get(Submission, "s1")
    moved.status_message = "another worker was here"
    store.update(moved)
    runs: list[int] = []

    def work(uow: UnitOfWork) -> None:
        # the first run works on a copy read earlier (as a phase does with what the
        # claim read); it loses the compare-and-set, the second run reads afresh
        submission = (uow.records.attach(stale) if not runs
                      else uow.records.get(Submission, "s1"))
        runs.append(submission.version)
        submission.submission_status = SubmissionStatus.SUBMITTED

    run_unit(store.database, work)
    assert runs == [1, 2]
    final = store.get(Submission, "s1")
    assert (final.submission_status, final.status_message, final.version) == (
        SubmissionStatus.SUBMITTED, "another worker was here", 3)


def test_outbox_messages_are_published_only_after_commit(store: StoreView) -> None:
    published: list[str] = []
    store.database.publisher = lambda m: published.append(m.body)
    with store.database.unit_of_work() as uow:
        uow.publish("deposit", "rolled back")
    with store.database.unit_of_work() as uow:
        uow.publish("deposit", "committed", {"type": "DepositStatus"})
        assert published == []
        uow.commit()
    assert published == ["committed"]
    # the published message leaves the outbox with the next unit that writes
    with store.database.unit_of_work(read_only=True) as uow:
        assert [m.body for m in uow.state.messages(older_than=-3600)] == ["committed"]
    store.database.flush_published()
    with store.database.unit_of_work(read_only=True) as uow:
        assert uow.state.messages(older_than=-3600) == []


def test_outbox_messages_a_stopped_worker_left_are_relayed(store: StoreView) -> None:
    with store.database.unit_of_work() as uow:  # no publisher: as if the worker died
        uow.publish("deposit", '{"deposit": "31"}', {"type": "DepositStatus"})
        uow.commit()
    published: list[tuple[str, str, dict[str, str]]] = []
    store.database.publisher = lambda m: published.append((m.queue, m.body, dict(m.headers)))
    assert store.database.relay_outbox(older_than=3600) == 0  # too young: a live worker's
    assert store.database.relay_outbox(older_than=-3600) == 1
    assert published == [("deposit", '{"deposit": "31"}', {"type": "DepositStatus"})]
    assert store.database.relay_outbox(older_than=-3600) == 0  # removed once relayed


def test_a_failed_publish_stays_in_the_outbox(store: StoreView) -> None:
    def broken(message: object) -> None:
        raise ConnectionError("broker down")

    store.database.publisher = broken
    with store.database.unit_of_work() as uow:
        uow.publish("deposit", "kept")
        uow.commit()
    store.database.flush_published()
    with store.database.unit_of_work(read_only=True) as uow:
        assert [m.body for m in uow.state.messages(older_than=-3600)] == ["kept"]


def test_attempt_counts_in_one_query(store: StoreView) -> None:
    for deposit_id, n in (("d1", 2), ("d2", 1)):
        for _ in range(n):
            store.begin_attempt(deposit_id, trigger="message", owner="w")
    with store.database.unit_of_work(read_only=True) as uow:
        assert uow.state.attempt_counts(["d1", "d2", "d3"]) == {"d1": 2, "d2": 1}


def test_leases_expire_renew_and_release(store: StoreView) -> None:
    assert store.acquire_lease("deposit:1", "a", 0.4)
    assert not store.acquire_lease("deposit:1", "b", 10)
    assert store.acquire_lease("deposit:1", "a", 0.4)  # renewal by the owner
    assert store.acquire_lease("deposit:2", "b", 10)  # other keys are independent
    threading.Event().wait(0.6)
    assert store.acquire_lease("deposit:1", "b", 10)  # expired: taken over
    assert not store.acquire_lease("deposit:1", "a", 10)
    store.release_lease("deposit:1", "a")  # not the owner: no effect
    assert not store.acquire_lease("deposit:1", "a", 10)
    store.release_lease("deposit:1", "b")
    assert store.acquire_lease("deposit:1", "a", 10)


def test_racing_lease_acquirers_exactly_one_wins(store: StoreView) -> None:
    threads = 8
    for round_ in range(5):
        key = f"submission:{round_}"
        barrier = threading.Barrier(threads)
        results: dict[str, bool] = {}

        def race(
            owner: str,
            key: str = key,
            barrier: threading.Barrier = barrier,
            results: dict[str, bool] = results,
        ) -> None:
            barrier.wait()
            results[owner] = store.acquire_lease(key, owner, 60)

        workers = [threading.Thread(target=race, args=(f"w{i}",)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=60)
        assert len(results) == threads
        assert sum(results.values()) == 1, results


def test_schema_creation_twice_is_a_no_op(store_url: str) -> None:
    first = StoreView.sql(store_url)
    first.add(User(id="u1"))
    second = StoreView.sql(store_url)
    assert schema.ensure_schema(second.engine) == schema.LATEST
    assert second.get(User, "u1").version == 1
    with second.engine.connect() as conn:
        rows = conn.execute(select(schema.schema_version.c.version)).all()
        assert [r.version for r in rows] == [schema.LATEST]
        assert conn.execute(select(func.count()).select_from(schema.leases)).scalar() == 0
    first.close()
    second.close()


def test_concurrent_schema_creation(store_url: str) -> None:
    errors: list[BaseException] = []
    stores: list[StoreView] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        try:
            stores.append(StoreView.sql(store_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(stores) == 4
    stores[0].add(User(id="u1"))
    assert stores[3].get(User, "u1").id == "u1"
    for s in stores:
        s.close()


def test_compare_and_set_race_loses_no_increment(store: StoreView) -> None:
    threads, increments = 8, 15
    store.add(Submission.model_validate({"id": "s1", "counter": 0}))
    conflicts = [0] * threads

    def work(index: int) -> None:
        for _ in range(increments):
            while True:
                current = store.get(Submission, "s1")
                body = current.to_json()
                body["counter"] += 1
                body.pop("@type")
                changed = Submission.model_validate(body)
                changed.version = current.version
                try:
                    store.update(changed)
                    break
                except StaleVersion:
                    conflicts[index] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
    final = store.get(Submission, "s1")
    assert final.to_json()["counter"] == threads * increments
    assert final.version == 1 + threads * increments


def test_unreachable_postgres_is_store_unavailable_with_masked_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://someone:s3cret-pw@127.0.0.1:{port}/nothing"
    with pytest.raises(StoreUnavailable) as caught:
        SqlDatabase(url).check()
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "s3cret-pw" not in message


def test_discarded_messages_leave_the_outbox_published_or_not(store: StoreView) -> None:
    with store.database.unit_of_work() as uow:
        uow.publish("submission", '{"submission": "s1", "type": "SubmissionReady"}')
        uow.publish("submission", '{"submission": "s2", "type": "SubmissionReady"}')
        uow.commit()
    with store.database.unit_of_work() as uow:  # s1 claimed: its announcement is done
        uow.state.discard_messages('{"submission": "s1", "type": "SubmissionReady"}')
        uow.commit()
    with store.database.unit_of_work(read_only=True) as uow:
        assert [m.body for m in uow.state.messages(older_than=-3600)] == [
            '{"submission": "s2", "type": "SubmissionReady"}']


def test_a_note_on_an_open_attempt_keeps_it_open(store: StoreView) -> None:
    """An attempt whose outcome is unknown: the log says why, and it stays open for
    the next attempt to reconcile; an ended attempt is not rewritten."""
    store.begin_attempt("d1", trigger="message", owner="w")
    run_unit(store.database, lambda uow: uow.state.note_attempt(
        "d1", 1, "outcome unknown: read timed out"))
    (noted,) = store.attempts("d1")
    assert noted.is_open and noted.error == "outcome unknown: read timed out"
    store.end_attempt("d1", 1, AttemptOutcome.RECONCILED, error=None)
    run_unit(store.database, lambda uow: uow.state.note_attempt("d1", 1, "late"))
    run_unit(store.database, lambda uow: uow.state.note_attempt("d1", 7, "nothing"))
    (ended,) = store.attempts("d1")
    assert ended.outcome is AttemptOutcome.RECONCILED and ended.error is None
