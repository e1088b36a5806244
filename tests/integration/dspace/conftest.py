"""Fixtures for the DSpace tests: a live DSpace REST test server, a package, a transport."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from deposit_services.assemblers.base import Package
from deposit_services.model.submission import (
    ArticleMetadata,
    DepositSubmission,
    JournalMetadata,
    Person,
    PersonType,
)
from deposit_services.transports.base import TransportContext
from deposit_services.transports.dspace.transport import DSpaceTransport
from tests.support.dspace_server import DSpaceServer, running_dspace_server
from tests.support.packages import sample_package, sample_submission

HANDLE = "123456789/2"


@pytest.fixture
def dspace() -> Iterator[DSpaceServer]:
    with running_dspace_server(collections={HANDLE: "c0ffee00-0000-4000-8000-000000000002"}
                               ) as server:
        yield server


def dspace_binding(server: DSpaceServer, **overrides: Any) -> dict[str, Any]:
    """A binding with PASS's setting names, pointing at ``server``."""
    binding: dict[str, Any] = {
        "protocol": "DSpace",
        "DSPACE_API_URL": server.api_url,
        "DSPACE_WEBSITE_URL": server.website_url,
        "DSPACE_USER": server.user,
        "DSPACE_PASSWORD": server.password,
        "DSPACE_COLLECTION_HANDLE": HANDLE,
        "access-section": "itemAccessConditions",
        "connect-timeout": 2,
        "read-timeout": 10,
    }
    binding.update(overrides)
    return binding


@pytest.fixture
def binding(dspace: DSpaceServer) -> dict[str, Any]:
    return dspace_binding(dspace)


@pytest.fixture
def make_transport() -> Iterator[Callable[[dict[str, Any]], DSpaceTransport]]:
    made: list[DSpaceTransport] = []

    def make(binding: dict[str, Any]) -> DSpaceTransport:
        transport = DSpaceTransport(binding, TransportContext(user_agent="ds-test/1.0"))
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()


@pytest.fixture
def submission(tmp_path: Path) -> DepositSubmission:
    base = sample_submission(tmp_path / "files", supplement_bytes=256 * 1024)
    return DepositSubmission(
        id=base.id,
        article=ArticleMetadata(title="Two stupendous minds", doi="10.1234/abc",
                                abstract="Minds meet.", publication_date="2024-05-01",
                                volume="7", issue="2", embargo_end_date=date(2030, 1, 1)),
        journal=JournalMetadata(title="J. Minds", publisher="Mind Press"),
        persons=(Person(PersonType.AUTHOR, first_name="Ada", last_name="Lovelace"),
                 Person(PersonType.AUTHOR, full_name="Charles Babbage", first_name="Charles",
                        last_name="Babbage"),
                 Person(PersonType.SUBMITTER, full_name="Sam Submitter")),
        files=base.files,
    )


@pytest.fixture
def package(submission: DepositSubmission, tmp_path: Path) -> Package:
    work = tmp_path / "work"
    work.mkdir()
    return sample_package(submission, work)
