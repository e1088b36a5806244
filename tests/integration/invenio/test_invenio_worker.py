"""InvenioRDM through the real worker: PASS's own repositories.json entry (unchanged,
with the environment it names), files and metadata at the server, the copy, community
review accepted or declined, and a SIGKILL after each step leaving exactly one record."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deposit_services.model.entities import CopyStatus, DepositStatus
from tests.e2e.conftest import Daemon
from tests.integration.invenio.worker import (
    FAST_JOBS,
    FILES,
    NO_JOBS,
    after_restart,
    copy_of,
    kill_during,
    outcomes,
    submit,
    wait_status,
    worker_daemon,
)
from tests.support.invenio_server import InvenioServer, running_invenio_server

PASS_FILE = (Path(__file__).resolve().parents[2] / "fixtures" / "pass" / "current"
             / "pass-docker-deposit-repositories.json")


def pass_entry() -> dict[str, Any]:
    """PASS's deployment entry for InvenioRDM, unchanged."""
    entry: dict[str, Any] = json.loads(PASS_FILE.read_text())["InvenioRDM"]
    return entry


@pytest.fixture
def invenio(tmp_path: Path) -> Iterator[InvenioServer]:
    (tmp_path / "rdm").mkdir()
    with running_invenio_server(directory=tmp_path / "rdm") as server:
        yield server


def pass_environment(server: InvenioServer) -> dict[str, str]:
    return {"INVENIORDM_API_BASE_URL": server.api_url, "INVENIORDM_API_TOKEN": server.token,
            "INVENIORDM_VERIFY_SSL_CERT": "true"}


@pytest.fixture
def daemon(tmp_path: Path, invenio: InvenioServer) -> Iterator[Daemon]:
    entries = {"InvenioRDM": pass_entry()}
    entries["review"] = json.loads(json.dumps(entries["InvenioRDM"]))
    entries["review"]["transport-config"]["protocol-binding"]["community"] = "pass-community"
    d = worker_daemon(tmp_path / "daemon", entries, pass_environment(invenio))
    yield d
    d.stop_all()


def test_pass_configuration_passes_config_check(daemon: Daemon) -> None:
    daemon.write_repositories({"InvenioRDM": pass_entry()})
    result = daemon.cli("config", "check", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    del daemon.env["INVENIORDM_API_TOKEN"]
    result = daemon.cli("config", "check", check=False)
    assert result.returncode != 0
    assert "INVENIORDM_API_TOKEN" in result.stdout + result.stderr


def test_deposit_published_and_accepted(daemon: Daemon, invenio: InvenioServer) -> None:
    submit(daemon, "rdm-1", "InvenioRDM")
    daemon.listen("worker", NO_JOBS)
    deposit = wait_status(daemon, "rdm-1", DepositStatus.ACCEPTED)

    [record] = invenio.app.records.values()
    assert record.published
    assert sorted(hashlib.md5(f.data()).hexdigest() for f in record.files.values()) == sorted(
        hashlib.md5(data).hexdigest() for data in FILES.values())
    assert all(f.md5 == hashlib.md5(f.data()).hexdigest() for f in record.files.values())
    assert record.metadata["title"] == "Paper rdm-1"
    assert record.metadata["description"] == "An abstract."
    assert [c["person_or_org"]["name"] for c in record.metadata["creators"]] == [
        "Ada Lovelace"]
    assert record.metadata["related_identifiers"][0]["identifier"] == "10.1234/test.rdm-1"
    copy = copy_of(daemon, deposit)
    assert copy.copy_status is CopyStatus.COMPLETE
    assert copy.access_url == f"{invenio.api_url.removesuffix('/api')}/records/{record.id}"
    assert copy.external_ids == [record.doi, record.id]


def test_community_review_accepted_and_declined(daemon: Daemon,
                                                invenio: InvenioServer) -> None:
    daemon.env.update(FAST_JOBS)
    submit(daemon, "rdm-yes", "review")
    submit(daemon, "rdm-no", "review")
    daemon.listen("worker")
    wait_status(daemon, "rdm-yes", DepositStatus.SUBMITTED)
    wait_status(daemon, "rdm-no", DepositStatus.SUBMITTED)
    by_title = {r.metadata["title"]: r for r in invenio.app.records.values()}
    assert all(r.review and r.review.status == "submitted" for r in by_title.values())
    invenio.app.accept(by_title["Paper rdm-yes"].id)
    invenio.app.decline(by_title["Paper rdm-no"].id)
    accepted = wait_status(daemon, "rdm-yes", DepositStatus.ACCEPTED)
    rejected = wait_status(daemon, "rdm-no", DepositStatus.REJECTED)
    accepted_copy = copy_of(daemon, accepted)
    assert accepted_copy.copy_status is CopyStatus.COMPLETE
    html = invenio.api_url.removesuffix("/api")
    assert accepted_copy.access_url == f"{html}/records/{by_title['Paper rdm-yes'].id}"
    assert copy_of(daemon, rejected).copy_status is CopyStatus.REJECTED


@pytest.mark.parametrize("step", ["search", "create", "init", "content", "commit",
                                  "publish"])
def test_sigkill_after_each_step_leaves_one_record(daemon: Daemon, invenio: InvenioServer,
                                                   step: str) -> None:
    submit(daemon, f"rdm-kill-{step}", "InvenioRDM")
    kill_during(daemon, invenio.app, step)
    deposit = wait_status(daemon, f"rdm-kill-{step}", DepositStatus.ACCEPTED)
    assert outcomes(daemon, deposit.id) == after_restart(step, last="publish")
    [record] = invenio.app.records.values()
    assert record.published and len(record.files) == len(FILES)
    assert copy_of(daemon, deposit).external_ids == [record.doi, record.id]
