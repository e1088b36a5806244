"""DSpace through the real worker, killed with SIGKILL after each step (workspace item
made, metadata patched, submitted to the workflow) and restarted: exactly one item,
in the workflow, and the deposit SUBMITTED with its access URL."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from deposit_services.model.entities import CopyStatus, DepositStatus
from tests.e2e.conftest import Daemon
from tests.integration.dspace.conftest import dspace_binding
from tests.integration.invenio.worker import (
    FILES,
    after_restart,
    copy_of,
    kill_during,
    outcomes,
    submit,
    wait_status,
    worker_daemon,
)
from tests.support.dspace_server import DSpaceServer

STEPS = {
    "create": ("POST", r"/submission/workspaceitems"),
    "patch": ("PATCH", r"/submission/workspaceitems/\d+"),
    "submit": ("POST", r"/workflow/workflowitems"),
}


class DSpacePauses:
    """Holds the answer of one DSpace step (after doing it) until ``release``; the
    DSpace test server has failures but no pauses, so its dispatch is wrapped."""

    def __init__(self, server: DSpaceServer) -> None:
        self.app = server.app
        self._dispatch = server.app.dispatch
        self._step: str | None = None
        self._reached = threading.Event()
        self._released = threading.Event()
        server.app.dispatch = self.dispatch  # type: ignore[method-assign]

    def pause(self, step: str) -> threading.Event:
        self._step, self._reached, self._released = step, threading.Event(), threading.Event()
        return self._reached

    def release(self) -> None:
        self._released.set()

    def dispatch(self, request: Request) -> Response:
        response: Response = self._dispatch(request)
        step = self._step
        if step is not None:
            method, pattern = STEPS[step]
            path = request.path.removeprefix("/server/api")
            if request.method == method and re.fullmatch(pattern, path):
                self._step = None
                self._reached.set()
                self._released.wait(120)
        return response


@pytest.fixture
def daemon(tmp_path: Path, dspace: DSpaceServer) -> Iterator[Daemon]:
    entries: dict[str, Any] = {"DSpace": {
        "assembler": {"specification": "simple"},
        "transport-config": {"protocol-binding": dspace_binding(dspace)}}}
    d = worker_daemon(tmp_path / "daemon", entries)
    yield d
    d.stop_all()


@pytest.mark.parametrize("step", list(STEPS))
def test_sigkill_after_each_step_leaves_one_item(daemon: Daemon, dspace: DSpaceServer,
                                                 step: str) -> None:
    pauses = DSpacePauses(dspace)
    submit(daemon, f"ds-kill-{step}", "DSpace")
    kill_during(daemon, pauses, step)
    deposit = wait_status(daemon, f"ds-kill-{step}", DepositStatus.SUBMITTED)
    assert outcomes(daemon, deposit.id) == after_restart(step, last="submit")
    [item] = dspace.app.items.values()
    assert item.workflow_id is not None and item.workspace_id is None
    assert sorted(f.data for f in item.files) == sorted(FILES.values())  # each file once
    assert [v["value"] for v in item.metadata["dc.title"]] == [f"Paper ds-kill-{step}"]
    copy = copy_of(daemon, deposit)
    assert copy.copy_status is CopyStatus.IN_PROGRESS
    assert copy.access_url == f"{dspace.website_url}/items/{item.uuid}"
