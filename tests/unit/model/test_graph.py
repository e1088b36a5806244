"""The pass-core graph loader: entities typed, references checked, file URIs resolved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deposit_services.errors import GraphError, NotFound
from deposit_services.model.entities import File, Grant, Repository, Submission
from deposit_services.model.graph import Graph, resolve_file_uri, resolve_file_uris


def entities() -> list[dict[str, Any]]:
    return [
        {"@type": "User", "id": "1", "firstName": "Bob", "someFutureField": {"x": 1}},
        {"@type": "Repository", "id": "4", "repositoryKey": "pmc", "integrationType": "ONE_WAY"},
        {"@type": "Funder", "id": "11", "name": "NEI", "localKey": "jhu:funder:1"},
        {"@type": "Grant", "id": "13", "awardNumber": "R01", "primaryFunder": "11", "pi": "1",
         "coPis": [{"id": "1"}], "awardDate": "2017-06-01T00:00:00.000Z"},
        {"@type": "Submission", "id": "15", "submitted": True, "repositories": ["4"],
         "submitter": "1", "grants": ["13"], "aggregatedDepositStatus": "not-started"},
        {"@type": "File", "id": "16", "name": "a.doc", "uri": "classpath:/s/a.doc",
         "fileRole": "MANUSCRIPT", "submission": "15"},
    ]


def test_a_graph_loads_typed_entities_and_keeps_unknown_fields(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(entities()))
    graph = Graph.load(path)
    assert graph.submission.id == "15"
    assert graph.get(Grant, "13").co_pis == ["1"]
    assert graph.get(Repository, "4").repository_key == "pmc"
    user = graph.entities[0]
    assert user.to_json()["someFutureField"] == {"x": 1}
    assert [f.id for f in graph.find(File, submission="15")] == ["16"]
    with pytest.raises(NotFound):
        graph.get(Submission, "16")


@pytest.mark.parametrize(("change", "expected"), [
    (lambda g: g[4].update(submitted="perhaps"),
     "Submission '15' (graph entry 4): field submitted"),
    (lambda g: g[3].update(pi="99"), "Grant '13' field pi: refers to User '99'"),
    (lambda g: g[4].update(repositories=["4", "11"]),
     "Submission '15' field repositories: refers to Repository '11'"),
    (lambda g: g[0].update({"@type": "Person"}), "unknown @type 'Person'"),
    (lambda g: g[1].pop("id"), "no id"),
    (lambda g: g.append(dict(g[2])), "Funder '11' appears twice"),
    (lambda g: g.pop(4) and g.pop(4), "exactly one Submission; this one has 0"),
])
def test_a_bad_graph_names_the_entity_and_the_field(change: Any, expected: str) -> None:
    data = entities()
    change(data)
    with pytest.raises(GraphError) as caught:
        Graph.parse(data)
    assert expected in str(caught.value)


def test_a_graph_file_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("[{")
    with pytest.raises(GraphError, match=r"broken\.json is not JSON"):
        Graph.load(path)
    with pytest.raises(GraphError, match="cannot read graph"):
        Graph.load(tmp_path / "absent.json")
    with pytest.raises(GraphError, match="a graph is a JSON list"):
        Graph.parse({"not": "a list"})


def test_file_uris_resolve_against_the_base(tmp_path: Path) -> None:
    base = tmp_path / "files"
    assert resolve_file_uri("classpath:/s/a.doc", base) == (base / "s" / "a.doc").as_uri()
    assert resolve_file_uri("encodedclasspath:/s/ilford%20panf.pdf", base) == (
        base / "s" / "ilford panf.pdf").as_uri()
    assert resolve_file_uri("sub/x.txt", base) == (base / "sub" / "x.txt").as_uri()
    assert resolve_file_uri("/abs/x.txt", base) == "file:///abs/x.txt"
    assert resolve_file_uri("https://h/x", base) == "https://h/x"
    assert resolve_file_uri("file:///x", base) == "file:///x"
    with pytest.raises(GraphError, match="unsupported scheme 'ftp'"):
        resolve_file_uri("ftp://h/x", base)
    graph = resolve_file_uris(Graph.parse(entities()), base)
    assert graph.get(File, "16").uri == (base / "s" / "a.doc").as_uri()
