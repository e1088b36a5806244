"""The one place that builds the application from Settings.

Nothing in the service layer knows which store or broker it runs on: the choice is
made here, once, from the URLs in the settings.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass

from deposit_services.config.repositories import RepositoriesConfig, load_repositories
from deposit_services.messaging.base import Broker, broker_class
from deposit_services.model.entities import Deposit
from deposit_services.model.messages import DepositStatusChanged
from deposit_services.service.deposits import ServiceContext
from deposit_services.service.retry import RetryPolicy
from deposit_services.service.targets import Targets
from deposit_services.settings import Settings
from deposit_services.store.base import Store
from deposit_services.store.sql import SqlStore

log = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    store: Store
    repositories: RepositoriesConfig
    targets: Targets
    broker: Broker | None
    owner: str

    def context(self) -> ServiceContext:
        return ServiceContext(
            store=self.store,
            targets=self.targets,
            work_dir=self.settings.work_dir,
            owner=self.owner,
            lease_seconds=self.settings.lease_seconds,
            notify=self._notify,
            retry_policy=RetryPolicy.from_settings(self.settings),
            fault_injection=self.settings.fault_injection,
        )

    def _notify(self, deposit: Deposit) -> None:
        """Every change of a Deposit is announced as pass-core does (DepositStatus)."""
        if self.broker is None:
            return
        self.broker.publish(self.settings.queue_deposit, DepositStatusChanged(deposit.id).to_json(),
                            {"type": "DepositStatus"})

    def require_broker(self) -> Broker:
        if self.broker is None:
            raise RuntimeError("this command was bootstrapped without a broker")
        return self.broker

    def close(self) -> None:
        self.targets.close()
        if self.broker is not None:
            self.broker.close()
        self.store.close()


def load_repositories_config(settings: Settings) -> RepositoriesConfig:
    return load_repositories(
        settings.repository_configuration,
        os.environ,
        extra={"DEPOSIT_DATA_DIR": str(settings.data_dir)},
    )


def build_broker(settings: Settings) -> Broker:
    cls = broker_class(settings.broker_url)
    factory = getattr(cls, "from_settings")  # noqa: B009 - every adapter provides it
    broker: Broker = factory(settings)
    return broker


def bootstrap(settings: Settings, *, with_broker: bool = True) -> App:
    """Build the app: repositories.json first (cheap, catches config errors before any
    connection), then the store, then the broker."""
    repositories = load_repositories_config(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqlStore(settings.store_url)
    try:
        broker = build_broker(settings) if with_broker else None
    except BaseException:
        store.close()
        raise
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return App(
        settings=settings,
        store=store,
        repositories=repositories,
        targets=Targets(repositories, settings.http_agent),
        broker=broker,
        owner=owner,
    )
