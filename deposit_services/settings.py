"""Settings from the environment, read once at start-up into one frozen object.

PASS Deposit Services' variable names are accepted where they exist, so a PASS
deployment's environment works unchanged; our own live under ``DEPOSIT_``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from deposit_services import __version__
from deposit_services.errors import ConfigurationError

DEFAULT_REPOSITORY_CONFIGURATION = "config/repositories.json"
RETRY_JITTERS = ("equal", "full", "none")
_SECRET_NAME = re.compile(r"password|secret|token|key", re.IGNORECASE)


@dataclass(frozen=True)
class Settings:
    """Effective settings. ``env`` name of each field is in ``ENVIRONMENT``."""

    data_dir: Path
    store_url: str
    broker_url: str
    repository_configuration: str
    workers_concurrency: int = 4
    jobs_disabled: bool = False
    jobs_interval_ms: int = 600_000
    queue_submission: str = "submission"
    queue_deposit: str = "deposit"
    http_agent: str = f"deposit-services/{__version__}"
    broker_user: str | None = None
    broker_password: str | None = None
    elasticsearch_url: str | None = None
    pass_core_url: str | None = None
    pass_core_user: str | None = None
    pass_core_password: str | None = None
    lease_seconds: float = 120.0
    max_deliveries: int = 5
    log_level: str = "INFO"
    # Automatic retry of transient deposit faults (service.retry.RetryPolicy).
    retry_base_seconds: float = 30.0
    retry_factor: float = 2.0
    retry_cap_seconds: float = 3600.0
    retry_max_attempts: int = 8
    retry_jitter: str = "equal"
    # The refresh job follows SUBMITTED deposits of submissions this recent.
    refresh_window_days: float = 10.0
    # Where package files may come from besides a submission's own files directory:
    # local roots (os.pathsep-separated) and http(s) origins (space- or comma-separated).
    file_roots: str | None = None
    file_origins: str | None = None
    # Fault injection for crash tests only (see service/faults.py); never set in production.
    fault_injection: str | None = None

    @property
    def work_dir(self) -> Path:
        """Where packages are spooled while they are built and sent."""
        return self.data_dir / "work"

    def masked(self) -> dict[str, str]:
        """Every setting as text, secrets replaced by ``***``, for logs and ``config show``."""
        shown: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            text = "" if value is None else str(value)
            if value is not None and _SECRET_NAME.search(f.name):
                text = "***"
            elif f.name.endswith("_url") and text:
                text = mask_url(text)
            shown[f.name] = text
        return shown


# field -> environment variable names, first found wins (PASS names first where they exist)
ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "data_dir": ("DEPOSIT_DATA_DIR",),
    "store_url": ("DEPOSIT_STORE_URL",),
    "broker_url": ("DEPOSIT_BROKER_URL",),
    "repository_configuration": ("PASS_DEPOSIT_REPOSITORY_CONFIGURATION",),
    "workers_concurrency": ("PASS_DEPOSIT_WORKERS_CONCURRENCY",),
    "jobs_disabled": ("PASS_DEPOSIT_JOBS_DISABLED",),
    "jobs_interval_ms": ("PASS_DEPOSIT_JOBS_DEFAULT_INTERVAL_MS",),
    "queue_submission": ("PASS_DEPOSIT_QUEUE_SUBMISSION_NAME", "PASS_CORE_SUBMISSION_QUEUE"),
    "queue_deposit": ("PASS_DEPOSIT_QUEUE_DEPOSIT_NAME", "PASS_CORE_DEPOSIT_QUEUE"),
    "http_agent": ("PASS_DEPOSIT_HTTP_AGENT",),
    "broker_user": ("SPRING_ACTIVEMQ_USER", "DEPOSIT_BROKER_USER"),
    "broker_password": ("SPRING_ACTIVEMQ_PASSWORD", "DEPOSIT_BROKER_PASSWORD"),
    "elasticsearch_url": ("PASS_ELASTICSEARCH_URL",),
    "pass_core_url": ("DEPOSIT_RECORDS_URL", "PASS_CORE_URL", "PASS_CLIENT_URL"),
    "pass_core_user": ("PASS_CORE_USER", "PASS_CLIENT_USER"),
    "pass_core_password": ("PASS_CORE_PASSWORD", "PASS_CLIENT_PASSWORD"),
    "lease_seconds": ("DEPOSIT_LEASE_SECONDS",),
    "max_deliveries": ("DEPOSIT_MAX_DELIVERIES",),
    "log_level": ("DEPOSIT_LOG_LEVEL",),
    "retry_base_seconds": ("DEPOSIT_RETRY_BASE_SECONDS",),
    "retry_factor": ("DEPOSIT_RETRY_FACTOR",),
    "retry_cap_seconds": ("DEPOSIT_RETRY_CAP_SECONDS",),
    "retry_max_attempts": ("DEPOSIT_RETRY_MAX_ATTEMPTS",),
    "retry_jitter": ("DEPOSIT_RETRY_JITTER",),
    "refresh_window_days": ("DEPOSIT_REFRESH_WINDOW_DAYS",),
    "file_roots": ("DEPOSIT_FILE_ROOTS",),
    "file_origins": ("DEPOSIT_FILE_ORIGINS",),
    "fault_injection": ("DEPOSIT_FAULT_INJECTION",),
}


def mask_url(url: str) -> str:
    """``scheme://user:***@host/...``: the password of a URL hidden."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def default_data_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", ".")) / ".local" / "share")
    return Path(base) / "deposit-services"


def _lookup(env: Mapping[str, str], name: str) -> str | None:
    for var in ENVIRONMENT[name]:
        value = env.get(var)
        if value is not None and value.strip() != "":
            return value.strip()
    return None


def _as_bool(name: str, raw: str, problems: list[str]) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    problems.append(f"{ENVIRONMENT[name][0]}={raw!r} is not a boolean (true/false)")
    return False


def _as_number(name: str, raw: str, problems: list[str], kind: type[int] | type[float]) -> float:
    try:
        value = kind(raw)
    except ValueError:
        problems.append(f"{ENVIRONMENT[name][0]}={raw!r} is not a number")
        return 0
    if value <= 0:
        problems.append(f"{ENVIRONMENT[name][0]}={raw!r} must be positive")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``env`` (default ``os.environ``); ConfigurationError lists problems."""
    env = os.environ if env is None else env
    problems: list[str] = []
    data_dir = Path(_lookup(env, "data_dir") or default_data_dir(env)).expanduser()
    store_url = _lookup(env, "store_url") or f"sqlite:///{data_dir / 'deposit-services.db'}"
    if store_url.startswith("postgres://"):
        store_url = "postgresql://" + store_url.removeprefix("postgres://")
    values: dict[str, object] = {
        "data_dir": data_dir,
        "store_url": store_url,
        "broker_url": _lookup(env, "broker_url") or "local:",
        "repository_configuration": _lookup(env, "repository_configuration")
        or DEFAULT_REPOSITORY_CONFIGURATION,
    }
    for f in fields(Settings):
        if f.name in values:
            continue
        raw = _lookup(env, f.name)
        if raw is None:
            continue
        if f.type in ("int", int):
            values[f.name] = int(_as_number(f.name, raw, problems, int))
        elif f.type in ("float", float):
            values[f.name] = float(_as_number(f.name, raw, problems, float))
        elif f.type in ("bool", bool):
            values[f.name] = _as_bool(f.name, raw, problems)
        else:
            values[f.name] = raw
    if not urlsplit(store_url).scheme.startswith(("sqlite", "postgresql")):
        problems.append(f"DEPOSIT_STORE_URL={mask_url(store_url)!r}: use sqlite:/// or postgresql://")
    jitter = str(values.get("retry_jitter", "equal")).lower()
    if jitter not in RETRY_JITTERS:
        problems.append(f"DEPOSIT_RETRY_JITTER={jitter!r}: use one of {', '.join(RETRY_JITTERS)}")
    values["retry_jitter"] = jitter
    factor = values.get("retry_factor", 2.0)
    if isinstance(factor, float) and 0 < factor < 1:
        problems.append(f"DEPOSIT_RETRY_FACTOR={factor}: must be at least 1 (no shrinking delays)")
    if problems:
        raise ConfigurationError("invalid settings: " + "; ".join(problems), problems)
    return Settings(**values)  # type: ignore[arg-type]
