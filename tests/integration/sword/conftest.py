"""Fixtures for the SWORDv2 tests: a live test server, a real package, a transport."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deposit_services.transports.base import TransportContext
from deposit_services.transports.sword.transport import SwordV2Transport
from tests.support.sword_server import SwordServer, running_sword_server

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sword"
AGENT = "deposit-services-test/1.0"


@pytest.fixture
def sword_server(tmp_path: Path) -> Iterator[SwordServer]:
    store = tmp_path / "server-store"
    store.mkdir()
    with running_sword_server(store_dir=store) as server:
        yield server


@pytest.fixture
def binding(sword_server: SwordServer) -> dict[str, Any]:
    return sword_binding(sword_server)


@pytest.fixture
def binding_for() -> Callable[..., dict[str, Any]]:
    """``binding_for(server, **overrides)``: a binding for another server instance."""
    return sword_binding


def sword_binding(server: SwordServer, **overrides: Any) -> dict[str, Any]:
    """A PASS-style SWORDv2 protocol-binding pointing at ``server``."""
    binding: dict[str, Any] = {
        "protocol": "SWORDv2",
        "username": server.username,
        "password": server.password,
        "server-fqdn": "127.0.0.1",
        "server-port": str(server.port),
        "service-doc": server.service_document_url,
        "default-collection": server.collection_url("default"),
        "on-behalf-of": None,
        "deposit-receipt": True,
        "connect-timeout": 2,
        "read-timeout": 10,
    }
    binding.update(overrides)
    return binding


@pytest.fixture
def user_agent() -> str:
    """The PASS_DEPOSIT_HTTP_AGENT the transports are built with."""
    return AGENT


@pytest.fixture
def make_transport() -> Iterator[Callable[..., SwordV2Transport]]:
    made: list[SwordV2Transport] = []

    def make(binding: dict[str, Any], user_agent: str = AGENT) -> SwordV2Transport:
        transport = SwordV2Transport(binding, TransportContext(user_agent=user_agent))
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def statement_bytes() -> Callable[[str], bytes]:
    """``statement_bytes("archived")``: a DSpace reference statement from tests/fixtures."""

    def read(state: str) -> bytes:
        return (FIXTURES / f"dspace-statement-{state}.xml").read_bytes()

    return read
