"""Helpers for the assembler tests: small real files, and checkers that open packages the
way their consumers do (zipfile/tarfile, an lxml DTD, checksums of the bytes on disk)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from deposit_services.assemblers.base import Package
from deposit_services.model.entities import FileRole
from deposit_services.model.submission import (
    DepositFile,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SAMPLE1 = FIXTURES / "graphs" / "sample1.json"
DTDS = {
    "nihms-native-2022-05": FIXTURES / "nihms" / "manuscript-submit-2022.dtd",
    "nihms-native-2017-07": FIXTURES / "nihms" / "nihms-submit-2017.dtd",
}
STAMP = datetime(2024, 5, 4, 14, 22, 25, tzinfo=UTC)
SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def deposit_file(path: Path, role: FileRole | None, *, name: str | None = None,
                 label: str | None = None, mime: str | None = None, uri: bool = True,
                 file_id: str | None = None) -> DepositFile:
    return DepositFile(id=file_id or f"f-{path.name}", name=name or path.name,
                       location=path.as_uri() if uri else str(path), role=role, label=label,
                       mime_type=mime)


def members(package: Package) -> dict[str, bytes]:
    """Every entry of a zip or (compressed) tar package, name -> bytes, in archive order."""
    if package.name.endswith(".zip"):
        with zipfile.ZipFile(package.path) as archive:
            assert archive.testzip() is None
            return {name: archive.read(name) for name in archive.namelist()}
    with tarfile.open(package.path, "r:*") as archive:
        found = {}
        for info in archive.getmembers():
            assert info.isfile(), info.name
            extracted = archive.extractfile(info)
            assert extracted is not None
            found[info.name] = extracted.read()
        return found


def extract(package: Package, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in members(package).items():
        target = (dest / name).resolve()
        assert target.is_relative_to(dest.resolve()), name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return dest


def assert_figures_match_disk(package: Package) -> None:
    """The package's own size, MD5 and SHA-256 are those of the bytes on disk."""
    data = package.path.read_bytes()
    assert package.size == len(data) == package.path.stat().st_size
    assert package.md5 == hashlib.md5(data).hexdigest()
    assert package.sha256 == hashlib.sha256(data).hexdigest()


def validate_nihms(package: Package) -> etree._Element:
    """bulk_meta.xml of a NIHMS package, validated against its version's DTD."""
    meta = members(package)["bulk_meta.xml"]
    root = etree.parse(io.BytesIO(meta), SAFE_PARSER).getroot()
    dtd = etree.DTD(str(DTDS[package.specification]))
    assert dtd.validate(root), dtd.error_log.filter_from_errors()
    return root


def manifest_lines(package: Package) -> list[list[str]]:
    text = members(package)["manifest.txt"].decode()
    assert text.endswith("\n")
    return [line.split("\t") for line in text.splitlines()]


def sha(data: bytes, alg: str = "sha256") -> str:
    return hashlib.new(alg, data).hexdigest()


def no_spool_left(workdir: Path) -> bool:
    return not workdir.exists() or not any(workdir.iterdir())
