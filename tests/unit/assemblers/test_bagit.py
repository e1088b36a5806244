"""BagIt 1.0 bags: every bag built here is unpacked and validated by the ``bagit``
library from PyPI (checksums recomputed, Payload-Oxum and tag manifests checked)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import bagit
import pytest

from deposit_services.assemblers.bagit import BagItAssembler
from deposit_services.assemblers.base import Package
from deposit_services.errors import RepositoryConfigError
from deposit_services.model.submission import DepositFile, DepositSubmission
from tests.unit.assemblers.helpers import STAMP, assert_figures_match_disk, extract, write

OPTIONS = {"source-organization": "Johns Hopkins University",
           "organization-address": "3400 N. Charles St.\nBaltimore, MD",
           "contact-name": "Repository Team", "contact-email": "repo@example.org",
           "contact-phone": "+1 410 000 0000"}


def validated_bag(package: Package, tmp_path: Path) -> bagit.Bag:
    """Unpack ``package`` and validate its one top-level bag with bagit-python."""
    assert_figures_match_disk(package)
    root = extract(package, tmp_path / "unpacked")
    [top] = list(root.iterdir())
    assert top.name == package.name.split(".")[0]  # RFC 8493 4.2: named after the bag
    bag = bagit.Bag(str(top))
    bag.validate()
    return bag


@pytest.mark.parametrize(
    "options",
    [{"archive": "ZIP"}, {"archive": "ZIP", "compression": "NONE"},
     {"archive": "TAR", "compression": "GZIP"}, {"archive": "TAR", "compression": "BZIP2"},
     {"archive": "TAR", "compression": "NONE", "algorithms": ["sha256", "md5", "sha512"]}],
    ids=["zip", "zip-stored", "tar-gz", "tar-bz2", "tar-three-algorithms"],
)
def test_bag_validates_in_every_serialisation(
    options: dict[str, Any], rich: DepositSubmission, tmp_path: Path
) -> None:
    package = BagItAssembler({**OPTIONS, **options}).assemble(rich, tmp_path / "work", STAMP)
    assert package.specification == "bagit-1.0"
    bag = validated_bag(package, tmp_path)
    algorithms = options.get("algorithms", ["sha512"])
    assert sorted(bag.algorithms) == sorted(algorithms)
    top = Path(bag.path)
    for alg in algorithms:
        assert (top / f"manifest-{alg}.txt").is_file()
        assert (top / f"tagmanifest-{alg}.txt").is_file()
    assert sorted(bag.payload_files()) == sorted(
        f"data/{Path(f.location).name}" for f in rich.files)
    for file in rich.files:
        path = Path(file.location.removeprefix("file://"))
        assert (top / "data" / path.name).read_bytes() == path.read_bytes()


def test_bag_info_fields(rich: DepositSubmission, tmp_path: Path) -> None:
    """PASS's own template (its bugs fixed), the options' fields, then the extra ones."""
    options = {**OPTIONS, "bag-info": {"Bag-Group-Identifier": "pass-2024",
                                       "Keyword": ["eyes", "vision"]}}
    bag = validated_bag(BagItAssembler(options).assemble(rich, tmp_path / "w", STAMP), tmp_path)
    octets = sum(Path(f.location.removeprefix("file://")).stat().st_size for f in rich.files)
    assert bag.info["Payload-Oxum"] == f"{octets}.{len(rich.files)}"
    assert bag.info["Bagging-Date"] == "2024-05-04"
    assert bag.info["Source-Organization"] == "Johns Hopkins University"
    assert bag.info["Organization-Address"] == "3400 N. Charles St. Baltimore, MD"
    assert bag.info["Contact-Name"] == "Repository Team"
    assert bag.info["Contact-Email"] == "repo@example.org"
    assert bag.info["Contact-Phone"] == "+1 410 000 0000"
    assert bag.info["External-Identifier"] == "10.1234/abc.5"
    assert bag.info["Internal-Sender-Identifier"] == "sub-1"
    described = ("Submitted as sub-1 to PASS on 2024-05-04T14:22:25Z by Ada Lovelace "
                 "(ada@example.org), published at 10.1234/abc.5")
    assert bag.info["Internal-Sender-Description"] == described
    assert bag.info["External-Description"] == described
    assert bag.info["Keyword"] == ["eyes", "vision"]
    assert bag.info["Bag-Group-Identifier"] == "pass-2024"
    assert bag.info["Bag-Size"] == "1 MiB"
    top = Path(bag.path)
    assert (top / "bagit.txt").read_bytes() == (
        b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    labels = [line.split(":")[0] for line in (top / "bag-info.txt").read_text().splitlines()]
    assert labels[:5] == ["Source-Organization", "Organization-Address", "Contact-Name",
                          "Contact-Phone", "Contact-Email"]  # the template's order


def test_awkward_file_names_still_give_a_valid_bag(files_dir: Path, tmp_path: Path) -> None:
    source = write(files_dir, "x.bin", b"payload bytes")
    names = ["100% done.txt", "ilford panf.pdf", "cafe\u0301.txt", "café.txt", "../up.txt",
             "dir/deep/file.txt", "line\nbreak.txt"]
    submission = DepositSubmission(id="odd", files=tuple(
        DepositFile(id=str(n), name=name, location=str(source)) for n, name in enumerate(names)))
    bag = validated_bag(BagItAssembler().assemble(submission, tmp_path / "w", STAMP), tmp_path)
    assert sorted(bag.payload_files()) == sorted([
        "data/100_ done.txt", "data/ilford panf.pdf", "data/café.txt", "data/café-2.txt",
        "data/up.txt", "data/dir/deep/file.txt", "data/line_break.txt"])


def test_a_damaged_bag_fails_validation(rich: DepositSubmission, tmp_path: Path) -> None:
    """The validation above is not vacuous: change one payload byte and bagit objects."""
    package = BagItAssembler().assemble(rich, tmp_path / "w", STAMP)
    top = next((extract(package, tmp_path / "x")).iterdir())
    target = top / "data" / "table.csv"
    target.write_bytes(b"A" + target.read_bytes()[1:])
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(top)).validate()


def test_reproducible_and_named(rich: DepositSubmission, tmp_path: Path) -> None:
    one = BagItAssembler(OPTIONS).assemble(rich, tmp_path / "1", STAMP)
    two = BagItAssembler(OPTIONS).assemble(rich, tmp_path / "2", STAMP)
    assert one.name == "bag_2024-05-04_14-22-25_sub-1.zip"
    assert one.path.read_bytes() == two.path.read_bytes()
    no_doi = dataclasses.replace(rich, article=dataclasses.replace(rich.article, doi=None,
                                                                   pmid=None))
    bag = validated_bag(BagItAssembler().assemble(no_doi, tmp_path / "3", STAMP), tmp_path)
    assert "External-Identifier" not in bag.info  # an empty field is left out
    assert "Source-Organization" not in bag.info
    assert not bag.info["External-Description"].endswith("published at ")


def test_bad_options_are_configuration_errors() -> None:
    with pytest.raises(RepositoryConfigError, match="archive must be ZIP or TAR"):
        BagItAssembler({"archive": "NONE"})
    with pytest.raises(RepositoryConfigError, match="'Payload-Oxum' is empty or computed"):
        BagItAssembler({"bag-info": {"Payload-Oxum": "1.1"}})
    with pytest.raises(RepositoryConfigError, match="bag-info must map"):
        BagItAssembler({"bag-info": "Contact-Name: x"})
