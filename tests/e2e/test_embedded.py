"""The daemon on embedded defaults, driven through its CLI as separate processes."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import pytest

from deposit_services.messaging.local import LocalBroker
from deposit_services.model.entities import (
    AggregatedDepositStatus,
    Deposit,
    DepositStatus,
    Submission,
)
from tests.e2e.conftest import Daemon, filesystem_repo, make_daemon, wait_until
from tests.support.graphs import make_graph, write_graph
from tests.support.pgstat import Commits, ServerNoise

REPO_ROOT = Path(__file__).resolve().parents[2]


def _submit_many(daemon: Daemon, count: int, prefix: str = "sub") -> list[str]:
    ids = []
    files = daemon.root / "files"
    for n in range(count):
        sid = f"{prefix}-{n:03d}"
        graph = write_graph(daemon.root / f"{sid}.json", make_graph(sid, files))
        daemon.cli("submit", str(graph), "--files-dir", str(files))
        ids.append(sid)
    return ids


def _accepted(daemon: Daemon, ids: list[str]) -> int:
    store = daemon.store()
    try:
        return sum(
            store.get(Submission, sid).aggregated_deposit_status
            is AggregatedDepositStatus.ACCEPTED
            for sid in ids
        )
    finally:
        store.close()


def test_readme_tour_example_is_deposited(tmp_path: Path) -> None:
    """README command 1 + the tour: the shipped config and example, submitted and ACCEPTED."""
    daemon = make_daemon(tmp_path)
    shutil.copy(REPO_ROOT / "config" / "repositories.json",
                daemon.env["PASS_DEPOSIT_REPOSITORY_CONFIGURATION"])
    try:
        daemon.listen()
        out = daemon.cli("submit", str(REPO_ROOT / "examples" / "submission.json"))
        submission_id = out.stdout.split()[-1]
        wait_until(lambda: daemon.status(submission_id)[0]["aggregatedDepositStatus"]
                   == "ACCEPTED", 60, "the example to be ACCEPTED", daemon.processes)
        report = daemon.status(submission_id)[0]
        graph = json.loads((REPO_ROOT / "examples" / "submission.json").read_text())
        repos = {e["id"]: e for e in graph if e["@type"] == "Repository"}
        wanted = [r for r in repos.values() if r.get("integrationType") != "WEB_LINK"]
        assert len(report["deposits"]) == len(wanted) >= 1
        for deposit in report["deposits"]:
            assert deposit["depositStatus"] == "ACCEPTED"
            copy = deposit["repositoryCopy"]
            assert copy["copyStatus"] == "COMPLETE"
            path = Path(unquote(urlsplit(copy["accessUrl"]).path))
            assert path.is_file() and path.stat().st_size > 0
            assert path.is_relative_to(daemon.data_dir)
        table = daemon.cli("status").stdout
        assert submission_id in table and "ACCEPTED" in table
    finally:
        daemon.stop_all()
    assert daemon.processes[0].returncode == 0, daemon.log_text()


def test_resubmitting_the_same_graph_is_refused(daemon: Daemon) -> None:
    graph = write_graph(daemon.root / "g.json", make_graph("dup-1", daemon.root / "files"))
    daemon.cli("submit", str(graph), "--files-dir", str(daemon.root / "files"))
    again = daemon.cli("submit", str(graph), "--files-dir", str(daemon.root / "files"),
                       check=False)
    assert again.returncode == 1
    assert "dup-1" in again.stderr and "already" in again.stderr
    assert len(daemon.status()) == 1


@pytest.mark.slow
def test_sigkill_in_the_middle_loses_and_duplicates_nothing(daemon: Daemon) -> None:
    ids = _submit_many(daemon, 50)
    worker = daemon.listen("first")
    wait_until(lambda: _accepted(daemon, ids) >= 10, 120, "10 submissions ACCEPTED",
               daemon.processes)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    done_at_kill = _accepted(daemon, ids)
    assert done_at_kill < 50, "the kill came too late to test anything"
    daemon.listen("second")
    wait_until(lambda: _accepted(daemon, ids) == 50, 180, "all 50 ACCEPTED", daemon.processes)
    packages = sorted(p.name for p in daemon.target_dir.iterdir())
    assert len(packages) == 50, packages
    assert not [p for p in packages if p.startswith(".")], "temporary files left behind"
    store = daemon.store()
    try:
        for sid in ids:
            deposits = store.find(Deposit, submission=sid)
            assert [d.deposit_status for d in deposits] == [DepositStatus.ACCEPTED]
    finally:
        store.close()


def _two_listeners(daemon: Daemon) -> None:
    # both consuming before the first message, so that neither can take all 50 before
    # the other has started
    daemon.listen("a")
    daemon.listen("b")
    wait_until(lambda: all("worker consuming" in daemon.log_text(name) for name in "ab"), 60,
               "both listeners consuming", daemon.processes)
    ids = _submit_many(daemon, 50, prefix="pair")
    wait_until(lambda: _accepted(daemon, ids) == 50, 180, "all 50 ACCEPTED", daemon.processes)
    packages = [p.name for p in daemon.target_dir.iterdir()]
    assert len(packages) == 50
    claims = [line for name in ("a", "b") for line in daemon.log_text(name).splitlines()
              if " claimed" in line and "submission pair-" in line]
    claimed_ids = [line.split("submission ")[1].split()[0] for line in claims]
    assert sorted(claimed_ids) == sorted(ids), "each submission claimed exactly once"
    assert daemon.log_text("a").count(" claimed") > 0 and daemon.log_text("b").count(
        " claimed") > 0, "both workers took work"


@pytest.mark.slow
def test_two_listeners_on_sqlite_process_each_submission_once(daemon: Daemon) -> None:
    _two_listeners(daemon)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_listeners_on_postgresql_process_each_submission_once(
    tmp_path: Path, postgres_url: str
) -> None:
    daemon = make_daemon(tmp_path, store_url=postgres_url)
    try:
        _two_listeners(daemon)
    finally:
        daemon.stop_all()


def test_malformed_and_unknown_messages_are_dead_lettered_and_the_daemon_goes_on(
    daemon: Daemon,
) -> None:
    daemon.data_dir.mkdir(parents=True, exist_ok=True)
    broker = LocalBroker(daemon.env["DEPOSIT_STORE_URL"])
    try:
        broker.publish("submission", "this is not json")
        broker.publish("submission", json.dumps({"submission": "nope-404",
                                                 "type": "SubmissionReady"}))
        daemon.listen()
        ids = _submit_many(daemon, 1, prefix="after")
        wait_until(lambda: _accepted(daemon, ids) == 1, 60, "the good submission",
                   daemon.processes)
        wait_until(lambda: len(broker.dead_letters()) == 2, 30, "two dead letters")
        reasons = sorted(d.reason for d in broker.dead_letters())
    finally:
        broker.close()
    assert "not JSON" in reasons[1] or "not JSON" in reasons[0]
    assert any("nope-404" in r for r in reasons)
    log = daemon.log_text()
    assert "malformed message" in log and "nope-404" in log
    assert daemon.processes[0].poll() is None, "the daemon is still running"


def test_failures_leave_a_status_and_a_message(daemon: Daemon) -> None:
    files = daemon.root / "files"
    repos = [
        {"@type": "Repository", "id": "repo-archive", "repositoryKey": "archive",
         "integrationType": "ONE_WAY"},
        {"@type": "Repository", "id": "repo-unknown", "repositoryKey": "nowhere",
         "integrationType": "ONE_WAY"},
        {"@type": "Repository", "id": "repo-web", "repositoryKey": "web",
         "integrationType": "WEB_LINK"},
    ]
    daemon.write_repositories({
        "archive": filesystem_repo(daemon.target_dir),
    })
    ok_graph = make_graph("mixed-1", files, repositories=repos)
    write_graph(daemon.root / "ok.json", ok_graph)
    missing = make_graph("missing-1", files, repositories=repos[:1])
    (files / "missing-1" / "manuscript.txt").unlink()
    write_graph(daemon.root / "missing.json", missing)
    nofiles = [e for e in make_graph("nofiles-1", files, repositories=repos[:1])
               if e["@type"] != "File"]
    write_graph(daemon.root / "nofiles.json", nofiles)
    for name in ("ok", "missing", "nofiles"):
        daemon.cli("submit", str(daemon.root / f"{name}.json"), "--files-dir", str(files))
    daemon.listen()

    def settled() -> bool:
        report = {s["id"]: s for s in daemon.status()}
        return (len(report) == 3
                and report["nofiles-1"]["aggregatedDepositStatus"] == "FAILED"
                and all(d["depositStatus"] for s in report.values() for d in s["deposits"])
                and len(report["mixed-1"]["deposits"]) == 2
                and len(report["missing-1"]["deposits"]) == 1)

    wait_until(settled, 60, "every submission settled", daemon.processes)
    report = {s["id"]: s for s in daemon.status()}
    assert "no files" in report["nofiles-1"]["statusMessage"]
    mixed = {d["repositoryKey"]: d for d in report["mixed-1"]["deposits"]}
    assert set(mixed) == {"archive", "nowhere"}, "no deposit for the WEB_LINK repository"
    assert mixed["archive"]["depositStatus"] == "ACCEPTED"
    assert mixed["nowhere"]["depositStatus"] == "FAILED"
    assert "'nowhere'" in mixed["nowhere"]["statusMessage"]
    assert mixed["nowhere"]["repositoryCopy"] is None
    failed = report["missing-1"]["deposits"][0]
    assert failed["depositStatus"] == "FAILED"
    assert "manuscript.txt" in failed["statusMessage"]
    assert report["mixed-1"]["aggregatedDepositStatus"] == "IN_PROGRESS"


def test_broken_repositories_json_exits_2_naming_the_key_path(daemon: Daemon) -> None:
    daemon.write_repositories({"archive": {
        "assembler": {"specification": "simple"},
        "transport-config": {"protocol-binding": {"baseDir": "/tmp/x"}},
    }})
    check = daemon.cli("config", "check", check=False)
    assert check.returncode == 2
    assert "archive.transport-config.protocol-binding" in check.stderr
    listen = daemon.cli("listen", check=False, timeout=60)
    assert listen.returncode == 2
    assert "archive.transport-config.protocol-binding" in listen.stderr


def test_config_show_masks_secrets(daemon: Daemon) -> None:
    env = dict(daemon.env, SPRING_ACTIVEMQ_PASSWORD="s3cr3t-value",
               DEPOSIT_STORE_URL="postgresql://me:hunter2@db.example:5432/deposits")
    daemon.env = env
    out = daemon.cli("config", "show").stdout
    assert "s3cr3t-value" not in out and "hunter2" not in out
    assert "broker_password" in out and "***" in out
    assert "postgresql://me:***@db.example:5432/deposits" in out


def test_an_idle_worker_on_the_postgresql_queue_does_not_poll(
    tmp_path: Path, postgres_databases: Any,
) -> None:
    """``listen`` with its local queue in PostgreSQL, scheduled jobs on, idle: what
    PostgreSQL counts over its whole life (start-up, the first run of every job, then
    waiting on LISTEN/NOTIFY) stays under one committed transaction a second."""
    url = postgres_databases.create()
    daemon = make_daemon(tmp_path, store_url=url)
    daemon.cli("status")  # a fresh database gets its schema here, once
    commits = Commits(postgres_databases.admin_url, url)
    control = 6
    noise = ServerNoise(postgres_databases.admin_url, postgres_databases.create(), control)
    before = commits.settled()
    noise.start()
    worker = daemon.listen()
    wait_until(lambda: "worker consuming" in daemon.log_text(), 30, "the worker", [worker])
    started = time.monotonic()
    wait_until(lambda: time.monotonic() - started > 20, 30, "20 idle seconds", [worker])
    held = open_connections(postgres_databases.admin_url, url)
    daemon.stop_all()
    assert worker.returncode == 0
    lived = time.monotonic() - started
    total = commits.settled() - before
    # Other tests' DDL on the same server makes every idle connection commit a catch-up:
    # the control's count per connection, times the connections the worker held.
    elsewhere = noise.stop() * max(held, control) // control
    assert total - elsewhere < lived, (
        f"{total} commits ({elsewhere} caused elsewhere, {held} connections) in "
        f"{lived:.0f} s of an idle worker's life")


def open_connections(admin_url: str, database_url: str) -> int:
    """How many connections are open to the database of ``database_url``."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                           (database_url.rpartition("/")[2],)).fetchone()
    assert row is not None
    return int(row[0])
