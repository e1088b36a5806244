"""Zenodo through the real worker: files and metadata at the server, the copy, ACCEPTED
on publication, and a SIGKILL after each step leaving exactly one record."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from deposit_services.model.entities import CopyStatus, DepositStatus
from tests.e2e.conftest import Daemon
from tests.integration.invenio.worker import (
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
from tests.integration.zenodo.conftest import zenodo_binding
from tests.support.zenodo_server import ZenodoServer


@pytest.fixture
def daemon(tmp_path: Path, zenodo: ZenodoServer) -> Iterator[Daemon]:
    entries = {"zenodo": {
        "assembler": {"specification": "simple"},
        "transport-config": {"protocol-binding": zenodo_binding(zenodo)}}}
    d = worker_daemon(tmp_path / "daemon", entries)
    yield d
    d.stop_all()


def test_deposit_published_and_accepted(daemon: Daemon, zenodo: ZenodoServer) -> None:
    submit(daemon, "zen-1", "zenodo")
    daemon.listen("worker", NO_JOBS)
    deposit = wait_status(daemon, "zen-1", DepositStatus.ACCEPTED)
    [d] = zenodo.app.depositions.values()
    assert d.published
    assert sorted(f.md5 or "" for f in d.files.values()) == sorted(
        hashlib.md5(data).hexdigest() for data in FILES.values())
    assert sorted(f.data() for f in d.files.values()) == sorted(FILES.values())
    assert d.metadata["title"] == "Paper zen-1"
    assert d.metadata["creators"] == [{"name": "Ada Lovelace"}]
    copy = copy_of(daemon, deposit)
    assert copy.copy_status is CopyStatus.COMPLETE
    assert copy.access_url == f"{zenodo.api_url.removesuffix('/api')}/record/{d.id}"
    assert copy.external_ids == [d.doi, str(d.id)]


@pytest.mark.parametrize("step", ["list", "create", "upload", "publish"])
def test_sigkill_after_each_step_leaves_one_record(daemon: Daemon, zenodo: ZenodoServer,
                                                   step: str) -> None:
    submit(daemon, f"zen-kill-{step}", "zenodo")
    kill_during(daemon, zenodo.app, step)
    deposit = wait_status(daemon, f"zen-kill-{step}", DepositStatus.ACCEPTED)
    assert outcomes(daemon, deposit.id) == after_restart(step, last="publish")
    [d] = zenodo.app.depositions.values()
    assert d.published and len(d.files) == len(FILES)
    assert copy_of(daemon, deposit).external_ids == [d.doi, str(d.id)]
