"""The NIHMS mail reader against Dovecot over IMAPS: every wording recorded on the
deposits it names, one unit per mail, the mail flagged seen only after; a second
pass changes nothing; unknown packages and unreadable mails stay unseen for an
operator; LOGIN and XOAUTH2; the mailbox faults end the pass with the reason."""

from __future__ import annotations

import logging
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from deposit_services.config.repositories import parse_repositories
from deposit_services.model.entities import (
    AggregatedDepositStatus,
    CopyStatus,
    Deposit,
    DepositStatus,
    RepositoryCopy,
    Submission,
)
from deposit_services.nihms_mail import imap
from deposit_services.nihms_mail.imap import ImapMailbox
from deposit_services.nihms_mail.mailbox import MailboxError, MailboxUnavailable
from deposit_services.nihms_mail.reader import NihmsMailReader
from deposit_services.nihms_mail.settings import AUTH_XOAUTH2, MailSettings
from deposit_services.service.context import ServiceContext
from deposit_services.service.targets import Targets
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import Database, UnitOfWork, run_unit
from tests.integration.nihms_mail.conftest import fixture_text
from tests.integration.nihms_mail.world import body, seed
from tests.support.dovecot import NIHMS_SENDER, Dovecot, make_ca, nihms_mail

NAMES = ("ok", "failed", "not_submitted", "corrupt", "used", "problem", "unrecognized")


def mail_settings(dovecot: Dovecot, account: tuple[str, str], **changes: object) -> MailSettings:
    settings = MailSettings(host="127.0.0.1", port=dovecot.port, user=account[0],
                            password=account[1], senders=(NIHMS_SENDER,),
                            ca_file=str(dovecot.ca_file), timeout=10)
    return replace(settings, **changes)  # type: ignore[arg-type]


def reader_for(database: Database, settings: MailSettings, tmp_path: Path
               ) -> tuple[NihmsMailReader, list[str]]:
    """A reader on ``database``; the DepositStatus messages it sends are collected."""
    sent: list[str] = []
    database.publisher = lambda message: sent.append(message.body)
    ctx = ServiceContext(database=database, targets=Targets(parse_repositories({}, {}), "t"),
                         work_dir=tmp_path, owner="mail-test")
    return NihmsMailReader(ctx, settings.senders, lambda: ImapMailbox(settings)), sent


def load(database: Database, deposit_id: str) -> tuple[Deposit, RepositoryCopy, Submission]:
    def read(uow: UnitOfWork) -> tuple[Deposit, RepositoryCopy, Submission]:
        deposit = uow.records.get(Deposit, deposit_id)
        return (deposit, uow.records.get(RepositoryCopy, deposit.repository_copy or ""),
                uow.records.get(Submission, deposit.submission or ""))
    return run_unit(database, read, read_only=True)


def test_every_wording_is_recorded_once_and_the_mail_flagged_seen(
        dovecot: Dovecot, account: tuple[str, str], store_url: str, tmp_path: Path) -> None:
    database = SqlDatabase(store_url)
    seeded = {s.submission.split("-")[0]: s for s in seed(
        database, [f"{name}-{tmp_path.name[-6:]}" for name in NAMES])}
    mail = dovecot.deliver(account[0], nihms_mail(body(fixture_text("all_patterns.html"), **{
        name: seeded[name].package for name in NAMES}), message_id="<all@nihms.test>"))
    reader, sent = reader_for(database, mail_settings(dovecot, account), tmp_path)

    summary = reader.run_once()

    assert (summary.read, summary.recorded, summary.left) == (1, 1, [])
    assert dovecot.seen(account[0]) == [mail]
    deposit, copy, submission = load(database, seeded["ok"].deposit)
    assert (deposit.deposit_status, deposit.deposit_status_ref) == (
        DepositStatus.SUBMITTED, "nihms-id:1502302")
    assert copy.copy_status is CopyStatus.IN_PROGRESS
    assert copy.external_ids[-1] == "1502302" and copy.access_url in copy.external_ids
    assert "manuscript 1502302" in (deposit.status_message or "")
    assert submission.aggregated_deposit_status is AggregatedDepositStatus.IN_PROGRESS
    for name in NAMES[1:]:
        deposit, copy, submission = load(database, seeded[name].deposit)
        assert deposit.deposit_status is DepositStatus.REJECTED, name
        assert copy.copy_status is CopyStatus.REJECTED, name
        assert (deposit.status_message or "").startswith(
            f"Package ID={seeded[name].package} "), name
        assert submission.aggregated_deposit_status is AggregatedDepositStatus.REJECTED, name
    assert len(sent) == len(NAMES)  # one DepositStatus per deposit changed

    # The same mail again (a worker that died before flagging it): nothing changes.
    before = {s.deposit: load(database, s.deposit)[0] for s in seeded.values()}
    dovecot.deliver(account[0], nihms_mail(body(fixture_text("all_patterns.html"), **{
        name: seeded[name].package for name in NAMES}), message_id="<all@nihms.test>"))
    again = reader.run_once()
    assert (again.read, again.recorded, again.changed) == (1, 1, [])
    assert {s.deposit: load(database, s.deposit)[0] for s in seeded.values()} == before
    assert len(sent) == len(NAMES)
    assert dovecot.unseen(account[0]) == []


def test_unknown_packages_and_unreadable_mails_stay_unseen_for_an_operator(
        dovecot: Dovecot, account: tuple[str, str], sqlite_url: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    database = SqlDatabase(sqlite_url)
    (known,) = seed(database, ["known1"])
    user = account[0]
    mixed = dovecot.deliver(user, nihms_mail(body(fixture_text("no_class.html"), ok=known.package,
                                                  failed="nihms-native-2022-05_x_y_nobody"),
                                             message_id="<mixed@nihms.test>"))
    broken = dovecot.deliver(user, nihms_mail(fixture_text("malformed.html"),
                                              message_id="<broken@nihms.test>"))
    odd = dovecot.deliver(user, nihms_mail(body(fixture_text("unknown_text.html"),
                                                odd=known.package), message_id="<odd@nihms.test>"))
    other = dovecot.deliver(user, nihms_mail(fixture_text("malformed.html"),
                                             sender="someone@example.org"))
    reader, _ = reader_for(database, mail_settings(dovecot, account), tmp_path)

    with caplog.at_level(logging.INFO, logger="deposit_services.nihms_mail"):
        summary = reader.run_once()

    assert summary.read == 4 and summary.not_ours == 1 and summary.recorded == 0
    assert sorted(summary.left) == ["<broken@nihms.test>", "<mixed@nihms.test>",
                                    "<odd@nihms.test>"]
    assert dovecot.unseen(user) == sorted([mixed, broken, odd, other])
    # the package it knows is recorded all the same
    deposit, _, _ = load(database, known.deposit)
    assert deposit.deposit_status_ref == "nihms-id:1502555"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("<mixed@nihms.test>" in e and "nihms-native-2022-05_x_y_nobody" in e
               for e in errors)
    assert any("<broken@nihms.test>" in e and "cannot be read" in e for e in errors)
    assert any("<odd@nihms.test>" in e and "waiting for a reviewer" in e for e in errors)


def test_xoauth2_with_a_token_from_a_file_and_from_a_command(
        dovecot: Dovecot, account: tuple[str, str], sqlite_url: str, tmp_path: Path) -> None:
    database = SqlDatabase(sqlite_url)
    (one,) = seed(database, ["oauth1"])
    dovecot.deliver(account[0], nihms_mail(body(fixture_text("success.html"), ok=one.package,
                                                manuscript="777")))
    token_file = tmp_path / "token"
    token_file.write_text(account[1] + "\n")
    by_file = mail_settings(dovecot, account, auth=AUTH_XOAUTH2, password=None,
                            token_file=str(token_file))
    assert reader_for(database, by_file, tmp_path)[0].run_once().recorded == 1
    assert load(database, one.deposit)[0].deposit_status_ref == "nihms-id:777"
    by_command = replace(by_file, token_file=None, token_command=f"printf %s {account[1]}")
    assert reader_for(database, by_command, tmp_path)[0].run_once().read == 0
    wrong = replace(by_file, token_file=None, token_command="printf %s not-the-token")
    with pytest.raises(MailboxError, match="refused") as refused:
        reader_for(database, wrong, tmp_path)[0].run_once()
    assert "not-the-token" not in str(refused.value)


def test_mailbox_faults_end_the_pass_with_the_reason_and_flag_nothing(
        dovecot: Dovecot, account: tuple[str, str], sqlite_url: str, tmp_path: Path) -> None:
    database = SqlDatabase(sqlite_url)
    (one,) = seed(database, ["fault1"])
    mail = dovecot.deliver(account[0], nihms_mail(body(fixture_text("success.html"),
                                                       ok=one.package, manuscript="1")))
    good = mail_settings(dovecot, account)
    with pytest.raises(MailboxError, match=r"login of .* refused") as refused:
        reader_for(database, replace(good, password="wrong-password"), tmp_path)[0].run_once()
    assert "wrong-password" not in str(refused.value)
    with pytest.raises(MailboxError, match="certificate does not verify"):
        other_ca = make_ca(tmp_path / "other-ca").ca_file
        reader_for(database, replace(good, ca_file=str(other_ca)), tmp_path)[0].run_once()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with pytest.raises(MailboxUnavailable, match="cannot be reached"):
        reader_for(database, replace(good, port=closed), tmp_path)[0].run_once()
    with pytest.raises(MailboxError, match="folder 'Nowhere' cannot be opened"):
        reader_for(database, replace(good, folder="Nowhere"), tmp_path)[0].run_once()
    assert dovecot.unseen(account[0]) == [mail]
    assert load(database, one.deposit)[0].deposit_status_ref == f"nihms-package:{one.package}"


def test_a_mail_too_large_to_read_is_logged_and_left(
        dovecot: Dovecot, account: tuple[str, str], sqlite_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(imap, "MAX_MAIL_BYTES", 20_000)
    database = SqlDatabase(sqlite_url)
    (one,) = seed(database, ["big1"])
    html = body(fixture_text("success.html"), ok=one.package, manuscript="5")
    big = dovecot.deliver(account[0], nihms_mail(html + "<!-- padding -->" * 2000))
    small = dovecot.deliver(account[0], nihms_mail(html))
    reader, _ = reader_for(database, mail_settings(dovecot, account), tmp_path)
    with caplog.at_level(logging.ERROR, logger="deposit_services.nihms_mail"):
        assert reader.run_once().recorded == 1
    assert dovecot.unseen(account[0]) == [big] and dovecot.seen(account[0]) == [small]
    assert any("larger than 20000 bytes" in r.getMessage() for r in caplog.records)
