"""Fixtures for the InvenioRDM tests: a live test server, a submission, its package,
transports made (and closed) on demand."""

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
    GrantInfo,
    JournalMetadata,
    Person,
    PersonType,
)
from deposit_services.transports.base import Transport, TransportContext, create_transport
from tests.support.clock import FakeClock
from tests.support.invenio_server import InvenioServer, running_invenio_server
from tests.support.packages import sample_package, sample_submission


@pytest.fixture
def invenio(tmp_path: Path) -> Iterator[InvenioServer]:
    store = tmp_path / "invenio-files"
    store.mkdir()
    with running_invenio_server(directory=store) as server:
        yield server


def rdm_binding(server: InvenioServer, **overrides: Any) -> dict[str, Any]:
    """A binding with PASS's setting names, pointing at ``server``."""
    binding: dict[str, Any] = {
        "protocol": "invenioRdm",
        "INVENIORDM_API_BASE_URL": server.api_url,
        "INVENIORDM_API_TOKEN": server.token,
        "connect-timeout": 2,
        "read-timeout": 10,
    }
    binding.update(overrides)
    return binding


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_transport(clock: FakeClock) -> Iterator[Callable[[dict[str, Any]], Transport]]:
    made: list[Transport] = []

    def make(binding: dict[str, Any]) -> Transport:
        transport = create_transport(binding, TransportContext(user_agent="rdm-test/1.0",
                                                               clock=clock))
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
        persons=(Person(PersonType.AUTHOR, first_name="Ada", last_name="Lovelace",
                        orcid="0000-0002-1825-0097", affiliation=("Analytical Society",)),
                 Person(PersonType.AUTHOR, full_name="Charles Babbage", first_name="Charles",
                        last_name="Babbage"),
                 Person(PersonType.SUBMITTER, full_name="Sam Submitter")),
        grants=(GrantInfo(award_number="R01-123", funder_name="National Institutes of Health"),),
        files=base.files,
    )


@pytest.fixture
def package(submission: DepositSubmission, tmp_path: Path) -> Package:
    work = tmp_path / "work"
    work.mkdir()
    return sample_package(submission, work)


def submitted_files(submission: DepositSubmission) -> dict[str, bytes]:
    """What each of the submission's files holds, by name."""
    return {f.name: Path(f.location).read_bytes() for f in submission.files}
