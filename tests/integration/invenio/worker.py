"""Driving the real worker (``deposit-services listen`` as a process) against a REST
repository test server in this process: submit a graph, wait for a deposit's status,
kill the worker with SIGKILL while the server holds a step's answer, restart it.
Shared by the InvenioRDM, Zenodo and DSpace worker tests."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any, Protocol

from deposit_services.model.entities import Deposit, DepositStatus, RepositoryCopy
from deposit_services.store.base import AttemptOutcome
from tests.e2e.conftest import Daemon, make_daemon, wait_until
from tests.support.graphs import make_graph, write_graph

NO_JOBS = {"PASS_DEPOSIT_JOBS_DISABLED": "true"}
FAST_JOBS = {"PASS_DEPOSIT_JOBS_DEFAULT_INTERVAL_MS": "300",
             "DEPOSIT_REFRESH_WINDOW_DAYS": "36500"}
FILES = {"manuscript.txt": b"The manuscript.\n" * 4000,
         "figure 1.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 600}


class Pausing(Protocol):
    def pause(self, step: str) -> threading.Event: ...

    def release(self) -> None: ...


def repository(key: str) -> dict[str, Any]:
    return {"@type": "Repository", "id": f"repo-{key}", "name": key, "repositoryKey": key,
            "integrationType": "ONE_WAY"}


def worker_daemon(root: Path, entries: dict[str, Any], env: dict[str, str] | None = None
                  ) -> Daemon:
    root.mkdir(parents=True, exist_ok=True)
    daemon = make_daemon(root)
    daemon.write_repositories(entries)
    daemon.env.update(env or {})
    daemon.data_dir.mkdir(parents=True, exist_ok=True)
    daemon.store().close()  # schema made before processes race to make it
    return daemon


def submit(daemon: Daemon, sid: str, key: str) -> None:
    files = daemon.root / "files"
    graph = make_graph(sid, files, repositories=[repository(key)], files=FILES,
                       metadata={"publicationDate": "2024-05-01"})
    daemon.cli("submit", str(write_graph(daemon.root / f"{sid}.json", graph)),
               "--files-dir", str(files))


def deposit_of(daemon: Daemon, sid: str) -> Deposit | None:
    store = daemon.store()
    try:
        found = store.find(Deposit, submission=sid)
    finally:
        store.close()
    return found[0] if found else None


def wait_status(daemon: Daemon, sid: str, status: DepositStatus, timeout: float = 90
                ) -> Deposit:
    def reached() -> bool:
        deposit = deposit_of(daemon, sid)
        return deposit is not None and deposit.deposit_status is status

    wait_until(reached, timeout, f"{sid} {status.value}", daemon.processes)
    deposit = deposit_of(daemon, sid)
    assert deposit is not None
    return deposit


def copy_of(daemon: Daemon, deposit: Deposit) -> RepositoryCopy:
    store = daemon.store()
    try:
        copy: RepositoryCopy = store.get(RepositoryCopy, deposit.repository_copy or "")
        return copy
    finally:
        store.close()


def outcomes(daemon: Daemon, deposit_id: str) -> list[AttemptOutcome | None]:
    """How each of the deposit's attempts ended, in order."""
    store = daemon.store()
    try:
        return [a.outcome for a in store.attempts(deposit_id)]
    finally:
        store.close()


def after_restart(step: str, last: str) -> list[AttemptOutcome | None]:
    """The attempt log a restart leaves: killed after the ``last`` step the record is
    found and the open attempt RECONCILED; earlier, the target did not hold it, so that
    attempt is INTERRUPTED and a second one SENT (having cleared what the first made)."""
    if step == last:
        return [AttemptOutcome.RECONCILED]
    return [AttemptOutcome.INTERRUPTED, AttemptOutcome.SENT]


def kill_during(daemon: Daemon, server: Pausing, step: str) -> None:
    """Start a worker, SIGKILL it while the server holds ``step``'s answer (the step
    done, its outcome unknown to the worker), then start a second worker."""
    reached = server.pause(step)
    first = daemon.listen("first", NO_JOBS)
    if not reached.wait(90):
        raise AssertionError(f"the worker never reached {step}: {daemon.log_text('first')}")
    first.send_signal(signal.SIGKILL)
    assert first.wait(30) == -signal.SIGKILL
    daemon.processes.remove(first)  # its exit code was the point
    server.release()
    daemon.listen("second", NO_JOBS)
