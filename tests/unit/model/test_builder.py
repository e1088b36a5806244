"""The DepositSubmission builder: the metadata blob first, the entities fill the gaps."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from deposit_services.errors import ModelError
from deposit_services.model.builder import build_deposit_submission, normalise_doi
from deposit_services.model.entities import FileRole
from deposit_services.model.graph import Graph
from deposit_services.model.submission import IssnPubType, PersonType

BLOB: dict[str, Any] = {
    "agreements": {"JScholarship": "NON-EXCLUSIVE LICENSE ..."},
    "abstract": "Differential enhancement of luminal growth factor bioactivity.",
    "authors": [{"author": "Tania Marchbank", "orcid": "http://orcid.org/0000-0003-2076-9098"},
                {"author": "Nikki Mandir"}],
    "doi": " https://doi.org/10.1039/c7fo01251a ",
    "Embargo-end-date": "2018-06-30",
    "journal-NLMTA-ID": "Food Funct",
    "journal-title": "Food & Function",
    "journal-title-short": "Food Funct.",
    "issue": "1",
    "issns": [{"issn": "2042-6496", "pubType": "Print"},
              {"issn": "2042-650X", "pubType": "Online"}],
    "publisher": "Royal Society of Chemistry (RSC)",
    "publicationDate": "2018-09-12",
    "title": "Specific protein supplementation",
    "volume": "9",
    "hints": {"collection-tags": ["covid", "nobel"]},
}


def sample_graph(blob: dict[str, Any] | None = BLOB, **submission: Any) -> Graph:
    """Shaped like PASS's sample1.json (ids and relations kept, text shortened)."""
    users = [
        {"@type": "User", "id": "1", "firstName": "Robert", "middleName": "Cure",
         "lastName": "Smith", "displayName": "Bob Smith", "email": "bobsmith@jhu.edu",
         "orcidId": "orcid123", "affiliation": ["Johns Hopkins"]},
        {"@type": "User", "id": "2", "firstName": "Suzanne", "lastName": "Vega",
         "displayName": "Suzanne Vega", "email": "suzannev@jhu.edu"},
        {"@type": "User", "id": "3", "firstName": "John", "lastName": "Doe", "email": "jd@jhu.edu"},
    ]
    sub = {"@type": "Submission", "id": "15", "source": "PASS", "submitted": True,
           "submittedDate": "2017-06-02T00:00:00.000Z", "publication": "9",
           "repositories": ["4"], "submitter": "2", "grants": ["13", "14"],
           "metadata": json.dumps(blob) if blob is not None else None}
    sub.update(submission)
    return Graph.parse([
        *users,
        {"@type": "Repository", "id": "4", "repositoryKey": "PubMed Central"},
        {"@type": "Journal", "id": "8", "journalName": "AAPS PharmSci",
         "issns": ["Print:1111-2222", "issn456"], "nlmta": "AAPS PharmSci"},
        {"@type": "Publication", "id": "9", "title": "This is the first submission",
         "abstract": "This is a great paper!", "doi": "10.1000/pub.9", "pmid": "fedcba",
         "journal": "8", "volume": "123", "issue": "May 2015"},
        {"@type": "Funder", "id": "11", "name": "National Eye Institute",
         "localKey": "johnshopkins.edu:funder:300484"},
        {"@type": "Funder", "id": "12", "name": "International Eye Institute",
         "localKey": "johnshopkins.edu:funder:300293"},
        {"@type": "Grant", "id": "13", "awardNumber": "R01EY026617", "primaryFunder": "11",
         "directFunder": "12", "pi": "2", "coPis": ["3", "1"]},
        {"@type": "Grant", "id": "14", "awardNumber": "R01EY026618", "primaryFunder": "12",
         "directFunder": "11", "pi": "2", "coPis": ["3", "1"]},
        sub,
        {"@type": "File", "id": "19", "name": "test_manuscript", "uri": "file:///f/Sample2.doc",
         "description": "Custodial content", "fileRole": "MANUSCRIPT",
         "mimeType": "application/msword", "submission": "15"},
        {"@type": "File", "id": "17", "name": "test_figure_1", "uri": "file:///f/Figure1.tif",
         "fileRole": "FIGURE", "mimeType": "image/tiff", "submission": "15"},
    ])


def test_the_blob_wins_and_every_field_is_carried() -> None:
    graph = sample_graph()
    content = build_deposit_submission(graph.submission, graph)
    article = content.article
    assert article.title == "Specific protein supplementation"
    assert article.doi == "10.1039/c7fo01251a"
    assert article.embargo_end_date == date(2018, 6, 30)
    assert (article.volume, article.issue, article.pmid) == ("9", "1", "fedcba")
    assert article.publication_date == "2018-09-12"
    journal = content.journal
    assert (journal.title, journal.nlmta, journal.short_title) == (
        "Food & Function", "Food Funct", "Food Funct.")
    assert journal.publisher == "Royal Society of Chemistry (RSC)"
    assert [(i.issn, i.pub_type) for i in journal.issns] == [
        ("2042-6496", IssnPubType.PRINT), ("2042-650X", IssnPubType.ONLINE)]
    assert content.collection_tags == ("covid", "nobel")
    assert content.agreements == {"JScholarship": "NON-EXCLUSIVE LICENSE ..."}


def test_persons_submitter_pi_copis_and_authors() -> None:
    graph = sample_graph()
    content = build_deposit_submission(graph.submission, graph)
    assert content.submitter is not None and content.submitter.email == "suzannev@jhu.edu"
    kinds = [(p.type, p.name) for p in content.persons]
    assert kinds == [
        (PersonType.SUBMITTER, "Suzanne Vega"),
        (PersonType.PI, "Suzanne Vega"),
        (PersonType.COPI, "John Doe"),
        (PersonType.COPI, "Bob Smith"),
        (PersonType.AUTHOR, "Tania Marchbank"),
        (PersonType.AUTHOR, "Nikki Mandir"),
    ], "PIs and co-PIs shared by two grants are listed once"
    assert content.authors[0].orcid == "http://orcid.org/0000-0003-2076-9098"


def test_grants_and_files() -> None:
    graph = sample_graph()
    content = build_deposit_submission(graph.submission, graph)
    assert [(g.award_number, g.funder_name, g.funder_local_key) for g in content.grants] == [
        ("R01EY026617", "National Eye Institute", "johnshopkins.edu:funder:300484"),
        ("R01EY026618", "International Eye Institute", "johnshopkins.edu:funder:300293"),
    ]
    assert content.grants[0].pi is not None and content.grants[0].pi.last_name == "Vega"
    assert [(f.id, f.name, f.role, f.label) for f in content.files] == [
        ("17", "test_figure_1", FileRole.FIGURE, None),
        ("19", "test_manuscript", FileRole.MANUSCRIPT, "Custodial content"),
    ]
    assert content.manuscript is not None and content.manuscript.location == "file:///f/Sample2.doc"


def test_entities_fill_what_the_blob_lacks() -> None:
    graph = sample_graph(blob=None)
    content = build_deposit_submission(graph.submission, graph)
    assert content.article.title == "This is the first submission"
    assert content.article.doi == "10.1000/pub.9"
    assert content.journal.title == "AAPS PharmSci"
    assert [(i.issn, i.pub_type) for i in content.journal.issns] == [
        ("1111-2222", IssnPubType.PRINT), ("issn456", None)]
    assert content.authors == ()


@pytest.mark.parametrize(("blob", "message"), [
    ({"Embargo-end-date": "next June"}, "Embargo-end-date 'next June' is not a date"),
    ({"issns": [{"issn": "1", "pubType": "Carved"}]}, "pubType 'Carved'"),
    ({"authors": [{"orcid": "x"}]}, "authors[0] has no name"),
    ({"hints": ["covid"]}, "metadata hints is not a JSON object"),
])
def test_unusable_metadata_is_a_model_error_that_says_why(blob: dict[str, Any],
                                                          message: str) -> None:
    graph = sample_graph(blob={"title": "t", **blob})
    with pytest.raises(ModelError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_deposit_submission(graph.submission, graph)


def test_a_blob_that_is_not_a_json_object_is_a_model_error() -> None:
    graph = sample_graph(metadata="[1, 2")
    with pytest.raises(ModelError, match="metadata is not JSON"):
        build_deposit_submission(graph.submission, graph)


@pytest.mark.parametrize(("raw", "doi"), [
    ("10.1039/c7fo01251a", "10.1039/c7fo01251a"),
    ("  doi:10.1039/X ", "10.1039/X"),
    ("https://dx.doi.org/10.12345/a.b", "10.12345/a.b"),
    ("", None),
    ("abcdef", "abcdef"),  # not a DOI: kept as given, the packages decide (and warn)
])
def test_doi_normalisation(raw: str, doi: str | None) -> None:
    assert normalise_doi(raw) == doi
