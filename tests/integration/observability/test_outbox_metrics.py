"""The outbox publishes through the counted broker once ``listen``'s operations are
built: a publish that fails after a commit on SQLite is counted as a broker error (and
the message stays in the outbox to be relayed), one that goes through is not."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from deposit_services.bootstrap import App, wire_outbox
from deposit_services.clock import SystemClock
from deposit_services.config.repositories import parse_repositories
from deposit_services.observability.ops import Operations
from deposit_services.service.targets import Targets
from deposit_services.settings import load_settings
from deposit_services.spool import Spool
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import UnitOfWork, run_unit
from tests.unit.observability.test_metrics import ListBroker, read


class RecordingBroker(ListBroker):
    """Publishes into a list; fails while told to."""

    def __init__(self) -> None:
        super().__init__([])
        self.published: list[str] = []

    def publish(self, queue: str, body: str, headers: Mapping[str, str] | None = None) -> None:
        super().publish(queue, body, headers)
        self.published.append(body)


def test_outbox_publish_failures_are_counted_as_broker_errors(tmp_path: Path) -> None:
    settings = load_settings({"DEPOSIT_DATA_DIR": str(tmp_path),
                              "DEPOSIT_BROKER_URL": "stomp://127.0.0.1:61613"})
    clock = SystemClock()
    database = SqlDatabase(f"sqlite:///{tmp_path / 'store.db'}", clock)
    raw = RecordingBroker()
    wire_outbox(database, raw, settings)  # as bootstrap does, before the metrics exist
    spool = Spool(tmp_path / "work", "test")
    app = App(settings=settings, database=database, repositories=parse_repositories({}, {}),
              targets=Targets(parse_repositories({}, {}), "t"), broker=raw, owner="test",
              clock=clock, spool=spool)
    ops = Operations(app)
    try:
        assert app.broker is ops.broker
        errors = ("deposit_services_errors_total", (("component", "broker"),))

        def announce(uow: UnitOfWork) -> None:
            uow.publish("deposit", '{"deposit": "d1", "type": "DepositStatus"}')

        raw.fail_publish = True
        run_unit(database, announce)
        assert read(ops.metrics)[errors] == 1
        assert raw.published == []
        left = run_unit(database, lambda uow: uow.state.messages(0.0), read_only=True)
        assert [m.queue for m in left] == ["deposit"]  # kept for the relay

        raw.fail_publish = False
        assert database.relay_outbox(0.0) == 1
        assert raw.published == ['{"deposit": "d1", "type": "DepositStatus"}']
        assert read(ops.metrics)[errors] == 1  # a publish that went through: no error
    finally:
        ops.close()
        database.close()
