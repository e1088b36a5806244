"""The Zenodo test server driven by an independent client, ``zenodo-client`` from PyPI
(its create/upload/publish and its new-version update), so that the server is not just
a mirror of our own transport. The client talks to zenodo.org only, so its API
addresses are pointed at the test server after it is made."""

from __future__ import annotations

from pathlib import Path

import pytest
from zenodo_client import Creator, Metadata, Zenodo

from tests.support.zenodo_server import ZenodoServer


@pytest.fixture
def client(zenodo: ZenodoServer) -> Zenodo:
    made = Zenodo(access_token=zenodo.token)
    made.api_base = zenodo.api_url
    made.depositions_base = f"{zenodo.api_url}/deposit/depositions"
    return made


def test_create_upload_publish_then_new_version(client: Zenodo, zenodo: ZenodoServer,
                                                tmp_path: Path) -> None:
    paper = tmp_path / "paper.txt"
    paper.write_bytes(b"first version\n")
    metadata = Metadata(title="Cross-checked", upload_type="publication",
                        publication_type="article", description="By zenodo-client.",
                        creators=[Creator(name="Lovelace, Ada")])
    published = client.create(data=metadata, paths=[paper]).json()
    assert published["submitted"] is True and published["state"] == "done"
    assert published["doi"] == f"10.5072/zenodo.{published['id']}"
    [first] = zenodo.app.depositions.values()
    assert first.files["paper.txt"].data() == b"first version\n"
    assert first.metadata["creators"] == [{"name": "Lovelace, Ada"}]

    paper.write_bytes(b"second version\n")
    newer = client.update(str(published["id"]), paths=[paper]).json()
    assert newer["submitted"] is True and newer["id"] != published["id"]
    second = zenodo.app.depositions[newer["id"]]
    assert second.concept == first.concept and second.published
    assert second.files["paper.txt"].data() == b"second version\n"
    assert first.files["paper.txt"].data() == b"first version\n"


def test_the_client_sees_validation_errors(client: Zenodo) -> None:
    with pytest.raises(ValueError, match=r"metadata\.upload_type"):
        client.create(data={"metadata": {"upload_type": "novel"}}, paths=[])


def test_query_token_and_a_wrong_one(client: Zenodo, tmp_path: Path) -> None:
    import requests

    client.access_token = "wrong"
    with pytest.raises(requests.HTTPError, match="401"):
        client.publish("1001", sleep=False)
