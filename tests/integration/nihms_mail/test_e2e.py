"""NIHMS end to end, with the real CLI as processes: a submission deposited over SFTP to
sshd with NIHMS's mails as status source, NIHMS's mails delivered into Dovecot and read
by the daemon's nihms-mail job; the one-shot command killed with SIGKILL mid-mailbox and
run again; the mailbox faults (Dovecot down, wrong password, a certificate that does not
verify) logged by a daemon that stays up, with nothing flagged seen."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from deposit_services.model.entities import Deposit, DepositStatus
from deposit_services.store.schema import queue_messages
from tests.e2e.conftest import Daemon, make_daemon, wait_until
from tests.integration.nihms_mail.conftest import fixture_text
from tests.integration.nihms_mail.world import body, seed
from tests.support.dovecot import (
    NIHMS_SENDER,
    Dovecot,
    DovecotUnavailable,
    make_ca,
    nihms_mail,
    running_dovecot,
)
from tests.support.graphs import make_graph, write_graph
from tests.support.sshd import Sshd, SshdUnavailable, running_sshd

PMC = {"@type": "Repository", "id": "repo-pmc", "name": "PubMed Central",
       "repositoryKey": "pmc", "integrationType": "ONE_WAY"}


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    try:
        with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
            yield server
    except SshdUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = make_daemon(tmp_path)
    yield d
    d.stop_all()


def mail_env(dovecot: Dovecot, account: tuple[str, str], **changes: str) -> dict[str, str]:
    env = {"PASS_DEPOSIT_NIHMS_EMAIL_HOST": "127.0.0.1",
           "PASS_DEPOSIT_NIHMS_EMAIL_PORT": str(dovecot.port),
           "PASS_DEPOSIT_NIHMS_EMAIL_USER": account[0],
           "PASS_DEPOSIT_NIHMS_EMAIL_PASSWORD": account[1],
           "PASS_DEPOSIT_NIHMS_EMAIL_FROM": f"other@example.org, {NIHMS_SENDER}",
           "PASS_DEPOSIT_NIHMS_EMAIL_CA_FILE": str(dovecot.ca_file),
           "PASS_DEPOSIT_NIHMS_EMAIL_DELAY": "300"}
    env.update(changes)
    return env


def pmc_entry(sshd: Sshd, inbox: Path) -> dict[str, Any]:
    return {"assembler": {"specification": "nihms-native-2022-05",
                          "options": {"archive": "TAR", "compression": "GZIP"}},
            "transport-config": {"protocol-binding": {
                "protocol": "sftp", "server-fqdn": sshd.host, "server-port": str(sshd.port),
                "username": sshd.user, "private-key": str(sshd.client_key),
                "known-hosts": str(sshd.known_hosts), "default-directory": str(inbox),
                "connect-timeout": 5, "status-source": "nihms-email"}}}


def pmc_deposit(daemon: Daemon, submission: str) -> dict[str, Any]:
    """The deposit as ``status --json`` shows it (one process: for the final checks)."""
    (deposit,) = daemon.status(submission)[0]["deposits"]
    return deposit  # type: ignore[no-any-return]


def stored(daemon: Daemon, submission: str) -> Deposit | None:
    """The submission's deposit read from the store in-process (cheap, for polling)."""
    found = daemon.store().find(Deposit, submission=submission)
    return found[0] if found else None


def test_deposits_are_followed_through_nihms_mails(
        daemon: Daemon, sshd: Sshd, dovecot: Dovecot, account: tuple[str, str],
        tmp_path: Path) -> None:
    inbox = tmp_path / "nihms-inbox"
    daemon.write_repositories({"pmc": pmc_entry(sshd, inbox)})
    daemon.env.update(mail_env(dovecot, account))
    daemon.listen()
    files = daemon.root / "files"
    for sid in ("nih-1", "nih-2"):
        daemon.cli("submit", str(write_graph(daemon.root / f"{sid}.json", make_graph(
            sid, files, repositories=[PMC]))), "--files-dir", str(files))

    def waiting(sid: str) -> bool:
        deposit = stored(daemon, sid)
        return deposit is not None and deposit.deposit_status is DepositStatus.SUBMITTED

    wait_until(lambda: waiting("nih-1") and waiting("nih-2"), 60,
               "both deposits SUBMITTED", daemon.processes)
    packages = {}
    for sid in ("nih-1", "nih-2"):
        deposit = pmc_deposit(daemon, sid)
        ref = deposit["depositStatusRef"]
        assert re.fullmatch(rf"nihms-package:nihms-native-2022-05_\d{{4}}-\d\d-\d\d_"
                            rf"\d\d-\d\d-\d\d_{sid}", ref), ref
        packages[sid] = ref.removeprefix("nihms-package:")
        assert deposit["repositoryCopy"]["copyStatus"] == "IN_PROGRESS"
        assert "waiting for NIHMS's Bulk submission email" in deposit["statusMessage"]
        with tarfile.open(inbox / f"{packages[sid]}.tar.gz") as package:  # whole, readable
            assert "bulk_meta.xml" in {Path(n).name for n in package.getnames()}
    assert daemon.status("nih-1")[0]["aggregatedDepositStatus"] == "IN_PROGRESS"

    taken = dovecot.deliver(account[0], nihms_mail(body(
        fixture_text("success.html"), ok=packages["nih-1"], manuscript="1502302")))
    refused = dovecot.deliver(account[0], nihms_mail(body(
        fixture_text("rejected.html"), bad=packages["nih-2"])))
    wait_until(lambda: getattr(stored(daemon, "nih-2"), "deposit_status", None)
               is DepositStatus.REJECTED
               and getattr(stored(daemon, "nih-1"), "deposit_status_ref", None)
               == "nihms-id:1502302", 60,
               "the mails to be read by the nihms-mail job", daemon.processes)

    one = pmc_deposit(daemon, "nih-1")
    assert (one["depositStatus"], one["depositStatusRef"]) == ("SUBMITTED", "nihms-id:1502302")
    assert one["repositoryCopy"]["copyStatus"] == "IN_PROGRESS"
    assert "1502302" in one["repositoryCopy"]["externalIds"]
    two = pmc_deposit(daemon, "nih-2")
    reason = f"Package ID={packages['nih-2']} was already used for Manuscript ID 1400001; " \
             "submission not created."
    assert (two["statusMessage"], two["rejectionReason"]) == (reason, reason)
    assert two["repositoryCopy"]["copyStatus"] == "REJECTED"
    assert daemon.status("nih-2")[0]["aggregatedDepositStatus"] == "REJECTED"
    assert daemon.status("nih-1")[0]["aggregatedDepositStatus"] == "IN_PROGRESS"
    wait_until(lambda: dovecot.seen(account[0]) == sorted([taken, refused]), 10,
               "both mails flagged seen")
    table = daemon.cli("status").stdout
    assert "NIHMS manuscript 1502302" in table and f"rejected: {reason}" in table


def _changes(log: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for deposit in re.findall(r"deposit (\S+): \S+.* \(NIHMS mail ", log):
        counts[deposit] = counts.get(deposit, 0) + 1
    return counts


def test_killed_mid_mailbox_and_run_again_every_state_is_applied_once(
        daemon: Daemon, dovecot: Dovecot, account: tuple[str, str]) -> None:
    daemon.data_dir.mkdir(parents=True, exist_ok=True)
    seeded = seed(daemon.store().database, [f"k{n:02d}" for n in range(40)])
    mails = []
    for n, one in enumerate(seeded):
        html = (body(fixture_text("success.html"), ok=one.package, manuscript=str(9000 + n))
                if n % 2 == 0 else body(fixture_text("rejected.html"), bad=one.package))
        mails.append(dovecot.deliver(account[0], nihms_mail(html)))
    env = {**daemon.env, **mail_env(dovecot, account)}
    first = subprocess.Popen([sys.executable, "-m", "deposit_services", "nihms-mail"], env=env,
                             stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert first.stderr is not None
    log = ""
    for line in first.stderr:
        log += line
        if "(NIHMS mail " in line:
            os.kill(first.pid, signal.SIGKILL)
            break
    log += first.stderr.read()
    assert first.wait(timeout=30) == -signal.SIGKILL
    assert dovecot.unseen(account[0]), "the kill came after the whole mailbox was read"

    second = subprocess.run(
        [sys.executable, "-m", "deposit_services", "nihms-mail"], env=env,
        capture_output=True, text=True, timeout=120, check=False)
    assert second.returncode == 0, second.stderr
    log += second.stderr
    assert dovecot.unseen(account[0]) == []
    assert all(count == 1 for count in _changes(log).values()), _changes(log)
    # exactly one DepositStatus message per deposit: each change was committed once
    with daemon.store().engine.connect() as conn:
        bodies = conn.execute(select(queue_messages.c.body).where(
            queue_messages.c.queue == "deposit")).scalars().all()
    announced = sorted(re.search(r'"deposit": ?"([^"]+)"', b)[1] for b in bodies)  # type: ignore[index]
    assert announced == sorted(one.deposit for one in seeded)
    report = {s["id"]: s["deposits"][0] for s in daemon.status()}
    for n, one in enumerate(seeded):
        deposit = report[one.submission]
        if n % 2 == 0:
            assert deposit["depositStatusRef"] == f"nihms-id:{9000 + n}"
            assert deposit["repositoryCopy"]["externalIds"].count(str(9000 + n)) == 1
        else:
            assert deposit["depositStatus"] == "REJECTED"


def test_mailbox_faults_are_logged_the_daemon_stays_up_nothing_is_flagged(
        daemon: Daemon, tmp_path: Path) -> None:
    daemon.data_dir.mkdir(parents=True, exist_ok=True)
    (one,) = seed(daemon.store().database, ["f1"])
    account = ("pass-faults@example.edu", "the-password")
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running_dovecot(dict([account])))
        except DovecotUnavailable as exc:
            pytest.fail(str(exc), pytrace=False)
        mail = server.deliver(account[0], nihms_mail(body(
            fixture_text("success.html"), ok=one.package, manuscript="4242")))
        other_ca = make_ca(tmp_path / "other-ca").ca_file
        cases = {
            "wrong-password": ({"PASS_DEPOSIT_NIHMS_EMAIL_PASSWORD": "not-the-password"},
                               "refused"),
            "bad-cert": ({"PASS_DEPOSIT_NIHMS_EMAIL_CA_FILE": str(other_ca)},
                         "certificate does not verify"),
        }
        for name, (changes, words) in cases.items():
            proc = daemon.listen(name, extra_env=mail_env(server, account, **changes))
            wait_until(lambda n=name, w=words: w in daemon.log_text(n),  # type: ignore[misc]
                       30, f"the {name} fault in the log", daemon.processes)
            assert proc.poll() is None, f"the daemon stopped on {name}"
            assert "not-the-password" not in daemon.log_text(name)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            assert server.unseen(account[0]) == [mail]
        # Dovecot down: logged, the daemon stays up; back up: the next run reads the mail
        server.stop()
        proc = daemon.listen("down", extra_env=mail_env(server, account))
        wait_until(lambda: "cannot be reached" in daemon.log_text("down"), 30,
                   "the outage in the log", daemon.processes)
        assert proc.poll() is None
        assert server.unseen(account[0]) == [mail]
        server.start()
        wait_until(lambda: getattr(stored(daemon, "f1"), "deposit_status_ref", None)
                   == "nihms-id:4242", 30,
                   "the mail read once Dovecot is back", daemon.processes)
        wait_until(lambda: server.seen(account[0]) == [mail], 10, "the mail flagged seen")
