"""Our copy of PASS's sample1 graph (tests/fixtures/graphs) through the graph loader, the
DepositSubmission builder and every assembler, checked the way each consumer would."""

from __future__ import annotations

from pathlib import Path

import bagit

from deposit_services.assemblers.base import create_assembler
from deposit_services.model.submission import DepositSubmission
from tests.unit.assemblers.helpers import (
    STAMP,
    assert_figures_match_disk,
    extract,
    manifest_lines,
    members,
    validate_nihms,
)
from tests.unit.assemblers.test_mets import check_mets

FILES = Path(__file__).resolve().parents[2] / "fixtures" / "graphs" / "submissions" / "sample1"
FUNDERS = {"funder-mapping": {"johnshopkins.edu:funder:300484": "nih",
                              "johnshopkins.edu:funder:300293": "nih"}}


def test_sample1_nihms_packages(sample1: DepositSubmission, tmp_path: Path) -> None:
    for spec in ("nihms-native-2022-05", "nihms-native-2017-07"):
        package = create_assembler(spec, FUNDERS).assemble(sample1, tmp_path / spec, STAMP)
        assert package.name == f"{spec}_2024-05-04_14-22-25_15.tar.gz"
        assert_figures_match_disk(package)
        root = validate_nihms(package)
        assert manifest_lines(package) == [  # the labels PASS writes for sample1
            ["bulksub_meta_xml", "Submission Metadata", "bulk_meta.xml"],
            ["supplement", "Custodial content", "Chart.jpg"],
            ["figure", "Custodial content", "Figure1.tif"],
            ["figure", "Custodial content-1", "Figure2.png"],
            ["manuscript", "Custodial content", "Sample2.doc"],
            ["table", "Custodial content", "Table.ods"],
            ["supplement", "Custodial content, meant to conflict with NIH package spec",
             "SUBMISSION-bulk_meta.xml"],
            ["supplement", "Custodial content, meant to conflict with NIH package spec-1",
             "SUBMISSION-manifest.txt"],
            ["supplement", "Custodial content with a space in the filename", "ilford panf.pdf"],
        ]
        found = members(package)
        assert found["SUBMISSION-bulk_meta.xml"] == (FILES / "bulk_meta.xml").read_bytes()
        assert found["SUBMISSION-manifest.txt"] == (FILES / "manifest.txt").read_bytes()
        assert found["ilford panf.pdf"] == (FILES / "ilford panf.pdf").read_bytes()
        assert found["bulk_meta.xml"] != (FILES / "bulk_meta.xml").read_bytes()
        text = found["bulk_meta.xml"].decode()
        for expected in ("Food Funct", "2042-6496", "2042-650X", "Food &amp; Function",
                         "10.1039/c7fo01251a", "suzannev@jhu.edu", "R01EY026617",
                         "R01EY026618", "Specific protein supplementation"):
            assert expected in text, expected
        # the embargo ended 2018-06-30, before the package's date: no embargo attribute
        holder = root if spec == "nihms-native-2022-05" else root.find("manuscript")
        assert holder is not None
        assert holder.get("embargo-months" if holder is root else "embargo") is None
        assert holder.get("pmid") is None  # sample1's pmid is "fedcba"
        assert package.warnings == ("pmid 'fedcba' is not a PubMed id (digits only): left "
                                    "out of bulk_meta.xml",)


def test_sample1_bag_validates(sample1: DepositSubmission, tmp_path: Path) -> None:
    package = create_assembler("bagit-1.0", {"archive": "TAR", "compression": "GZIP"}).assemble(
        sample1, tmp_path / "work", STAMP)
    assert_figures_match_disk(package)
    top = next(extract(package, tmp_path / "x").iterdir())
    bag = bagit.Bag(str(top))
    bag.validate()
    assert sorted(bag.payload_files()) == sorted(
        f"data/{p.name}" for p in FILES.iterdir())
    assert bag.info["External-Identifier"] == "10.1039/c7fo01251a"
    assert bag.info["Payload-Oxum"] == (
        f"{sum(p.stat().st_size for p in FILES.iterdir())}.8")


def test_sample1_mets_sip_carries_every_field(sample1: DepositSubmission,
                                              tmp_path: Path) -> None:
    package = create_assembler("http://purl.org/net/sword/package/METSDSpaceSIP", {}).assemble(
        sample1, tmp_path / "work", STAMP)
    found = check_mets(package, sample1)
    dc = found["dc"]
    assert dc["title"][0].startswith("Specific protein supplementation")
    assert dc["abstract"][0].startswith("Differential enhancement")
    assert dc["publisher"] == ["Royal Society of Chemistry (RSC)"]
    assert dc["contributor"] == ["Tania Marchbank", "Nikki Mandir", "Denis Calnan",
                                 "Robert A. Goodlad", "Theo Podas", "Raymond J. Playford"]
    assert dc["bibliographicCitation"][0].startswith(
        "Tania Marchbank, Nikki Mandir, Denis Calnan, et al. (2018). Specific protein")
    assert dc["bibliographicCitation"][0].endswith(
        "Food & Function, 9(1). https://doi.org/10.1039/c7fo01251a")
    assert found["dim"]["local.embargo.lift"] == "2018-06-30"
    assert found["dim"]["local.embargo.terms"] == "2018-06-30"
    assert sorted(f["href"] for f in found["files"]) == sorted(
        f"data/{p.name}" for p in FILES.iterdir())
    by_href = {f["href"]: f for f in found["files"]}
    assert by_href["data/Chart.jpg"]["mime"] == "image/jpeg"  # PASS's image/jpg, fixed
    assert by_href["data/Table.ods"]["mime"] == "application/vnd.oasis.opendocument.spreadsheet"


def test_sample1_simple_zip_and_binary(sample1: DepositSubmission, tmp_path: Path) -> None:
    simple = create_assembler("simple", {}).assemble(sample1, tmp_path / "s", STAMP)
    assert_figures_match_disk(simple)
    assert sorted(members(simple)) == sorted(
        [p.name for p in FILES.iterdir()] + ["manifest-sha256.txt"])
    binary = create_assembler("binary", {"select": "manuscript"}).assemble(
        sample1, tmp_path / "b", STAMP)
    assert binary.name == "15_Sample2.doc" and binary.mime_type == "application/msword"
    assert binary.path.read_bytes() == (FILES / "Sample2.doc").read_bytes()
