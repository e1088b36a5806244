"""The 2020 OA-PASS graphs (Fedora-era JSON-LD: ``@id``, ``fake:`` ids, lower-case enum
spellings), unchanged, load and deposit as a current graph does: DepositSubmission built,
SimpleZip package written with every file."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from deposit_services.assemblers.base import create_assembler
from deposit_services.errors import GraphError
from deposit_services.model.builder import build_deposit_submission
from deposit_services.model.entities import (
    AggregatedDepositStatus,
    FileRole,
    IntegrationType,
    Repository,
    Submission,
    SubmissionStatus,
)
from deposit_services.model.graph import Graph, resolve_file_uris

GRAPHS = Path(__file__).resolve().parents[2] / "fixtures" / "pass" / "2020"
STAMP = datetime(2024, 5, 4, 14, 22, 25, tzinfo=UTC)
SAMPLES = {"sample1": 8, "sample2": 2, "sample3": 4}  # graph -> its Files


def load(name: str) -> Graph:
    return resolve_file_uris(Graph.load(GRAPHS / f"{name}.json"), GRAPHS)


def test_ids_types_and_enum_spellings_of_2020_are_read() -> None:
    graph = load("sample1")
    submission = graph.submission
    assert submission.id == "fake:submission1"
    assert submission.aggregated_deposit_status is AggregatedDepositStatus.NOT_STARTED
    assert submission.submission_status is SubmissionStatus.SUBMITTED
    assert submission.repositories == ["fake:repository1", "fake:repository2",
                                       "fake:repository3", "fake:repository4"]
    kinds = {r.repository_key: r.integration_type for r in graph.find(Repository)}
    assert kinds["web-link"] is IntegrationType.WEB_LINK
    assert kinds["PubMed Central"] is IntegrationType.ONE_WAY


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_2020_graph_deposits_as_a_simple_zip(name: str, tmp_path: Path) -> None:
    graph = load(name)
    content = build_deposit_submission(graph.submission, graph)
    assert len(content.files) == SAMPLES[name]
    assert content.article.title
    package = create_assembler("simple", {"archive": "ZIP"}).assemble(
        content, tmp_path / "work", STAMP)
    with zipfile.ZipFile(package.path) as archive:
        stored = {n: archive.read(n) for n in archive.namelist()
                  if not n.startswith("manifest-")}
    on_disk = {path.name: path.read_bytes() for path in (
        Path(unquote(urlsplit(f.location).path)) for f in content.files)}
    assert stored == on_disk  # every file, by its name, with its bytes
    package.discard()


def test_sample1_roles_are_read_from_lower_case() -> None:
    graph = load("sample1")
    content = build_deposit_submission(graph.submission, graph)
    roles = {Path(unquote(f.location)).name: f.role for f in content.files}
    assert roles["Chart.jpg"] is FileRole.SUPPLEMENTAL
    assert roles["Figure1.tif"] is FileRole.FIGURE
    assert roles["Sample2.doc"] is FileRole.MANUSCRIPT
    assert roles["Table.ods"] is FileRole.TABLE


def write(tmp_path: Path, entries: list[dict[str, Any]]) -> Path:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(entries))
    return path


def test_prefixed_types_jsonld_references_and_uri_ids(tmp_path: Path) -> None:
    base = "http://localhost:8080/fcrepo/rest"
    path = write(tmp_path, [
        {"@context": "https://oa-pass.github.io/pass-data-model/src/main/resources/"
                     "context-3.4.jsonld",
         "@id": f"{base}/submissions/ab/cd/15", "@type": "pass:Submission",
         "submitted": True, "submissionStatus": "approval-requested",
         "submitterEmail": "mailto:jane@example.edu", "submitterName": "Jane",
         "repositories": [{"@id": f"{base}/repositories/4"}],
         "publication": "http://oapass.org/other/publications/9"},
        {"@id": f"{base}/repositories/4", "@type": "http://oapass.org/ns/pass#Repository",
         "repositoryKey": "pmc", "integrationType": "one-way"},
        {"@id": "9", "@type": "Publication", "title": "T"},
    ])
    graph = Graph.load(path)
    submission = graph.get(Submission, f"{base}/submissions/ab/cd/15")
    assert submission.repositories == [f"{base}/repositories/4"]
    assert submission.publication == "9"  # by its last segment
    assert submission.submitter_email == "jane@example.edu"
    assert submission.submission_status is SubmissionStatus.APPROVAL_REQUESTED


def test_an_entity_with_neither_id_nor_at_id_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, [{"@type": "Submission", "submitted": True}])
    with pytest.raises(GraphError, match=r"Submission \(graph entry 0\): no id .*@id"):
        Graph.load(path)


def test_a_reference_to_nothing_in_a_2020_graph_is_still_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, [{"@id": "fake:s", "@type": "Submission",
                             "repositories": ["fake:repository9"]}])
    with pytest.raises(GraphError, match=r"fake:repository9.*not in the graph"):
        Graph.load(path)
