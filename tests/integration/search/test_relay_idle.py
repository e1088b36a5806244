"""An idle relay writes nothing: with no marks it neither takes nor renews its lease
(a worker with a search index stays quiet while idle)."""

from __future__ import annotations

from sqlalchemy import select

from deposit_services.model.entities import DepositStatus
from deposit_services.search.relay import LEASE
from deposit_services.store.schema import leases
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import run_unit
from tests.integration.search.records import make_relay, pending, seed


def lease_expiry(database: SqlDatabase) -> object:
    with database.engine.connect() as conn:
        return conn.execute(select(leases.c.expires_at)
                            .where(leases.c.key == LEASE)).scalar_one_or_none()


def test_an_idle_relay_does_not_touch_its_lease(database: SqlDatabase, search_url: str,
                                                 fresh_index: str) -> None:
    relay = make_relay(database, search_url, fresh_index)
    try:
        run_unit(database, lambda uow: seed(uow, 1, DepositStatus.ACCEPTED, "ok"))
        assert relay.run_once() == 4
        taken = lease_expiry(database)
        assert taken is not None, "work: the lease was taken"
        assert relay.run_once() == 0
        assert relay.run_once() == 0
        assert lease_expiry(database) == taken, "nothing marked: the lease left as it was"
        run_unit(database, lambda uow: seed(uow, 2, DepositStatus.ACCEPTED, "ok"))
        assert relay.run_once() == 3
        assert pending(database) == 0
    finally:
        relay.close()
