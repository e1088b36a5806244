"""The real CLI as processes: a daemon environment per test, helpers to drive it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.store import StoreView


@dataclass
class Daemon:
    """One deposit-services installation: its environment, data dir and processes."""

    root: Path
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return Path(self.env["DEPOSIT_DATA_DIR"])

    @property
    def target_dir(self) -> Path:
        return self.root / "target"

    def cli(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "deposit_services", *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{args} exited {result.returncode}: {result.stderr[-3000:]}")
        return result

    def listen(self, name: str = "worker", extra_env: dict[str, str] | None = None
               ) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "deposit_services", "listen"],
            env={**self.env, **(extra_env or {})}, stdout=log, stderr=subprocess.STDOUT,
        )
        self.processes.append(proc)
        return proc

    def log_text(self, name: str = "worker") -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def store(self) -> StoreView:
        return StoreView.sql(self.env["DEPOSIT_STORE_URL"])

    def status(self, submission: str | None = None) -> list[dict[str, Any]]:
        args = ["status", "--json"] + ([submission] if submission else [])
        data: list[dict[str, Any]] = json.loads(self.cli(*args).stdout)
        return data

    def write_repositories(self, config: dict[str, Any]) -> None:
        Path(self.env["PASS_DEPOSIT_REPOSITORY_CONFIGURATION"]).write_text(json.dumps(config))

    def stop_all(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def filesystem_repo(base: Path, spec: str = "simple") -> dict[str, Any]:
    return {
        "assembler": {"specification": spec, "options": {"archive": "ZIP"}},
        "transport-config": {"protocol-binding": {
            "protocol": "filesystem", "baseDir": str(base), "createIfMissing": True,
            "overwrite": False,
        }},
    }


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               processes: list[subprocess.Popen[bytes]] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        for proc in processes or []:
            if proc.poll() is not None and proc.returncode not in (0, -9):
                raise AssertionError(f"a worker exited with {proc.returncode} while waiting "
                                     f"for {what}")
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def make_daemon(root: Path, store_url: str | None = None) -> Daemon:
    data = root / "data"
    config = root / "repositories.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEPOSIT_", "PASS_"))}
    env.update({
        "DEPOSIT_DATA_DIR": str(data),
        "DEPOSIT_STORE_URL": store_url or f"sqlite:///{data / 'deposit-services.db'}",
        "PASS_DEPOSIT_REPOSITORY_CONFIGURATION": str(config),
        "DEPOSIT_LEASE_SECONDS": "3",
        "DEPOSIT_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    })
    daemon = Daemon(root=root, env=env)
    daemon.write_repositories({"archive": filesystem_repo(daemon.target_dir)})
    return daemon


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = make_daemon(tmp_path)
    yield d
    d.stop_all()
