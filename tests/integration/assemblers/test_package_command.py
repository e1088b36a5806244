"""``deposit-services package GRAPH --repository KEY -o DIR`` (the dry run) as a process,
on our copy of PASS's sample1 graph: the printed figures are the file's, packages are
byte-identical across processes, and an unreadable input is a clear error."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import bagit
import pytest
from lxml import etree

from tests.unit.assemblers.helpers import DTDS, SAFE_PARSER

GRAPHS = Path(__file__).resolve().parents[2] / "fixtures" / "graphs"
REPOSITORIES = {
    "PubMed Central": {
        "assembler": {"specification": "nihms-native-2017-07",
                      "options": {"funder-mapping": {"johnshopkins.edu:funder:300484": "nih"}}},
        "transport-config": {"protocol-binding": {"protocol": "devnull"}},
    },
    "JScholarship": {
        "assembler": {"specification": "http://purl.org/net/sword/package/METSDSpaceSIP"},
        "transport-config": {"protocol-binding": {"protocol": "devnull"}},
    },
    "BagIt": {
        "assembler": {"specification": "bagit-1.0",
                      "options": {"archive": "TAR", "compression": "BZIP2",
                                  "algorithms": ["sha512", "md5"]}},
        "transport-config": {"protocol-binding": {"protocol": "devnull"}},
    },
}


def run_package(tmp_path: Path, graph: Path, repository: str, out: Path,
                seed: str = "1") -> subprocess.CompletedProcess[str]:
    config = tmp_path / "repositories.json"
    config.write_text(json.dumps(REPOSITORIES))
    env = {**os.environ, "DEPOSIT_DATA_DIR": str(tmp_path / "data"),
           "PASS_DEPOSIT_REPOSITORY_CONFIGURATION": str(config), "PYTHONHASHSEED": seed}
    return subprocess.run(
        [sys.executable, "-m", "deposit_services", "package", str(graph), "--repository",
         repository, "-o", str(out)],
        env=env, capture_output=True, text=True, timeout=120, check=False)


def printed(stdout: str) -> dict[str, str]:
    return dict(line.split(None, 1) for line in stdout.strip().splitlines())


@pytest.mark.parametrize("repository", list(REPOSITORIES))
def test_dry_run_prints_the_package_figures_and_is_reproducible(
    tmp_path: Path, repository: str
) -> None:
    first = run_package(tmp_path, GRAPHS / "sample1.json", repository, tmp_path / "one", "1")
    assert first.returncode == 0, first.stderr
    second = run_package(tmp_path, GRAPHS / "sample1.json", repository, tmp_path / "two", "2")
    assert second.returncode == 0, second.stderr
    shown = printed(first.stdout)
    path = Path(shown["package"])
    data = path.read_bytes()
    assert shown["size"] == str(len(data))
    assert shown["md5"] == hashlib.md5(data).hexdigest()
    assert shown["sha256"] == hashlib.sha256(data).hexdigest()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no spool file left
    other = Path(printed(second.stdout)["package"])
    assert other.name == path.name and other.read_bytes() == data  # other process, same bytes
    spec = REPOSITORIES[repository]["assembler"]["specification"]  # type: ignore[index]
    assert shown["format"] == spec
    if spec.startswith("nihms"):
        import tarfile
        with tarfile.open(path) as archive:
            meta = archive.extractfile("bulk_meta.xml").read()  # type: ignore[union-attr]
        dtd = etree.DTD(str(DTDS[spec]))
        assert dtd.validate(etree.fromstring(meta, SAFE_PARSER)), dtd.error_log
    if spec == "bagit-1.0":
        unpacked = tmp_path / "bag"
        shutil.unpack_archive(path, unpacked)
        bagit.Bag(str(next(unpacked.iterdir()))).validate()


def test_dry_run_with_a_missing_file_says_which(tmp_path: Path) -> None:
    graph_dir = tmp_path / "graph"
    shutil.copytree(GRAPHS, graph_dir)
    (graph_dir / "submissions" / "sample1" / "Figure2.png").unlink()
    out = tmp_path / "out"
    result = run_package(tmp_path, graph_dir / "sample1.json", "JScholarship", out)
    assert result.returncode == 1
    assert "file 'test_figure_2'" in result.stderr and "Figure2.png" in result.stderr
    assert "No such file" in result.stderr
    assert not out.exists() or not any(out.iterdir())


def test_dry_run_of_a_pass_bean_entry_shows_the_format_and_the_entrys_label(
    tmp_path: Path,
) -> None:
    """PASS's PubMed Central entry: nihmsAssembler writes the 2022-05 package, named as
    PASS names it; the entry's specification is the label its metadata carries."""
    pmc = {**REPOSITORIES["PubMed Central"]}
    pmc["assembler"] = {**pmc["assembler"], "beanName": "nihmsAssembler"}  # type: ignore[dict-item]
    config = tmp_path / "pass-repositories.json"
    config.write_text(json.dumps({"PubMed Central": pmc}))
    env = {**os.environ, "DEPOSIT_DATA_DIR": str(tmp_path / "data"),
           "PASS_DEPOSIT_REPOSITORY_CONFIGURATION": str(config)}
    result = subprocess.run(
        [sys.executable, "-m", "deposit_services", "package", str(GRAPHS / "sample1.json"),
         "--repository", "PubMed Central", "-o", str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    shown = printed(result.stdout)
    assert (shown["format"], shown["label"]) == ("nihms-native-2022-05", "nihms-native-2017-07")
    assert Path(shown["package"]).name.startswith("nihms-native-2022-05_")
