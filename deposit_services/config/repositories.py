"""repositories.json: PASS's per-repository configuration, loaded, interpolated, checked.

PASS's format is kept so a PASS configuration loads unchanged::

    { "<key>": { "deposit-config": {"mapping": {...}, "processing": {...}},
                 "assembler": {"specification": "...", "beanName": "...", "options": {}},
                 "transport-config": {"auth-realms": [...], "protocol-binding": {...}} } }

Every string goes through ``${NAME}`` / ``${NAME:default}`` interpolation; a Spring
property name such as ``${dspace.host}`` is also looked up in the spelling Spring gives
environment variables (``DSPACE_HOST``). Problems are collected, not stopped at the
first: each section of each entry is interpolated, validated and checked by its adapter
on its own, and ``ConfigurationError.problems`` names the key path of each problem.
PASS keys we do not use (``processing``) are accepted and reported once.

The format is chosen as current PASS chooses it: ``beanName`` decides (PASS's
``nihmsAssembler`` writes the NIHMS 2022-05 package even when the entry's
``specification`` says ``nihms-native-2017-07``) and ``specification`` is then a label;
without a beanName the specification decides, so the 2017 format stays reachable by
naming it alone. ``AssemblerConfig.specification`` holds the format chosen, ``label``
what the file says (``assemblers.base.choose_format``).

The file is read as UTF-8 JSON with ``model.graph.load_json`` (clear errors for any
bytes) and checked in one pass per entry: linear in the number of entries, and the
parsed JSON is given up entry by entry as the entries are built.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from deposit_services.assemblers.base import (
    PASS_BEANS,
    FormatChoice,
    create_assembler,
    pass_bean,
)
from deposit_services.errors import ConfigurationError, RepositoryConfigError
from deposit_services.model.entities import Repository
from deposit_services.model.graph import (
    MAX_JSON_DEPTH,
    format_path,
    json_kind,
    load_json,
    tree_problem,
    unstorable,
)
from deposit_services.status.base import StatusMapping, parse_realms
from deposit_services.transports.base import transport_class

log = logging.getLogger(__name__)

PLACEHOLDER = re.compile(r"\$\{([^}:]+)(?::([^}]*))?\}")
FETCH_TIMEOUT = (10.0, 30.0)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DepositConfig(_Section):
    mapping: dict[str, str | None] = Field(default_factory=dict)
    processing: dict[str, Any] | None = None  # PASS's bean wiring: accepted, unused


class AssemblerConfig(_Section):
    """An ``assembler`` entry. ``specification`` is the format to build: PASS's
    ``beanName`` decides it when the entry has one we implement, and what the file
    says is kept as ``label`` (PASS writes it into package metadata only)."""

    specification: str
    bean_name: str | None = Field(default=None, alias="beanName")
    options: dict[str, Any] = Field(default_factory=dict)
    _label: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _bean_decides(self) -> AssemblerConfig:
        if self._label:  # validated again: the format is already chosen
            return self
        self._label = self.specification
        bean = pass_bean(self.bean_name)
        if bean is not None:  # an unknown bean is left for _check_assembler to name
            self.specification = PASS_BEANS[bean]
        return self

    @property
    def label(self) -> str:
        """The entry's own ``specification``, as written in repositories.json."""
        return self._label or self.specification

    @property
    def choice(self) -> FormatChoice:
        """The format chosen and why, for ``config check``."""
        return FormatChoice(self.specification, self.label, self.bean_name)


class AuthRealmConfig(_Section):
    mech: str = "basic"
    url: str
    username: str | None = None
    password: str | None = Field(default=None, repr=False)


class TransportConfig(_Section):
    auth_realms: list[AuthRealmConfig] = Field(default_factory=list, alias="auth-realms")
    protocol_binding: dict[str, Any] = Field(alias="protocol-binding")


class NoticeConfig(_Section):
    """Who hears about a repository's failed, rejected and stale deposits, how often."""

    to: list[str] = Field(min_length=1)
    every_hours: float = Field(default=24.0, alias="every-hours", gt=0)


class OperationsConfig(_Section):
    """Our own per-repository section (``operations``): health, staleness, duplicates,
    notices. A key left out takes the global default from the settings."""

    pause_after_failures: int | None = Field(default=None, alias="pause-after-failures", ge=1)
    pause_seconds: float | None = Field(default=None, alias="pause-seconds", gt=0)
    stale_after_days: float | None = Field(default=None, alias="stale-after-days", gt=0)
    allow_duplicates: bool = Field(default=False, alias="allow-duplicates")
    notices: NoticeConfig | None = None


class RepositoryConfig(_Section):
    """One repository's entry; ``key`` is its name in the file."""

    key: str
    deposit_config: DepositConfig = Field(default_factory=DepositConfig, alias="deposit-config")
    operations: OperationsConfig = Field(default_factory=OperationsConfig)
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
    template_dirs: tuple[Path, ...] = ()

    @cached_property
    def _folded(self) -> dict[str, RepositoryConfig]:
        return {key.casefold(): entry for key, entry in self.entries.items()}

    def find(self, repository: Repository) -> RepositoryConfig | None:
        """The entry for ``repository``: by repositoryKey, then name, then id, ignoring case."""
        for candidate in (repository.repository_key, repository.name, repository.id):
            if candidate and candidate.casefold() in self._folded:
                return self._folded[candidate.casefold()]
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
    if not isinstance(value, str) or "${" not in value:
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


def read_source(source: str) -> bytes:
    """The bytes of repositories.json from a path, a file: URI or an http(s) URL."""
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        try:
            response = requests.get(source, timeout=FETCH_TIMEOUT)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise ConfigurationError(f"cannot fetch repositories.json from {source}: {exc}") \
                from exc
        return response.content
    path = Path(unquote(urlsplit(source).path)) if scheme == "file" else Path(source)
    try:
        return path.read_bytes()
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise ConfigurationError(
            f"cannot read repositories.json {path}: {getattr(exc, 'strerror', None) or exc} "
            "(set PASS_DEPOSIT_REPOSITORY_CONFIGURATION to its path or URL)"
        ) from exc


def _validation_problems(where: str, exc: ValidationError) -> list[str]:
    """``<where>.<field path>: <what is wrong>`` for each error pydantic found."""
    problems: list[str] = []
    for err in exc.errors():
        loc = format_path(err["loc"])
        at = f"{where}{'' if loc.startswith('[') else '.'}{loc}" if where and loc else where or loc
        problems.append(f"{at}: "
                        + ("unknown key" if err["type"] == "extra_forbidden" else err["msg"]))
    return problems


def _check_mapping(label: str, section: DepositConfig) -> list[str]:
    """Every bad ``mapping`` value (StatusMapping stops at the first)."""
    try:
        StatusMapping(section.mapping)
        return []
    except RepositoryConfigError:
        pass
    problems: list[str] = []
    for state, term in section.mapping.items():
        try:
            StatusMapping({state: term})
        except RepositoryConfigError as exc:
            problems.append(f"{label}.deposit-config.mapping: {exc}")
    return problems


def _check_assembler(label: str, section: AssemblerConfig,
                     template_dirs: Sequence[Path] = ()) -> list[str]:
    """Build it once: a problem refuses the entry; what it works around (a funder code
    NIHMS does not define) is logged as a warning naming the entry, and loads."""
    try:
        assembler = create_assembler(section.specification, section.options,
                                     template_dirs=template_dirs, bean_name=section.bean_name)
    except RepositoryConfigError as exc:
        return [f"{label}.assembler: {exc}"]
    for warning in assembler.warnings:
        log.warning("%s.assembler: %s", label, warning)
    return []


def _check_transport(label: str, section: TransportConfig) -> list[str]:
    """Every bad auth realm, and every bad protocol-binding field, each on its own."""
    where = f"{label}.transport-config"
    problems: list[str] = []
    for index, realm in enumerate(section.auth_realms):
        try:
            parse_realms([realm.model_dump(by_alias=True)])
        except RepositoryConfigError as exc:
            problems.append(f"{where}.auth-realms[{index}]: "
                            f"{str(exc).removeprefix('auth-realms[0] ')}")
    binding = section.protocol_binding
    try:
        model = transport_class(str(binding.get("protocol", ""))).binding_model
    except RepositoryConfigError as exc:
        return [*problems, f"{where}.protocol-binding: {exc}"]
    try:
        model.model_validate(dict(binding))
    except ValidationError as exc:
        problems.extend(f"{where}.protocol-binding: {problem}"
                        for problem in _validation_problems("", exc))
    return problems


SECTIONS: dict[str, type[_Section]] = {
    "deposit-config": DepositConfig,
    "assembler": AssemblerConfig,
    "transport-config": TransportConfig,
    "operations": OperationsConfig,
}
REQUIRED_SECTIONS = ("assembler", "transport-config")
SECTION_CHECKS: dict[str, Callable[[str, Any], list[str]]] = {
    "deposit-config": _check_mapping,
    "assembler": _check_assembler,
    "transport-config": _check_transport,
    "operations": lambda label, section: [],
}


def parse_entry(
    key: str, raw: Any, lookup: Mapping[str, str], template_dirs: Sequence[Path] = ()
) -> tuple[RepositoryConfig | None, list[str]]:
    """One repository's entry and every problem of it: each section is interpolated,
    validated and checked by its adapter on its own, so a bad section hides nothing of
    the others. The entry is None when there is any problem."""
    label = format_path([key])
    if not isinstance(raw, dict):
        return None, [f"{label}: must be a JSON object, not {json_kind(raw)}"]
    problems = [f"{label}.{name}: Field required" for name in REQUIRED_SECTIONS
                if name not in raw]
    sections: dict[str, _Section] = {}
    for name, value in raw.items():
        where = f"{label}.{format_path([name])}"
        if name not in SECTIONS:
            problems.append(f"{where}: unknown key (known: {', '.join(SECTIONS)})")
            continue
        found = tree_problem(value, MAX_JSON_DEPTH - 2)
        if found is not None:
            problems.append(f"{format_path([key, name, *found[0]])}: {found[1]}")
            continue
        value = interpolate(value, lookup, where, problems)
        try:
            sections[name] = SECTIONS[name].model_validate(value)
        except ValidationError as exc:
            problems.extend(_validation_problems(where, exc))
            continue
        section = sections[name]
        if isinstance(section, AssemblerConfig):
            problems.extend(_check_assembler(label, section, template_dirs))
        else:
            problems.extend(SECTION_CHECKS[name](label, section))
    if problems:
        return None, problems
    return RepositoryConfig.model_validate({"key": key, **sections}), []


def case_clashes(keys: Iterable[str]) -> list[str]:
    """``<key>: another key differs only in case`` for each key that ``find`` could not
    tell from another. One pass and one dict: linear in the number of keys."""
    first: dict[str, str] = {}
    clashes: dict[str, list[str]] = {}
    for key in keys:
        folded = key.casefold()
        seen = first.setdefault(folded, key)
        if seen != key:
            clashes.setdefault(folded, [seen]).append(key)
    return [f"{key}: another key differs only in case "
            f"({', '.join(repr(other) for other in group if other != key)})"
            for group in clashes.values() for key in group]


def _parse(data: Any, lookup: Mapping[str, str], source: str,
           consume: bool, template_dirs: Sequence[Path] = ()) -> RepositoriesConfig:
    """``parse_repositories``; ``consume`` empties ``data`` as entries are built, so a
    large file is held about once (as JSON or as entries), not twice."""
    if not isinstance(data, dict):
        raise ConfigurationError(f"{source}: the top level must be a JSON object of "
                                 f"repositories, not {json_kind(data)}")
    problems = case_clashes(data)
    entries: dict[str, RepositoryConfig] = {}
    for key in list(data):
        raw = data.pop(key) if consume else data[key]
        why = unstorable(key) if key.strip() else "is empty"
        if why is not None:
            problems.append(f"{format_path([key])}: the repository key {why}")
            continue
        entry, entry_problems = parse_entry(key, raw, lookup, template_dirs)
        problems.extend(entry_problems)
        if entry is not None:
            entries[key] = entry
    if problems:
        raise ConfigurationError(f"{source}: {len(problems)} problem(s)", problems)
    unused = sorted({"deposit-config.processing" for e in entries.values()
                     if e.deposit_config.processing})
    if unused:
        log.info("%s: PASS keys accepted but not used: %s", source, ", ".join(unused))
    return RepositoriesConfig(source=source, entries=entries,
                              template_dirs=tuple(template_dirs))


def parse_repositories(
    data: Any, lookup: Mapping[str, str], source: str = "repositories.json"
) -> RepositoriesConfig:
    """Validate parsed JSON; ConfigurationError lists every problem with its key path."""
    return _parse(data, lookup, source, consume=False)


def load_repositories(
    source: str, env: Mapping[str, str], extra: Mapping[str, str] | None = None,
    template_dir: str | None = None,
) -> RepositoriesConfig:
    """Load and check repositories.json from a path or URL. ``extra`` fills placeholders
    the environment does not (e.g. ``DEPOSIT_DATA_DIR`` with its effective default).
    Templates it names (a bag-info template) are found beside it (a local file) and in
    ``template_dir`` (DEPOSIT_TEMPLATE_DIR)."""
    data = load_json(read_source(source), source, ConfigurationError,
                     invalid="is not valid JSON")
    dirs = [Path(template_dir)] if template_dir else []
    if "://" not in source or source.startswith("file:"):
        dirs.insert(0, Path(source.removeprefix("file://").removeprefix("file:")).parent)
    return _parse(data, {**(extra or {}), **env}, source, consume=True, template_dirs=dirs)
