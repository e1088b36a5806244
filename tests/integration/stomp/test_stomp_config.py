"""The STOMP adapter's configuration: URL, credentials, prefetch (no broker needed)."""

from __future__ import annotations

import pytest

from deposit_services.errors import ConfigurationError
from deposit_services.messaging.base import broker_class
from deposit_services.messaging.stomp import StompBroker
from deposit_services.messaging.stomp_connection import Endpoint
from deposit_services.settings import load_settings
from tests.support.activemq import free_port


def test_urls_parse_into_endpoints() -> None:
    plain = Endpoint.parse("stomp://broker.example.org")
    assert (plain.host, plain.port, plain.tls, plain.vhost) == ("broker.example.org", 61613,
                                                                 False, "/")
    tls = Endpoint.parse("stomp+ssl://u%40x:p%3Aw@mq:61614?ca=/etc/ca.pem&vhost=pass")
    assert (tls.host, tls.port, tls.tls, tls.user, tls.password, tls.ca_file, tls.vhost) == (
        "mq", 61614, True, "u@x", "p:w", "/etc/ca.pem", "pass")
    assert str(tls) == "stomp+ssl://mq:61614"  # no credentials in what gets logged


@pytest.mark.parametrize("url", ["amqp://mq:5672", "stomp://", "stomp://mq:notaport"])
def test_bad_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        Endpoint.parse(url)


def test_both_schemes_select_the_stomp_adapter() -> None:
    assert broker_class("stomp://mq:61613") is StompBroker
    assert broker_class("stomp+ssl://mq:61614") is StompBroker


def test_from_settings_takes_spring_credentials_over_the_url_and_bounds_prefetch() -> None:
    settings = load_settings({
        "DEPOSIT_DATA_DIR": "/tmp/unused", "DEPOSIT_BROKER_URL": "stomp://url-user:url-pw@127.0.0.1:9",
        "SPRING_ACTIVEMQ_USER": "spring", "SPRING_ACTIVEMQ_PASSWORD": "secret",
        "PASS_DEPOSIT_WORKERS_CONCURRENCY": "3", "DEPOSIT_MAX_DELIVERIES": "7",
    })
    broker = StompBroker.from_settings(settings)
    try:
        assert (broker.user, broker.password, broker.prefetch, broker.max_deliveries) == (
            "spring", "secret", 3, 7)
    finally:
        broker.close()
    settings = load_settings({"DEPOSIT_DATA_DIR": "/tmp/unused",
                              "DEPOSIT_BROKER_URL": "stomp://url-user:url-pw@127.0.0.1:9"})
    broker = StompBroker.from_settings(settings)
    try:
        assert (broker.user, broker.password, broker.prefetch) == ("url-user", "url-pw", 4)
    finally:
        broker.close()


def test_publish_without_a_broker_fails_with_broker_unavailable() -> None:
    from deposit_services.errors import BrokerUnavailable

    closed_port = free_port()  # nothing listens there
    broker = StompBroker(f"stomp://127.0.0.1:{closed_port}", publish_timeout=1.0,
                         reconnect_first=0.1)
    try:
        assert broker.receive(["q"], timeout=0.3) is None  # no broker: nothing, no crash
        with pytest.raises(BrokerUnavailable):
            broker.publish("q", "{}")
    finally:
        broker.close()
