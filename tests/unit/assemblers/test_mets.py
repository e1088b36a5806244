"""DSpace METS SIP: no METS XSD is available offline, so mets.xml's structure is checked
here as strictly as the schema and the DSpace METS SIP profile would: element order,
unique IDs, every pointer resolving, and file figures equal to the packed bytes."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from deposit_services.assemblers.base import Package
from deposit_services.assemblers.mets import DSpaceMetsAssembler, citation
from deposit_services.errors import RepositoryConfigError
from deposit_services.model.entities import FileRole
from deposit_services.model.submission import DepositSubmission
from tests.unit.assemblers.helpers import (
    SAFE_PARSER,
    STAMP,
    assert_figures_match_disk,
    deposit_file,
    members,
    write,
)

M = "{http://www.loc.gov/METS/}"
XLINK = "{http://www.w3.org/1999/xlink}"
DC = "{http://purl.org/dc/elements/1.1/}"
DCTERMS = "{http://purl.org/dc/terms/}"
DIM = "{http://www.dspace.org/xmlns/dspace/dim}"
NCNAME = re.compile(r"^[A-Za-z_][\w.\-]*$")
# METS schema: metsHdr?, dmdSec*, amdSec*, fileSec?, structLink?, structMap+, behaviorSec*
METS_ORDER = ["metsHdr", "dmdSec", "amdSec", "fileSec", "structLink", "structMap",
              "behaviorSec"]


def check_mets(package: Package, submission: DepositSubmission) -> dict[str, Any]:
    """Every structural rule; returns the DC fields, DIM fields and file records."""
    assert_figures_match_disk(package)
    entries = members(package)
    assert "mets.xml" in entries
    root = etree.parse(io.BytesIO(entries["mets.xml"]), SAFE_PARSER).getroot()
    assert root.tag == M + "mets"
    assert root.get("PROFILE") == "DSpace METS SIP Profile 1.0"
    assert root.get("LABEL") == "DSpace SWORD Item"
    sections = [etree.QName(child).localname for child in root]
    assert sections == sorted(sections, key=METS_ORDER.index), sections
    ids = [e.get("ID") for e in root.iter() if e.get("ID") is not None]
    assert len(ids) == len(set(ids)) and all(NCNAME.match(i) for i in ids), ids
    by_id = {e.get("ID"): e for e in root.iter() if e.get("ID")}

    dmd = {s.get("ID"): s for s in root.findall(M + "dmdSec")}
    groups = [s.get("GROUPID") for s in dmd.values()]
    assert len(groups) == len(set(groups))  # DSpace ingests one dmdSec per GROUPID
    dc_sections = [s for s in dmd.values() if s.find(M + "mdWrap").get("MDTYPE") == "DC"]
    assert len(dc_sections) == 1
    qdc = dc_sections[0].find(f"{M}mdWrap/{M}xmlData/{DCTERMS}qualifieddc")
    assert qdc is not None
    dc: dict[str, list[str]] = {}
    for element in qdc:
        if isinstance(element.tag, str):
            dc.setdefault(etree.QName(element).localname, []).append(element.text or "")
    dim: dict[str, str] = {}
    for section in dmd.values():
        wrap = section.find(M + "mdWrap")
        if wrap.get("MDTYPE") == "OTHER":
            assert wrap.get("OTHERMDTYPE") == "DIM"
            for field in wrap.iterfind(f"{M}xmlData/{DIM}dim/{DIM}field"):
                key = ".".join(filter(None, (field.get("mdschema"), field.get("element"),
                                             field.get("qualifier"))))
                dim[key] = field.text or ""

    [file_sec] = root.findall(M + "fileSec")
    [group] = file_sec.findall(M + "fileGrp")
    assert group.get("USE") == "CONTENT"
    files = []
    for element in group.findall(M + "file"):
        [locat] = element.findall(M + "FLocat")
        assert locat.get("LOCTYPE") == "URL"
        href = locat.get(XLINK + "href")
        assert href is not None and href.startswith("data/") and href in entries, href
        data = entries[href]
        assert element.get("CHECKSUMTYPE") == "MD5"
        assert element.get("CHECKSUM") == hashlib.md5(data).hexdigest()
        assert element.get("SIZE") == str(len(data))
        assert re.fullmatch(r"[\w.+-]+/[\w.+-]+", element.get("MIMETYPE") or "")
        files.append({"id": element.get("ID"), "href": href, "mime": element.get("MIMETYPE"),
                      "data": data})
    payload = [name for name in entries if name != "mets.xml"]
    assert sorted(f["href"] for f in files) == sorted(payload)  # every file described once
    assert len(files) == len(submission.files)

    [struct] = root.findall(M + "structMap")
    [item] = struct.findall(M + "div")
    for dmd_id in (item.get("DMDID") or "").split():
        assert by_id[dmd_id].tag == M + "dmdSec"
    assert set((item.get("DMDID") or "").split()) == set(dmd)
    pointers = [p.get("FILEID") for p in item.findall(M + "fptr")]
    assert sorted(pointers) == sorted(f["id"] for f in files)
    assert all(by_id[p].tag == M + "file" for p in pointers)
    return {"dc": dc, "dim": dim, "files": files, "root": root}


def test_mets_sip_carries_every_field(rich: DepositSubmission, tmp_path: Path) -> None:
    package = DSpaceMetsAssembler().assemble(rich, tmp_path / "work", STAMP)
    assert package.name == "dspace-mets_2024-05-04_14-22-25_sub-1.zip"
    assert package.specification == "http://purl.org/net/sword/package/METSDSpaceSIP"
    assert package.mime_type == "application/zip"
    found = check_mets(package, rich)
    dc = found["dc"]
    assert dc["title"] == ["Two stupendous minds"]
    assert dc["abstract"] == ["An abstract."]
    assert dc["publisher"] == ["Test Press"]
    assert dc["contributor"] == ["Stephen Hawking", "Ada Lovelace", "Kip Thorne",
                                 "Roger Penrose"]
    assert dc["bibliographicCitation"] == [
        "Stephen Hawking, Ada Lovelace, Kip Thorne, et al. (2024). Two stupendous minds. "
        "Journal of Tests & Trials, 9(1). https://doi.org/10.1234/abc.5"]
    assert dc["hasVersion"] == ["10.1234/abc.5"]
    assert dc["description"] == [
        "Submission published under an embargo, which will last until 2024-06-30"]
    assert found["dim"] == {
        "local.embargo.lift": "2024-06-30", "local.embargo.terms": "2024-06-30",
        "dc.description.provenance":
            "Submission published under an embargo, which will last until 2024-06-30"}
    assert [(f["href"], f["mime"]) for f in found["files"]] == [
        ("data/manuscript.pdf", "application/pdf"), ("data/fig1.png", "image/png"),
        ("data/fig2.png", "image/png"), ("data/table.csv", "text/csv"),
        ("data/data.bin", "application/octet-stream"),
        ("data/more.bin", "application/octet-stream")]
    for file, record in zip(rich.files, found["files"], strict=True):
        assert record["data"] == Path(file.location.removeprefix("file://")).read_bytes()
    header = found["root"].find(M + "metsHdr")
    assert header.get("CREATEDATE") == "2024-05-04T14:22:25Z"


def test_without_embargo_there_is_no_dim_section(rich: DepositSubmission,
                                                 tmp_path: Path) -> None:
    article = dataclasses.replace(rich.article, embargo_end_date=None)
    submission = dataclasses.replace(rich, article=article)
    found = check_mets(DSpaceMetsAssembler().assemble(submission, tmp_path, STAMP), submission)
    assert found["dim"] == {}
    assert "description" not in found["dc"]
    assert found["root"].find(f"{M}structMap/{M}div").get("DMDID") == "dmd-dc"


def test_names_under_data_are_sanitised_and_unique(files_dir: Path, tmp_path: Path) -> None:
    source = write(files_dir, "a.pdf", b"pdf")
    files = tuple(dataclasses.replace(deposit_file(source, FileRole.MANUSCRIPT), id=str(n),
                                      name=name)
                  for n, name in enumerate(["../x/report.pdf", "report.pdf", "mets.xml",
                                            "with space.pdf", "jpeg.jpg"]))
    submission = DepositSubmission(id="n", files=files)
    found = check_mets(DSpaceMetsAssembler({"compression": "NONE"}).assemble(
        submission, tmp_path, STAMP), submission)
    assert [f["href"] for f in found["files"]] == [
        "data/x_report.pdf", "data/report.pdf", "data/mets.xml", "data/with space.pdf",
        "data/jpeg.jpg"]
    assert found["files"][-1]["mime"] == "image/jpeg"


def test_declared_mime_types_are_kept_and_misspellings_fixed(files_dir: Path,
                                                            tmp_path: Path) -> None:
    files = (deposit_file(write(files_dir, "c.jpg", b"j"), FileRole.FIGURE, mime="image/jpg"),
             deposit_file(write(files_dir, "d.dat", b"d"), FileRole.FIGURE,
                          mime="application/x-custom"))
    submission = DepositSubmission(id="m", files=files)
    found = check_mets(DSpaceMetsAssembler().assemble(submission, tmp_path, STAMP), submission)
    assert [f["mime"] for f in found["files"]] == ["image/jpeg", "application/x-custom"]


def test_stored_entries_with_compression_none(rich: DepositSubmission, tmp_path: Path) -> None:
    package = DSpaceMetsAssembler({"compression": "NONE"}).assemble(rich, tmp_path, STAMP)
    with zipfile.ZipFile(package.path) as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}
    check_mets(package, rich)


def test_only_zip_is_accepted() -> None:
    with pytest.raises(RepositoryConfigError, match="archive must be ZIP, not TAR"):
        DSpaceMetsAssembler({"archive": "TAR"})


def test_reproducible(rich: DepositSubmission, tmp_path: Path) -> None:
    one = DSpaceMetsAssembler().assemble(rich, tmp_path / "1", STAMP)
    two = DSpaceMetsAssembler().assemble(rich, tmp_path / "2", STAMP)
    assert one.path.read_bytes() == two.path.read_bytes()


def test_citation_from_what_is_known(rich: DepositSubmission) -> None:
    bare = dataclasses.replace(rich, persons=(), article=dataclasses.replace(
        rich.article, publication_date=None, doi=None, volume=None, title="Title."))
    assert citation(bare) == "Title. Journal of Tests & Trials."
    assert citation(DepositSubmission(id="x")) is None


def _shape(root: Any) -> dict[str, set[str]]:
    """Element path (qualified names) -> the attribute names seen on it."""
    found: dict[str, set[str]] = {}
    for element in root.iter():
        if isinstance(element.tag, str):
            path = "/".join(etree.QName(e).text for e in
                            [*reversed(list(element.iterancestors())), element])
            found.setdefault(path, set()).update(etree.QName(k).text for k in element.attrib)
    return found


def test_everything_pass_wrote_for_jscholarship_is_in_ours(sample1: DepositSubmission,
                                                           tmp_path: Path) -> None:
    reference = etree.parse(str(Path(__file__).resolve().parents[2] / "fixtures" / "dspace"
                                / "pass-mets-01.xml"), SAFE_PARSER).getroot()
    package = DSpaceMetsAssembler().assemble(sample1, tmp_path, STAMP)
    ours = _shape(etree.fromstring(members(package)["mets.xml"], SAFE_PARSER))
    for path, attributes in _shape(reference).items():
        assert path in ours, path
        assert attributes <= ours[path], (path, attributes - ours[path])
