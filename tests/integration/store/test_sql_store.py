"""SqlStore against real databases: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

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
from deposit_services.store.sql import SqlStore


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    s = SqlStore(store_url)
    yield s
    s.close()


def test_add_get_update_bumps_version(store: SqlStore) -> None:
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


def test_unknown_fields_survive_the_round_trip(store: SqlStore) -> None:
    store.add(Submission.model_validate({"id": "s1", "someFutureField": {"a": [1, 2]}}))
    assert store.get(Submission, "s1").to_json()["someFutureField"] == {"a": [1, 2]}


def test_get_missing_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound, match="User nope"):
        store.get(User, "nope")


def test_add_twice_is_already_exists(store: SqlStore) -> None:
    store.add(User(id="u1"))
    with pytest.raises(AlreadyExists):
        store.add(User(id="u1", first_name="other"))
    assert store.get(User, "u1").first_name is None


def test_stale_update_is_refused(store: SqlStore) -> None:
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


def test_update_of_missing_entity_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.update(User(id="ghost", version=1))


def test_one_deposit_per_submission_and_repository(store: SqlStore) -> None:
    store.add(Deposit(id="d1", submission="s1", repository="r1"))
    with pytest.raises(AlreadyExists):
        store.add(Deposit(id="d2", submission="s1", repository="r1"))
    store.add(Deposit(id="d3", submission="s1", repository="r2"))
    assert [d.id for d in store.find(Deposit, submission="s1")] == ["d1", "d3"]
    assert store.deposit_for("s1", "r1") is not None
    assert store.deposit_for("s1", "r9") is None


def test_find_by_indexed_fields(store: SqlStore) -> None:
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


def test_find_orders_by_id_the_same_on_every_backend(store: SqlStore) -> None:
    ids = ["b", "B", "a", "_x", "10", "9", "a-1", "A_2"]
    for i in ids:
        store.add(User(id=i))
    assert [u.id for u in store.find(User)] == sorted(ids)


def test_find_sees_indexed_field_changes(store: SqlStore) -> None:
    store.add(Repository(id="r1", repository_key="old"))
    repo = store.get(Repository, "r1")
    repo.repository_key = "new"
    store.update(repo)
    assert store.find(Repository, repository_key="old") == []
    assert [r.id for r in store.find(Repository, repository_key="new")] == ["r1"]


def test_atomic_rolls_back_everything_on_error(store: SqlStore) -> None:
    store.add(User(id="u0"))
    with pytest.raises(RuntimeError), store.atomic():
        store.add(User(id="u1"))
        u0 = store.get(User, "u0")
        u0.first_name = "changed"
        store.update(u0)
        with store.atomic():  # nested: joins the outer transaction
            store.add(User(id="u2"))
        raise RuntimeError("boom")
    assert [u.id for u in store.find(User)] == ["u0"]
    assert store.get(User, "u0").first_name is None


def test_atomic_survives_a_caught_conflict_and_commits(store: SqlStore) -> None:
    store.add(User(id="u1"))
    with store.atomic():
        with pytest.raises(AlreadyExists):
            store.add(User(id="u1"))
        store.add(User(id="u2"))  # the transaction is still usable (PostgreSQL too)
    assert [u.id for u in store.find(User)] == ["u1", "u2"]


def test_atomic_writes_are_invisible_to_other_threads_until_commit(store: SqlStore) -> None:
    seen: list[list[str]] = []

    def look() -> None:
        seen.append([u.id for u in store.find(User)])

    with store.atomic():
        store.add(User(id="u1"))
        assert [u.id for u in store.find(User)] == ["u1"]  # this thread sees its own write
        other = threading.Thread(target=look)
        other.start()
        other.join(timeout=30)
    look()
    assert seen == [[], ["u1"]]


def test_leases_expire_renew_and_release(store: SqlStore) -> None:
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


def test_racing_lease_acquirers_exactly_one_wins(store: SqlStore) -> None:
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
    first = SqlStore(store_url)
    first.add(User(id="u1"))
    second = SqlStore(store_url)
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
    stores: list[SqlStore] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        try:
            stores.append(SqlStore(store_url))
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


def test_compare_and_set_race_loses_no_increment(store: SqlStore) -> None:
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
        SqlStore(url)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "s3cret-pw" not in message
