"""The DSpace REST test server cross-checked with an independent client: the DSpace
community's dspace-rest-client (PyPI), run from its own venv against the server.

If the server drifted from DSpace's contract in a way our transport shares, our own
transport tests would not notice; a client written by others against real DSpace does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.dspace.conftest import HANDLE
from tests.support.dspace_client_venv import ClientDriver
from tests.support.dspace_server import DSpaceServer, Item

COLLECTION = "c0ffee00-0000-4000-8000-000000000002"
SECTION = "/sections/traditionalpageone"


@pytest.fixture
def client(dspace: DSpaceServer, tmp_path: Path) -> Iterator[ClientDriver]:
    driver = ClientDriver(dspace.api_url, dspace.user, dspace.password, tmp_path)
    yield driver
    driver.close()


def _workspace_item(client: ClientDriver, tmp_path: Path) -> dict[str, Any]:
    data = b"%PDF-1.4 manuscript " + bytes(range(256)) * 64
    (tmp_path / "manuscript.pdf").write_bytes(data)
    answer = client.call("create", collection=COLLECTION,
                         files=[[str(tmp_path / "manuscript.pdf"), "application/pdf"]])
    assert answer["status"] == 201, answer
    workspace: dict[str, Any] = answer["body"]["_embedded"]["workspaceitems"][0]
    upload = workspace["sections"]["upload"]["files"][0]
    assert upload["checkSum"]["value"] == hashlib.md5(data).hexdigest()
    return workspace


def test_deposit_sequence_with_the_independent_client(client, dspace, tmp_path):
    # Login without a CSRF token first: the server answers 403 with a token, the client
    # takes it and logs in again, then reads /authn/status.
    assert client.call("login") is True
    assert dspace.app.logins == 1
    assert ("GET", "/server/api/authn/status") in dspace.app.calls

    found = client.call("collection", handle=HANDLE)
    assert found == [{"uuid": COLLECTION, "handle": HANDLE, "name": f"Collection {HANDLE}"}]

    workspace = _workspace_item(client, tmp_path)
    ws_id = workspace["id"]
    for path, value in ((f"{SECTION}/dc.title", [{"value": "Two stupendous minds"}]),
                        (f"{SECTION}/dc.date.issued", [{"value": "2024-05-01"}]),
                        ("/sections/license/granted", "true")):
        answer = client.call("patch", id=ws_id, path=path, value=value)
        assert answer["status"] == 200, answer

    by_id = client.call("workspace", id=ws_id)
    assert by_id["sections"]["traditionalpageone"]["dc.title"][0]["value"] == \
        "Two stupendous minds"
    assert by_id["sections"]["license"]["granted"] is True
    item_uuid = workspace["_embedded"]["item"]["uuid"]
    assert client.call("workspace", item_uuid=item_uuid)["id"] == ws_id

    workflow = client.call("submit", uri=workspace["_links"]["self"]["href"])
    assert workflow["type"] == "workflowitem"
    assert [i.uuid for i in dspace.app.workflow_items()] == [item_uuid]

    dspace.app.archive(item_uuid)
    item = client.call("item", uuid=item_uuid)
    assert item["status"] == 200
    assert item["body"]["inArchive"] is True
    assert item["body"]["metadata"]["dc.date.issued"][0]["value"] == "2024-05-01"


def test_submission_refused_without_license_names_the_section(client, dspace, tmp_path):
    assert client.call("login") is True
    workspace = _workspace_item(client, tmp_path)
    client.call("patch", id=workspace["id"], path=f"{SECTION}/dc.title",
                value=[{"value": "T"}])
    client.call("patch", id=workspace["id"], path=f"{SECTION}/dc.date.issued",
                value=[{"value": "2024"}])
    answer = client.call("submit", uri=workspace["_links"]["self"]["href"])
    assert answer["status"] == 422
    assert "/sections/license" in answer["message"]
    assert dspace.app.workflow_items() == []


def test_client_recovers_from_expired_jwt_and_rotated_csrf(client, dspace, tmp_path):
    assert client.call("login") is True
    workspace = _workspace_item(client, tmp_path)

    dspace.app.rotate_csrf()  # the client's decorator retries once with the new token
    answer = client.call("patch", id=workspace["id"], path=f"{SECTION}/dc.title",
                         value=[{"value": "After CSRF rotation"}])
    assert answer["status"] == 200, answer

    dspace.app.expire_tokens()  # 401: the client logs in again and repeats the call
    answer = client.call("patch", id=workspace["id"], path=f"{SECTION}/dc.date.issued",
                         value=[{"value": "2024"}])
    assert answer["status"] == 200, answer
    assert dspace.app.logins == 2
    item = dspace.app.workspace_items()[0]
    assert item.metadata["dc.title"][0]["value"] == "After CSRF rotation"


def test_unknown_item_is_404_and_unknown_workspace_item_204(client, dspace, tmp_path):
    assert client.call("login") is True
    unknown = "0b0e0000-0000-4000-8000-000000000000"
    assert client.call("item", uuid=unknown)["status"] == 404
    # RestContract workspaceitems.md: search/item answers 204 when there is none; the
    # client reads that as "no workspace item" (None).
    assert client.call("workspace", item_uuid=unknown) is None
    assert ("GET", "/server/api/submission/workspaceitems/search/item") in dspace.app.calls


def test_wrong_password_is_refused(dspace, tmp_path):
    driver = ClientDriver(dspace.api_url, dspace.user, "not-the-password", tmp_path)
    try:
        assert driver.call("login") is False
    finally:
        driver.close()
    assert dspace.app.logins == 0


def test_search_pages_are_followed_by_the_client(client, dspace):
    """Five archived items found by their marker, two a page: the client follows
    ``_links.next`` through three pages and sees each item once."""
    made = []
    for n in range(5):
        item = Item(f"0b0e0000-0000-4000-8000-00000000000{n}", COLLECTION, dspace.user,
                    metadata={"dc.identifier.other": [{"value": f"deposit-services:s{n}:pkg"}]},
                    in_archive=True, handle=f"123456789/{2000 + n}")
        dspace.app.items[item.uuid] = item
        made.append(item.uuid)
    assert client.call("login") is True
    found = client.call("search_all", query='dc.identifier.other:"*:pkg"', dso_type="ITEM",
                        page_size=2)
    assert sorted(found) == sorted(made)
    searches = [c for c in dspace.app.calls if c[1].endswith("/discover/search/objects")]
    assert len(searches) == 3
