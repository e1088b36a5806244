"""Fixtures of the NIHMS mail tests: one Dovecot per module, a fresh account per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dovecot import Dovecot, DovecotUnavailable, running_dovecot

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "nihms_mail"


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    try:
        with running_dovecot() as server:
            yield server
    except DovecotUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def account(dovecot: Dovecot) -> tuple[str, str]:
    """A new mail account (user, password) of this test alone."""
    user, password = f"pass-{uuid.uuid4().hex[:8]}@example.edu", uuid.uuid4().hex
    dovecot.add_account(user, password)
    return user, password


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")
