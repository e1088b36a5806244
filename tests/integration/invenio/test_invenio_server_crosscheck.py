"""The InvenioRDM test server driven by an independent client, ``inveniordm-py`` from
PyPI (CERN's REST API client): draft, files init/content/commit, publish, search, a new
version and a draft deleted, so that the server is not just a mirror of our transport."""

from __future__ import annotations

import io

import pytest
import requests
from inveniordm_py.client import InvenioAPI
from inveniordm_py.files.metadata import FilesListMetadata, OutgoingStream
from inveniordm_py.records.metadata import DraftMetadata

from tests.support.invenio_server import InvenioServer

BODY = {
    "metadata": {"title": "Cross-checked", "publication_date": "2024-05-01",
                 "resource_type": {"id": "publication-article"},
                 "creators": [{"person_or_org": {"type": "personal", "name": "Lovelace, Ada",
                                                 "family_name": "Lovelace"}}]},
    "files": {"enabled": True}, "access": {"record": "public", "files": "public"},
}


@pytest.fixture
def api(invenio: InvenioServer) -> InvenioAPI:
    return InvenioAPI(invenio.api_url, invenio.token)


def _upload(draft, key: str, data: bytes) -> None:
    draft.files.create(FilesListMetadata([{"key": key}]))
    body = OutgoingStream()
    body._data = io.BytesIO(data)  # its constructor takes keywords only: a dict, form-encoded
    draft.files(key).set_contents(body)
    draft.files(key).commit()


def test_draft_files_publish_and_a_new_version(api: InvenioAPI,
                                               invenio: InvenioServer) -> None:
    draft = api.records.create(data=DraftMetadata(**BODY))
    record_id = draft.data["id"]
    assert draft.data["is_draft"] is True
    _upload(draft, "paper.txt", b"first\n")
    assert [f.data["key"] for f in draft.files] == ["paper.txt"]
    record = draft.publish()
    assert record.data["is_published"] is True
    assert record.data["pids"]["doi"]["identifier"] == f"10.5281/inveniordm.{record_id}"
    assert api.records(record_id).get().data["id"] == record_id

    made = api.records(record_id).new_version()
    new_id = made.data["id"]
    assert new_id != record_id and "publication_date" not in made.data["metadata"]
    # the client keeps the old record's id in the resource it returns; address the new one
    new_draft = api.records(new_id).draft
    new_draft.data = made.data
    new_draft.data["metadata"]["publication_date"] = "2024-06-01"
    new_draft.update()
    _upload(new_draft, "paper.txt", b"second\n")
    newer = new_draft.publish()
    assert newer.data["versions"]["index"] == 2
    stored = invenio.app.records
    assert stored[record_id].files["paper.txt"].data() == b"first\n"
    assert stored[new_id].files["paper.txt"].data() == b"second\n"
    assert stored[new_id].parent == stored[record_id].parent


def test_publish_without_files_names_the_field(api: InvenioAPI) -> None:
    draft = api.records.create(data=DraftMetadata(**BODY))
    with pytest.raises(requests.HTTPError, match="400") as caught:
        draft.publish()
    assert "files.enabled" in caught.value.response.text


def test_search_and_delete_a_draft(api: InvenioAPI, invenio: InvenioServer) -> None:
    draft = api.records.create(data=DraftMetadata(**BODY))
    found = requests.get(f"{invenio.api_url}/user/records",
                         params={"q": 'metadata.title:"Cross-checked"'},
                         headers={"Authorization": f"Bearer {invenio.token}"}, timeout=5)
    assert [h["id"] for h in found.json()["hits"]["hits"]] == [draft.data["id"]]
    assert draft.delete() is True
    assert not invenio.app.records
    with pytest.raises(requests.HTTPError, match="404"):
        api.records(draft.data["id"]).draft.get()


def test_a_wrong_token_is_refused(invenio: InvenioServer) -> None:
    with pytest.raises(requests.HTTPError, match="401"):
        InvenioAPI(invenio.api_url, "wrong").records.create(data=DraftMetadata(**BODY))
