"""Fixtures for the assembler tests: submissions whose files are small real files."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from deposit_services.model.builder import build_deposit_submission
from deposit_services.model.entities import FileRole
from deposit_services.model.graph import Graph, resolve_file_uris
from deposit_services.model.submission import (
    ArticleMetadata,
    DepositSubmission,
    GrantInfo,
    Issn,
    IssnPubType,
    JournalMetadata,
    Person,
    PersonType,
)
from tests.unit.assemblers.helpers import SAMPLE1, STAMP, deposit_file, write


@pytest.fixture
def files_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    return folder


@pytest.fixture
def rich(files_dir: Path) -> DepositSubmission:
    """A submission with every kind of metadata and a file of each role (one over 1 MB,
    so several chunks are read), labels missing or repeated, one label with a tab."""
    pi = Person(PersonType.PI, first_name="Grace", last_name="Hopper",
                email="grace@example.org")
    files = (
        deposit_file(write(files_dir, "manuscript.pdf", b"%PDF-1.4\n" + b"m" * 5000),
                     FileRole.MANUSCRIPT, mime="application/pdf"),
        deposit_file(write(files_dir, "fig1.png", b"\x89PNG\r\n\x1a\n" + os.urandom(3000)),
                     FileRole.FIGURE, label=None),
        deposit_file(write(files_dir, "fig2.png", b"\x89PNG\r\n\x1a\n" + os.urandom(2000)),
                     FileRole.FIGURE, label=None),
        deposit_file(write(files_dir, "table.csv", b"a,b\n1,2\n"), FileRole.TABLE,
                     label="Table\tof results", uri=False),
        deposit_file(write(files_dir, "data.bin", os.urandom(1024 * 1024 + 17)),
                     FileRole.SUPPLEMENTAL, label="Raw data"),
        deposit_file(write(files_dir, "more.bin", b"more data" * 100), FileRole.SUPPLEMENTAL,
                     label="Raw data"),
    )
    return DepositSubmission(
        id="sub-1",
        submitted_date=STAMP,
        article=ArticleMetadata(title="Two stupendous minds", abstract="An abstract.",
                                doi="10.1234/abc.5", pmid="123456", volume="9", issue="1",
                                publication_date="2024-01-15",
                                embargo_end_date=date(2024, 6, 30)),
        journal=JournalMetadata(title="Journal of Tests & Trials", nlmta="J Tests",
                                publisher="Test Press",
                                issns=(Issn("1234-5678", IssnPubType.PRINT),
                                       Issn("8765-4321", IssnPubType.ONLINE),
                                       Issn("0000-0000", None))),
        persons=(
            Person(PersonType.SUBMITTER, first_name="Ada", last_name="Lovelace",
                   email="ada@example.org"),
            pi,
            Person(PersonType.AUTHOR, full_name="Stephen Hawking"),
            Person(PersonType.AUTHOR, full_name="Ada Lovelace"),
            Person(PersonType.AUTHOR, full_name="Kip Thorne"),
            Person(PersonType.AUTHOR, full_name="Roger Penrose"),
        ),
        grants=(
            GrantInfo("R01EY1", "National Eye Institute", "funder:nei", pi),
            GrantInfo("HHMI-7", "HHMI", "funder:hhmi", pi),
            GrantInfo("X-1", "Other Foundation", "funder:other", pi),
        ),
        files=files,
    )


@pytest.fixture
def sample1() -> DepositSubmission:
    """The DepositSubmission of our copy of PASS's sample1 graph and its files."""
    graph = resolve_file_uris(Graph.load(SAMPLE1), SAMPLE1.parent)
    return build_deposit_submission(graph.submission, graph)
