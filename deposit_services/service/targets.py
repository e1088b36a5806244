"""Deposit targets: a Repository's repositories.json entry, assembler and transport.

Assemblers and transports are built once per repository entry and reused by every
worker thread; building one that cannot be built (unknown format, bad binding) raises
RepositoryConfigError, which fails only the deposits to that repository. Status
resolvers (the deposit's status ref -> ACCEPTED/REJECTED) are built the same way, on
first use, from the entry's protocol (``RESOLVERS``), mapping and auth-realms.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from deposit_services.assemblers.base import Assembler, create_assembler
from deposit_services.assemblers.sources import ANONYMOUS, FileSources
from deposit_services.clock import Clock, SystemClock
from deposit_services.config.repositories import RepositoriesConfig, RepositoryConfig
from deposit_services.errors import RepositoryConfigError
from deposit_services.model.entities import Repository
from deposit_services.status.base import StatusResolver
from deposit_services.transports.base import Transport, TransportContext, create_transport


@dataclass(frozen=True)
class Target:
    config: RepositoryConfig
    assembler: Assembler
    transport: Transport


def _sword_resolver(config: RepositoryConfig, user_agent: str) -> StatusResolver:
    """The SWORD statement resolver, with the binding's TLS, timeout and status-* keys."""
    from deposit_services.transports.sword.statement import SwordStatementResolver

    return SwordStatementResolver.from_binding(
        config.mapping,
        [r.model_dump(by_alias=True) for r in config.auth_realms],
        config.protocol_binding,
        user_agent,
    )


def _sword1_resolver(config: RepositoryConfig, user_agent: str) -> StatusResolver:
    """The SWORD 1.3 entry resolver (deposits the server queued), with the binding's account."""
    from deposit_services.transports.sword.v1_status import Sword1EntryResolver

    return Sword1EntryResolver.from_binding(config.mapping, config.protocol_binding, user_agent)


def _dspace_resolver(config: RepositoryConfig, user_agent: str) -> StatusResolver:
    """The DSpace item resolver, with the binding's account and status-mapping."""
    from deposit_services.transports.dspace.status import DSpaceItemResolver

    return DSpaceItemResolver.from_binding(config.mapping, config.protocol_binding, user_agent)


def _invenio_rdm_resolver(config: RepositoryConfig, user_agent: str) -> StatusResolver:
    """The InvenioRDM record resolver (community review), with the binding's token."""
    from deposit_services.transports.invenio.status import InvenioRdmResolver

    return InvenioRdmResolver.from_binding(config.mapping, config.protocol_binding, user_agent)


def _dtool_resolver(config: RepositoryConfig, user_agent: str) -> StatusResolver:
    """The dserver registration resolver, with the binding's dserver URL and credentials."""
    from deposit_services.transports.dtool.status import DServerResolver

    return DServerResolver.from_binding(config.mapping, config.protocol_binding, user_agent)


def _drop_resolver(config: RepositoryConfig, user_agent: str) -> StatusResolver:
    """A drop's deposits are SUBMITTED only with NIHMS's mails as status source."""
    from deposit_services.nihms_mail.resolver import drop_resolver

    return drop_resolver(config, user_agent)


# protocol (lower case) -> builder of the resolver for that protocol's status refs.
# Protocols without one (filesystem...) hand over custody at once; SFTP and FTP do too,
# unless their binding names a status source (their deposits' refs are then NIHMS's).
RESOLVERS: dict[str, Callable[[RepositoryConfig, str], StatusResolver]] = {
    "swordv2": _sword_resolver,
    "sword1": _sword1_resolver,
    "dspace": _dspace_resolver,
    "inveniordm": _invenio_rdm_resolver,
    "dtool": _dtool_resolver,
    "sftp": _drop_resolver,
    "ftp": _drop_resolver,
}


class Targets:
    """Builds and caches the Target of each configured repository (thread-safe)."""

    def __init__(self, repositories: RepositoriesConfig, user_agent: str,
                 clock: Clock | None = None, sources: FileSources = ANONYMOUS) -> None:
        self.repositories = repositories
        self._user_agent = user_agent
        self._clock = clock or SystemClock()
        self._sources = sources
        self._lock = threading.Lock()
        self._built: dict[str, Target] = {}
        self._resolvers: dict[str, StatusResolver] = {}

    def config_for(self, repository: Repository) -> RepositoryConfig:
        config = self.repositories.find(repository)
        if config is None:
            key = repository.repository_key or repository.name or repository.id
            raise RepositoryConfigError(
                f"repository {key!r} has no entry in repositories.json "
                f"(looked up by repositoryKey, name and id); add one and retry the deposit"
            )
        return config

    def for_repository(self, repository: Repository) -> Target:
        config = self.config_for(repository)
        with self._lock:
            target = self._built.get(config.key)
            if target is None:
                try:
                    assembler = create_assembler(
                        config.assembler.specification, config.assembler.options,
                        self._sources, template_dirs=self.repositories.template_dirs,
                        bean_name=config.assembler.bean_name, label=config.assembler.label)
                    context = TransportContext(
                        user_agent=self._user_agent,
                        auth_realms=tuple(r.model_dump(by_alias=True) for r in config.auth_realms),
                        clock=self._clock,
                    )
                    transport = create_transport(config.protocol_binding, context)
                except RepositoryConfigError as exc:
                    raise RepositoryConfigError(
                        f"repositories.json entry {config.key!r}: {exc}"
                    ) from exc
                target = Target(config, assembler, transport)
                self._built[config.key] = target
            return target

    def resolver_for(self, repository: Repository) -> StatusResolver | None:
        """The status resolver of the repository's protocol, or None if it has none."""
        config = self.config_for(repository)
        protocol = str(config.protocol_binding.get("protocol", "")).strip().lower()
        builder = RESOLVERS.get(protocol)
        if builder is None:
            return None
        with self._lock:
            resolver = self._resolvers.get(config.key)
            if resolver is None:
                try:
                    resolver = builder(config, self._user_agent)
                except RepositoryConfigError as exc:
                    raise RepositoryConfigError(
                        f"repositories.json entry {config.key!r}: {exc}"
                    ) from exc
                self._resolvers[config.key] = resolver
            return resolver

    def close(self) -> None:
        with self._lock:
            for target in self._built.values():
                target.transport.close()
            self._built.clear()
            for resolver in self._resolvers.values():
                resolver.close()
            self._resolvers.clear()
