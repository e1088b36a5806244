"""Writing: POST 201, PATCH 200 with the document, DELETE 204, optimistic locking (409)
on Submission and Deposit, and Elide's errors for bad bodies and values."""

from __future__ import annotations

import requests

from tests.integration.passcore_server.conftest import Ids, patch, post
from tests.support.passcore import PassCore


def test_post_assigns_integer_ids_from_one_sequence(client: requests.Session,
                                                    passcore: PassCore) -> None:
    first = post(client, passcore, "repository", attributes={"name": "A"})
    assert first.status_code == 201
    assert first.headers["Content-Type"] == "application/vnd.api+json"
    second = post(client, passcore, "submission",
                  attributes={"submitted": False, "source": "pass"},
                  relationships={"repositories": ("repository", [first.json()["data"]["id"]])},
                  id="client-chosen")  # a client id is not kept: the id is generated
    data = second.json()["data"]
    assert int(data["id"]) == int(first.json()["data"]["id"]) + 1  # one hibernate_sequence
    assert data["attributes"]["version"] == 0
    assert data["attributes"]["aggregatedDepositStatus"] is None
    assert data["relationships"]["repositories"]["data"] == [
        {"type": "repository", "id": first.json()["data"]["id"]}
    ]
    assert passcore.resource("submission", data["id"]) == data


def test_patch_answers_200_with_the_document_and_bumps_the_version(
        client: requests.Session, passcore: PassCore, ids: Ids) -> None:
    sub = ids[("Submission", "s1")]
    response = patch(client, passcore, "submission", sub,
                     attributes={"aggregatedDepositStatus": "in-progress", "version": 0})
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["attributes"]["aggregatedDepositStatus"] == "in-progress"
    assert data["attributes"]["version"] == 1
    assert data["attributes"]["source"] == "pass"  # fields not sent are kept
    again = patch(client, passcore, "submission", sub,
                  attributes={"aggregatedDepositStatus": "accepted", "version": 1})
    assert again.json()["data"]["attributes"]["version"] == 2


def test_stale_or_missing_version_is_409(client: requests.Session, passcore: PassCore,
                                         ids: Ids) -> None:
    sub = ids[("Submission", "s1")]
    assert patch(client, passcore, "submission", sub,
                 attributes={"submitterName": "A", "version": 0}).status_code == 200
    stale = patch(client, passcore, "submission", sub,
                  attributes={"submitterName": "B", "version": 0})
    assert stale.status_code == 409
    assert stale.json() == {"errors": [{"detail": (
        f"Optimistic lock check failed for Submission [ID={sub}]. "
        "Request version: 1, Stored version: 2"
    )}]}
    missing = patch(client, passcore, "submission", sub, attributes={"submitterName": "B"})
    assert missing.status_code == 409
    assert missing.json()["errors"][0]["detail"].endswith("Request version: -1, Stored version: 2")
    assert passcore.resource("submission", sub)["attributes"]["submitterName"] == "A"
    # pass-core only refuses a version lower than the stored one
    ahead = patch(client, passcore, "submission", sub,
                  attributes={"submitterName": "C", "version": 7})
    assert ahead.status_code == 200
    assert ahead.json()["data"]["attributes"]["version"] == 2


def test_deposits_are_versioned_too_and_others_are_not(client: requests.Session,
                                                       passcore: PassCore, ids: Ids) -> None:
    deposit = post(client, passcore, "deposit", attributes={"depositStatus": "submitted"},
                   relationships={"submission": ("submission", ids[("Submission", "s1")])})
    dep = deposit.json()["data"]["id"]
    assert patch(client, passcore, "deposit", dep,
                 attributes={"depositStatus": "accepted"}).status_code == 409
    copy = post(client, passcore, "repositoryCopy", attributes={"copyStatus": "in-progress"})
    copy_id = copy.json()["data"]["id"]
    assert "version" not in copy.json()["data"]["attributes"]
    updated = patch(client, passcore, "repositoryCopy", copy_id,
                    attributes={"copyStatus": "complete", "externalIds": ["PMC9"],
                                "accessUrl": "https://example.org/pmc9"})
    assert updated.status_code == 200
    unknown = patch(client, passcore, "repositoryCopy", copy_id, attributes={"version": 0})
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["detail"] == "Unknown attribute version in repositoryCopy"


def test_a_patch_that_changes_nothing_writes_nothing(client: requests.Session,
                                                     passcore: PassCore, ids: Ids) -> None:
    sub = ids[("Submission", "s1")]
    same = patch(client, passcore, "submission", sub, attributes={"source": "pass"})
    assert same.status_code == 200  # no version given, but nothing changed: no check
    assert same.json()["data"]["attributes"]["version"] == 0
    reordered = patch(client, passcore, "submission", sub, attributes={"version": 0},
                      relationships={"repositories": ("repository", [ids[("Repository",
                                                                             "repo-archive")]])})
    assert reordered.json()["data"]["attributes"]["version"] == 0


def test_relationships_are_replaced_and_checked(client: requests.Session, passcore: PassCore,
                                                ids: Ids) -> None:
    sub = ids[("Submission", "s1")]
    other = post(client, passcore, "repository", attributes={"name": "B"}).json()["data"]["id"]
    response = patch(client, passcore, "submission", sub, attributes={"version": 0},
                     relationships={"repositories": ("repository", [other]),
                                    "publication": ("publication", None)})
    rels = response.json()["data"]["relationships"]
    assert rels["repositories"]["data"] == [{"type": "repository", "id": other}]
    assert rels["publication"]["data"] is None
    missing = patch(client, passcore, "submission", sub, attributes={"version": 1},
                    relationships={"repositories": ("repository", ["999999"])})
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["detail"] == "Unknown identifier 999999 for repository"


def test_bad_values_and_bodies(client: requests.Session, passcore: PassCore, ids: Ids) -> None:
    sub = ids[("Submission", "s1")]
    cases = [
        ({"aggregatedDepositStatus": "NOT_STARTED"}, 400, "Invalid value: NOT_STARTED"),
        ({"submitted": "maybe"}, 400, "Invalid value: maybe"),
        ({"submitterEmail": "not a uri"}, 400, "Invalid value: Invalid URI not a uri"),
        ({"nothing": 1}, 404, "Unknown attribute nothing in submission"),
        ({"submittedDate": "2026-01-01T00:00:00Z"}, 500, None),  # not yyyy-MM-dd'T'HH:mm:ss.SSSX
    ]
    for attributes, status, detail in cases:
        response = post(client, passcore, "submission", attributes=attributes)
        assert response.status_code == status, attributes
        if detail:
            assert response.json()["errors"][0]["detail"] == detail
    good = post(client, passcore, "submission",
                attributes={"submittedDate": "2026-01-01T02:00:00.000+0200"})
    assert good.json()["data"]["attributes"]["submittedDate"] == "2026-01-01T00:00:00.000Z"
    url = f"{passcore.data_url}/submission/{sub}"
    headers = {"Content-Type": "application/vnd.api+json"}
    wrong_id = client.patch(url, json={"data": {"type": "submission", "id": "1"}}, headers=headers)
    assert wrong_id.status_code == 400
    assert "does not match requested id" in wrong_id.json()["errors"][0]["detail"]
    assert client.patch(url, json={"data": None}, headers=headers).status_code == 400
    wrong_type = client.post(f"{passcore.data_url}/submission",
                             json={"data": {"type": "deposit"}}, headers=headers)
    assert wrong_type.status_code == 400
    unknown_type = client.post(f"{passcore.data_url}/submission",
                               json={"data": {"type": "thing"}}, headers=headers)
    assert unknown_type.json()["errors"][0]["detail"] == "Unknown entity type: thing"


def test_delete(client: requests.Session, passcore: PassCore, ids: Ids) -> None:
    file_id = ids[("File", "s1-file-1")]
    deleted = client.delete(f"{passcore.data_url}/file/{file_id}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert client.get(f"{passcore.data_url}/file/{file_id}").status_code == 404
    # still referred to (by the other File): the flush fails, Elide answers 423
    referenced = client.delete(f"{passcore.data_url}/submission/{ids[('Submission', 's1')]}")
    assert referenced.status_code == 423
    assert "foreign key" in referenced.json()["errors"][0]["detail"]
    assert client.delete(f"{passcore.data_url}/file/{file_id}").status_code == 404
