"""PASS's ``specification`` as a label (issue 14, item 1).

Where a PASS entry's ``beanName`` decides the format, its ``specification`` is the label
PASS copies into the package's metadata (``PackageStream.Metadata.spec``); the package's
name comes from the format: PASS names every NIHMS package
``nihms-native-2022-05_<date>_<time>_<submission id>``, whatever the label says. Without
a beanName the specification names the format, and the package carries the format's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deposit_services.assemblers.base import create_assembler
from deposit_services.config.repositories import parse_repositories
from deposit_services.model.entities import Repository
from deposit_services.model.submission import DepositSubmission
from deposit_services.service.targets import Targets
from tests.unit.assemblers.helpers import STAMP, members, validate_nihms

SIMPLE_ZIP = "http://purl.org/net/sword/package/SimpleZip"
NAME_TAIL = "_2024-05-04_14-22-25_sub-1"  # the deposit's fixed timestamp, the submission


def _entry(specification: str, bean: str | None, archive: str = "TAR") -> dict[str, Any]:
    assembler: dict[str, Any] = {"specification": specification,
                                 "options": {"archive": archive, "compression": "GZIP"
                                             if archive == "TAR" else "NONE"}}
    if bean is not None:
        assembler["beanName"] = bean
    return {"assembler": assembler, "transport-config": {
        "protocol-binding": {"protocol": "devnull"}}}


def _package_through_the_deposit_path(entry: dict[str, Any], submission: DepositSubmission,
                                      workdir: Path) -> Any:
    """As a deposit builds it: repositories.json parsed, the target's assembler."""
    config = parse_repositories({"pmc": entry}, {})
    targets = Targets(config, "deposit-services-test")
    try:
        target = targets.for_repository(Repository(id="r", repository_key="pmc"))
        return target.assembler.assemble(submission, workdir, STAMP)
    finally:
        targets.close()


def test_a_bean_chosen_nihms_package_carries_the_label_and_the_formats_name(
    rich: DepositSubmission, tmp_path: Path,
) -> None:
    package = _package_through_the_deposit_path(
        _entry("nihms-native-2017-07", "nihmsAssembler"), rich, tmp_path)
    assert package.label == "nihms-native-2017-07"  # what the entry says: the metadata
    assert package.specification == "nihms-native-2022-05"  # what the bytes are
    assert package.name == f"nihms-native-2022-05{NAME_TAIL}.tar.gz"  # as PASS names it
    root = validate_nihms(package)  # against the 2022 DTD: the format written
    assert root.tag == "manuscript-submit"


def test_without_a_bean_the_specification_is_the_format_name_and_label(
    rich: DepositSubmission, tmp_path: Path,
) -> None:
    package = _package_through_the_deposit_path(
        _entry("nihms-native-2017-07", None), rich, tmp_path)
    assert package.label == package.specification == "nihms-native-2017-07"
    assert package.name == f"nihms-native-2017-07{NAME_TAIL}.tar.gz"
    assert validate_nihms(package).tag == "nihms-submit"


@pytest.mark.parametrize(("bean", "label"), [("simpleAssembler", "simple"),
                                             ("DSpaceAssembler", "DSpace"),
                                             (None, SIMPLE_ZIP)])
def test_simple_zip_packages_carry_their_entrys_label(
    rich: DepositSubmission, tmp_path: Path, bean: str | None, label: str,
) -> None:
    package = _package_through_the_deposit_path(
        _entry("simple" if bean != "DSpaceAssembler" else "DSpace", bean, "ZIP"),
        rich, tmp_path)
    assert package.label == label
    assert package.specification == SIMPLE_ZIP
    assert package.name == f"simple{NAME_TAIL}.zip"
    assert "manuscript.pdf" in members(package)


def test_create_assembler_labels_only_what_a_bean_chose(tmp_path: Path,
                                                       rich: DepositSubmission) -> None:
    by_bean = create_assembler("nihms-native-2017-07", {}, bean_name="nihmsAssembler")
    assert by_bean.label == "nihms-native-2017-07"
    relabelled = create_assembler("nihms-native-2022-05", {}, bean_name="nihmsAssembler",
                                  label="what the file said")
    assert relabelled.label == "what the file said"
    named = create_assembler("nihms-native-2017-07", {}, label="ignored without a bean")
    assert named.label is None
    assert named.assemble(rich, tmp_path, STAMP).label == "nihms-native-2017-07"
