"""The DSpace test server driven by an independent client (PyPI ``dspace-rest-client``),
so the server is not just a mirror of our own client's idea of DSpace."""

from __future__ import annotations

import pytest

from tests.support.dspace_server import DSpaceServer

dspace_rest_client = pytest.importorskip("dspace_rest_client.client")


def _client(server: DSpaceServer, password: str | None = None) -> object:
    return dspace_rest_client.DSpaceClient(
        api_endpoint=server.api_url, username=server.user,
        password=password or server.password)


def test_independent_client_logs_in_with_csrf(dspace: DSpaceServer) -> None:
    client = _client(dspace)
    assert client.authenticate() is True  # type: ignore[attr-defined]
    assert dspace.app.logins == 1


def test_independent_client_refused_with_wrong_password(dspace: DSpaceServer) -> None:
    assert _client(dspace, "wrong").authenticate() is False  # type: ignore[attr-defined]


def test_independent_client_submits_a_workspace_item(dspace: DSpaceServer) -> None:
    client = _client(dspace)
    assert client.authenticate()  # type: ignore[attr-defined]
    session = client.session  # type: ignore[attr-defined]
    collection = next(iter(dspace.app.collections.values()))
    made = session.post(f"{dspace.api_url}/submission/workspaceitems",
                        params={"owningCollection": collection},
                        files={"file": ("a.txt", b"hello", "text/plain")},
                        headers={"X-XSRF-TOKEN": session.headers["X-XSRF-Token"]})
    assert made.status_code == 201, made.text
    workspace = made.json()["_embedded"]["workspaceitems"][0]
    ws_url = f"{dspace.api_url}/submission/workspaceitems/{workspace['id']}"
    for path, value in (("/sections/traditionalpageone/dc.title", [{"value": "T"}]),
                        ("/sections/traditionalpageone/dc.date.issued", [{"value": "2024"}]),
                        ("/sections/license/granted", "true")):
        answer = client.api_patch(ws_url, "add", path, value)  # type: ignore[attr-defined]
        assert answer.status_code == 200, answer.text
    item_uuid = workspace["_embedded"]["item"]["uuid"]
    found = client.get_workspace_item(item_uuid=item_uuid)  # type: ignore[attr-defined]
    assert found is not None
    started = client.start_workflow(ws_url)  # type: ignore[attr-defined]
    assert started["_embedded"]["item"]["uuid"] == item_uuid
    [item] = dspace.app.workflow_items()
    assert item.files[0].data == b"hello"
    assert item.metadata["dc.title"][0]["value"] == "T"
