"""load_graph: our graph files as pass-core would hold them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.support.graphs import make_graph
from tests.support.passcore import PassCore


def test_graph_is_stored_with_new_ids_and_wire_values(passcore: PassCore, tmp_path: Path,
                                                      client: requests.Session) -> None:
    entities = make_graph("s1", tmp_path, files={"paper.pdf": b"%PDF-1.4 test"})
    ids = passcore.load_graph(entities, files_dir=tmp_path)
    assert set(ids) == {(e["@type"], e["id"]) for e in entities}
    assert all(v.isdigit() for v in ids.values())
    sub = passcore.resource("Submission", ids[("Submission", "s1")])
    assert sub["attributes"]["aggregatedDepositStatus"] == "not-started"
    assert sub["attributes"]["submittedDate"] == "2026-11-01T10:00:00.000Z"
    assert sub["relationships"]["repositories"]["data"] == [
        {"type": "repository", "id": ids[("Repository", "repo-archive")]}
    ]
    assert json.loads(sub["attributes"]["metadata"])["title"] == "Paper s1"
    repo = passcore.resource("repository", ids[("Repository", "repo-archive")])
    assert repo["attributes"]["integrationType"] == "one-way"
    (file,) = passcore.find("file", submission=ids[("Submission", "s1")])
    uri = file["attributes"]["uri"]
    assert uri.startswith("/file/") and uri.endswith("/paper.pdf")
    assert file["attributes"]["fileRole"] == "manuscript"
    assert client.get(passcore.base_url + uri).content == b"%PDF-1.4 test"
    assert passcore.find("submission", aggregatedDepositStatus="not-started") == [sub]


def test_fields_pass_core_cannot_hold_are_refused(passcore: PassCore) -> None:
    deposit = {"@type": "Deposit", "id": "d", "depositStatus": "RETRY",
               "nextAttemptAt": "2026-01-01T00:00:00Z"}
    with pytest.raises(ValueError, match="nextAttemptAt"):
        passcore.load_graph([deposit])
    ids = passcore.load_graph([deposit], drop_unknown=True)
    stored = passcore.resource("deposit", ids[("Deposit", "d")])
    assert stored["attributes"]["depositStatus"] == "retry"
    with pytest.raises(ValueError, match="not in the graph"):
        passcore.load_graph([{"@type": "Deposit", "id": "x", "submission": "nope"}])
    renamed = passcore.load_graph([{"@type": "Publication", "id": "p", "abstract": "A."}])
    publication = passcore.resource("publication", renamed[("Publication", "p")])
    assert publication["attributes"]["publicationAbstract"] == "A."
    with pytest.raises(ValueError, match="relative"):
        passcore.load_graph([{"@type": "File", "id": "f", "uri": "a/b.txt"}])
