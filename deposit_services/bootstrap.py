"""The one place that builds the application from Settings.

Nothing in the service layer knows which store or broker it runs on: the choice is
made here, once, from the URLs in the settings. Here too the outbox is wired: to the
broker's publish, or, when the broker is the local queue in the store's own database,
straight into that queue inside each unit's transaction.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests

from deposit_services.assemblers.sources import FileSources
from deposit_services.clock import Clock, SystemClock
from deposit_services.config.repositories import RepositoriesConfig, load_repositories
from deposit_services.errors import ConfigurationError
from deposit_services.messaging.base import Broker, broker_class
from deposit_services.search.relay import SearchRelay, search_from_settings
from deposit_services.service.context import ServiceContext
from deposit_services.service.health import HealthPolicy
from deposit_services.service.retry import RetryPolicy
from deposit_services.service.targets import Targets
from deposit_services.settings import Settings
from deposit_services.spool import Spool
from deposit_services.store.base import OutboxMessage
from deposit_services.store.engine import normalise_url
from deposit_services.store.passcore.client import PassCoreClient
from deposit_services.store.passcore.database import PassCoreDatabase
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import Database

log = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    database: Database
    repositories: RepositoriesConfig
    targets: Targets
    broker: Broker | None
    owner: str
    clock: Clock
    spool: Spool
    search: SearchRelay | None = None  # the search index's relay (DEPOSIT_SEARCH_URL)

    def context(self) -> ServiceContext:
        return ServiceContext(
            database=self.database,
            targets=self.targets,
            work_dir=self.spool.path,
            owner=self.owner,
            clock=self.clock,
            deposit_queue=(None if self.database.announces_changes
                           else self.settings.queue_deposit),
            lease_seconds=self.settings.lease_seconds,
            retry_policy=RetryPolicy.from_settings(self.settings),
            health=HealthPolicy.from_settings(self.settings),
            fault_injection=self.settings.fault_injection,
        )

    def use_broker(self, broker: Broker) -> None:
        """Put ``broker`` (this app's own, wrapped: e.g. counted by the metrics) in its
        place, for the outbox's publishing too, so what passes the wrapper is all of it."""
        self.broker = broker
        if not queue_in_store(self.settings):  # else the outbox writes the queue itself
            wire_publisher(self.database, broker)

    def require_broker(self) -> Broker:
        if self.broker is None:
            raise RuntimeError("this command was bootstrapped without a broker")
        return self.broker

    def close(self) -> None:
        if self.search is not None:
            self.search.close()
        self.spool.close()
        self.targets.close()
        if self.broker is not None:
            self.broker.close()
        self.database.close()


def load_repositories_config(settings: Settings) -> RepositoriesConfig:
    return load_repositories(
        settings.repository_configuration,
        os.environ,
        extra={"DEPOSIT_DATA_DIR": str(settings.data_dir)},
        template_dir=settings.template_dir,
    )


def build_broker(settings: Settings) -> Broker:
    cls = broker_class(settings.broker_url)
    factory = getattr(cls, "from_settings")  # noqa: B009 - every adapter provides it
    broker: Broker = factory(settings)
    return broker


def queue_in_store(settings: Settings) -> bool:
    """Whether the broker is the local queue in the store's own database."""
    from deposit_services.messaging.local import LOCAL_SCHEMES

    url = settings.broker_url.strip()
    if url.lower() in LOCAL_SCHEMES:
        return True
    scheme = url.partition(":")[0].split("+")[0].lower()
    if scheme not in ("sqlite", "postgresql", "postgres"):
        return False
    return normalise_url(url) == normalise_url(settings.store_url)


def build_database(settings: Settings, clock: Clock) -> Database:
    """Our SQL tables; or, with ``PASS_CORE_URL`` (``DEPOSIT_RECORDS_URL``), pass-core
    for the records and the SQL database for the worker state beside it."""
    state = SqlDatabase(settings.store_url, clock)
    if not settings.pass_core_url:
        return state
    client = PassCoreClient(settings.pass_core_url, settings.pass_core_user,
                            settings.pass_core_password, user_agent=settings.http_agent)
    return PassCoreDatabase(client, state, clock)


def file_sources(settings: Settings, database: Database | None = None) -> FileSources:
    """Where the worker may read package files from: a submission's own directory and
    DEPOSIT_FILE_ROOTS; over http(s) pass-core's file service (with its credentials) and
    DEPOSIT_FILE_ORIGINS. Nothing else."""
    origins: dict[str, requests.Session | None] = {
        origin: None for origin in (settings.file_origins or "").replace(",", " ").split()}
    if isinstance(database, PassCoreDatabase):
        origins[database.client.base_url] = database.client.session
    roots = [Path(root) for root in (settings.file_roots or "").split(os.pathsep) if root]
    return FileSources(origins, roots, confined=True)


def wire_outbox(database: Database, broker: Broker, settings: Settings) -> None:
    if queue_in_store(settings):
        from deposit_services.messaging.local import LocalBroker, enqueue

        assert isinstance(broker, LocalBroker)
        state = database.state if isinstance(database, PassCoreDatabase) else database
        assert isinstance(state, SqlDatabase)
        state.deliver_to_queue(enqueue, broker.wake)
        return
    wire_publisher(database, broker)


def wire_publisher(database: Database, broker: Broker) -> None:
    """The outbox publishes through ``broker`` after each commit."""

    def publish(message: OutboxMessage) -> None:
        broker.publish(message.queue, message.body, message.headers)

    database.publisher = publish


def bootstrap(settings: Settings, *, with_broker: bool = True, clock: Clock | None = None,
              with_repositories: bool = True) -> App:
    """Build the app: repositories.json first (cheap, catches config errors before any
    connection), then the database, then the broker. ``with_repositories=False`` (the
    read-only commands: ``status``, ``dead-letters``) reads no repositories.json, so
    they need neither the file nor the secrets it names; no target can then be built."""
    repositories = (load_repositories_config(settings) if with_repositories
                    else RepositoriesConfig(settings.repository_configuration, {}))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    clock = clock or SystemClock()
    database = build_database(settings, clock)
    try:
        broker = build_broker(settings) if with_broker else None
        if broker is not None:
            wire_outbox(database, broker, settings)
        search = search_from_settings(settings, database)  # marks changes to index
    except BaseException:
        database.close()
        raise
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    spool = Spool(settings.work_dir, owner)
    try:
        spool.open()
    except OSError as exc:
        if broker is not None:
            broker.close()
        database.close()
        raise ConfigurationError(
            f"cannot use the work directory {settings.work_dir} ({exc.strerror or exc}): "
            "DEPOSIT_DATA_DIR must be writable by this user") from exc
    return App(
        settings=settings,
        database=database,
        repositories=repositories,
        targets=Targets(repositories, settings.http_agent, clock,
                        file_sources(settings, database)),
        broker=broker,
        owner=owner,
        clock=clock,
        spool=spool,
        search=search,
    )
