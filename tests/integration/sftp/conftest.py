"""Fixtures for the SFTP tests: a real OpenSSH sshd on loopback, a package, bindings.

One sshd serves the whole module (it is stateless between tests: each test uploads
into its own directory). Missing sshd or tools FAIL the tests with the reason. The
password account needs root (see tests/support/sshd.py): without root the key tests
run and the password tests FAIL, saying so.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.sshd import PasswordAccount, Sshd, SshdUnavailable, running_sshd


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    try:
        with running_sshd(tmp_path_factory.mktemp("sshd"),
                          password_user=os.geteuid() == 0) as server:
            yield server
    except SshdUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def key_binding(sshd: Sshd, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """``key_binding(**overrides)``: a key-auth binding for ``sshd``, uploads under tmp_path."""

    def make(**overrides: Any) -> dict[str, Any]:
        binding: dict[str, Any] = {
            "protocol": "sftp",
            "server-fqdn": sshd.host,
            "server-port": str(sshd.port),
            "username": sshd.user,
            "private-key": str(sshd.client_key),
            "known-hosts": str(sshd.known_hosts),
            "default-directory": str(tmp_path / "inbox" / "%s"),
            "connect-timeout": 5,
            "read-timeout": 10,
        }
        binding.update(overrides)
        return {k: v for k, v in binding.items() if v is not None}

    return make


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def password_account(sshd: Sshd) -> PasswordAccount:
    """The throwaway password account; FAILS the test (never skips) when there is none."""
    if sshd.password_account is None:
        pytest.fail("SFTP password tests need root to create a throwaway system account "
                    "(sshd checks passwords against the system); run the tests as root, as CI "
                    "does", pytrace=False)
    return sshd.password_account
