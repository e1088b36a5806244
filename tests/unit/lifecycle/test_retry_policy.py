"""RetryPolicy: backoff growth, cap, jitter bounds, budget; its settings."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from deposit_services.errors import ConfigurationError
from deposit_services.service.retry import RetryPolicy
from deposit_services.settings import load_settings


def test_defaults_are_the_documented_ones() -> None:
    policy = RetryPolicy()
    assert (policy.base_seconds, policy.factor, policy.cap_seconds, policy.max_attempts,
            policy.jitter) == (30.0, 2.0, 3600.0, 8, "equal")


def test_backoff_doubles_from_the_base_and_stops_at_the_cap() -> None:
    policy = RetryPolicy(jitter="none")
    assert [policy.delay(n) for n in range(1, 9)] == [30, 60, 120, 240, 480, 960, 1920, 3600]
    assert policy.delay(500) == 3600, "no overflow on huge attempt numbers"


def test_full_jitter_spreads_over_zero_to_delay() -> None:
    policy = RetryPolicy(jitter="full")
    rng = random.Random(7)
    delays = [policy.delay(3, rng) for _ in range(2000)]
    assert min(delays) >= 0 and max(delays) <= 120
    assert min(delays) < 10 and max(delays) > 110, "the whole range is used"


def test_equal_jitter_never_waits_less_than_half() -> None:
    policy = RetryPolicy(jitter="equal")
    rng = random.Random(3)
    delays = [policy.delay(2, rng) for _ in range(2000)]
    assert min(delays) >= 30 and max(delays) <= 60
    assert len({round(d, 3) for d in delays}) > 1000, "jittered, not constant"


def test_budget_and_next_attempt_time() -> None:
    policy = RetryPolicy(max_attempts=3, jitter="none")
    assert not policy.exhausted(2) and policy.exhausted(3)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert policy.next_attempt_at(2, now) == now + timedelta(seconds=60)


@pytest.mark.parametrize("kwargs", [{"base_seconds": 0}, {"factor": 0.5}, {"max_attempts": 0},
                                    {"jitter": "random"}])
def test_nonsense_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_settings_build_the_policy() -> None:
    settings = load_settings({"DEPOSIT_RETRY_BASE_SECONDS": "5", "DEPOSIT_RETRY_FACTOR": "3",
                              "DEPOSIT_RETRY_CAP_SECONDS": "100", "DEPOSIT_RETRY_MAX_ATTEMPTS": "4",
                              "DEPOSIT_RETRY_JITTER": "FULL", "DEPOSIT_DATA_DIR": "/tmp/x"})
    assert RetryPolicy.from_settings(settings) == RetryPolicy(5, 3, 100, 4, "full")


@pytest.mark.parametrize("env", [{"DEPOSIT_RETRY_JITTER": "sometimes"},
                                 {"DEPOSIT_RETRY_FACTOR": "0.5"},
                                 {"DEPOSIT_RETRY_MAX_ATTEMPTS": "0"}])
def test_bad_retry_settings_are_configuration_errors(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings({**env, "DEPOSIT_DATA_DIR": "/tmp/x"})
    assert next(iter(env)) in str(info.value)
