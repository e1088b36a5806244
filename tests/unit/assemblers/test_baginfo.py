"""bag-info.txt from PASS's Handlebars template option (``baginfo-template-resource``):
found beside repositories.json or in the configured template directory, never at an
arbitrary path; PASS's own ``/bag-info.hbm`` works unchanged; every bag validates."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bagit
import pytest

from deposit_services.assemblers.baginfo import (
    DEFAULT_TEMPLATE,
    find_template,
    human_size,
    java_offset_time,
)
from deposit_services.assemblers.bagit import BagItAssembler
from deposit_services.assemblers.base import AssemblerContext, create_assembler
from deposit_services.errors import RepositoryConfigError
from deposit_services.model.submission import DepositSubmission
from tests.unit.assemblers.helpers import FIXTURES, STAMP, extract

PASS_HBM = FIXTURES / "pass" / "bag-info.hbm"
OPTION = "baginfo-template-resource"


def bag_info(options: dict[str, Any], submission: DepositSubmission, tmp_path: Path,
             dirs: tuple[Path, ...] = ()) -> tuple[bagit.Bag, str]:
    assembler = create_assembler("bagit-1.0", options, template_dirs=dirs)
    package = assembler.assemble(submission, tmp_path / "work", STAMP)
    top = next(extract(package, tmp_path / "unpacked").iterdir())
    bag = bagit.Bag(str(top))
    bag.validate()
    return bag, (top / "bag-info.txt").read_text()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    folder.mkdir()
    return folder


def test_pass_own_template_file_renders_as_pass_renders_it(
    rich: DepositSubmission, config_dir: Path, tmp_path: Path
) -> None:
    """PASS's bag-info.hbm beside repositories.json, with PASS's option value: the fields
    PASS hands it, HTML-escaped as Handlebars escapes {{name}}; Payload-Oxum, which the
    file writes as count.octets, is made right so that the bag validates."""
    shutil.copy(PASS_HBM, config_dir / "bag-info.hbm")
    submission = dataclasses.replace(rich, article=dataclasses.replace(
        rich.article, doi="10.1234/a&b"))
    options = {OPTION: "/bag-info.hbm", "contact-name": "Repository Team",
               "contact-email": "repo@example.org", "contact-phone": "+1 410"}
    bag, text = bag_info(options, submission, tmp_path, (config_dir,))
    octets = sum(Path(f.location.removeprefix("file://")).stat().st_size
                 for f in submission.files)
    assert bag.info["Payload-Oxum"] == f"{octets}.6"
    assert bag.info["External-Identifier"] == "10.1234/a&amp;b"  # Handlebars escaping
    assert bag.info["Contact-Phone"] == "repo@example.org"  # PASS's template swaps these two
    assert bag.info["Contact-Email"] == "+1 410"
    assert bag.info["Internal-Sender-Identifier"] == "sub-1"
    assert bag.info["Bag-Size"] == "1 MiB"
    assert bag.info["Bagging-Date"] == "2024-05-04"
    assert bag.info["External-Description"] == (
        "Submitted as sub-1 to PASS on 2024-05-04T14:22:25Z by Ada Lovelace "
        "(ada@example.org), published at 10.1234/a&amp;b")
    assert "Source-Organization" not in text  # no value: the empty field is left out


def test_no_option_and_a_missing_bag_info_hbm_are_pass_template_fixed(
    rich: DepositSubmission, tmp_path: Path
) -> None:
    _, default = bag_info({}, rich, tmp_path / "a")
    _, named = bag_info({OPTION: "/bag-info.hbm"}, rich, tmp_path / "b", (tmp_path,))
    _, classpath = bag_info({OPTION: "classpath:/bag-info.hbm"}, rich, tmp_path / "c")
    assert default == named == classpath
    assert "Payload-Oxum: " in default and "Bagging-Date: 2024-05-04" in default
    assert "{{" not in DEFAULT_TEMPLATE.replace("{{{", "").replace("{{#if", "").replace(
        "{{/if", "")  # every value is written raw (triple braces): no HTML entities


def test_templates_are_found_beside_repositories_json_then_in_the_template_dir(
    rich: DepositSubmission, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    (first / "sub").mkdir(parents=True)
    (second / "sub").mkdir(parents=True)
    (second / "sub" / "mine.hbm").write_text("Contact-Name: second {{{submissionUri}}}\n")
    _, text = bag_info({OPTION: "sub/mine.hbm"}, rich, tmp_path / "a", (first, second))
    assert text == "Contact-Name: second sub-1\n"
    (first / "sub" / "mine.hbm").write_text(
        "Contact-Name: first\nPayload-Oxum: {{bagSizeBytes}}.{{custodialFileCount}}\n"
        "{{#each depositSubmission.metadata.persons}}\n{{#if email}}\nContact-Email: {{email}}\n"
        "{{/if}}\n{{/each}}\n")
    _, text = bag_info({OPTION: "/sub/mine.hbm"}, rich, tmp_path / "b", (first, second))
    assert text.startswith("Contact-Name: first\nPayload-Oxum: ")
    assert text.count("Contact-Email: ") == 2  # the submitter and the PI have emails


@pytest.mark.parametrize("name", ["../secret.hbm", "/../../etc/passwd", "a/../../b.hbm",
                                  "..\\secret.hbm", ""])
def test_paths_out_of_the_template_directories_are_refused(name: str, tmp_path: Path) -> None:
    (tmp_path / "secret.hbm").write_text("Contact-Name: secret\n")
    inside = tmp_path / "config"
    inside.mkdir()
    with pytest.raises(RepositoryConfigError, match="must name a file inside"):
        BagItAssembler({OPTION: name}, AssemblerContext(template_dirs=(inside,)))


def test_an_absolute_path_is_looked_up_inside_the_directories_only(tmp_path: Path) -> None:
    outside = tmp_path / "outside.hbm"
    outside.write_text("Contact-Name: outside\n")
    inside = tmp_path / "config"
    inside.mkdir()
    with pytest.raises(RepositoryConfigError, match=r"no such file in .*config"):
        BagItAssembler({OPTION: str(outside)}, AssemblerContext(template_dirs=(inside,)))


def test_a_symbolic_link_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside.hbm").write_text("Contact-Name: outside\n")
    inside = tmp_path / "config"
    inside.mkdir()
    (inside / "link.hbm").symlink_to(tmp_path / "outside.hbm")
    with pytest.raises(RepositoryConfigError, match="leads outside"):
        find_template("link.hbm", (inside,))


@pytest.mark.parametrize(
    ("template", "message"),
    [("Contact-Name: {{{submissionUri}}\n", "does not compile"),
     ("Contact-Name: {{format submissionUri}}\n", "cannot be rendered"),
     ("just words\n", "not 'Label: value'")],
)
def test_a_broken_template_is_a_configuration_error_when_the_assembler_is_built(
    template: str, message: str, tmp_path: Path
) -> None:
    (tmp_path / "broken.hbm").write_text(template)
    with pytest.raises(RepositoryConfigError, match=message):
        create_assembler("bagit-1.0", {OPTION: "broken.hbm"}, template_dirs=(tmp_path,))


def test_a_missing_template_names_the_directories(tmp_path: Path) -> None:
    with pytest.raises(RepositoryConfigError, match=r"'other.hbm': no such file in .*"):
        create_assembler("bagit-1.0", {OPTION: "other.hbm"}, template_dirs=(tmp_path,))
    with pytest.raises(RepositoryConfigError, match="no template directory configured"):
        create_assembler("bagit-1.0", {OPTION: "other.hbm"})


def test_a_doi_that_does_not_parse_is_written_as_given_with_a_warning(
    rich: DepositSubmission, tmp_path: Path
) -> None:
    submission = dataclasses.replace(rich, article=dataclasses.replace(rich.article,
                                                                       doi="abcdef"))
    package = create_assembler("bagit-1.0", {}).assemble(submission, tmp_path / "w", STAMP)
    top = next(extract(package, tmp_path / "x").iterdir())
    bag = bagit.Bag(str(top))
    bag.validate()
    assert bag.info["External-Identifier"] == "abcdef"
    assert package.warnings == ("doi 'abcdef' is not a DOI (10.<registrant>/<suffix>): "
                                "written as given in bag-info.txt",)


def test_values_with_line_breaks_stay_on_their_line(rich: DepositSubmission,
                                                    tmp_path: Path) -> None:
    bag, _ = bag_info({"contact-name": "Repository\nTeam", "organization-address": "a\r\nb"},
                      rich, tmp_path)
    assert bag.info["Contact-Name"] == "Repository Team"
    assert bag.info["Organization-Address"] == "a b"


@pytest.mark.parametrize(("octets", "shown"), [(0, "0 bytes"), (1023, "1023 bytes"),
                                               (1024, "1 KiB"), (5 * 1024 ** 2 + 7, "5 MiB"),
                                               (3 * 1024 ** 3, "3 GiB"), (2 * 1024 ** 4, "2 TiB")])
def test_bag_size_as_pass_writes_it(octets: int, shown: str) -> None:
    assert human_size(octets) == shown


def test_submission_date_as_java_formats_it() -> None:
    assert java_offset_time(STAMP) == "2024-05-04T14:22:25Z"
    assert java_offset_time(datetime(2024, 5, 4, 1, 2, 3, 450000, tzinfo=UTC)) == (
        "2024-05-04T01:02:03.45Z")
    assert java_offset_time(None) is None


def test_options_replace_or_add_the_fields_they_name(rich: DepositSubmission,
                                                     tmp_path: Path) -> None:
    options = {"external-description": "Our words", "bag-group-identifier": "group-7",
               "source-organization": "JHU"}
    bag, text = bag_info(options, rich, tmp_path)
    assert bag.info["External-Description"] == "Our words"  # replaces the template's
    assert bag.info["Bag-Group-Identifier"] == "group-7"    # the template has none: added
    assert bag.info["Source-Organization"] == "JHU"         # through the template
    assert text.count("External-Description") == 1
