"""The server judged by parties that owe nothing to it: the ``jsonapi-client`` package
(a generic JSON:API client from PyPI) reading and writing through it, and every kind of
document it answers checked against a JSON Schema of JSON:API 1.0 with ``jsonschema``."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.integration.passcore_server.conftest import TOKEN, Ids, patch, post
from tests.integration.passcore_server.jsonapi_schema import SCHEMA
from tests.support.passcore import JSON_API, TYPES, PassCore

# untyped packages (no stubs): imported as modules so mypy needs no per-module override
jsonschema = importlib.import_module("jsonschema")
jsonapi_client = importlib.import_module("jsonapi_client")
DocumentError = importlib.import_module("jsonapi_client.exceptions").DocumentError
Inclusion, Modifier, Session = (jsonapi_client.Inclusion, jsonapi_client.Modifier,
                                jsonapi_client.Session)


def _client_schema() -> dict[str, Any]:
    """jsonapi-client's model description, from pass-core's model."""
    models: dict[str, Any] = {}
    for etype in TYPES.values():
        properties: dict[str, Any] = {name: {} for name in etype.attrs}
        for name, rel in etype.rels.items():
            properties[name] = {"relation": "to-many" if rel.to_many else "to-one",
                                "resource": [rel.target]}
        models[etype.name] = {"properties": properties}
    return models


@pytest.fixture
def session(passcore: PassCore) -> Iterator[Any]:
    kwargs = {"auth": passcore.auth, "headers": {"X-XSRF-TOKEN": TOKEN},
              "cookies": {"XSRF-TOKEN": TOKEN}}
    jsonapi = Session(passcore.data_url, schema=_client_schema(), request_kwargs=kwargs)
    yield jsonapi
    jsonapi.close()


def test_jsonapi_client_reads_resources_relationships_and_includes(
        session: Any, passcore: PassCore, ids: Ids) -> None:
    sub_id = ids[("Submission", "s1")]
    submission = session.get("submission", sub_id).resource
    assert (submission.type, submission.id) == ("submission", sub_id)
    assert submission.aggregatedDepositStatus == "not-started"
    assert [r.repositoryKey for r in submission.repositories] == ["archive"]
    assert submission.submitter.firstName == "Ada"
    found = session.get("file", Modifier(f"filter=submission.id=={sub_id}")
                        + Inclusion("submission.publication"))
    assert sorted(f.name for f in found.resources) == ["figure 1.png", "manuscript.txt"]
    assert found.resources[0].submission.publication.title == "Paper s1"


def test_jsonapi_client_writes_and_meets_the_version_check(session: Any,
                                                           passcore: PassCore,
                                                           ids: Ids) -> None:
    deposit = session.create_and_commit(
        "deposit", {"depositStatus": "submitted", "submission": ids[("Submission", "s1")]}
    )
    assert deposit.id and deposit.version == 0
    deposit.depositStatus = "accepted"
    with pytest.raises(DocumentError, match="409"):  # a client sending only changed fields
        deposit.commit()
    deposit._attributes.mark_dirty("version")  # send the version it read
    deposit.commit()
    assert deposit.version == 1  # read back from the 200 document
    stored = passcore.resource("deposit", deposit.id)["attributes"]
    assert (stored["depositStatus"], stored["version"]) == ("accepted", 1)


def _validate(response: requests.Response) -> dict[str, Any]:
    assert response.headers["Content-Type"] == JSON_API, response.text
    document: dict[str, Any] = response.json()
    jsonschema.validate(document, SCHEMA)
    return document


def test_every_document_shape_is_json_api(client: requests.Session, passcore: PassCore,
                                          ids: Ids) -> None:
    sub = ids[("Submission", "s1")]
    data = passcore.data_url
    for url, params in [
        (f"{data}/submission/{sub}", {}),
        (f"{data}/submission/{sub}", {"include": "repositories,publication.journal,files"}),
        (f"{data}/submission", {"page[limit]": "1", "page[totals]": "", "include": "submitter"}),
        (f"{data}/file", {"filter": f"submission.id=={sub}", "fields[file]": "name,submission"}),
        (f"{data}/submission/{sub}/repositories", {}),
        (f"{data}/submission/{sub}/relationships/repositories", {}),
        (f"{data}/submission/{sub}/publication", {}),
        (f"{data}/deposit", {}),
    ]:
        response = client.get(url, params=params)
        if response.status_code == 200:
            _validate(response)
        else:  # "files" is no relationship of submission: an error document
            assert response.status_code == 400
            assert _validate(response)["errors"]
    created = post(client, passcore, "deposit", attributes={"depositStatus": "submitted"})
    _validate(created)
    updated = patch(client, passcore, "deposit", created.json()["data"]["id"],
                    attributes={"depositStatus": "failed", "version": 0})
    _validate(updated)
    for error in (
        patch(client, passcore, "deposit", created.json()["data"]["id"],
              attributes={"depositStatus": "accepted", "version": 0}),  # 409
        client.get(f"{data}/submission/0"),  # 404
        client.get(f"{data}/submission", params={"filter": "x==<script>"}),  # 400
    ):
        assert error.status_code >= 400
        document = _validate(error)
        assert "<" not in document["errors"][0]["detail"]  # Elide HTML-encodes details
