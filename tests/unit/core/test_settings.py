from __future__ import annotations

from pathlib import Path

import pytest

from deposit_services.errors import ConfigurationError
from deposit_services.settings import load_settings, mask_url


def test_defaults_put_everything_under_the_data_dir() -> None:
    settings = load_settings({"HOME": "/home/op"})
    assert settings.data_dir == Path("/home/op/.local/share/deposit-services")
    assert settings.store_url == "sqlite:////home/op/.local/share/deposit-services/deposit-services.db"
    assert settings.broker_url == "local:"
    assert settings.repository_configuration == "config/repositories.json"
    assert settings.workers_concurrency == 4
    assert settings.jobs_interval_ms == 600_000
    assert (settings.queue_submission, settings.queue_deposit) == ("submission", "deposit")


def test_pass_names_are_accepted() -> None:
    settings = load_settings({
        "HOME": "/h",
        "PASS_DEPOSIT_REPOSITORY_CONFIGURATION": "https://config.example/repositories.json",
        "PASS_DEPOSIT_WORKERS_CONCURRENCY": "8",
        "PASS_DEPOSIT_JOBS_DISABLED": "true",
        "PASS_DEPOSIT_JOBS_DEFAULT_INTERVAL_MS": "30000",
        "PASS_DEPOSIT_QUEUE_SUBMISSION_NAME": "pass-submission",
        "PASS_DEPOSIT_QUEUE_DEPOSIT_NAME": "pass-deposit",
        "PASS_DEPOSIT_HTTP_AGENT": "agent/1",
        "SPRING_ACTIVEMQ_USER": "amq",
        "SPRING_ACTIVEMQ_PASSWORD": "secret",
        "PASS_ELASTICSEARCH_URL": "http://es:9200",
        "DEPOSIT_STORE_URL": "postgres://u:p@db/deposits",
    })
    assert settings.repository_configuration == "https://config.example/repositories.json"
    assert settings.workers_concurrency == 8
    assert settings.jobs_disabled is True
    assert settings.jobs_interval_ms == 30000
    assert settings.queue_submission == "pass-submission"
    assert settings.queue_deposit == "pass-deposit"
    assert settings.http_agent == "agent/1"
    assert (settings.broker_user, settings.broker_password) == ("amq", "secret")
    assert settings.elasticsearch_url == "http://es:9200"
    assert settings.store_url == "postgresql://u:p@db/deposits"


def test_masked_hides_passwords_and_url_credentials() -> None:
    settings = load_settings({
        "HOME": "/h", "SPRING_ACTIVEMQ_PASSWORD": "secret", "PASS_CORE_PASSWORD": "pc",
        "DEPOSIT_STORE_URL": "postgresql://user:pw@db:5432/x",
    })
    shown = settings.masked()
    assert shown["broker_password"] == "***"
    assert shown["pass_core_password"] == "***"
    assert shown["store_url"] == "postgresql://user:***@db:5432/x"
    assert "secret" not in repr(shown) and "pw@" not in repr(shown)


def test_every_bad_value_is_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"HOME": "/h", "PASS_DEPOSIT_WORKERS_CONCURRENCY": "many",
                       "PASS_DEPOSIT_JOBS_DISABLED": "perhaps",
                       "DEPOSIT_STORE_URL": "mysql://x"})
    problems = caught.value.problems
    assert len(problems) == 3
    assert any("PASS_DEPOSIT_WORKERS_CONCURRENCY" in p for p in problems)
    assert any("PASS_DEPOSIT_JOBS_DISABLED" in p for p in problems)
    assert any("DEPOSIT_STORE_URL" in p for p in problems)


def test_mask_url_leaves_urls_without_password_alone() -> None:
    assert mask_url("stomp://broker:61613") == "stomp://broker:61613"
    assert mask_url("stomp://u:p@broker:61613") == "stomp://u:***@broker:61613"
