"""PASS's own DSpace entry (pass-docker's repositories.json, unchanged: beanName
DSpaceAssembler, protocol DSpace, the rest from PASS's DSPACE_* environment) passes
``config check`` and deposits as PASS's DSpace transport does: each file of the
submission its own bitstream of one workspace item."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from deposit_services import cli
from deposit_services.config.repositories import load_repositories
from deposit_services.entrypoints import command
from deposit_services.model.entities import Repository
from deposit_services.service.targets import Targets
from tests.integration.dspace.conftest import HANDLE
from tests.support.dspace_server import DSpaceServer
from tests.support.packages import PACKAGE_TIME

PASS_FILE = (Path(__file__).resolve().parents[2] / "fixtures" / "pass" / "current"
             / "pass-docker-deposit-repositories.json")


@pytest.fixture
def pass_environment(dspace: DSpaceServer, monkeypatch: pytest.MonkeyPatch,
                     tmp_path: Path) -> dict[str, str]:
    """The environment pass-docker gives deposit services, pointed at our test servers."""
    env = {
        "PMC_FTP_USER": "pmc", "PMC_FTP_PASSWORD": "pmc-secret",
        "PMC_FTP_HOST": "sftp.example.org", "PMC_FTP_PORT": "22",
        "DSPACE_API_URL": dspace.api_url, "DSPACE_WEBSITE_URL": dspace.website_url,
        "DSPACE_USER": dspace.user, "DSPACE_PASSWORD": dspace.password,
        "DSPACE_COLLECTION_HANDLE": HANDLE,
        "INVENIORDM_API_BASE_URL": "https://rdm.example.org/api",
        "INVENIORDM_API_TOKEN": "rdm-token",
        "PASS_DEPOSIT_REPOSITORY_CONFIGURATION": str(PASS_FILE),
        "DEPOSIT_DATA_DIR": str(tmp_path / "data"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_config_check_passes_the_file_unchanged(pass_environment: dict[str, str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["config", "check"]) == 0
    out = capsys.readouterr().out
    assert "DSpace: SimpleZip package (beanName DSpaceAssembler; label DSpace) over DSpace" \
        in out


def test_config_check_names_the_missing_pass_setting(
        pass_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("DSPACE_COLLECTION_HANDLE")
    assert cli.main(["config", "check"]) == command.EXIT_CONFIG
    captured = capsys.readouterr()
    assert "DSPACE_COLLECTION_HANDLE" in captured.out + captured.err


def test_the_pass_entry_deposits_each_file_as_a_bitstream(
        pass_environment: dict[str, str], dspace: DSpaceServer, submission, tmp_path) -> None:
    config = load_repositories(str(PASS_FILE), pass_environment)
    targets = Targets(config, "ds-test/1.0")
    try:
        target = targets.for_repository(Repository(id="3", repository_key="DSpace"))
        package = target.assembler.assemble(submission, tmp_path / "work", PACKAGE_TIME)
        receipt = target.transport.send(package, submission)
    finally:
        targets.close()
    [item] = dspace.app.items.values()
    on_disk = {f.name: Path(f.location).read_bytes() for f in submission.files}
    assert sorted(f.name for f in item.files) == sorted(on_disk)
    assert all(f.md5 == hashlib.md5(on_disk[f.name]).hexdigest() for f in item.files)
    assert item.workflow_id is not None  # submitted to the workflow, as PASS does
    assert receipt.access_url == f"{dspace.website_url}/items/{item.uuid}"
