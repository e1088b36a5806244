"""Units of work for a PASS deployment: the records in pass-core, the worker state
(leases, attempt log, outbox) in SQL beside it.

A unit's record writes go to pass-core at commit (POST, PATCH with the version), then
its SQL transaction commits. That order matters: if pass-core refuses a write (409),
the SQL work is rolled back and the unit runs again; if the SQL commit failed after
pass-core took the writes, the state left is one a restart handles (an attempt still
open is reconciled with the target; a deposit already recorded is not sent again).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.engine import Connection

from deposit_services.clock import Clock
from deposit_services.errors import StoreUnavailable
from deposit_services.store.base import OutboxMessage, Records, WorkerState
from deposit_services.store.passcore.client import PassCoreClient
from deposit_services.store.passcore.records import PassCoreRecords
from deposit_services.store.sql import SqlDatabase, SqlUnitOfWork
from deposit_services.store.uow import Database, UnitOfWork

log = logging.getLogger(__name__)


class PassCoreDatabase(Database):
    announces_changes = True  # pass-core publishes SubmissionReady and DepositStatus
    def __init__(self, client: PassCoreClient, state: SqlDatabase,
                 clock: Clock | None = None) -> None:
        super().__init__(clock or state.clock)
        self.client = client
        self.state = state

    def unit_of_work(self, read_only: bool = False) -> PassCoreUnitOfWork:
        return PassCoreUnitOfWork(self, read_only)

    def check(self) -> None:
        """The worker state must be there; pass-core must take our credentials
        (ConfigurationError), and if it is down the worker starts and waits for it."""
        self.state.check()
        try:
            self.client.check()  # refused credentials: ConfigurationError, raised
        except StoreUnavailable as exc:
            log.warning("pass-core cannot be reached at start-up (%s); messages wait and are "
                        "retried until it answers", exc)

    def after_commit(self, messages: Sequence[OutboxMessage]) -> None:
        if self.state.enqueue is not None:  # the local queue in the state's database
            self.state.after_commit(messages)
            return
        super().after_commit(messages)

    def close(self) -> None:
        self.client.close()
        self.state.close()


class PassCoreUnitOfWork(UnitOfWork):
    database: PassCoreDatabase

    def __init__(self, database: PassCoreDatabase, read_only: bool) -> None:
        super().__init__(database, read_only)
        self._sql: SqlUnitOfWork = database.state.unit_of_work(read_only)

    def state_connection(self) -> Connection:
        return self._sql.connection()  # the SQL beside pass-core

    def _open_records(self) -> Records:
        return PassCoreRecords(self.database.client)

    def _open_state(self) -> WorkerState:
        return self._sql.state

    # The SQL unit's transaction is this unit's: committed after the records' writes.
    def _commit(self) -> None:
        self._sql._commit()  # one unit of work made of two

    def _rollback(self) -> None:
        self._sql._rollback()

    def _close(self) -> None:
        self._sql._close()
