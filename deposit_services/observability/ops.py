"""What ``listen`` runs for operators: the metrics, the instrumented broker, the HTTP port.

``listen`` builds one ``Operations`` after bootstrap and uses its ``metrics`` (in the
service context) and ``broker`` (the app's, counted, also in the app and its outbox);
when DEPOSIT_HTTP_PORT is set the port serves /metrics, /healthz, /readyz and hands
every other path to ``fallback`` (the web dashboard's WSGI app, when ``listen`` mounts
one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deposit_services.messaging.base import Broker
from deposit_services.observability.http import Check, OpsApp, OpsServer
from deposit_services.observability.metrics import Metrics
from deposit_services.safetext import mask_url

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

    from deposit_services.bootstrap import App
    from deposit_services.store.uow import Database


def readiness_checks(app: App, broker: Broker) -> dict[str, Check]:
    """Broker connected, records and worker state reachable, configuration loaded."""
    from deposit_services.model.entities import Deposit, DepositStatus
    from deposit_services.store.passcore.database import PassCoreDatabase

    database: Database = app.database
    state: Database = database.state if isinstance(database, PassCoreDatabase) else database
    where = mask_url(app.settings.broker_url)

    def broker_connected() -> str | None:
        if getattr(broker, "connected", True):
            return None
        return f"not connected to the broker at {where}; it reconnects when the broker is back"

    def records() -> str | None:
        with database.unit_of_work(read_only=True) as uow:
            uow.records.find(Deposit, deposit_status=DepositStatus.RETRY)
        return None

    def worker_state() -> str | None:
        with state.unit_of_work(read_only=True) as uow:
            uow.state.messages(older_than=86_400.0)
        return None

    def configuration() -> str | None:
        if app.repositories.entries:
            return None
        return f"no repository configured in {app.repositories.source}"

    return {"broker": broker_connected, "records": records, "worker_state": worker_state,
            "configuration": configuration}


class Operations:
    """Metrics for one ``listen`` and, with DEPOSIT_HTTP_PORT, its HTTP port."""

    def __init__(self, app: App, fallback: WSGIApplication | None = None) -> None:
        self.metrics = Metrics()
        self.metrics.watch_store(app.database)
        self.broker = self.metrics.broker(app.require_broker())
        app.use_broker(self.broker)  # the outbox's publishing counted too
        settings = app.settings
        self.server = (OpsServer(OpsApp(self.metrics, readiness_checks(app, self.broker),
                                        fallback), settings.http_host, settings.http_port)
                       if settings.http_port else None)

    def start(self) -> Operations:
        if self.server is not None:
            self.server.start()
        return self

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
