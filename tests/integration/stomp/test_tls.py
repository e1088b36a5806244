"""``stomp+ssl://``: TLS with certificate and host name verification, on a real ActiveMQ.

The broker is reached through a TLS-terminating relay with a certificate made here
(for 127.0.0.1 and localhost), so the test controls which certificate is presented.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from deposit_services.messaging.stomp import StompBroker
from tests.support.activemq import ActiveMQ
from tests.support.tcp_proxy import TcpProxy


def make_certificate(folder: Path, name: str, sans: list[x509.GeneralName]) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / f"{name}.pem", folder / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def tls_relay(activemq: ActiveMQ, cert: Path, key: Path) -> TcpProxy:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    proxy = TcpProxy("127.0.0.1", activemq.port, tls=context)
    proxy.start()
    return proxy


@pytest.fixture
def good_cert(tmp_path: Path) -> tuple[Path, Path]:
    return make_certificate(tmp_path, "broker", [
        x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])


@pytest.fixture
def relay(activemq: ActiveMQ, good_cert: tuple[Path, Path]) -> Iterator[TcpProxy]:
    proxy = tls_relay(activemq, *good_cert)
    yield proxy
    proxy.close()


def test_tls_with_the_broker_certificate_trusted(relay: TcpProxy,
                                                 good_cert: tuple[Path, Path]) -> None:
    broker = StompBroker(f"stomp+ssl://localhost:{relay.port}?ca={good_cert[0]}")
    try:
        assert broker.wait_connected(20), "no TLS connection"
        body = json.dumps({"submission": "7", "type": "SubmissionReady"})
        broker.publish("tls-test", body, {"type": "SubmissionReady"})
        delivery = broker.receive(["tls-test"], timeout=10)
        assert delivery is not None and delivery.body == body
        broker.ack(delivery)
    finally:
        broker.close()


def test_tls_refuses_an_untrusted_certificate(relay: TcpProxy,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    broker = StompBroker(f"stomp+ssl://127.0.0.1:{relay.port}", reconnect_first=0.2)
    try:
        assert not broker.wait_connected(3)
        # stomp.py logs the TLS failure itself; we log that the broker is unreachable
        assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
        assert "unreachable (attempt 1)" in caplog.text
    finally:
        broker.close()


def test_tls_refuses_a_certificate_for_another_host(activemq: ActiveMQ, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    cert, key = make_certificate(tmp_path, "elsewhere", [x509.DNSName("broker.example.org")])
    proxy = tls_relay(activemq, cert, key)
    broker = StompBroker(f"stomp+ssl://127.0.0.1:{proxy.port}?ca={cert}", reconnect_first=0.2)
    try:
        assert not broker.wait_connected(3)
        assert "IP address mismatch" in caplog.text
        assert "unreachable (attempt 1)" in caplog.text
    finally:
        broker.close()
        proxy.close()
