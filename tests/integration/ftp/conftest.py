"""Fixtures for the FTP/FTPS tests: pyftpdlib servers on loopback, a package, bindings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.ftp_server import FtpServer, FtpServerUnavailable, running_ftp_server

ServerFactory = Callable[..., FtpServer]


@pytest.fixture
def start_ftp(tmp_path: Path) -> Iterator[ServerFactory]:
    """``start_ftp(tls=..., drop_after=..., perm=...)``: a server stopped after the test."""
    stack: list[Any] = []

    def start(**options: Any) -> FtpServer:
        manager = running_ftp_server(tmp_path / f"ftp-{len(stack)}", **options)
        try:
            server = manager.__enter__()
        except FtpServerUnavailable as exc:
            pytest.fail(str(exc), pytrace=False)
        stack.append(manager)
        return server

    yield start
    for manager in reversed(stack):
        manager.__exit__(None, None, None)


@pytest.fixture
def ftp_server(start_ftp: ServerFactory) -> FtpServer:
    return start_ftp()


def ftp_binding(server: FtpServer, **overrides: Any) -> dict[str, Any]:
    """PASS's PubMed Central binding (its keys and values) pointing at ``server``."""
    binding: dict[str, Any] = {
        "protocol": "ftp",
        "username": server.username,
        "password": server.password,
        "server-fqdn": server.host,
        "server-port": str(server.port),
        "data-type": "binary",
        "transfer-mode": "stream",
        "use-pasv": True,
        "default-directory": "/logs/upload/%s",
        "connect-timeout": 5,
        "read-timeout": 10,
        "connect-backoff": 0.05,
    }
    if server.tls:
        binding.update({"use-tls": True, "ca-file": str(server.ca_file)})
    binding.update(overrides)
    return {k: v for k, v in binding.items() if v is not None}
