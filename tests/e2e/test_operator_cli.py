"""The operator's CLI as processes: commands from any directory, ``submit`` with the
broker down or a graph to fix, a quiet ``listen``, dead letters, and a stop asked twice."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from deposit_services.entrypoints.command import EXIT_ABORTED
from tests.e2e.conftest import Daemon, wait_until
from tests.support.graphs import make_graph, write_graph


def _run(daemon: Daemon, *args: str, cwd: Path, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deposit_services", *args],
                          env=env or daemon.env, cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _graph(daemon: Daemon, sid: str, **kwargs: object) -> Path:
    return write_graph(daemon.root / f"{sid}.json",
                       make_graph(sid, daemon.root / "files", **kwargs))  # type: ignore[arg-type]


# --- item 11: any directory, read-only commands need no repositories.json -------------


def test_read_only_commands_run_anywhere_without_repositories_json_or_its_secrets(
        daemon: Daemon, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # a repositories.json that names a secret nobody set: status must not care
    daemon.write_repositories({"archive": {
        "assembler": {"specification": "simple"},
        "transport-config": {
            "auth-realms": [{"mech": "basic", "url": "https://x.example/",
                             "username": "u", "password": "${SWORD_PASSWORD}"}],
            "protocol-binding": {"protocol": "filesystem", "baseDir": str(tmp_path)}}}})
    env = {k: v for k, v in daemon.env.items() if k != "SWORD_PASSWORD"}
    status = _run(daemon, "status", "--json", cwd=elsewhere, env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout) == []
    # no repositories.json at all, and none in the current directory
    del env["PASS_DEPOSIT_REPOSITORY_CONFIGURATION"]
    for args in (("status",), ("config", "show"), ("config", "show", "--json")):
        out = _run(daemon, *args, cwd=elsewhere, env=env)
        assert out.returncode == 0, (args, out.stderr)
    shown = json.loads(_run(daemon, "config", "show", "--json", cwd=elsewhere, env=env).stdout)
    assert shown["data_dir"] == daemon.env["DEPOSIT_DATA_DIR"]


def test_the_default_repositories_json_is_found_from_any_directory(
        daemon: Daemon, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in daemon.env.items() if k != "PASS_DEPOSIT_REPOSITORY_CONFIGURATION"}
    # the data directory's repositories.json, then the installed package's
    daemon.data_dir.mkdir(parents=True, exist_ok=True)
    (daemon.data_dir / "repositories.json").write_text(
        (daemon.root / "repositories.json").read_text())
    check = _run(daemon, "config", "check", cwd=elsewhere, env=env)
    assert check.returncode == 0, check.stderr
    assert str(daemon.data_dir / "repositories.json") in check.stdout
    (daemon.data_dir / "repositories.json").unlink()
    check = _run(daemon, "config", "check", cwd=elsewhere, env=env)
    assert check.returncode == 0, check.stderr
    assert "config/repositories.json" in check.stdout


# --- item 12: submit with the broker down, --replace, submitted false -----------------


def test_submit_with_the_broker_down_stores_and_exits_0_and_a_worker_picks_it_up(
        daemon: Daemon) -> None:
    port = _free_port()  # nothing listens there
    down = {**daemon.env, "DEPOSIT_BROKER_URL": f"stomp://127.0.0.1:{port}"}
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "deposit_services", "submit",
                          str(_graph(daemon, "down-1")), "--files-dir",
                          str(daemon.root / "files")],
                         env=down, capture_output=True, text=True, timeout=120, check=False)
    took = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    assert took < 25, f"submit waited {took:.0f} s for a broker that is down"
    assert "stored" in out.stdout and "outbox" in out.stdout
    assert len(out.stdout.splitlines()) == 1
    again = subprocess.run([sys.executable, "-m", "deposit_services", "submit",
                            str(daemon.root / "down-1.json")], env=down,
                           capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 1 and "already in the store" in again.stderr
    # the worker (on the embedded queue here) relays what the outbox kept
    daemon.listen(extra_env={"PASS_DEPOSIT_JOBS_DEFAULT_INTERVAL_MS": "1000"})
    wait_until(lambda: daemon.status("down-1")[0]["aggregatedDepositStatus"] == "ACCEPTED",
               90, "the stored submission deposited", daemon.processes)


def test_submit_prints_one_line_and_a_failed_submission_can_be_replaced(
        daemon: Daemon) -> None:
    daemon.listen()
    bare = _graph(daemon, "bare-1", files={})
    out = daemon.cli("submit", str(bare), "--files-dir", str(daemon.root / "files"))
    assert out.stdout == "submitted bare-1\n"
    assert out.stderr == "", "INFO lines are not printed by a successful submit"
    wait_until(lambda: daemon.status("bare-1")[0]["aggregatedDepositStatus"] == "FAILED",
               60, "the submission without files FAILED", daemon.processes)
    message = daemon.status("bare-1")[0]["statusMessage"]
    assert "add at least a manuscript and resubmit" in message
    fixed = _graph(daemon, "bare-1")  # now with a manuscript
    refused = daemon.cli("submit", str(fixed), "--files-dir", str(daemon.root / "files"),
                         check=False)
    assert refused.returncode == 1 and "--replace" in refused.stderr
    out = daemon.cli("submit", str(fixed), "--files-dir", str(daemon.root / "files"),
                     "--replace")
    assert out.stdout == "replaced bare-1\n"
    wait_until(lambda: daemon.status("bare-1")[0]["aggregatedDepositStatus"] == "ACCEPTED",
               60, "the replaced submission deposited", daemon.processes)
    finished = daemon.cli("submit", str(fixed), "--files-dir", str(daemon.root / "files"),
                          "--replace", check=False)
    assert finished.returncode == 1 and "only a NOT_STARTED or FAILED" in finished.stderr


def test_a_graph_not_submitted_is_stored_not_announced_and_status_says_why(
        daemon: Daemon) -> None:
    entities = make_graph("draft-1", daemon.root / "files")
    entities[-3]["submitted"] = False  # the Submission (before its two Files)
    assert entities[-3]["@type"] == "Submission"
    graph = write_graph(daemon.root / "draft-1.json", entities)
    out = daemon.cli("submit", str(graph), "--files-dir", str(daemon.root / "files"))
    assert out.stdout == "submitted draft-1: stored, not announced (submitted is false)\n"
    shown = daemon.status("draft-1")[0]
    assert "submitted is false" in shown["waiting"]
    table = daemon.cli("status").stdout
    assert "submitted is false" in table


# --- item 15: a quiet listen ----------------------------------------------------------


def test_listen_states_its_settings_in_one_line(daemon: Daemon) -> None:
    proc = daemon.listen()
    wait_until(lambda: "worker consuming" in daemon.log_text(), 60, "the worker started",
               daemon.processes)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    lines = [line for line in daemon.log_text().splitlines() if "data_dir=" in line]
    assert len(lines) == 1 and "broker_url=local:" in lines[0]
    assert "setting " not in daemon.log_text()


# --- item 13: dead letters from the CLI -----------------------------------------------


def test_dead_letters_are_listed_shown_requeued_and_purged_from_the_cli(
        daemon: Daemon) -> None:
    from deposit_services.messaging.local import LocalBroker

    daemon.data_dir.mkdir(parents=True, exist_ok=True)
    broker = LocalBroker(daemon.env["DEPOSIT_STORE_URL"], max_deliveries=1)
    try:
        for body in ("not json\x1b[2J", '{"submission": "nope-404", "type": "SubmissionReady"}'):
            broker.publish("submission", body)
            delivery = broker.receive(["submission"], timeout=5)
            assert delivery is not None
            broker.dead_letter(delivery, f"refused: {body}")
    finally:
        broker.close()
    listed = json.loads(daemon.cli("dead-letters", "--json").stdout)
    assert [d["reason"] for d in listed] == ["refused: not json\x1b[2J",
                                             'refused: {"submission": "nope-404", '
                                             '"type": "SubmissionReady"}']
    table = daemon.cli("dead-letters").stdout
    assert "refused: not json\\x1b[2J" in table and "\x1b" not in table
    first, second = (d["id"] for d in listed)
    shown = daemon.cli("dead-letters", "show", second).stdout
    assert "nope-404" in shown
    usage = daemon.cli("dead-letters", "requeue", check=False)
    assert usage.returncode == 2 and "--all" in usage.stderr
    out = daemon.cli("dead-letters", "purge", first)
    assert out.stdout == "purged 1 dead letter(s)\n"
    out = daemon.cli("dead-letters", "requeue", "--all", "--json")
    assert json.loads(out.stdout) == {"requeued": [second], "notFound": []}
    assert daemon.cli("dead-letters").stdout == "no dead letters\n"
    missing = daemon.cli("dead-letters", "show", second, check=False)
    assert missing.returncode == 1


# --- item 16: a stop asked twice ------------------------------------------------------


def test_a_second_sigterm_aborts_in_flight_work_and_the_next_start_resumes_it(
        daemon: Daemon) -> None:
    files = daemon.root / "files"
    graph = _graph(daemon, "slow-1")
    manuscript = files / "slow-1" / "manuscript.txt"
    content = manuscript.read_bytes()
    manuscript.unlink()
    os.mkfifo(manuscript)  # reading it blocks until the test writes: work that never ends
    fast_jobs = {"PASS_DEPOSIT_JOBS_DEFAULT_INTERVAL_MS": "1000"}
    proc = daemon.listen(extra_env=fast_jobs)
    daemon.cli("submit", str(graph), "--files-dir", str(files))
    wait_until(lambda: "slow-1 claimed" in daemon.log_text(), 60, "the claim",
               daemon.processes)
    wait_until(lambda: bool(daemon.status("slow-1")[0]["deposits"]), 60, "its deposit",
               daemon.processes)
    proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "waiting for 1 deposit(s) in flight" in daemon.log_text(), 30,
               "the worker saying what it waits for")
    assert "second SIGTERM or SIGINT aborts" in daemon.log_text()
    assert proc.poll() is None, "the first SIGTERM waits for the work in flight"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == EXIT_ABORTED
    assert "aborting the transfers in flight" in daemon.log_text()
    daemon.processes.remove(proc)

    manuscript.unlink()
    manuscript.write_bytes(content)
    daemon.listen("restarted", extra_env=fast_jobs)
    wait_until(lambda: daemon.status("slow-1")[0]["aggregatedDepositStatus"] == "ACCEPTED",
               90, "the aborted deposit resumed", daemon.processes)
