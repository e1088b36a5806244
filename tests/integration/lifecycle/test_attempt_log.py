"""The attempt log on both SQL backends: numbering, outcomes, migration from schema 1,
and two workers racing for the same RETRY deposit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from sqlalchemy import insert, inspect, select

from deposit_services.errors import Conflict, NotFound
from deposit_services.model.entities import DepositStatus
from deposit_services.service.lifecycle import DepositProcessor, Outcome
from deposit_services.service.outcome import TRIGGER_JOB
from deposit_services.service.retry import RetryPolicy
from deposit_services.service.submissions import SubmissionProcessor
from deposit_services.store import schema
from deposit_services.store.base import AttemptOutcome, PackageInfo
from deposit_services.store.engine import make_engine
from deposit_services.store.sql import SqlDatabase
from tests.integration.lifecycle.conftest import SWORD_REPO, World
from tests.support.store import StoreView


def test_attempts_are_numbered_and_keep_intent_and_outcome(store_url: str) -> None:
    store = StoreView.sql(store_url)
    try:
        first = store.begin_attempt("dep-1", trigger="message", owner="w1",
                                    package=PackageInfo("p.zip", 10, "m" * 32, "s" * 64))
        assert first.number == 1 and first.is_open and first.package is not None
        assert first.package.name == "p.zip" and first.package.size == 10
        assert store.begin_attempt("dep-2", trigger="job", owner="w2").number == 1
        ended = store.end_attempt("dep-1", 1, AttemptOutcome.SENT, status_ref="s",
                                  edit_iri="e", access_url="a")
        assert not ended.is_open and ended.outcome is AttemptOutcome.SENT
        assert ended.ended_at is not None and ended.ended_at >= ended.started_at
        second = store.begin_attempt("dep-1", trigger="operator", owner="w1")
        assert second.number == 2 and second.package is None
        with pytest.raises(Conflict):
            store.end_attempt("dep-1", 1, AttemptOutcome.TRANSIENT_ERROR, error="late")
        with pytest.raises(NotFound):
            store.end_attempt("dep-1", 9, AttemptOutcome.SENT)
        log = store.attempts("dep-1")
        assert [(a.number, a.outcome, a.trigger) for a in log] == [
            (1, AttemptOutcome.SENT, "message"), (2, None, "operator")]
        assert (log[0].status_ref, log[0].edit_iri, log[0].access_url) == ("s", "e", "a")
        assert store.attempts("nobody") == []
    finally:
        store.close()


def test_intent_and_outcome_roll_back_with_the_unit_of_work(store_url: str) -> None:
    store = StoreView.sql(store_url)
    try:
        store.begin_attempt("dep-tx", trigger="message", owner="w")
        with pytest.raises(RuntimeError), store.database.unit_of_work() as uow:
            uow.state.end_attempt("dep-tx", 1, AttemptOutcome.SENT)
            raise RuntimeError("the deposit update failed")
        assert store.attempts("dep-tx")[0].is_open, "no outcome without the deposit update"
    finally:
        store.close()


def test_a_schema_1_database_is_migrated_keeping_its_data(store_url: str) -> None:
    engine = make_engine(store_url)
    try:
        with engine.begin() as conn:  # what a release with schema 1 left behind
            schema.schema_version.create(conn)
            schema.MIGRATIONS[0](conn)
            conn.execute(insert(schema.schema_version).values(id=1, version=1))
            conn.execute(insert(schema.leases).values(key="k", owner="o", expires_at=1.0))
        assert "deposit_attempts" not in inspect(engine).get_table_names()
        assert schema.ensure_schema(engine) == 1
        assert "deposit_attempts" in inspect(engine).get_table_names()
        with engine.connect() as conn:
            assert conn.execute(select(schema.schema_version.c.version)).scalar() == (
                schema.LATEST)
            assert conn.execute(select(schema.leases.c.key)).scalar() == "k"
        store = StoreView(SqlDatabase.from_engine(engine))
        assert store.begin_attempt("d", trigger="job", owner="o").number == 1
    finally:
        engine.dispose()


def test_two_workers_never_retry_one_deposit_at_the_same_time(
    make_world: Callable[..., World],
) -> None:
    world = make_world(RetryPolicy(base_seconds=0.01, cap_seconds=0.01, jitter="none"),
                       **{"check-collection": False})
    world.seed("race", [SWORD_REPO])
    world.server.fail_next(1, status=503)
    SubmissionProcessor(world.ctx).process("race")
    deposit = world.deposit_of("race")
    assert deposit.deposit_status is DepositStatus.RETRY
    time.sleep(0.05)  # due now
    contexts = [replace(world.ctx, owner=f"replica-{n}") for n in range(4)]
    outcomes: list[Outcome] = []
    start = threading.Barrier(len(contexts))

    def work(n: int) -> None:
        start.wait()
        outcomes.append(DepositProcessor(contexts[n]).retry(deposit.id, TRIGGER_JOB))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(contexts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = [o for o in outcomes if not o.skipped]
    assert len(done) == 1, outcomes
    assert done[0].status == "SUBMITTED"
    assert all("another worker" in o.message or "SUBMITTED" in o.message
               for o in outcomes if o.skipped), outcomes
    attempts = world.store.attempts(deposit.id)
    assert [a.outcome for a in attempts] == [AttemptOutcome.TRANSIENT_ERROR, AttemptOutcome.SENT]
    assert len(world.server.deposits) == 1
