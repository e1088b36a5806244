"""Fixtures for the SWORD 1.3 tests: the MyCoRe-like test server and a METS package."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deposit_services.assemblers.base import Package
from deposit_services.assemblers.mets import DSpaceMetsAssembler
from deposit_services.model.submission import DepositSubmission
from deposit_services.transports.base import TransportContext
from deposit_services.transports.sword.v1 import Sword1Transport
from tests.support.packages import PACKAGE_TIME, sample_submission
from tests.support.sword1_server import Sword1Server, running_sword1_server


@pytest.fixture
def sword1_server() -> Iterator[Sword1Server]:
    with running_sword1_server() as server:
        yield server


@pytest.fixture
def submission(tmp_path: Path) -> DepositSubmission:
    return sample_submission(tmp_path / "files", supplement_bytes=64 * 1024)


@pytest.fixture
def mets_package(submission: DepositSubmission, tmp_path: Path) -> Package:
    return DSpaceMetsAssembler({"archive": "ZIP"}).assemble(submission, tmp_path, PACKAGE_TIME)


@pytest.fixture
def make_transport() -> Iterator[Callable[..., Sword1Transport]]:
    made: list[Sword1Transport] = []

    def make(binding: dict[str, Any]) -> Sword1Transport:
        transport = Sword1Transport(binding, TransportContext(user_agent="ds-test/1"))
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()
