"""PASS's own files and metadata as they come: a funder code NIHMS does not define, a DOI
or PMID that does not parse, an embargo already lifted. The package is still built (as
PASS builds it), bulk_meta.xml stays valid against the DTD, and what was left out or
written as given is a warning the Deposit's statusMessage carries."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from deposit_services.assemblers.base import Package, create_assembler
from deposit_services.model.submission import (
    DepositSubmission,
    GrantInfo,
    Person,
    PersonType,
)
from tests.unit.assemblers.helpers import (
    FIXTURES,
    STAMP,
    manifest_lines,
    members,
    validate_nihms,
)
from tests.unit.assemblers.test_mets import check_mets

PASS_CONFIG = json.loads((FIXTURES / "pass" / "full-test-repositories.json").read_text())
PMC_OPTIONS: dict[str, Any] = PASS_CONFIG["PubMed Central"]["assembler"]["options"]
AHQR = "johnshopkins.edu:funder:300032"
NIH = "johnshopkins.edu:funder:300484"
VERSIONS = ["nihms-native-2022-05", "nihms-native-2017-07"]
METS = "http://purl.org/net/sword/package/METSDSpaceSIP"


def article(submission: DepositSubmission, **changes: Any) -> DepositSubmission:
    return dataclasses.replace(submission,
                               article=dataclasses.replace(submission.article, **changes))


def nihms(spec: str, submission: DepositSubmission, tmp_path: Path,
          options: dict[str, Any] | None = None) -> Package:
    package = create_assembler(spec, PMC_OPTIONS if options is None else options).assemble(
        submission, tmp_path / "work", STAMP)
    validate_nihms(package)
    return package


# -- item 2: a funder code NIHMS does not define -----------------------------------------------


def test_pass_funder_mapping_with_ahqr_loads_with_one_warning_naming_funder_and_code() -> None:
    """PASS's current NIHMS assembler writes the 2022 format whatever the label says."""
    assembler = create_assembler("nihms-native-2022-05", PMC_OPTIONS)
    assert assembler.warnings == (
        f"funder-mapping: funder {AHQR} maps to 'ahqr', which nihms-native-2022-05 does not "
        "define (allowed: nih, ahrq, aspr, cdc, epa, fda, hhmi, nasa, nist, va); its grants "
        "are left out of bulk_meta.xml",)
    # under the 2017 label of PASS's file, every code the 2017 DTD lacks is a warning
    old = create_assembler("nihms-native-2017-07", PMC_OPTIONS)
    codes = [w.split("'")[1] for w in old.warnings]
    assert sorted(set(codes)) == ["ahqr", "aspr", "cdc", "epa", "fda", "va"]
    assert len(codes) == sum(code not in ("nih", "hhmi", "nasa")
                             for code in PMC_OPTIONS["funder-mapping"].values())


@pytest.mark.parametrize("spec", VERSIONS)
def test_that_funders_grant_is_left_out_and_the_rest_is_sent(
    spec: str, rich: DepositSubmission, tmp_path: Path
) -> None:
    pi = rich.grants[0].pi
    grants = (GrantInfo("R01-AHQR", "AHRQ", AHQR, pi), GrantInfo("R01-NIH", "NIH", NIH, pi))
    package = nihms(spec, dataclasses.replace(rich, grants=grants), tmp_path)
    root = validate_nihms(package)
    ids = [(g.get("id"), g.get("funder") or g.get("authority")) for g in root.iter("grant")]
    assert ids == [("R01-NIH", "nih")]
    assert "ahqr" not in members(package)["bulk_meta.xml"].decode()
    assert package.warnings == (
        f"grant R01-AHQR of funder {AHQR} left out of bulk_meta.xml: funder-mapping code "
        f"'ahqr' is not a {spec} funder",)


# -- item 5: a DOI that does not parse ---------------------------------------------------------


@pytest.mark.parametrize("spec", VERSIONS)
def test_nihms_leaves_out_a_doi_that_does_not_parse(
    spec: str, rich: DepositSubmission, tmp_path: Path
) -> None:
    package = nihms(spec, article(rich, doi="abcdef"), tmp_path)
    root = validate_nihms(package)
    holder = root if root.tag == "manuscript-submit" else root.find("manuscript")
    assert holder is not None and holder.get("doi") is None
    assert package.warnings == ("doi 'abcdef' is not a DOI (10.<registrant>/<suffix>): left "
                                "out of bulk_meta.xml",)


@pytest.mark.parametrize("spec", VERSIONS)
def test_nihms_writes_a_doi_without_its_resolver(
    spec: str, rich: DepositSubmission, tmp_path: Path
) -> None:
    package = nihms(spec, article(rich, doi=" https://doi.org/10.1039/C7FO01251A "), tmp_path)
    root = validate_nihms(package)
    holder = root if root.tag == "manuscript-submit" else root.find("manuscript")
    assert holder is not None and holder.get("doi") == "10.1039/C7FO01251A"
    assert package.warnings == ()


def test_mets_writes_a_doi_that_does_not_parse_as_given(rich: DepositSubmission,
                                                        tmp_path: Path) -> None:
    submission = article(rich, doi="abcdef")
    package = create_assembler(METS, {}).assemble(submission, tmp_path / "w", STAMP)
    found = check_mets(package, submission)
    assert found["dc"]["hasVersion"] == ["abcdef"]
    assert "doi.org" not in found["dc"]["bibliographicCitation"][0]  # no broken link
    assert package.warnings == ("doi 'abcdef' is not a DOI (10.<registrant>/<suffix>): "
                                "written as given in mets.xml",)


def test_simple_zip_and_binary_do_not_care_about_the_doi(rich: DepositSubmission,
                                                         tmp_path: Path) -> None:
    submission = article(rich, doi="abcdef")
    simple = create_assembler("simple", {}).assemble(submission, tmp_path / "s", STAMP)
    assert simple.warnings == ()
    one = dataclasses.replace(submission, files=submission.files[:1])
    assert create_assembler("binary", {}).assemble(one, tmp_path / "b", STAMP).warnings == ()


# -- item 7: NIHMS manifest and metadata as PASS writes them -----------------------------------


@pytest.mark.parametrize("spec", VERSIONS)
def test_every_manifest_line_has_a_label(spec: str, rich: DepositSubmission,
                                         tmp_path: Path) -> None:
    lines = manifest_lines(nihms(spec, rich, tmp_path, {}))
    assert all(len(line) == 3 and line[1] for line in lines), lines
    assert lines[0] == ["bulksub_meta_xml", "Submission Metadata", "bulk_meta.xml"]
    labelled = dataclasses.replace(rich, files=(
        dataclasses.replace(rich.files[0], label="Custodial content"), *rich.files[1:]))
    assert manifest_lines(nihms(spec, labelled, tmp_path / "l", {}))[1] == [
        "manuscript", "Custodial content", "manuscript.pdf"]


def test_the_submitter_is_an_author_as_pass_writes_it(rich: DepositSubmission,
                                                      tmp_path: Path) -> None:
    stranger = Person(PersonType.SUBMITTER, first_name="Proxy", last_name="Person",
                      email="proxy@example.org")  # not among the article's authors
    submission = dataclasses.replace(rich, persons=(stranger, *rich.persons[1:]))
    root = validate_nihms(nihms("nihms-native-2022-05", submission, tmp_path))
    [person] = root.findall("contacts/person")
    assert person.get("person-type") == "author"


@pytest.mark.parametrize(
    ("end", "expected"),
    [(date(2024, 5, 3), None), (date(2024, 5, 4), None), (date(2024, 5, 5), "4"),
     (date(2030, 1, 1), "12")],
    ids=["lifted", "lifted-today", "tomorrow", "far"],
)
def test_embargo_months_left_out_when_the_lift_date_has_passed(
    end: date, expected: str | None, rich: DepositSubmission, tmp_path: Path
) -> None:
    # published 2024-01-15, package dated 2024-05-04
    root = validate_nihms(nihms("nihms-native-2022-05", article(rich, embargo_end_date=end),
                                tmp_path))
    assert root.get("embargo-months") == expected
    old = validate_nihms(nihms("nihms-native-2017-07", article(rich, embargo_end_date=end),
                               tmp_path / "old"))
    assert old.find("manuscript").get("embargo") == expected


@pytest.mark.parametrize(
    ("pmid", "written", "warned"),
    [("123456", "123456", False), (" PMID: 29688251 ", "29688251", False),
     ("fedcba", None, True), ("PMC123456", None, True), ("0", None, True), ("", None, False)],
)
@pytest.mark.parametrize("spec", VERSIONS)
def test_a_pmid_that_is_not_a_pubmed_id_is_left_out_with_a_warning(
    spec: str, pmid: str, written: str | None, warned: bool, rich: DepositSubmission,
    tmp_path: Path
) -> None:
    package = nihms(spec, article(rich, pmid=pmid), tmp_path)
    root = validate_nihms(package)
    holder = root if root.tag == "manuscript-submit" else root.find("manuscript")
    assert holder is not None and holder.get("pmid") == written
    expected = (f"pmid {pmid.strip()!r} is not a PubMed id (digits only): left out of "
                "bulk_meta.xml",)
    assert package.warnings == (expected if warned else ())
