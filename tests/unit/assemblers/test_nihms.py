"""NIHMS bulk packages (2022-05 and 2017-07): manifest rules and bulk_meta.xml against
the DTD of each version, for every package built here."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from deposit_services.assemblers.base import Package, create_assembler
from deposit_services.assemblers.nihms import embargo_months, plan_manifest
from deposit_services.errors import AssemblyError, RepositoryConfigError
from deposit_services.model.entities import FileRole
from deposit_services.model.submission import (
    ArticleMetadata,
    DepositSubmission,
    Issn,
    IssnPubType,
    JournalMetadata,
    Person,
    PersonType,
)
from tests.unit.assemblers.helpers import (
    STAMP,
    assert_figures_match_disk,
    deposit_file,
    manifest_lines,
    members,
    no_spool_left,
    validate_nihms,
    write,
)

VERSIONS = ["nihms-native-2022-05", "nihms-native-2017-07"]
MAPPING = {"funder-mapping": {"funder:nei": "nih", "FUNDER:HHMI": "hhmi"}}


def build(spec: str, submission: DepositSubmission, tmp_path: Path,
          options: dict[str, Any] | None = None) -> Package:
    package = create_assembler(spec, MAPPING if options is None else options).assemble(
        submission, tmp_path / "work", STAMP)
    assert_figures_match_disk(package)
    validate_nihms(package)
    return package


@pytest.mark.parametrize("spec", VERSIONS)
def test_package_is_flat_and_manifest_lists_every_file(
    spec: str, rich: DepositSubmission, tmp_path: Path
) -> None:
    package = build(spec, rich, tmp_path)
    assert re.fullmatch(rf"{spec}_2024-05-04_14-22-25_sub-1\.tar\.gz", package.name)
    assert package.mime_type == "application/gzip"
    found = members(package)
    assert list(found)[:2] == ["manifest.txt", "bulk_meta.xml"]
    assert all("/" not in name for name in found)
    lines = manifest_lines(package)
    assert lines == [
        ["bulksub_meta_xml", "Submission Metadata", "bulk_meta.xml"],
        ["manuscript", "Manuscript", "manuscript.pdf"],
        ["figure", "figure-1", "fig1.png"],
        ["figure", "figure-2", "fig2.png"],
        ["table", "Table of results", "table.csv"],
        ["supplement", "Raw data", "data.bin"],
        ["supplement", "Raw data-1", "more.bin"],
    ]
    assert sorted(found) == sorted(["manifest.txt", *(line[2] for line in lines)])
    for file in rich.files:
        path = Path(file.location.removeprefix("file://"))
        assert found[path.name] == path.read_bytes()


@pytest.mark.parametrize("spec", VERSIONS)
def test_user_files_called_like_package_files_are_renamed(
    spec: str, files_dir: Path, tmp_path: Path, rich: DepositSubmission
) -> None:
    clash = (
        deposit_file(write(files_dir / "u", "manifest.txt", b"user manifest"),
                     FileRole.SUPPLEMENTAL, label="User manifest"),
        deposit_file(write(files_dir / "u", "BULK_META.xml", b"<user/>"), FileRole.SUPPLEMENTAL),
        deposit_file(write(files_dir / "v", "manifest.txt", b"another"), FileRole.FIGURE),
    )
    package = build(spec, dataclasses.replace(rich, files=rich.files + clash), tmp_path)
    lines = manifest_lines(package)
    assert lines[-3:] == [
        ["supplement", "User manifest", "SUBMISSION-manifest.txt"],
        ["supplement", "supplement-1", "SUBMISSION-BULK_META.xml"],
        ["figure", "figure-3", "SUBMISSION-manifest-2.txt"],
    ]
    found = members(package)
    assert found["SUBMISSION-manifest.txt"] == b"user manifest"
    assert found["SUBMISSION-BULK_META.xml"] == b"<user/>"
    assert found["manifest.txt"].startswith(b"bulksub_meta_xml\t")


def test_labels_are_unique_per_type_numbered_as_pass_numbers_them(files_dir: Path) -> None:
    files = (
        deposit_file(write(files_dir, "m.pdf", b"m"), FileRole.MANUSCRIPT,
                     label="Custodial content"),
        deposit_file(write(files_dir, "a.png", b"a"), FileRole.FIGURE, label="figure-2"),
        deposit_file(write(files_dir, "b.png", b"b"), FileRole.FIGURE),
        deposit_file(write(files_dir, "c.png", b"c"), FileRole.FIGURE),
        deposit_file(write(files_dir, "d.png", b"d"), FileRole.FIGURE, label=" Fig\t2\n"),
        deposit_file(write(files_dir, "e.png", b"e"), FileRole.FIGURE, label="Fig 2"),
        deposit_file(write(files_dir, "f.png", b"f"), FileRole.FIGURE, label="Fig 2"),
        deposit_file(write(files_dir, "g.png", b"g"), FileRole.FIGURE, label="fig 2"),
        deposit_file(write(files_dir, "t.csv", b"t"), FileRole.TABLE, label="figure-2"),
        deposit_file(write(files_dir, "m2.pdf", b"m2"), FileRole.MANUSCRIPT),
        deposit_file(write(files_dir, "x.dat", b"x"), None),
    )
    entries = plan_manifest(DepositSubmission(id="s", files=files))
    assert [(e.type.value, e.label, e.name) for e in entries] == [
        ("bulksub_meta_xml", "Submission Metadata", "bulk_meta.xml"),
        ("manuscript", "Custodial content", "m.pdf"),
        ("figure", "figure-2", "a.png"),
        ("figure", "figure-1", "b.png"),
        ("figure", "figure-3", "c.png"),   # figure-2 is taken: the next free number
        ("figure", "Fig 2", "d.png"),      # tab and line break become spaces
        ("figure", "Fig 2-1", "e.png"),    # a repeat is numbered from -1, as PASS does
        ("figure", "Fig 2-2", "f.png"),
        ("figure", "fig 2", "g.png"),      # case-sensitive, as PASS compares them
        ("table", "figure-2", "t.csv"),    # labels are unique per type only
        ("supplement", "supplement-1", "m2.pdf"),  # a second manuscript is a supplement
        ("supplement", "supplement-2", "x.dat"),
    ]


def test_bulk_meta_2022_carries_journal_article_contact_grants(
    rich: DepositSubmission, tmp_path: Path
) -> None:
    root = validate_nihms(build("nihms-native-2022-05", rich, tmp_path))
    assert root.tag == "manuscript-submit"
    assert root.attrib == {"embargo-months": "6", "pmid": "123456", "doi": "10.1234/abc.5"}
    meta = root.find("journal-meta")
    assert meta is not None
    assert [(e.tag, e.get("issn-type"), e.text) for e in meta] == [
        ("nlm-ta", None, "J Tests"), ("issn", "print", "1234-5678"),
        ("issn", "electronic", "8765-4321"), ("journal-title", None, "Journal of Tests & Trials")]
    assert root.findtext("manuscript-title") == "Two stupendous minds"
    [person] = root.findall("contacts/person")
    assert person.attrib == {"fname": "Ada", "lname": "Lovelace", "email": "ada@example.org",
                             "person-type": "author"}  # the submitter is one of the authors
    grants = [(g.get("id"), g.get("funder"), g.find("PI").attrib)
              for g in root.findall("grants/grant")]
    pi = {"fname": "Grace", "lname": "Hopper", "email": "grace@example.org"}
    assert grants == [("R01EY1", "nih", pi), ("HHMI-7", "hhmi", pi)]  # X-1 is not mapped


def test_bulk_meta_2017_nests_grants_under_their_pi(rich: DepositSubmission,
                                                    tmp_path: Path) -> None:
    root = validate_nihms(build("nihms-native-2017-07", rich, tmp_path))
    assert root.tag == "nihms-submit"
    manuscript = root.find("manuscript")
    assert manuscript is not None
    assert manuscript.attrib == {"doi": "10.1234/abc.5", "pmid": "123456", "embargo": "6"}
    assert [(e.tag, e.get("journal-id-type") or e.get("pub-type"), e.text)
            for e in root.find("journal-meta")
            ] == [("journal-id", "nlm-ta", "J Tests"), ("issn", "ppub", "1234-5678"),
                  ("issn", "epub", "8765-4321"),
                  ("journal-title", None, "Journal of Tests & Trials")]
    assert root.findtext("title") == "Two stupendous minds"
    people = root.findall("contacts/person")
    assert [(p.get("fname"), p.get("pi"), p.get("author")) for p in people] == [
        ("Ada", "no", "yes"), ("Grace", "yes", "no")]
    assert [(g.get("id"), g.get("authority")) for g in people[1]] == [
        ("R01EY1", "nih"), ("HHMI-7", "hhmi")]


def test_the_submitter_who_is_the_pi_appears_once(rich: DepositSubmission,
                                                  tmp_path: Path) -> None:
    grace = rich.grants[0].pi
    assert grace is not None
    submitter = dataclasses.replace(grace, type=PersonType.SUBMITTER)
    submission = dataclasses.replace(rich, persons=(submitter, *rich.persons[1:]))
    root = validate_nihms(build("nihms-native-2017-07", submission, tmp_path))
    people = root.findall("contacts/person")
    assert [(p.get("fname"), p.get("pi"), p.get("author")) for p in people] == [
        ("Grace", "yes", "no")]
    root22 = validate_nihms(build("nihms-native-2022-05", submission, tmp_path))
    assert root22.find("contacts/person").get("person-type") == "author"  # as PASS writes it


@pytest.mark.parametrize(
    ("published", "end", "months"),
    [
        ("2024-01-15", date(2024, 6, 30), 6),   # 5 months 15 days: rounded up
        ("2024-01-15", date(2024, 7, 15), 6),
        ("2024-01", date(2024, 7, 15), 7),
        ("2024", date(2025, 1, 1), 12),
        ("2024-01-15", date(2026, 1, 1), 12),   # capped: NIHMS allows 0 to 12
        ("2024-09-12", date(2024, 6, 30), 0),   # ended before publication
        (None, date(2024, 11, 4), 6),           # no publication date: from the package date
        ("Spring 2024", date(2024, 6, 4), 1),   # unreadable: from the package date
    ],
)
def test_embargo_months(published: str | None, end: date, months: int) -> None:
    submission = DepositSubmission(id="s", article=ArticleMetadata(
        publication_date=published, embargo_end_date=end))
    assert embargo_months(submission, STAMP) == months


def test_no_embargo_means_no_embargo_attribute(rich: DepositSubmission, tmp_path: Path) -> None:
    article = dataclasses.replace(rich.article, embargo_end_date=None, pmid=None)
    root = validate_nihms(build("nihms-native-2022-05",
                                dataclasses.replace(rich, article=article), tmp_path))
    assert root.attrib == {"doi": "10.1234/abc.5"}
    assert embargo_months(DepositSubmission(id="s"), STAMP) is None


@pytest.mark.parametrize("spec", VERSIONS)
def test_zip_option_and_minimal_metadata_still_valid(
    spec: str, files_dir: Path, tmp_path: Path
) -> None:
    submission = DepositSubmission(
        id="min",
        article=ArticleMetadata(title="T"),
        journal=JournalMetadata(issns=(Issn("1111-2222", IssnPubType.ELECTRONIC),)),
        persons=(Person(PersonType.SUBMITTER, full_name="Mary Ann Evans",
                        email="m@example.org"),),
        files=(deposit_file(write(files_dir, "m.docx", b"doc"), FileRole.MANUSCRIPT),),
    )
    package = build(spec, submission, tmp_path, {"archive": "ZIP"})
    assert package.name.endswith("_min.zip") and package.mime_type == "application/zip"
    root = validate_nihms(package)
    person = root.find("contacts/person")
    assert person is not None
    assert (person.get("fname"), person.get("mname"), person.get("lname")) == (
        "Mary", "Ann", "Evans")
    assert root.find("grants") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"files": "no-manuscript"}, "has no file with the MANUSCRIPT role"),
        ({"article": ArticleMetadata(title=None)}, "has no article title"),
        ({"journal": JournalMetadata(title="J", issns=(Issn("1-2", None),))},
         "NLM title abbreviation or a typed ISSN"),
        ({"persons": ()}, "has no submitter"),
        ({"persons": (Person(PersonType.SUBMITTER, full_name="Cher", email="c@x"),)},
         "first and last name for the submitter"),
    ],
)
def test_unusable_metadata_is_an_assembly_error_that_says_what(
    change: dict[str, Any], message: str, rich: DepositSubmission, tmp_path: Path
) -> None:
    if change.get("files") == "no-manuscript":
        change = {"files": rich.files[1:]}
    submission = dataclasses.replace(rich, **change)
    with pytest.raises(AssemblyError, match=message):
        create_assembler("nihms-native-2022-05", MAPPING).assemble(
            submission, tmp_path / "work", STAMP)
    assert no_spool_left(tmp_path / "work")


def test_submitter_email_is_required_by_the_2022_dtd(rich: DepositSubmission,
                                                    tmp_path: Path) -> None:
    persons = (Person(PersonType.SUBMITTER, first_name="A", last_name="B"),)
    with pytest.raises(AssemblyError, match="submitter's email"):
        build("nihms-native-2022-05", dataclasses.replace(rich, persons=persons), tmp_path)


def test_funder_mapping_is_checked_against_the_version() -> None:
    assert create_assembler("nihms-native-2022-05", {"funder-mapping": {"k": "ahrq"}}
                            ).warnings == ()
    [warning] = create_assembler("nihms-native-2017-07", {"funder-mapping": {"k": "ahrq"}}
                                 ).warnings
    assert warning == ("funder-mapping: funder k maps to 'ahrq', which nihms-native-2017-07 "
                       "does not define (allowed: nih, wt, hhmi, era, nasa); its grants are "
                       "left out of bulk_meta.xml")
    with pytest.raises(RepositoryConfigError, match="must map funder localKeys"):
        create_assembler("nihms-native-2022-05", {"funder-mapping": ["nih"]})
    with pytest.raises(RepositoryConfigError, match="archive must be ZIP or TAR"):
        create_assembler("nihms-native-2022-05", {"archive": "NONE"})


def test_same_submission_same_package(rich: DepositSubmission, tmp_path: Path) -> None:
    one = build("nihms-native-2022-05", rich, tmp_path / "1")
    two = build("nihms-native-2022-05", rich, tmp_path / "2")
    assert one.path.read_bytes() == two.path.read_bytes()
    other_time = create_assembler("nihms-native-2022-05", MAPPING).assemble(
        rich, tmp_path / "3", datetime(2024, 5, 4, 14, 23, 25, tzinfo=UTC))
    assert other_time.name == "nihms-native-2022-05_2024-05-04_14-23-25_sub-1.tar.gz"
