"""The deposit lifecycle through the real CLI: retries, crash recovery, status following,
the ``retry`` / ``refresh`` commands and two replicas running the jobs."""

from __future__ import annotations

import contextlib
import itertools
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from deposit_services.messaging.local import LocalBroker
from deposit_services.model.entities import (
    AggregatedDepositStatus,
    CopyStatus,
    Deposit,
    DepositStatus,
    RepositoryCopy,
    Submission,
)
from deposit_services.model.messages import DepositStatusChanged
from deposit_services.store.base import AttemptOutcome
from deposit_services.store.schema import deposit_attempts
from tests.e2e.conftest import Daemon, filesystem_repo, make_daemon, wait_until
from tests.integration.lifecycle.conftest import FS_REPO, SWORD_REPO
from tests.integration.lifecycle.conftest import sword_entry as lifecycle_sword_entry
from tests.integration.sftp.test_drop_submissions import ftps_entry, sftp_entry
from tests.support.ftp_server import running_ftp_server
from tests.support.graphs import make_graph, write_graph
from tests.support.sshd import running_sshd
from tests.support.sword_server import SwordServer, running_sword_server

BROKEN_REPO = {"@type": "Repository", "id": "repo-broken", "name": "Broken",
               "repositoryKey": "broken", "integrationType": "ONE_WAY"}
FAST = {
    "PASS_DEPOSIT_JOBS_DEFAULT_INTERVAL_MS": "300",
    "DEPOSIT_RETRY_BASE_SECONDS": "0.3",
    "DEPOSIT_RETRY_FACTOR": "1",
    "DEPOSIT_RETRY_CAP_SECONDS": "0.3",
    "DEPOSIT_RETRY_JITTER": "none",
    "DEPOSIT_REFRESH_WINDOW_DAYS": "36500",
}
NO_JOBS = {"PASS_DEPOSIT_JOBS_DISABLED": "true"}


def sword_entry(server: SwordServer) -> dict[str, Any]:
    return lifecycle_sword_entry(server, **{"check-collection": False})


@pytest.fixture
def sword() -> Iterator[SwordServer]:
    with running_sword_server() as server:
        yield server


def _configure(daemon: Daemon, server: SwordServer, **env: str) -> None:
    daemon.write_repositories({
        "dspace": sword_entry(server),
        "archive": filesystem_repo(daemon.target_dir),
        "broken": filesystem_repo(daemon.root / "blocked" / "target"),
    })
    daemon.env.update(env)
    daemon.data_dir.mkdir(parents=True, exist_ok=True)
    daemon.store().close()  # schema created before the processes race to create it


def _submit(daemon: Daemon, sid: str, repo: dict[str, Any]) -> str:
    files = daemon.root / "files"
    graph = write_graph(daemon.root / f"{sid}.json", make_graph(sid, files, repositories=[repo]))
    daemon.cli("submit", str(graph), "--files-dir", str(files))
    return sid


def _deposit(daemon: Daemon, sid: str) -> Deposit | None:
    store = daemon.store()
    try:
        found = store.find(Deposit, submission=sid)
    finally:
        store.close()
    return found[0] if found else None


def _status(daemon: Daemon, sid: str) -> DepositStatus | None:
    deposit = _deposit(daemon, sid)
    return deposit.deposit_status if deposit else None


def _wait_status(daemon: Daemon, sid: str, status: DepositStatus, timeout: float = 60) -> Deposit:
    wait_until(lambda: _status(daemon, sid) is status, timeout, f"{sid} {status.value}",
               daemon.processes)
    deposit = _deposit(daemon, sid)
    assert deposit is not None
    return deposit


def _get(daemon: Daemon, cls: Any, ident: str) -> Any:
    store = daemon.store()
    try:
        return store.get(cls, ident)
    finally:
        store.close()


def _attempts(daemon: Daemon, deposit_id: str) -> list[Any]:
    store = daemon.store()
    try:
        return store.attempts(deposit_id)
    finally:
        store.close()


def _remote_id(server: SwordServer, before: set[str]) -> str:
    (remote,) = [k for k in server.deposits if k not in before]
    return remote


def test_503_three_times_then_accepted_by_the_jobs(
    daemon: Daemon, sword: SwordServer
) -> None:
    _configure(daemon, sword, **FAST)
    sword.fail_next(3, status=503)
    daemon.listen()
    sid = _submit(daemon, "e2e-503", SWORD_REPO)
    wait_until(lambda: len(sword.deposits) == 1, 60, "the fourth attempt to get through",
               daemon.processes)
    deposit = _wait_status(daemon, sid, DepositStatus.SUBMITTED)
    attempts = _attempts(daemon, deposit.id)
    assert [a.outcome for a in attempts] == [AttemptOutcome.TRANSIENT_ERROR] * 3 + [
        AttemptOutcome.SENT]
    assert "attempt 1 of 8 failed" in daemon.log_text()
    sword.set_state(next(iter(sword.deposits)), "archived")  # the refresh job follows it
    deposit = _wait_status(daemon, sid, DepositStatus.ACCEPTED)
    copy = _get(daemon, RepositoryCopy, deposit.repository_copy or "")
    assert copy.copy_status is CopyStatus.COMPLETE
    wait_until(lambda: _get(daemon, Submission, sid).aggregated_deposit_status
               is AggregatedDepositStatus.ACCEPTED, 30, "aggregate ACCEPTED")
    assert len(sword.deposits) == 1, "no duplicate at the target"
    assert len(_attempts(daemon, deposit.id)) == 4


def test_withdrawn_followed_by_a_deposit_status_message(
    daemon: Daemon, sword: SwordServer
) -> None:
    _configure(daemon, sword, **NO_JOBS)
    daemon.listen()
    sid = _submit(daemon, "e2e-wd", SWORD_REPO)
    deposit = _wait_status(daemon, sid, DepositStatus.SUBMITTED)
    # the DepositStatus the worker announced for its own change is handled first (it
    # refreshes the deposit: still in progress); only then does the repository withdraw
    queue = LocalBroker(daemon.env["DEPOSIT_STORE_URL"])
    try:
        wait_until(lambda: queue.pending() == 0, 30, "the worker's own messages handled")
    finally:
        queue.close()
    sword.set_state(next(iter(sword.deposits)), "withdrawn")
    time.sleep(1.0)
    assert _status(daemon, sid) is DepositStatus.SUBMITTED, "no job, no message: no change"
    assert "scheduled jobs disabled" in daemon.log_text()
    assert "jobs started" not in daemon.log_text()
    broker = LocalBroker(daemon.env["DEPOSIT_STORE_URL"])
    try:  # what pass-core (or anyone) sends when a deposit should be looked at
        broker.publish("deposit", DepositStatusChanged(deposit.id).to_json(),
                       {"type": "DepositStatus"})
    finally:
        broker.close()
    deposit = _wait_status(daemon, sid, DepositStatus.REJECTED)
    assert _get(daemon, RepositoryCopy, deposit.repository_copy or "").copy_status \
        is CopyStatus.REJECTED
    wait_until(lambda: _get(daemon, Submission, sid).aggregated_deposit_status
               is AggregatedDepositStatus.REJECTED, 30, "aggregate REJECTED")


def test_sigkill_between_transfer_and_record_does_not_deposit_twice(daemon: Daemon) -> None:
    sid = _submit(daemon, "e2e-crash", FS_REPO)
    first = daemon.listen("crashing", {"DEPOSIT_FAULT_INJECTION": "crash-after-transfer",
                                       **NO_JOBS})
    assert first.wait(timeout=60) == 137, daemon.log_text("crashing")
    daemon.processes.remove(first)  # its exit code was the point
    assert "fault injection" in daemon.log_text("crashing")
    packages = list(daemon.target_dir.iterdir())
    assert len(packages) == 1, "the transfer happened before the crash"
    deposit = _deposit(daemon, sid)
    assert deposit is not None and deposit.deposit_status is None, "outcome not recorded"
    (open_attempt,) = _attempts(daemon, deposit.id)
    assert open_attempt.is_open and open_attempt.package.name == packages[0].name

    daemon.listen("restarted", NO_JOBS)
    deposit = _wait_status(daemon, sid, DepositStatus.ACCEPTED)
    assert [p.name for p in daemon.target_dir.iterdir()] == [packages[0].name]
    attempts = _attempts(daemon, deposit.id)
    assert [a.outcome for a in attempts] == [AttemptOutcome.INTERRUPTED, AttemptOutcome.SENT]
    assert "whether it holds the package" in daemon.log_text("restarted")  # reconciled first
    copy = _get(daemon, RepositoryCopy, deposit.repository_copy or "")
    assert copy.copy_status is CopyStatus.COMPLETE
    assert copy.access_url == packages[0].resolve().as_uri()


def _summary_rows(stdout: str) -> dict[str, list[str]]:
    rows = {}
    for line in stdout.splitlines()[1:]:
        parts = line.split(None, 3)
        if len(parts) >= 3 and not line.startswith(("retry:", "refresh:")):
            rows[parts[0]] = parts[1:]
    return rows


def test_retry_and_refresh_commands_touch_only_the_right_deposits(
    daemon: Daemon, sword: SwordServer
) -> None:
    _configure(daemon, sword, **NO_JOBS, DEPOSIT_RETRY_BASE_SECONDS="3600")
    blocker = daemon.root / "blocked"
    blocker.write_text("a file where the target directory should be")
    daemon.listen()
    accepted = _submit(daemon, "cmd-accepted", FS_REPO)
    _wait_status(daemon, accepted, DepositStatus.ACCEPTED)
    before: set[str] = set()
    submitted = _submit(daemon, "cmd-submitted", SWORD_REPO)
    _wait_status(daemon, submitted, DepositStatus.SUBMITTED)
    remote_submitted = _remote_id(sword, before)
    before = set(sword.deposits)
    rejected = _submit(daemon, "cmd-rejected", SWORD_REPO)
    _wait_status(daemon, rejected, DepositStatus.SUBMITTED)
    remote_rejected = _remote_id(sword, before)
    sword.fail_next(1, status=503)
    retrying = _submit(daemon, "cmd-retry", SWORD_REPO)
    _wait_status(daemon, retrying, DepositStatus.RETRY)
    shown = daemon.status(retrying)[0]["deposits"][0]
    assert shown["nextAttemptAt"] and shown["attempts"] == 1
    assert "503" in shown["statusMessage"] and "next attempt at" in shown["statusMessage"]
    failed = _submit(daemon, "cmd-failed", BROKEN_REPO)
    _wait_status(daemon, failed, DepositStatus.FAILED)
    daemon.stop_all()
    ids = {name: _deposit(daemon, name) for name in
           (accepted, submitted, rejected, retrying, failed)}
    dep = {name: d.id for name, d in ids.items() if d is not None}
    versions = {name: d.version for name, d in ids.items() if d is not None}

    # refresh of a deposit that is not SUBMITTED: reported, untouched, exit 1
    out = daemon.cli("refresh", "--uri", dep[accepted], check=False)
    assert out.returncode == 1, out.stderr
    assert "only SUBMITTED deposits are refreshed" in out.stdout
    assert _deposit(daemon, accepted).version == versions[accepted]  # type: ignore[union-attr]

    # refresh of all: only the two SUBMITTED ones are looked at
    sword.set_state(remote_submitted, "archived")
    sword.set_state(remote_rejected, "withdrawn")
    out = daemon.cli("refresh", check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = _summary_rows(out.stdout)
    assert set(rows) == {dep[submitted], dep[rejected]}
    assert rows[dep[submitted]][:2] == ["done", "ACCEPTED"]
    assert rows[dep[rejected]][:2] == ["done", "REJECTED"]
    assert "refresh 1/2 deposit" in out.stderr, "a plain progress line per deposit (no TTY)"
    for name in (accepted, retrying, failed):
        assert _deposit(daemon, name).version == versions[name]  # type: ignore[union-attr]
    out = daemon.cli("refresh")
    assert "nothing to refresh" in out.stdout

    # retry of all: the RETRY one goes through, the FAILED one still fails (exit 1)
    out = daemon.cli("retry", check=False)
    assert out.returncode == 1, out.stdout + out.stderr
    rows = _summary_rows(out.stdout)
    assert set(rows) == {dep[retrying], dep[failed]}
    assert rows[dep[retrying]][:2] == ["done", "SUBMITTED"]
    assert rows[dep[failed]][:2] == ["failing", "FAILED"]
    assert "blocked" in out.stdout, "the reason is in the summary"
    assert "1 done, 1 not done" in out.stdout
    for name in (accepted, submitted, rejected):
        assert _status(daemon, name) is not DepositStatus.RETRY

    # fixed by the operator, retried by URL
    blocker.unlink()
    out = daemon.cli("retry", "--uri", f"https://pass.example/data/deposit/{dep[failed]}")
    assert _summary_rows(out.stdout)[dep[failed]][:2] == ["done", "ACCEPTED"]
    assert _status(daemon, failed) is DepositStatus.ACCEPTED
    out = daemon.cli("retry")
    assert out.returncode == 0 and "nothing to retry" in out.stdout

    unknown = daemon.cli("retry", "--uri", "no-such-deposit", check=False)
    assert unknown.returncode == 1 and "no such deposit" in unknown.stdout
    usage = daemon.cli("retry", "--uri", "https://pass.example/", check=False)
    assert usage.returncode == 2 and "does not name a deposit" in usage.stderr
    assert len(sword.deposits) == 3, "each SWORD deposit sent exactly once"


@pytest.mark.slow
@pytest.mark.postgres
def test_two_replicas_retry_each_deposit_once_per_cycle(
    tmp_path: Path, fresh_postgres_url: str, sword: SwordServer
) -> None:
    daemon = make_daemon(tmp_path, store_url=fresh_postgres_url)
    _configure(daemon, sword, **{**FAST, "DEPOSIT_RETRY_BASE_SECONDS": "1",
                                 "DEPOSIT_RETRY_CAP_SECONDS": "1",
                                 "DEPOSIT_RETRY_MAX_ATTEMPTS": "50",
                                 # every retry cycle is the point here, not the repository's
                                 # pause after a run of failures (tests/e2e/test_many_repositories)
                                 "DEPOSIT_PAUSE_AFTER_FAILURES": "1000"})
    def attempts_each(count: int) -> Callable[[], bool]:
        def enough() -> bool:
            deposits = [_deposit(daemon, s) for s in ids]
            return all(d is not None and len(_attempts(daemon, d.id)) >= count
                       for d in deposits)
        return enough

    try:
        sword.fail_next(1000, status=503)
        ids = [_submit(daemon, f"pair-{n}", SWORD_REPO) for n in range(4)]
        replica_a = daemon.listen("a")
        wait_until(attempts_each(2), 60, "two attempts of every deposit", daemon.processes)
        # both replicas' retry jobs now compete for the same due deposits ...
        replica_b = daemon.listen("b")
        wait_until(attempts_each(5), 90, "five attempts of every deposit", daemon.processes)
        # ... then a leaves (SIGTERM): b alone must pick up the retries a had woken for
        replica_a.send_signal(signal.SIGTERM)
        assert replica_a.wait(timeout=30) == 0
        wait_until(attempts_each(7), 90, "seven attempts of every deposit", daemon.processes)
        sword.app._faults.clear()
        for sid in ids:
            _wait_status(daemon, sid, DepositStatus.SUBMITTED)
    finally:
        daemon.stop_all()
    owners: set[str] = set()
    for sid in ids:
        deposit = _deposit(daemon, sid)
        assert deposit is not None
        attempts = _attempts(daemon, deposit.id)
        assert [a.number for a in attempts] == list(range(1, len(attempts) + 1))
        assert attempts[-1].outcome is AttemptOutcome.SENT
        for before, after in itertools.pairwise(attempts):
            assert before.ended_at is not None and before.ended_at <= after.started_at, \
                f"attempts {before.number} and {after.number} of {sid} overlap"
            gap = (after.started_at - before.ended_at).total_seconds()
            assert gap >= 0.9, f"{sid} retried {gap:.2f}s after a failure (backoff 1 s)"
        owners.update(a.owner for a in attempts if a.trigger == "job")
    assert len(sword.deposits) == 4, "one package per deposit at the target"
    assert {o.split(":")[1] for o in owners} == {str(replica_a.pid), str(replica_b.pid)}, \
        "both replicas took retries"
    logs = daemon.log_text("a") + daemon.log_text("b")
    assert not re.search(r"Traceback", logs), logs[-3000:]


@pytest.mark.parametrize("listing", [True, False], ids=["listing", "no-listing"])
def test_sigkill_after_a_sword_transfer_is_not_sent_blindly_again(
    daemon: Daemon, listing: bool
) -> None:
    """Killed after the upload, before its receipt was recorded: no Edit-IRI in the
    attempt log. The restarted worker asks the collection's listing: the item found is
    recorded as its receipt says (SUBMITTED: DSpace decides later), one item at the
    target. A server with no listing cannot tell, so the deposit is FAILED naming the
    package, its MD5 and Slug rather than deposited twice."""
    with running_sword_server(listing=listing) as sword:
        _configure(daemon, sword, **NO_JOBS)
        sid = _submit(daemon, f"e2e-sword-crash-{listing}", SWORD_REPO)
        first = daemon.listen("crashing", {"DEPOSIT_FAULT_INJECTION": "crash-after-transfer"})
        assert first.wait(timeout=60) == 137, daemon.log_text("crashing")
        daemon.processes.remove(first)
        (remote,) = sword.deposits.values()
        daemon.listen("restarted")
        if listing:
            deposit = _wait_status(daemon, sid, DepositStatus.SUBMITTED)
            assert deposit.deposit_status_ref == sword.statement_url(remote.id, "atom")
            copy = _get(daemon, RepositoryCopy, deposit.repository_copy or "")
            assert copy.copy_status is CopyStatus.IN_PROGRESS
            (attempt,) = _attempts(daemon, deposit.id)
            assert attempt.outcome is AttemptOutcome.RECONCILED
            assert attempt.edit_iri == sword.edit_url(remote.id)
        else:
            deposit = _wait_status(daemon, sid, DepositStatus.FAILED)
            message = deposit.status_message or ""
            assert "outcome of attempt 1" in message and "is unknown" in message
            assert "offers no collection listing" in message
            assert remote.md5 in message and f"retry --uri {deposit.id}" in message
            assert deposit.deposit_status_ref is None and deposit.repository_copy is None
            (attempt,) = _attempts(daemon, deposit.id)
            assert attempt.outcome is AttemptOutcome.PERMANENT_ERROR
            assert attempt.package is not None and attempt.package.name in message
        posts = [r for r in sword.requests if r.method == "POST"]
        assert len(posts) == 1 and len(sword.deposits) == 1, "not sent a second time"
        if not listing:  # the Slug it was sent with, as the server received it
            assert f"Slug {posts[0].headers['Slug']}" in message


def test_an_unanswered_sword_upload_is_found_by_the_next_replica(daemon: Daemon) -> None:
    """Replica a uploads; the server stores the package but answers after a's read
    timeout and lists it only later: a records RETRY, outcome unknown, the attempt open.
    a leaves; replica b's retry job asks the collection's listing first, finds the item
    and records it: one item, no second upload."""
    release = threading.Event()
    with running_sword_server() as sword:
        try:
            daemon.write_repositories({"dspace": lifecycle_sword_entry(
                sword, **{"check-collection": False, "read-timeout": 1})})
            daemon.env.update(FAST)
            daemon.data_dir.mkdir(parents=True, exist_ok=True)
            daemon.store().close()
            sword.answer_late_next(release, ingested=False)
            sid = _submit(daemon, "e2e-sword-unanswered", SWORD_REPO)
            replica_a = daemon.listen("a", NO_JOBS)
            deposit = _wait_status(daemon, sid, DepositStatus.RETRY)
            assert "outcome unknown" in (deposit.status_message or "")
            (attempt,) = _attempts(daemon, deposit.id)
            assert attempt.is_open
            replica_a.send_signal(signal.SIGTERM)
            assert replica_a.wait(timeout=30) == 0, daemon.log_text("a")
            release.set()  # the ingest ends: the item is listed
            daemon.listen("b")
            deposit = _wait_status(daemon, sid, DepositStatus.SUBMITTED)
        finally:
            release.set()
            daemon.stop_all()
        (remote,) = sword.deposits.values()
        assert deposit.deposit_status_ref == sword.statement_url(remote.id, "atom")
        (attempt,) = _attempts(daemon, deposit.id)
        assert attempt.outcome is AttemptOutcome.RECONCILED
        assert attempt.edit_iri == sword.edit_url(remote.id)
        posts = [r for r in sword.requests if r.method == "POST"]
        assert len(posts) == 1, "not uploaded a second time"
        assert "asking" in daemon.log_text("b") and "Traceback" not in daemon.log_text("b")


def test_listen_wakes_the_retry_job_at_the_next_attempt_time(
    daemon: Daemon, sword: SwordServer
) -> None:
    """An hour between job runs, a 0.3 s backoff: the retries come from the wake-ups."""
    _configure(daemon, sword, **{**FAST, "PASS_DEPOSIT_JOBS_DEFAULT_INTERVAL_MS": "3600000"})
    sword.fail_next(2, status=503)
    daemon.listen()
    sid = _submit(daemon, "e2e-wake", SWORD_REPO)
    deposit = _wait_status(daemon, sid, DepositStatus.SUBMITTED, timeout=30)
    attempts = _attempts(daemon, deposit.id)
    assert [a.trigger for a in attempts] == ["message", "job", "job"]
    assert attempts[0].owner != attempts[1].owner, "the jobs lease under their own owner"
    assert len(sword.deposits) == 1


@pytest.mark.parametrize("across_midnight", [False, True], ids=["same-day", "across-midnight"])
@pytest.mark.parametrize("protocol", ["sftp", "ftps"])
def test_sigkill_after_a_drop_transfer_is_reconciled_by_name_and_size(
    tmp_path: Path, protocol: str, across_midnight: bool
) -> None:
    """SFTP and FTPS: the package found at the target under its deterministic name with
    its size is the one sent before the crash; it is recorded, not uploaded again. Across
    midnight (the attempt begun yesterday, the %s directory dated then), it is found in
    yesterday's directory, and today's is not even made."""
    daemon = make_daemon(tmp_path)
    with contextlib.ExitStack() as stack:
        if protocol == "sftp":
            sshd = stack.enter_context(running_sshd(tmp_path / "sshd"))
            inbox = tmp_path / "inbox"
            entry = sftp_entry(sshd, inbox)
        else:
            ftps = stack.enter_context(running_ftp_server(tmp_path / "ftps", tls=True))
            inbox = ftps.root / "upload"
            entry = ftps_entry(ftps)
        stack.callback(daemon.stop_all)
        daemon.write_repositories({"archive": entry})
        sid = _submit(daemon, f"e2e-{protocol}-crash", FS_REPO)
        first = daemon.listen("crashing", {"DEPOSIT_FAULT_INJECTION": "crash-after-transfer",
                                           **NO_JOBS})
        assert first.wait(timeout=60) == 137, daemon.log_text("crashing")
        daemon.processes.remove(first)
        sent = sorted(p for p in inbox.rglob("*") if p.is_file())
        assert len(sent) == 1 and not sent[0].name.startswith(".")
        today_dir = sent[0].parent
        if across_midnight:
            yesterday = datetime.now(UTC).replace(hour=23, minute=59, second=50) - timedelta(
                days=1)
            earlier_dir = today_dir.parent / yesterday.strftime("%Y-%m-%d")
            earlier_dir.mkdir()
            sent = [sent[0].rename(earlier_dir / sent[0].name)]
            today_dir.rmdir()
            _set_attempt_start(daemon, sid, yesterday)
        size, mtime = sent[0].stat().st_size, sent[0].stat().st_mtime_ns

        daemon.listen("restarted", NO_JOBS)
        deposit = _wait_status(daemon, sid, DepositStatus.ACCEPTED)
        assert sorted(p for p in inbox.rglob("*") if p.is_file()) == sent
        assert (sent[0].stat().st_size, sent[0].stat().st_mtime_ns) == (size, mtime), \
            "not uploaded again"
        assert "not sent again" in (deposit.status_message or "")
        assert deposit.status_message is not None and sent[0].parent.name in \
            deposit.status_message
        outcomes = [a.outcome for a in _attempts(daemon, deposit.id)]
        if across_midnight:
            assert outcomes == [AttemptOutcome.RECONCILED]
            assert not today_dir.exists(), "nothing sent into today's directory"
        else:
            assert outcomes == [AttemptOutcome.INTERRUPTED, AttemptOutcome.SENT]


def _set_attempt_start(daemon: Daemon, submission_id: str, when: datetime) -> None:
    """Date the submission's one open attempt ``when`` (as if begun then)."""
    deposit = _deposit(daemon, submission_id)
    assert deposit is not None
    store = daemon.store()
    try:
        with store.engine.begin() as conn:
            changed = conn.execute(
                update(deposit_attempts)
                .where(deposit_attempts.c.deposit_id == deposit.id,
                       deposit_attempts.c.ended_at.is_(None))
                .values(started_at=when.timestamp())
            ).rowcount
        assert changed == 1
    finally:
        store.close()
