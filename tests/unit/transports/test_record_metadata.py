"""The record metadata shared by DSpace, InvenioRDM and Zenodo, and the marker that
finds an earlier attempt's record again."""

from __future__ import annotations

from datetime import UTC, date, datetime

from deposit_services.model.submission import (
    ArticleMetadata,
    DepositSubmission,
    GrantInfo,
    JournalMetadata,
    Person,
    PersonType,
)
from deposit_services.transports.invenio.rdm import rdm_record
from deposit_services.transports.invenio.zenodo import ZenodoBinding, zenodo_metadata
from deposit_services.transports.metadata import (
    citation,
    marked_urn,
    marker_urn,
    record_metadata,
    urn_suffix,
)

SUBMISSION = DepositSubmission(
    id="sub-1",
    submitted_date=datetime(2026, 3, 4, 5, 6, tzinfo=UTC),
    article=ArticleMetadata(title="T", abstract="A", doi="10.1/x", volume="3", issue="4",
                            embargo_end_date=date(2026, 6, 1)),
    journal=JournalMetadata(title="J", publisher="P"),
    persons=(Person(PersonType.AUTHOR, first_name="Ada", middle_name="K", last_name="Lovelace"),
             Person(PersonType.PI, full_name="Grace Hopper"),
             Person(PersonType.SUBMITTER, full_name="Sam")),
    grants=(GrantInfo(award_number="R01", funder_name="NIH"),
            GrantInfo(funder_local_key="johnshopkins.edu:funder:1"),
            GrantInfo(award_number="orphan")),
)


def test_everyone_but_the_submitter_is_a_creator_with_reversed_names() -> None:
    meta = record_metadata(SUBMISSION)
    assert [(c.name, c.given, c.family) for c in meta.creators] == [
        ("Lovelace, Ada K", "Ada K", "Lovelace"), ("Grace Hopper", None, None)]


def test_funding_needs_a_funder() -> None:
    funding = record_metadata(SUBMISSION).funding
    assert [(f.funder, f.award) for f in funding] == [
        ("NIH", "R01"), ("johnshopkins.edu:funder:1", None)]


def test_citation_is_pass_style() -> None:
    assert citation(SUBMISSION) == 'Lovelace, Ada K. "T." J. 3 (4). 10.1/x.'


def test_marker_urn_is_quoted_and_found_again_by_its_suffix() -> None:
    urn = marker_urn("sub 1", "a b/ü.zip")
    assert urn == "urn:deposit-services:sub%201:a%20b%2F%C3%BC.zip"
    assert urn.endswith(urn_suffix("a b/ü.zip"))
    record = {"metadata": {"identifiers": [{"identifier": "10.1/x"}, {"identifier": urn}]}}
    assert marked_urn(record, "identifiers", urn_suffix("a b/ü.zip")) == urn
    assert marked_urn(record, "identifiers", urn_suffix("other.zip")) is None
    for odd in ({}, {"metadata": None}, {"metadata": {"identifiers": "x"}},
                {"metadata": {"identifiers": [None, 3]}}):
        assert marked_urn(odd, "identifiers", urn_suffix("a")) is None


def test_publication_date_falls_back_to_the_submitted_date() -> None:
    body = rdm_record(SUBMISSION, "urn:x", "publication-article", date(2026, 1, 1))
    assert body["metadata"]["publication_date"] == "2026-03-04"
    assert body["access"]["embargo"]["until"] == "2026-06-01"
    after = rdm_record(SUBMISSION, "urn:x", "publication-article", date(2026, 7, 1))
    assert after["access"] == {"record": "public", "files": "public"}  # embargo over


def test_zenodo_embargo_only_while_it_lasts() -> None:
    binding = ZenodoBinding.model_validate({"protocol": "zenodo", "api-url": "https://z/api",
                                            "access-token": "t"})
    during = zenodo_metadata(SUBMISSION, "urn:x", binding, date(2026, 1, 1))
    assert (during["access_right"], during["embargo_date"]) == ("embargoed", "2026-06-01")
    after = zenodo_metadata(SUBMISSION, "urn:x", binding, date(2026, 7, 1))
    assert after["access_right"] == "open" and "embargo_date" not in after
    assert during["notes"] == "Funding: NIH R01; johnshopkins.edu:funder:1"
