"""The ro-crate-1.1 assembler: packages roc-validator accepts (RO-Crate 1.1 profile,
required and recommended checks) and the ``rocrate`` library reads back, with every
File's size and SHA-256 matching the bytes in the zip."""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rocrate.rocrate import ROCrate

from deposit_services.assemblers.base import create_assembler
from deposit_services.assemblers.rocrate import METADATA, RoCrateAssembler
from deposit_services.errors import AssemblyError, RepositoryConfigError
from deposit_services.model.builder import build_deposit_submission
from deposit_services.model.entities import FileRole
from deposit_services.model.graph import Graph, resolve_file_uris
from deposit_services.model.submission import (
    ArticleMetadata,
    DepositFile,
    DepositSubmission,
    GrantInfo,
    Issn,
    IssnPubType,
    JournalMetadata,
    Person,
    PersonType,
)
from tests.unit.rocrate.conftest import validate

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "submission.json"
STAMP = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
OPTIONS = {
    "archive": "ZIP",
    "algorithms": ["sha512", "md5"],
    "license": "https://spdx.org/licenses/CC-BY-4.0",
    "publisher": "Example University Library",
    "organizations": {
        "Example University Library": "https://ror.org/00example1",
        "Example University": "https://ror.org/00example2",
        "example.edu:funder:nih": "https://ror.org/01cwqze88",
    },
}


def example_submission() -> DepositSubmission:
    graph = resolve_file_uris(Graph.load(EXAMPLE), EXAMPLE.parent)
    return build_deposit_submission(graph.submission, graph)


def dataset_submission(folder: Path, count: int) -> DepositSubmission:
    """``count`` small files of different sizes and types, authors with ORCID ids and an
    affiliation, a funder and a grant: every metadata field the crate can carry."""
    folder.mkdir()
    files = []
    for index in range(count):
        ext = ("csv", "txt", "json", "bin")[index % 4]
        path = folder / f"obs-{index:04d}.{ext}"
        path.write_bytes(f"{index},".encode() * (index % 50 + 1))
        files.append(DepositFile(id=f"f{index}", name=path.name, location=str(path),
                                 role=FileRole.SUPPLEMENTAL))
    author = Person(PersonType.AUTHOR, full_name="Ada Lovelace", first_name="Ada",
                    last_name="Lovelace", orcid="https://orcid.org/0000-0002-1825-0097",
                    affiliation=("Example University",))
    coauthor = Person(PersonType.AUTHOR, full_name="Charles Babbage",
                      orcid="0000-0001-5109-3700", affiliation=("Example University",))
    return DepositSubmission(
        id="ds-1000", submitted_date=STAMP,
        article=ArticleMetadata(title="Estuary salinity, 2020-2025", abstract="Hourly data.",
                                doi="https://doi.org/10.5555/estuary.2026", volume="4",
                                publication_date="2026-10-30"),
        journal=JournalMetadata(title="Journal of Examples", publisher="Example Press",
                                issns=(Issn("1234-5679", IssnPubType.ONLINE),)),
        persons=(author, coauthor),
        grants=(GrantInfo("R01EX000001", "National Institutes of Health",
                                  "example.edu:funder:nih"),),
        files=tuple(files))


def entities(package: Path) -> dict[str, dict[str, object]]:
    with zipfile.ZipFile(package) as archive:
        graph = json.loads(archive.read(METADATA))["@graph"]
    return {entity["@id"]: entity for entity in graph}


def test_the_example_submission_passes_every_check_its_metadata_allows(
        tmp_path: Path, offline_context: None) -> None:
    package = create_assembler("ro-crate-1.1", OPTIONS).assemble(
        example_submission(), tmp_path, STAMP)
    issues = validate(package.path)
    # The example's authors have no affiliation: the two checks about it are the only ones
    # the package cannot meet from this submission; nothing required fails.
    assert {check for _, check, _ in issues} == {"ro-crate-1.1_30.2", "ro-crate-1.1_30.3"}, issues
    assert all(severity == "RECOMMENDED" for severity, _, _ in issues)
    graph = entities(package.path)
    root = graph["./"]
    assert root["name"] == "Tidal mixing in estuaries: a worked example"
    assert root["cite-as"] == "https://doi.org/10.5555/example.2026.001"
    assert root["license"] == {"@id": "https://spdx.org/licenses/CC-BY-4.0"}
    assert graph["https://doi.org/10.5555/example.2026.001"]["@type"] == "ScholarlyArticle"
    assert graph["#grant-1"]["identifier"] == "R01EX000001"
    assert graph["#grant-1"]["funder"] == {"@id": "https://ror.org/01cwqze88"}


def test_a_1000_file_crate_passes_roc_validator_and_reads_back(
        tmp_path: Path, offline_context: None) -> None:
    submission = dataset_submission(tmp_path / "files", 1000)
    package = RoCrateAssembler(OPTIONS).assemble(submission, tmp_path / "work", STAMP)
    assert validate(package.path) == []

    with zipfile.ZipFile(package.path) as archive:
        names = archive.namelist()
        assert names[-1] == METADATA  # written after the data, from the same pass
        assert names[:1000] == [f.name for f in submission.files]
        data = {name: archive.read(name) for name in names[:-1]}
    crate = ROCrate(package.path)
    files = {entity.id: entity for entity in crate.get_by_type("File")}
    assert set(files) == set(data)  # the manifests are described too
    for name, content in data.items():
        assert files[name]["sha256"] == hashlib.sha256(content).hexdigest()
        assert files[name]["contentSize"] == str(len(content))
    assert files["obs-0000.csv"]["encodingFormat"] == "text/csv"
    assert files["obs-0002.json"]["encodingFormat"] == "application/json"
    sha512 = data["manifest-sha512.txt"].decode().splitlines()
    assert sha512[1] == f"{hashlib.sha512(data['obs-0001.txt']).hexdigest()}  obs-0001.txt"
    root = crate.root_dataset
    assert root["datePublished"] == "2026-10-30"
    authors = root["author"]
    assert [a.id for a in authors] == ["https://orcid.org/0000-0002-1825-0097",
                                      "https://orcid.org/0000-0001-5109-3700"]
    assert authors[0]["affiliation"].id == "https://ror.org/00example2"
    assert root["publisher"].id == "https://ror.org/00example1"
    assert root["funding"]["funder"]["name"] == "National Institutes of Health"
    article = root["citation"]
    assert article.type == "ScholarlyArticle"
    assert article["isPartOf"]["issn"] == "1234-5679"
    assert package.sha256 == hashlib.sha256(package.path.read_bytes()).hexdigest()


def test_same_input_gives_the_same_bytes(tmp_path: Path) -> None:
    submission = dataset_submission(tmp_path / "files", 5)
    first = RoCrateAssembler(OPTIONS).assemble(submission, tmp_path / "a", STAMP)
    second = RoCrateAssembler(OPTIONS).assemble(submission, tmp_path / "b", STAMP)
    assert (first.name, first.sha256) == (second.name, second.sha256)
    assert first.name == "rocrate_2026-11-02_09-30-00_ds-1000.zip"


def test_without_license_the_package_says_so(tmp_path: Path) -> None:
    submission = dataset_submission(tmp_path / "files", 1)
    package = RoCrateAssembler({}).assemble(submission, tmp_path / "w", STAMP)
    assert any("no license" in warning for warning in package.warnings)
    assert "license" not in entities(package.path)["./"]


def test_an_unparseable_publication_date_falls_back_to_the_submission_date(
        tmp_path: Path) -> None:
    submission = dataset_submission(tmp_path / "files", 1)
    odd = DepositSubmission(id=submission.id, submitted_date=STAMP, files=submission.files,
                            article=ArticleMetadata(title="t", publication_date="Spring 2026"))
    package = RoCrateAssembler(OPTIONS).assemble(odd, tmp_path / "w", STAMP)
    assert entities(package.path)["./"]["datePublished"] == "2026-11-02"
    assert any("Spring 2026" in warning for warning in package.warnings)


def test_a_detached_crate_needs_web_files(tmp_path: Path) -> None:
    submission = dataset_submission(tmp_path / "files", 1)
    with pytest.raises(AssemblyError, match="not an http"):
        RoCrateAssembler({**OPTIONS, "archive": "NONE"}).assemble(submission, tmp_path, STAMP)
    assert not list(tmp_path.glob("*.json"))  # nothing half-written left behind


@pytest.mark.parametrize(("options", "words"), [
    ({"archive": "TAR"}, "archive must be ZIP"),
    ({"license": "CC-BY"}, "license's URL"),
    ({"organizations": {"NIH": "nih"}}, "to their URLs"),
    ({"publisher": ["x"]}, "publisher must be"),
])
def test_bad_options_are_configuration_errors(options: dict[str, object], words: str) -> None:
    with pytest.raises(RepositoryConfigError, match=words):
        RoCrateAssembler(options)


def test_a_detached_crate_describes_web_files_read_once_each(tmp_path: Path) -> None:
    import functools
    import http.server
    import threading

    served = tmp_path / "web"
    served.mkdir()
    contents = {"a.csv": b"x,y\n1,2\n", "b.bin": bytes(range(256)) * 9000}
    for name, content in contents.items():
        (served / name).write_bytes(content)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        web = DepositSubmission(id="web-1", submitted_date=STAMP,
                                article=ArticleMetadata(title="On the web"),
                                files=tuple(DepositFile(id=n, name=n, location=f"{base}/{n}")
                                            for n in contents))
        package = RoCrateAssembler({**OPTIONS, "archive": "NONE"}).assemble(
            web, tmp_path / "w", STAMP)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert package.name.endswith("-ro-crate-metadata.json")
    assert package.mime_type == "application/ld+json"
    graph = {e["@id"]: e for e in json.loads(package.path.read_bytes())["@graph"]}
    for name, content in contents.items():
        entity = graph[f"{base}/{name}"]
        assert entity["@type"] == "File"
        assert entity["sha256"] == hashlib.sha256(content).hexdigest()
        assert entity["contentSize"] == str(len(content))
    assert {part["@id"] for part in graph["./"]["hasPart"]} == {f"{base}/{n}" for n in contents}
