"""Every ZIP package format we write, read by Java's ``java.util.zip.ZipInputStream`` as
PASS's consumers stream it: tests/java/ReadZip.java (compiled here with javac) reads each
entry front to back, and checks its bytes against the package's own manifests
(manifest/tagmanifest checksums, mets.xml MD5 and SIZE, NIHMS manifest.txt names). A
missing javac or java fails the test: scripts/test.sh installs default-jdk-headless."""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from deposit_services.assemblers.archive import ArchiveFormat, ArchiveOptions, ArchiveWriter
from deposit_services.assemblers.archive import Compression as C
from deposit_services.assemblers.base import create_assembler
from deposit_services.model.builder import build_deposit_submission
from deposit_services.model.entities import FileRole
from deposit_services.model.graph import Graph, resolve_file_uris
from deposit_services.model.submission import DepositFile, DepositSubmission
from tests.unit.assemblers.helpers import SAMPLE1, STAMP, sha

READER = Path(__file__).resolve().parents[2] / "java" / "ReadZip.java"
FUNDERS = {"funder-mapping": {"johnshopkins.edu:funder:300484": "nih"}}
METS = "http://purl.org/net/sword/package/METSDSpaceSIP"
CASES: list[tuple[str, dict[str, Any]]] = [
    ("simple", {"compression": "NONE", "algorithms": ["sha512", "md5"]}),
    ("simple", {"compression": "GZIP", "algorithms": ["sha256"]}),
    ("simple", {"compression": "BZIP2"}),
    ("bagit-1.0", {"compression": "NONE", "algorithms": ["sha512", "sha256", "md5"]}),
    ("bagit-1.0", {"compression": "GZIP"}),
    (METS, {"compression": "NONE"}),
    (METS, {}),
    ("nihms-native-2022-05", {"compression": "NONE", **FUNDERS}),
    ("nihms-native-2022-05", {"compression": "GZIP", **FUNDERS}),
    ("nihms-native-2017-07", {"compression": "NONE", **FUNDERS}),
]


@pytest.fixture(scope="module")
def read_zip(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The command that runs ReadZip, compiled once for this module."""
    javac, java = shutil.which("javac"), shutil.which("java")
    if not javac or not java:
        pytest.fail("javac and java are needed (Debian: default-jdk-headless; scripts/test.sh "
                    "installs it)")
    classes = tmp_path_factory.mktemp("java")
    subprocess.run([javac, "-d", str(classes), str(READER)], check=True, timeout=120)
    return [java, "-cp", str(classes), "ReadZip"]


KINDS = {"simple": "simple", "bagit-1.0": "bagit", METS: "mets",
         "nihms-native-2022-05": "nihms", "nihms-native-2017-07": "nihms"}


def run(read_zip: list[str], package: Path, kind: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*read_zip, str(package), kind], capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture
def submission(tmp_path: Path) -> DepositSubmission:
    """PASS's sample1 (a space in a name, files called manifest.txt and bulk_meta.xml),
    plus a file over a chunk, an empty one and a non-ASCII name."""
    graph = resolve_file_uris(Graph.load(SAMPLE1), SAMPLE1.parent)
    sample = build_deposit_submission(graph.submission, graph)
    extra = tmp_path / "extra"
    extra.mkdir()
    made = {"big.bin": os.urandom(3 * 1024 * 1024 + 11), "empty.txt": b"",
            "résumé ü.txt": "naïve café\n".encode() * 300}
    files = []
    for n, (name, data) in enumerate(made.items()):
        (extra / name).write_bytes(data)
        files.append(DepositFile(id=f"x{n}", name=name, location=(extra / name).as_uri(),
                                 role=FileRole.SUPPLEMENTAL, label=f"extra {n}"))
    return dataclasses.replace(sample, files=sample.files + tuple(files))


@pytest.mark.parametrize(("spec", "options"), CASES,
                         ids=[f"{s.rsplit('/', 1)[-1]}-{o.get('compression', 'default')}"
                              for s, o in CASES])
def test_zip_input_stream_reads_every_entry_and_the_manifests_agree(
    read_zip: list[str], submission: DepositSubmission, tmp_path: Path, spec: str,
    options: dict[str, Any]
) -> None:
    package = create_assembler(spec, {**options, "archive": "ZIP"}).assemble(
        submission, tmp_path / "work", STAMP)
    result = run(read_zip, package.path, KINDS[spec])
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    with zipfile.ZipFile(package.path) as archive:
        names = archive.namelist()
    assert lines[-1] == f"OK {len(names)} entries"
    methods = {line.split("\t")[0] for line in lines[:-1]}
    assert methods == {"STORED" if options.get("compression") == "NONE" else "DEFLATED"}
    assert sorted(line.split("\t")[3] for line in lines[:-1]) == sorted(names)


class Download(io.RawIOBase):
    """An http(s) body as the assemblers read it: no seek, so it is spooled."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)


def test_a_stored_entry_from_a_download_is_read_too(read_zip: list[str],
                                                    tmp_path: Path) -> None:
    body = os.urandom(2 * 1024 * 1024 + 3)
    path = tmp_path / "download.zip"
    with path.open("wb") as out:
        writer = ArchiveWriter(out, ArchiveOptions(ArchiveFormat.ZIP, C.NONE), STAMP,
                               spool_dir=tmp_path)
        writer.add_stream("download.bin", Download(body), len(body))  # type: ignore[arg-type]
        writer.add_bytes("manifest-sha256.txt", f"{sha(body)}  download.bin\n".encode())
        writer.close()
    result = run(read_zip, path, "simple")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0].startswith("STORED\t2097155\t")


def test_the_check_is_not_vacuous(read_zip: list[str], tmp_path: Path) -> None:
    """What we wrote before: zipfile streaming STORED entries with data descriptors,
    which ZipInputStream refuses; and a manifest that disagrees with an entry."""

    class Stream(io.RawIOBase):
        def __init__(self, target: Any) -> None:
            self._target = target

        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            return int(self._target.write(data))

    described = tmp_path / "descriptors.zip"
    with described.open("wb") as raw, zipfile.ZipFile(Stream(raw), "w") as archive:
        archive.writestr("a.txt", b"hello")
        archive.writestr("manifest-sha256.txt", f"{sha(b'hello')}  a.txt\n")
    result = run(read_zip, described, "simple")
    assert result.returncode == 1
    assert "only DEFLATED entries can have EXT descriptor" in result.stdout

    wrong = tmp_path / "wrong.zip"
    with zipfile.ZipFile(wrong, "w") as archive:
        archive.writestr("a.txt", b"hello")
        archive.writestr("manifest-sha256.txt", f"{sha(b'other')}  a.txt\n")
    result = run(read_zip, wrong, "simple")
    assert result.returncode == 1 and "a.txt: sha256" in result.stdout
