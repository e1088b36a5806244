"""Every setting is checked in load_settings; all problems come in one ConfigurationError,
each naming the variable that was set and what is allowed."""

from __future__ import annotations

import pytest

from deposit_services.errors import ConfigurationError
from deposit_services.messaging.base import BROKERS
from deposit_services.service.faults import CRASH_AFTER_TRANSFER
from deposit_services.settings import BROKER_SCHEMES, LOG_LEVELS, load_settings


def problems(**env: str) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"HOME": "/h", **env})
    return caught.value.problems


def test_an_unknown_log_level_is_refused_naming_the_levels() -> None:
    [problem] = problems(DEPOSIT_LOG_LEVEL="bogus")
    assert problem == ("DEPOSIT_LOG_LEVEL='bogus': use one of DEBUG, INFO, WARNING, ERROR, "
                       "CRITICAL")


@pytest.mark.parametrize("level", [*LOG_LEVELS, "debug", "Warning"])
def test_log_levels_in_any_case(level: str) -> None:
    assert load_settings({"HOME": "/h", "DEPOSIT_LOG_LEVEL": level}).log_level == level.upper()


def test_an_unknown_broker_scheme_is_refused_and_its_credentials_masked() -> None:
    [problem] = problems(DEPOSIT_BROKER_URL="amqp://guest:guest-pw@rabbit:5672/")
    assert problem.startswith("DEPOSIT_BROKER_URL='amqp://guest:***@rabbit:5672/': unknown "
                              "scheme amqp:; use local:")
    assert "stomp://" in problem and "sqs://" in problem and "guest-pw" not in problem


@pytest.mark.parametrize("url", [
    "local", "local:", "local://", "sqlite:////var/lib/q.db", "postgresql://u:p@db/q",
    "postgres://db/q", "postgresql+psycopg://db/q", "stomp://broker:61613",
    "stomp+ssl://u:p@broker:61614?ca=/etc/ca.pem", "sqs://", "sqs://?region=eu-west-1",
    "sqs+http://127.0.0.1:4566", "sqs+https://sqs.example",
])
def test_every_broker_the_adapters_take_is_accepted(url: str) -> None:
    assert load_settings({"HOME": "/h", "DEPOSIT_BROKER_URL": url}).broker_url == url


def test_the_broker_schemes_are_those_of_the_adapters() -> None:
    assert {s.partition("+")[0] for s in BROKER_SCHEMES} - {"postgres"} == set(BROKERS)


@pytest.mark.parametrize(("url", "why"), [
    ("stomp://", "no host"), ("stomp+ssl://:61614", "no host"), ("sqs+http://", "no host"),
    ("stomp://broker:port", "is not a URL"), ("stomp://broker:99999", "is not a URL"),
    ("stomp://bro\nker:61613", "control characters"),
])
def test_broker_urls_must_parse(url: str, why: str) -> None:
    [problem] = problems(DEPOSIT_BROKER_URL=url)
    assert problem.startswith("DEPOSIT_BROKER_URL=") and why in problem


def test_all_problems_come_at_once_each_naming_its_variable() -> None:
    found = problems(
        DEPOSIT_LOG_LEVEL="bogus",
        DEPOSIT_BROKER_URL="amqp://rabbit",
        DEPOSIT_STORE_URL="mysql://root:pw@db/x",
        PASS_ELASTICSEARCH_URL="es.example:9200",
        PASS_CORE_URL="https://",
        DEPOSIT_FILE_ROOTS="/srv/files:relative/dir",
        DEPOSIT_FILE_ORIGINS="https://files.example, ftp://ftp.example file:///srv",
        DEPOSIT_LEASE_SECONDS="nan",
        DEPOSIT_MAX_DELIVERIES="2.5",
        DEPOSIT_REFRESH_WINDOW_DAYS="-1",
        PASS_DEPOSIT_WORKERS_CONCURRENCY="0",
        PASS_DEPOSIT_JOBS_DISABLED="perhaps",
        DEPOSIT_RETRY_JITTER="sometimes",
        DEPOSIT_RETRY_FACTOR="0.5",
        DEPOSIT_FAULT_INJECTION="crash-now",
        PASS_DEPOSIT_REPOSITORY_CONFIGURATION="classpath:/repositories.json",
        PASS_DEPOSIT_HTTP_AGENT="agent\r\nX-Injected: 1",
        PASS_CORE_DEPOSIT_QUEUE="deposit queue",
    )
    variables = [p.split("=")[0].split(":")[0] for p in found]
    assert variables == [
        "PASS_DEPOSIT_WORKERS_CONCURRENCY", "PASS_DEPOSIT_JOBS_DISABLED",
        "DEPOSIT_LEASE_SECONDS", "DEPOSIT_MAX_DELIVERIES", "DEPOSIT_REFRESH_WINDOW_DAYS",
        "DEPOSIT_STORE_URL", "DEPOSIT_LOG_LEVEL", "DEPOSIT_RETRY_JITTER",
        "DEPOSIT_FAULT_INJECTION", "DEPOSIT_BROKER_URL", "PASS_DEPOSIT_REPOSITORY_CONFIGURATION",
        "PASS_ELASTICSEARCH_URL", "PASS_CORE_URL", "DEPOSIT_FILE_ORIGINS", "DEPOSIT_FILE_ORIGINS",
        "DEPOSIT_FILE_ROOTS", "PASS_CORE_DEPOSIT_QUEUE", "PASS_DEPOSIT_HTTP_AGENT",
        "DEPOSIT_RETRY_FACTOR",
    ]
    assert not any("root:pw" in p for p in found)
    text = "\n".join(found)
    for allowed in ("use a whole number greater than 0", "use true or false",
                    "use a number greater than 0", "sqlite:///", "use one of equal, full, none",
                    f"use one of {CRASH_AFTER_TRANSFER}", "an http(s) URL",
                    "'relative/dir' is not an absolute path", "'ftp://ftp.example': unknown",
                    "at least 1"):
        assert allowed in text, allowed


def test_the_message_names_the_alias_that_was_set() -> None:
    [problem] = problems(PASS_CORE_SUBMISSION_QUEUE="sub\tmission")
    assert problem.startswith("PASS_CORE_SUBMISSION_QUEUE='sub\\tmission'")


def test_good_values_of_the_new_and_url_settings_pass() -> None:
    settings = load_settings({
        "HOME": "/h",
        "DEPOSIT_DATA_DIR": "/var/lib/deposit services",  # spaces in the default store URL
        "DEPOSIT_FILE_ROOTS": "/srv/a:/srv/b",
        "DEPOSIT_FILE_ORIGINS": "https://files.example, http://[::1]:8080",
        "PASS_ELASTICSEARCH_URL": "http://es:9200/?token=t",
        "PASS_CORE_URL": "https://pass.example",
        "PASS_DEPOSIT_REPOSITORY_CONFIGURATION": "https://config.example/repositories.json",
        "DEPOSIT_FAULT_INJECTION": CRASH_AFTER_TRANSFER,
        "DEPOSIT_RETRY_JITTER": "FULL",
    })
    assert settings.store_url == "sqlite:////var/lib/deposit services/deposit-services.db"
    assert settings.retry_jitter == "full"


@pytest.mark.parametrize("source", ["config/repositories.json", "/etc/ds/repositories.json",
                                    "file:///etc/ds/repositories.json"])
def test_repository_configuration_paths_and_file_uris_pass(source: str) -> None:
    env = {"HOME": "/h", "PASS_DEPOSIT_REPOSITORY_CONFIGURATION": source}
    assert load_settings(env).repository_configuration == source


def test_config_show_masks_credentials_wherever_a_url_is() -> None:
    shown = load_settings({
        "HOME": "/h",
        "DEPOSIT_STORE_URL": "postgresql://me:store-pw@db:5432/x?password=store-pw2",
        "DEPOSIT_BROKER_URL": "stomp://amq:broker-pw@broker:61613",
        "PASS_ELASTICSEARCH_URL": "http://es:9200/?token=es-token",
        "PASS_DEPOSIT_REPOSITORY_CONFIGURATION": "https://c.example/r.json?access_token=c-tok",
        "DEPOSIT_FILE_ORIGINS": "https://u:origin-pw@files.example https://f2.example/?sig=s",
        "PASS_CORE_URL": "https://pc:pc-pw@pass.example",
    }).masked()
    text = repr(shown)
    for secret in ("store-pw", "broker-pw", "es-token", "c-tok", "origin-pw", "=s'", "pc-pw"):
        assert secret not in text, secret
    assert shown["store_url"] == "postgresql://me:***@db:5432/x?password=***"
    assert shown["broker_url"] == "stomp://amq:***@broker:61613"
    assert shown["elasticsearch_url"] == "http://es:9200/?token=***"
