"""repositories.json: PASS's per-repository configuration, loaded, interpolated, checked.

PASS's format is kept so a PASS configuration loads unchanged::

    { "<key>": { "deposit-config": {"mapping": {...}, "processing": {...}},
                 "assembler": {"specification": "...", "beanName": "...", "options": {}},
                 "transport-config": {"auth-realms": [...], "protocol-binding": {...}} } }

Every string goes through ``${NAME}`` / ``${NAME:default}`` interpolation; a Spring
property name such as ``${dspace.host}`` is also looked up in the spelling Spring gives
environment variables (``DSPACE_HOST``). Problems are collected, not stopped at the
first: ``ConfigurationError.problems`` names the key path of each one. PASS keys we
do not use (``processing``, ``beanName``) are accepted and reported once.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deposit_services.assemblers.base import create_assembler
from deposit_services.errors import ConfigurationError, RepositoryConfigError
from deposit_services.model.entities import Repository
from deposit_services.status.base import StatusMapping, parse_realms
from deposit_services.transports.base import parse_binding, transport_class

log = logging.getLogger(__name__)

PLACEHOLDER = re.compile(r"\$\{([^}:]+)(?::([^}]*))?\}")
FETCH_TIMEOUT = (10.0, 30.0)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DepositConfig(_Section):
    mapping: dict[str, str | None] = Field(default_factory=dict)
    processing: dict[str, Any] | None = None  # PASS's bean wiring: accepted, unused


class AssemblerConfig(_Section):
    specification: str
    bean_name: str | None = Field(default=None, alias="beanName")  # PASS's; unused
    options: dict[str, Any] = Field(default_factory=dict)


class AuthRealmConfig(_Section):
    mech: str = "basic"
    url: str
    username: str | None = None
    password: str | None = Field(default=None, repr=False)


class TransportConfig(_Section):
    auth_realms: list[AuthRealmConfig] = Field(default_factory=list, alias="auth-realms")
    protocol_binding: dict[str, Any] = Field(alias="protocol-binding")


class RepositoryConfig(_Section):
    """One repository's entry; ``key`` is its name in the file."""

    key: str
    deposit_config: DepositConfig = Field(default_factory=DepositConfig, alias="deposit-config")
    assembler: AssemblerConfig
    transport_config: TransportConfig = Field(alias="transport-config")

    @property
    def protocol_binding(self) -> dict[str, Any]:
        return self.transport_config.protocol_binding

    @property
    def auth_realms(self) -> list[AuthRealmConfig]:
        return self.transport_config.auth_realms

    @property
    def mapping(self) -> dict[str, str | None]:
        return self.deposit_config.mapping


@dataclass(frozen=True)
class RepositoriesConfig:
    source: str
    entries: dict[str, RepositoryConfig]

    def find(self, repository: Repository) -> RepositoryConfig | None:
        """The entry for ``repository``: by repositoryKey, then name, then id, ignoring case."""
        folded = {key.casefold(): entry for key, entry in self.entries.items()}
        for candidate in (repository.repository_key, repository.name, repository.id):
            if candidate and candidate.casefold() in folded:
                return folded[candidate.casefold()]
        return None


def spring_name(name: str) -> str:
    """Spring's environment spelling of a property name: ``dspace.host`` -> ``DSPACE_HOST``."""
    return re.sub(r"[.\-]", "_", name).upper()


def interpolate(
    value: Any, lookup: Mapping[str, str], path: str, problems: list[str]
) -> Any:
    """``value`` with every ``${NAME}`` / ``${NAME:default}`` in its strings replaced."""
    if isinstance(value, dict):
        return {k: interpolate(v, lookup, f"{path}.{k}", problems) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, lookup, f"{path}[{n}]", problems) for n, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1).strip(), match.group(2)
        for candidate in (name, spring_name(name)):
            if candidate in lookup:
                return lookup[candidate]
        if default is not None:
            return default
        spelled = f" or {spring_name(name)}" if spring_name(name) != name else ""
        problems.append(f"{path}: ${{{name}}} is not set (environment variable {name}{spelled})")
        return match.group(0)

    return PLACEHOLDER.sub(replace, value)


def read_source(source: str) -> str:
    """The text of repositories.json from a path, a file: URI or an http(s) URL."""
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        try:
            response = requests.get(source, timeout=FETCH_TIMEOUT)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise ConfigurationError(f"cannot fetch repositories.json from {source}: {exc}") \
                from exc
        return response.text
    path = Path(unquote(urlsplit(source).path)) if scheme == "file" else Path(source)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read repositories.json {path}: {exc.strerror or exc} "
            "(set PASS_DEPOSIT_REPOSITORY_CONFIGURATION to its path or URL)"
        ) from exc


def _validation_problems(key: str, exc: ValidationError) -> list[str]:
    return [
        f"{key}.{'.'.join(str(p) for p in err['loc'])}: "
        + ("unknown key" if err["type"] == "extra_forbidden" else err["msg"])
        for err in exc.errors()
    ]


def check_entry(entry: RepositoryConfig) -> list[str]:
    """Problems that only show when the adapters look at the entry (no connections)."""
    problems: list[str] = []
    checks = (
        ("assembler", lambda: create_assembler(entry.assembler.specification,
                                               entry.assembler.options)),
        ("deposit-config.mapping", lambda: StatusMapping(entry.mapping)),
        ("transport-config.auth-realms",
         lambda: parse_realms([r.model_dump(by_alias=True) for r in entry.auth_realms])),
        ("transport-config.protocol-binding", lambda: parse_binding(
            transport_class(str(entry.protocol_binding.get("protocol", ""))).binding_model,
            entry.protocol_binding)),
    )
    for where, check in checks:
        try:
            check()
        except RepositoryConfigError as exc:
            problems.append(f"{entry.key}.{where}: {exc}")
    return problems


def parse_repositories(
    data: Any, lookup: Mapping[str, str], source: str = "repositories.json"
) -> RepositoriesConfig:
    """Validate parsed JSON; ConfigurationError lists every problem with its key path."""
    if not isinstance(data, dict):
        raise ConfigurationError(f"{source}: the top level must be a JSON object of repositories")
    problems: list[str] = []
    entries: dict[str, RepositoryConfig] = {}
    for key, raw in data.items():
        if not isinstance(raw, dict):
            problems.append(f"{key}: must be a JSON object")
            continue
        value = interpolate(raw, lookup, key, problems)
        try:
            entry = RepositoryConfig.model_validate({**value, "key": key})
        except ValidationError as exc:
            problems.extend(_validation_problems(key, exc))
            continue
        problems.extend(check_entry(entry))
        entries[key] = entry
    folded = [k.casefold() for k in entries]
    problems.extend(f"{k}: another key differs only in case" for k in entries
                    if folded.count(k.casefold()) > 1)
    if problems:
        raise ConfigurationError(f"{source}: {len(problems)} problem(s)", problems)
    unused = sorted({k for e in entries.values() for k, used in (
        ("deposit-config.processing", e.deposit_config.processing),
        ("assembler.beanName", e.assembler.bean_name)) if used})
    if unused:
        log.info("%s: PASS keys accepted but not used: %s", source, ", ".join(unused))
    return RepositoriesConfig(source=source, entries=entries)


def load_repositories(
    source: str, env: Mapping[str, str], extra: Mapping[str, str] | None = None
) -> RepositoriesConfig:
    """Load and check repositories.json from a path or URL. ``extra`` fills placeholders
    the environment does not (e.g. ``DEPOSIT_DATA_DIR`` with its effective default)."""
    text = read_source(source)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"{source} is not valid JSON: {exc}") from exc
    return parse_repositories(data, {**(extra or {}), **env}, source)
