"""No secret in any log line, stored message or ``status --json``, in either log format.

A password (SWORDv2, refused by the server; also in the service document URL's
user-info), a token (the FTP password, refused, and in a URL's query) and a private
key passphrase (SFTP: the key decrypts, sshd refuses it) are configured; one submission
names the three repositories, each deposit fails at its protocol, and the worker's
output (text, then JSON), every statusMessage and ``status --json`` are searched for
the three values.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deposit_services.model.entities import Deposit, DepositStatus
from tests.e2e.conftest import Daemon, make_daemon, wait_until
from tests.e2e.test_check_target import ftp_entry, sftp_entry, sword2_entry
from tests.integration.ftp.conftest import ftp_binding
from tests.support.ftp_server import FtpServer, running_ftp_server
from tests.support.graphs import make_graph, write_graph
from tests.support.sshd import Sshd, running_sshd
from tests.support.sword_server import SwordServer, running_sword_server

PASSWORD = "pw-Quokka-7731"
TOKEN = "tok-Wombat-55e1a9"
PASSPHRASE = "pp-Numbat-0424"
SECRETS = (PASSWORD, TOKEN, PASSPHRASE)
REPOSITORIES = [
    {"@type": "Repository", "id": f"repo-{key}", "name": key.upper(), "repositoryKey": key,
     "integrationType": "ONE_WAY"} for key in ("sword", "ftp", "sftp")]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[SwordServer, FtpServer, Sshd]]:
    with running_sword_server() as sword, \
            running_ftp_server(tmp_path / "ftp") as ftp, \
            running_sshd(tmp_path / "sshd") as sshd:
        yield sword, ftp, sshd


def encrypted_key(path: Path) -> Path:
    """A key of our own, encrypted with PASSPHRASE: it decrypts, and sshd does not know it."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", PASSPHRASE, "-f", str(path)],
                   check=True, capture_output=True)
    return path


def configure(daemon: Daemon, sword: SwordServer, ftp: FtpServer, sshd: Sshd) -> None:
    sd = sword.service_document_url.replace("://", f"://{sword.username}:{PASSWORD}@", 1)
    config: dict[str, Any] = {
        "sword": sword2_entry(sword, password=PASSWORD, **{"service-doc": sd}),
        "ftp": ftp_entry(ftp_binding(ftp, password=TOKEN, **{"connect-attempts": 1})),
        "sftp": sftp_entry(sshd, daemon.root / "sftp-out", **{
            "private-key": str(encrypted_key(daemon.root / "id_stranger")),
            "private-key-passphrase": PASSPHRASE}),
    }
    config["ftp"]["deposit-config"] = {"mapping": {
        f"https://status.example.org/?access_token={TOKEN}": "accepted"}}
    daemon.write_repositories(config)


def deposits(daemon: Daemon, sid: str) -> list[Deposit]:
    store = daemon.store()
    try:
        return store.find(Deposit, submission=sid)
    finally:
        store.close()


def run_failing(daemon: Daemon, sid: str, log_format: str) -> str:
    files = daemon.root / "files"
    graph = write_graph(daemon.root / f"{sid}.json",
                        make_graph(sid, files, repositories=REPOSITORIES))
    daemon.cli("submit", str(graph), "--files-dir", str(files))
    name = f"worker-{log_format}"
    proc = daemon.listen(name, {"DEPOSIT_LOG_FORMAT": log_format, "DEPOSIT_LOG_LEVEL": "DEBUG"})

    def failed() -> bool:
        found = deposits(daemon, sid)
        return len(found) == 3 and all(d.deposit_status is DepositStatus.FAILED for d in found)

    wait_until(failed, 90, f"the three deposits of {sid} FAILED", [proc])
    proc.terminate()
    assert proc.wait(timeout=30) == 0
    return daemon.log_text(name)


def assert_no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} found in {where}"


def test_password_token_and_passphrase_never_shown(
        tmp_path: Path, servers: tuple[SwordServer, FtpServer, Sshd]) -> None:
    daemon = make_daemon(tmp_path)
    daemon.env.update({"PASS_DEPOSIT_JOBS_DISABLED": "true", "DEPOSIT_RETRY_MAX_ATTEMPTS": "1"})
    configure(daemon, *servers)
    text_log = run_failing(daemon, "secret-text", "text")
    json_log = run_failing(daemon, "secret-json", "json")
    for sid in ("secret-text", "secret-json"):
        found = deposits(daemon, sid)
        messages = {d.id: d.status_message or "" for d in found}
        assert all(messages.values()), messages  # each failure says what happened
        assert_no_secret(f"the statusMessages of {sid}", json.dumps(messages))
    assert "FAILED" in text_log and "sword" in text_log.lower()
    assert_no_secret("the text log", text_log)
    lines = [json.loads(line) for line in json_log.splitlines() if line.startswith("{")]
    assert any(line.get("repository") == "sftp" and line["level"] == "WARNING"
               for line in lines), "a JSON line names the failing repository"
    assert_no_secret("the JSON log", json_log)
    status = daemon.cli("status", "--json").stdout
    assert "secret-json" in status
    assert_no_secret("status --json", status)
    show = daemon.cli("config", "check", check=False)
    assert_no_secret("config check", show.stdout + show.stderr)
