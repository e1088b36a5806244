"""Our entities as pass-core's JSON:API resources and back (pure mapping; the adapter
is tested over HTTP against the test pass-core)."""

from __future__ import annotations

from datetime import UTC, datetime

from deposit_services.model.entities import (
    AggregatedDepositStatus,
    Deposit,
    DepositStatus,
    File,
    FileRole,
    Grant,
    Submission,
)
from deposit_services.store.passcore.jsonapi import file_url, to_entity, to_resource
from deposit_services.store.passcore.records import rsql

BASE = "https://pass.example.edu"


def test_a_submission_goes_out_with_relationships_and_pass_core_enums() -> None:
    submission = Submission(
        id="5", submitted=True, submitted_date=datetime(2026, 11, 1, 10, tzinfo=UTC),
        aggregated_deposit_status=AggregatedDepositStatus.IN_PROGRESS, publication="7",
        repositories=["1", "2"], submitter=None, status_message="ours, not pass-core's")
    submission.version = 3
    resource = to_resource(submission, with_id=True)
    assert resource["type"] == "submission" and resource["id"] == "5"
    attributes = resource["attributes"]
    assert attributes["aggregatedDepositStatus"] == "in-progress"
    assert attributes["version"] == 3
    assert attributes["submittedDate"] == "2026-11-01T10:00:00.000Z"  # pass-core's format
    assert "statusMessage" not in attributes  # pass-core would refuse it
    assert attributes["submissionStatus"] is None  # unset: sent as null (a PATCH clears it)
    relationships = resource["relationships"]
    assert relationships["publication"] == {"data": {"type": "publication", "id": "7"}}
    assert relationships["repositories"] == {"data": [{"type": "repository", "id": "1"},
                                                      {"type": "repository", "id": "2"}]}
    assert relationships["submitter"] == {"data": None}
    assert "id" not in to_resource(submission, with_id=False)
    assert "version" not in to_resource(submission, with_id=False)["attributes"]


def test_a_resource_comes_in_as_our_entity_with_its_version() -> None:
    deposit = to_entity({
        "type": "deposit", "id": 31,
        "attributes": {"depositStatus": "accepted", "depositStatusRef": "ref", "version": 4,
                       "somethingNewInPassCore": {"kept": True}},
        "relationships": {"submission": {"data": {"type": "submission", "id": "5"}},
                          "repository": {"data": {"type": "repository", "id": "1"}},
                          "repositoryCopy": {"data": None}},
    }, BASE)
    assert isinstance(deposit, Deposit)
    assert (deposit.id, deposit.version, deposit.deposit_status) == ("31", 4,
                                                                     DepositStatus.ACCEPTED)
    assert (deposit.submission, deposit.repository, deposit.repository_copy) == ("5", "1", None)
    assert deposit.to_json()["somethingNewInPassCore"] == {"kept": True}


def test_to_many_relationships_and_file_uris_on_our_base_url() -> None:
    grant = to_entity({"type": "grant", "id": "9", "attributes": {"awardNumber": "R01"},
                       "relationships": {"coPis": {"data": [{"type": "user", "id": "3"},
                                                            {"type": "user", "id": "4"}]}}},
                      BASE)
    assert isinstance(grant, Grant) and grant.co_pis == ["3", "4"]
    file = to_entity({"type": "file", "id": "2", "attributes": {
        "name": "m.pdf", "fileRole": "manuscript",
        "uri": "http://pass-core:8080/file/0a1b/m.pdf"}}, BASE)
    assert isinstance(file, File) and file.file_role is FileRole.MANUSCRIPT
    assert file.uri == f"{BASE}/file/0a1b/m.pdf"
    assert file_url("/file/0a1b/m.pdf", BASE + "/") == f"{BASE}/file/0a1b/m.pdf"
    assert file_url("https://elsewhere/x.pdf", BASE) == "https://elsewhere/x.pdf"


def test_find_criteria_as_rsql() -> None:
    assert rsql(Deposit, {"deposit_status": DepositStatus.RETRY}) == 'depositStatus=="retry"'
    assert rsql(Deposit, {"submission": "5", "deposit_status": None}) == (
        'depositStatus=isnull=true;submission.id=="5"')
    assert rsql(File, {"submission": 'a"b'}) == 'submission.id=="a\\"b"'


def test_publication_abstract_is_named_as_pass_core_names_it() -> None:
    from deposit_services.model.entities import Journal, Publication

    publication = Publication(id="3", title="T", abstract="A.", journal="4")
    attributes = to_resource(publication, with_id=True)["attributes"]
    assert attributes["publicationAbstract"] == "A." and "abstract" not in attributes
    back = to_entity({"type": "publication", "id": "3",
                      "attributes": {"publicationAbstract": "B."}}, BASE)
    assert isinstance(back, Publication) and back.abstract == "B."
    journal = to_resource(Journal(id="4", journal_name="J", publisher="ours only"),
                          with_id=True)["attributes"]
    assert "publisher" not in journal and journal["journalName"] == "J"
