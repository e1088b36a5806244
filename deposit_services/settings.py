"""Settings from the environment, read once at start-up into one frozen object.

PASS Deposit Services' variable names are accepted where they exist, so a PASS
deployment's environment works unchanged; our own live under ``DEPOSIT_``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit

from deposit_services import __version__
from deposit_services.errors import ConfigurationError
from deposit_services.safetext import escape, redact
from deposit_services.safetext import mask_url as mask_url  # re-exported: imported from here
from deposit_services.service.faults import POINTS as FAULT_POINTS

DEFAULT_REPOSITORY_CONFIGURATION = "config/repositories.json"
RETRY_JITTERS = ("equal", "full", "none")
NIHMS_EMAIL_AUTH_MODES = ("LOGIN", "XOAUTH2", "MS_EXCHANGE_OAUTH2")  # nihms_mail/settings.py
WEB_READ_ACCESS = ("operator", "anyone")
SMTP_TLS_MODES = ("starttls", "ssl", "none")  # notices.py: how the SMTP session is secured
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")  # DEPOSIT_LOG_FORMAT (observability/logs.py)
# DEPOSIT_BROKER_URL: the schemes of messaging.base.BROKERS with the variants their
# adapters accept (a test checks that the two agree); SQL schemes may name a driver.
LOCAL_BROKER_URLS = ("local", "local:", "local://")
SQL_SCHEMES = ("sqlite", "postgresql")  # each also with a driver: postgresql+psycopg
BROKER_SCHEMES = ("local", *SQL_SCHEMES, "postgres", "stomp", "stomp+ssl", "stomp+tls", "sqs",
                  "sqs+http", "sqs+https")
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
    log_format: str = "text"
    # listen's HTTP port for /metrics, /healthz, /readyz (observability/http.py); 0: off
    http_port: int = 0
    http_host: str = "127.0.0.1"
    # Automatic retry of transient deposit faults (service.retry.RetryPolicy).
    retry_base_seconds: float = 30.0
    retry_factor: float = 2.0
    retry_cap_seconds: float = 3600.0
    retry_max_attempts: int = 8
    retry_jitter: str = "equal"
    # The refresh job follows SUBMITTED deposits of submissions this recent.
    refresh_window_days: float = 10.0
    # Repository health, staleness and notices (service/health.py, stale.py, notices.py);
    # repositories.json's ``operations`` section overrides the first three per repository.
    pause_after_failures: int = 5
    pause_seconds: float = 300.0
    stale_after_days: float = 14.0
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_tls: str = "starttls"
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_sender: str = "deposit-services@localhost"
    smtp_ca_file: str | None = None
    # Where package files may come from besides a submission's own files directory:
    # local roots (os.pathsep-separated) and http(s) origins (space- or comma-separated).
    file_roots: str | None = None
    file_origins: str | None = None
    # Another directory where templates repositories.json names are found (bag-info).
    template_dir: str | None = None
    # The search index (deposit_services/search): credentials, the CA bundle to verify
    # its TLS certificate with (default: the system's), the prefix of its index names.
    search_user: str | None = None
    search_password: str | None = None
    search_api_key: str | None = None
    search_ca_file: str | None = None
    search_index: str = "deposit-services"
    # The web dashboard (deposit_services/web): the operator who may act, the password
    # (plain, or a "pbkdf2_sha256$iterations$salt$hash" from `deposit-services web
    # --hash-password`), the key that signs sessions (default: new per process), and
    # who may read: "operator" (signed in) or "anyone".
    web_user: str | None = None
    web_password: str | None = None
    web_session_key: str | None = None
    web_read_access: str = "operator"
    # NIHMS's "Bulk submission" mails over IMAPS (nihms_mail/): the job runs when a host
    # is set (and not disabled); delay is the job's interval in ms, as PASS's.
    nihms_email_enabled: bool = True
    nihms_email_host: str | None = None
    nihms_email_port: int = 993
    nihms_email_user: str | None = None
    nihms_email_password: str | None = None
    nihms_email_from: str | None = None
    nihms_email_folder: str = "INBOX"
    nihms_email_delay_ms: int = 600_000
    nihms_email_auth: str = "LOGIN"
    nihms_email_token_command: str | None = None
    nihms_email_token_file: str | None = None
    nihms_email_ca_file: str | None = None
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
            # secrets by name; URLs wherever they are (store, broker, origins...)
            shown[f.name] = "***" if text and _SECRET_NAME.search(f.name) else redact(text)
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
    "elasticsearch_url": ("DEPOSIT_SEARCH_URL", "PASS_ELASTICSEARCH_URL"),
    "search_user": ("DEPOSIT_SEARCH_USER",),
    "search_password": ("DEPOSIT_SEARCH_PASSWORD",),
    "search_api_key": ("DEPOSIT_SEARCH_API_KEY",),
    "search_ca_file": ("DEPOSIT_SEARCH_CA_FILE",),
    "search_index": ("DEPOSIT_SEARCH_INDEX",),
    "web_user": ("DEPOSIT_WEB_USER",),
    "web_password": ("DEPOSIT_WEB_PASSWORD",),
    "web_session_key": ("DEPOSIT_WEB_SESSION_KEY",),
    "web_read_access": ("DEPOSIT_WEB_READ_ACCESS",),
    "pass_core_url": ("DEPOSIT_RECORDS_URL", "PASS_CORE_URL", "PASS_CLIENT_URL"),
    "pass_core_user": ("PASS_CORE_USER", "PASS_CLIENT_USER"),
    "pass_core_password": ("PASS_CORE_PASSWORD", "PASS_CLIENT_PASSWORD"),
    "lease_seconds": ("DEPOSIT_LEASE_SECONDS",),
    "max_deliveries": ("DEPOSIT_MAX_DELIVERIES",),
    "log_level": ("DEPOSIT_LOG_LEVEL",),
    "log_format": ("DEPOSIT_LOG_FORMAT",),
    "http_port": ("DEPOSIT_HTTP_PORT",),
    "http_host": ("DEPOSIT_HTTP_HOST",),
    "retry_base_seconds": ("DEPOSIT_RETRY_BASE_SECONDS",),
    "retry_factor": ("DEPOSIT_RETRY_FACTOR",),
    "retry_cap_seconds": ("DEPOSIT_RETRY_CAP_SECONDS",),
    "retry_max_attempts": ("DEPOSIT_RETRY_MAX_ATTEMPTS",),
    "retry_jitter": ("DEPOSIT_RETRY_JITTER",),
    "refresh_window_days": ("DEPOSIT_REFRESH_WINDOW_DAYS",),
    "pause_after_failures": ("DEPOSIT_PAUSE_AFTER_FAILURES",),
    "pause_seconds": ("DEPOSIT_PAUSE_SECONDS",),
    "stale_after_days": ("DEPOSIT_STALE_AFTER_DAYS",),
    "smtp_host": ("DEPOSIT_SMTP_HOST",),
    "smtp_port": ("DEPOSIT_SMTP_PORT",),
    "smtp_tls": ("DEPOSIT_SMTP_TLS",),
    "smtp_user": ("DEPOSIT_SMTP_USER",),
    "smtp_password": ("DEPOSIT_SMTP_PASSWORD",),
    "smtp_sender": ("DEPOSIT_SMTP_SENDER",),
    "smtp_ca_file": ("DEPOSIT_SMTP_CA_FILE",),
    "file_roots": ("DEPOSIT_FILE_ROOTS",),
    "file_origins": ("DEPOSIT_FILE_ORIGINS",),
    "template_dir": ("DEPOSIT_TEMPLATE_DIR",),
    "nihms_email_enabled": ("PASS_DEPOSIT_NIHMS_EMAIL_ENABLED",),
    "nihms_email_host": ("PASS_DEPOSIT_NIHMS_EMAIL_HOST", "NIHMS_MAIL_HOST"),
    "nihms_email_port": ("PASS_DEPOSIT_NIHMS_EMAIL_PORT", "NIHMS_MAIL_PORT"),
    "nihms_email_user": ("PASS_DEPOSIT_NIHMS_EMAIL_USER", "NIHMS_MAIL_USERNAME"),
    "nihms_email_password": ("PASS_DEPOSIT_NIHMS_EMAIL_PASSWORD", "NIHMS_MAIL_PASSWORD"),
    "nihms_email_from": ("PASS_DEPOSIT_NIHMS_EMAIL_FROM",),
    "nihms_email_folder": ("PASS_DEPOSIT_NIHMS_EMAIL_FOLDER",),
    "nihms_email_delay_ms": ("PASS_DEPOSIT_NIHMS_EMAIL_DELAY",),
    "nihms_email_auth": ("PASS_DEPOSIT_NIHMS_EMAIL_AUTH",),
    "nihms_email_token_command": ("PASS_DEPOSIT_NIHMS_EMAIL_TOKEN_COMMAND",),
    "nihms_email_token_file": ("PASS_DEPOSIT_NIHMS_EMAIL_TOKEN_FILE",),
    "nihms_email_ca_file": ("PASS_DEPOSIT_NIHMS_EMAIL_CA_FILE",),
    "fault_injection": ("DEPOSIT_FAULT_INJECTION",),
}


def default_data_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", ".")) / ".local" / "share")
    return Path(base) / "deposit-services"


def _lookup(env: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """``(variable, value)`` of the first of ``name``'s variables that is set and not
    blank: messages name the variable the operator actually set."""
    for var in ENVIRONMENT[name]:
        value = env.get(var)
        if value is not None and value.strip() != "":
            return var, value.strip()
    return None


def _as_bool(var: str, raw: str, problems: list[str]) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    problems.append(f"{var}={raw!r} is not a boolean: use true or false")
    return False


def _as_number(var: str, raw: str, problems: list[str], kind: type[int] | type[float]
               ) -> float:
    """A number greater than 0 (every numeric setting is a count, a size or a time)."""
    what = "a whole number" if kind is int else "a number"
    try:
        value = kind(raw)
    except ValueError:
        problems.append(f"{var}={raw!r} is not {what}: use {what} greater than 0")
        return 1
    if not math.isfinite(value) or value <= 0:
        problems.append(f"{var}={raw!r}: use {what} greater than 0")
        return 1
    return value


def _has_controls(text: str) -> bool:
    """Control characters: never part of a URL, a queue name or a header value."""
    return escape(text) != text


def _scheme(url: str) -> str:
    return "" if _has_controls(url) else urlsplit(url).scheme.lower()


def _url_problem(var: str, url: str, scheme_ok: Callable[[str], bool], allowed: str,
                 *, need_host: bool = False) -> str | None:
    """What is wrong with ``url`` as the value of ``var`` (None: nothing). The URL is
    shown masked; ``allowed`` says what to use instead."""
    shown = f"{var}={mask_url(url)!r}"
    if _has_controls(url):
        return f"{shown}: a URL holds no control characters; use {allowed}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        return f"{shown} is not a URL ({exc}); use {allowed}"
    scheme = parts.scheme.lower()
    if not scheme_ok(scheme):
        return f"{shown}: unknown scheme {scheme + ':' if scheme else '(none)'}; use {allowed}"
    if need_host and not parts.hostname:
        return f"{shown}: no host; use {allowed}"
    return None


def _is_sql(scheme: str) -> bool:
    """sqlite or postgresql, with or without a driver (postgresql+psycopg)."""
    return scheme.partition("+")[0] in SQL_SCHEMES


def _is_http(scheme: str) -> bool:
    return scheme in ("http", "https")


def _broker_problem(var: str, url: str) -> str | None:
    if url.lower() in LOCAL_BROKER_URLS:
        return None
    allowed = ("local: (a queue in the store's database), sqlite:///... or postgresql://... "
               "(a queue in that database), stomp://host:61613, stomp+ssl://host:61614, "
               "sqs:// or sqs+http(s)://host:port")
    return _url_problem(var, url, lambda s: s in BROKER_SCHEMES or _is_sql(s), allowed,
                        need_host=_scheme(url).startswith(("stomp", "sqs+")))


def _repository_configuration_problem(var: str, source: str) -> str | None:
    scheme = _scheme(source)
    if scheme in ("", "file") or len(scheme) == 1:  # a path, file:..., C:\...
        return None
    return _url_problem(var, source, _is_http,
                        "a path, a file: URI or an http(s) URL of repositories.json",
                        need_host=True)


def _text_problems(values: Mapping[str, object], used: Mapping[str, str]) -> list[str]:
    """Problems of the settings that are neither numbers nor booleans, each naming the
    variable that was set and what it may be."""

    def given(name: str) -> str | None:  # a value the environment set
        value = values.get(name)
        return value if name in used and isinstance(value, str) else None

    def one_of(name: str, allowed: Sequence[str], note: str = "",
               fold: Callable[[str], str] = str) -> str | None:
        value = given(name)
        if value is None or fold(value) in allowed:
            return None
        return f"{used[name]}={value!r}: use one of {', '.join(allowed)}{note}"

    problems: list[str | None] = [
        _url_problem("DEPOSIT_STORE_URL", str(values["store_url"]), _is_sql,
                     "sqlite:///path/to/file.db or postgresql://user:password@host:port/db"),
        one_of("log_level", LOG_LEVELS, fold=str.upper),
        one_of("log_format", LOG_FORMATS, fold=str.lower),
        one_of("retry_jitter", RETRY_JITTERS, fold=str.lower),
        one_of("nihms_email_auth", NIHMS_EMAIL_AUTH_MODES, fold=str.upper),
        one_of("smtp_tls", SMTP_TLS_MODES, fold=str.lower),
        one_of("web_read_access", WEB_READ_ACCESS, fold=str.lower),
        one_of("fault_injection", FAULT_POINTS, " (crash tests only: unset it in production)"),
    ]
    if (broker := given("broker_url")) is not None:
        problems.append(_broker_problem(used["broker_url"], broker))
    if (source := given("repository_configuration")) is not None:
        problems.append(_repository_configuration_problem(used["repository_configuration"],
                                                          source))
    for name in ("elasticsearch_url", "pass_core_url"):
        if (url := given(name)) is not None:
            problems.append(_url_problem(used[name], url, _is_http, "an http(s) URL",
                                         need_host=True))
    for origin in (given("file_origins") or "").replace(",", " ").split():
        problems.append(_url_problem(
            used["file_origins"], origin, _is_http,
            "http(s) URLs with a host, separated by spaces or commas", need_host=True))
    problems += [
        f"{used['file_roots']}: {root!r} is not an absolute path; use absolute paths "
        f"separated by {os.pathsep!r}"
        for root in (given("file_roots") or "").split(os.pathsep)
        if root and not Path(root).is_absolute()
    ]
    for name in ("queue_submission", "queue_deposit"):
        if (queue := given(name)) is not None and (_has_controls(queue) or " " in queue):
            problems.append(f"{used[name]}={queue!r}: a queue name without spaces or "
                            "control characters")
    if (agent := given("http_agent")) is not None and _has_controls(agent):
        problems.append(f"{used['http_agent']}={agent!r}: a User-Agent without control "
                        "characters")
    return [problem for problem in problems if problem is not None]


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``env`` (default ``os.environ``), every one checked; one
    ConfigurationError lists every problem, each naming its variable and what is allowed."""
    env = os.environ if env is None else env
    problems: list[str] = []
    used: dict[str, str] = {}  # field -> the variable that set it
    raw: dict[str, str] = {}
    for name in ENVIRONMENT:
        found = _lookup(env, name)
        if found is not None:
            used[name], raw[name] = found
    data_dir = Path(raw.get("data_dir") or default_data_dir(env)).expanduser()
    store_url = raw.get("store_url") or f"sqlite:///{data_dir / 'deposit-services.db'}"
    if store_url.startswith("postgres://"):
        store_url = "postgresql://" + store_url.removeprefix("postgres://")
    values: dict[str, object] = {
        "data_dir": data_dir,
        "store_url": store_url,
        "broker_url": raw.get("broker_url") or "local:",
        "repository_configuration": raw.get("repository_configuration")
        or DEFAULT_REPOSITORY_CONFIGURATION,
    }
    for f in fields(Settings):
        if f.name in values or f.name not in raw:
            continue
        var, text = used[f.name], raw[f.name]
        if f.type in ("int", int):
            values[f.name] = int(_as_number(var, text, problems, int))
        elif f.type in ("float", float):
            values[f.name] = float(_as_number(var, text, problems, float))
        elif f.type in ("bool", bool):
            values[f.name] = _as_bool(var, text, problems)
        else:
            values[f.name] = text
    problems += _text_problems(values, used)
    if "log_level" in values:
        values["log_level"] = str(values["log_level"]).upper()
    if "web_read_access" in values:
        values["web_read_access"] = str(values["web_read_access"]).lower()
    if "retry_jitter" in values:
        values["retry_jitter"] = str(values["retry_jitter"]).lower()
    if "log_format" in values:
        values["log_format"] = str(values["log_format"]).lower()
    if "smtp_tls" in values:
        values["smtp_tls"] = str(values["smtp_tls"]).lower()
    factor = values.get("retry_factor", 2.0)
    if isinstance(factor, float) and 0 < factor < 1:
        problems.append(f"{used['retry_factor']}={raw['retry_factor']!r}: use a number of at "
                        "least 1 (no shrinking delays)")
    port = values.get("smtp_port")
    if isinstance(port, int) and port > 65535:
        problems.append(f"{used['smtp_port']}={raw['smtp_port']!r}: use a port (1-65535)")
    if problems:
        raise ConfigurationError("invalid settings: " + "; ".join(problems), problems)
    return Settings(**values)  # type: ignore[arg-type]
