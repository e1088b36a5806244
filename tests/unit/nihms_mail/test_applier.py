"""Recording NIHMS mails on an in-memory store: the matching rules that the Dovecot
tests do not reach (a rejection after the success, a second manuscript id, a package
whose name does not carry its submission id, headers that cannot be read)."""

from __future__ import annotations

from pathlib import Path

from deposit_services.config.repositories import parse_repositories
from deposit_services.model.entities import CopyStatus, Deposit, DepositStatus, RepositoryCopy
from deposit_services.nihms_mail.applier import record_mail
from deposit_services.nihms_mail.mailbox import Mail, Mailbox
from deposit_services.nihms_mail.parser import parse_html
from deposit_services.nihms_mail.reader import NihmsMailReader
from deposit_services.service.context import ServiceContext
from deposit_services.service.targets import Targets
from deposit_services.store.memory import MemoryDatabase
from deposit_services.store.uow import UnitOfWork, run_unit
from tests.integration.nihms_mail.world import seed


def context(tmp_path: Path) -> ServiceContext:
    return ServiceContext(database=MemoryDatabase(), targets=Targets(
        parse_repositories({}, {}), "t"), work_dir=tmp_path, owner="t")


def row(text: str) -> str:
    return f'<table><tr><td>x</td><td class="message">{text}</td></tr></table>'


def deposit(ctx: ServiceContext, deposit_id: str) -> tuple[Deposit, RepositoryCopy]:
    def read(uow: UnitOfWork) -> tuple[Deposit, RepositoryCopy]:
        found = uow.records.get(Deposit, deposit_id)
        return found, uow.records.get(RepositoryCopy, found.repository_copy or "")
    return run_unit(ctx.database, read, read_only=True)


def test_a_rejection_after_the_success_is_recorded_and_a_second_id_is_not(
        tmp_path: Path) -> None:
    ctx = context(tmp_path)
    (one,) = seed(ctx.database, ["s1"])
    ok = parse_html(row(f"Package ID={one.package} for Manuscript ID 11 was submitted "
                        "successfully"))
    assert record_mail(ctx, ok, "<1>").changed == [(one.deposit, "SUBMITTED nihms-id:11")]
    other = parse_html(row(f"Package ID={one.package} for Manuscript ID 12 was submitted "
                           "successfully"))
    assert record_mail(ctx, other, "<2>").unchanged == [one.deposit]
    assert deposit(ctx, one.deposit)[0].deposit_status_ref == "nihms-id:11"
    problem = parse_html(row(f"Package ID={one.package} for Manuscript ID 11 was submitted "
                             "with the following problem: no PDF"))
    outcome = record_mail(ctx, problem, "<3>")
    assert outcome.changed == [(one.deposit, "REJECTED nihms-id:11")] and outcome.complete
    found, copy = deposit(ctx, one.deposit)
    assert found.deposit_status is DepositStatus.REJECTED
    assert copy.copy_status is CopyStatus.REJECTED and copy.external_ids[-1] == "11"
    # terminal: a late success moves nothing back
    assert record_mail(ctx, ok, "<1>").changed == []


def test_a_package_name_without_the_submission_id_is_found_by_its_ref(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    (one,) = seed(ctx.database, ["weird"])

    def rename(uow: UnitOfWork) -> None:
        uow.records.get(Deposit, one.deposit).deposit_status_ref = "nihms-package:pkg-no-id"

    run_unit(ctx.database, rename)
    report = parse_html(row("Package ID=pkg-no-id is corrupt"))
    assert record_mail(ctx, report, "<c>").changed == [(one.deposit, "REJECTED nihms-package:"
                                                                     "pkg-no-id")]
    unknown = record_mail(ctx, parse_html(row("Package ID=a_b_c_nobody is corrupt")), "<u>")
    assert unknown.unknown == ["a_b_c_nobody"] and not unknown.complete


class ListMailbox(Mailbox):
    def __init__(self, mails: list[Mail]) -> None:
        self.box = {m.uid: m for m in mails}
        self.seen: list[str] = []

    def open(self) -> None:
        pass

    def unseen(self, subject: str) -> list[str]:
        return [uid for uid in self.box if uid not in self.seen]

    def fetch(self, uid: str) -> Mail | None:
        return self.box.get(uid)

    def mark_seen(self, uid: str) -> None:
        self.seen.append(uid)

    def close(self) -> None:
        pass


def test_a_mail_that_cannot_be_read_does_not_stop_the_others(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    (one,) = seed(ctx.database, ["m1"])
    good = (b"From: nihms@example.org\r\nSubject: Bulk submission\r\nMessage-ID: <g@x>\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n\r\n"
            + row(f"Package ID={one.package} is corrupt").encode())
    broken = (b"From: nihms@example.org\r\nSubject: Bulk submission\r\n"
              b"Content-Type: text/html; charset=no-such-charset\r\n\r\n\xff\xfe<table>")
    box = ListMailbox([Mail("1", broken), Mail("2", good)])
    summary = NihmsMailReader(ctx, ("nihms@example.org",), lambda: box).run_once()
    assert box.seen == ["2"] and summary.recorded == 1 and len(summary.left) == 1
    assert deposit(ctx, one.deposit)[0].deposit_status is DepositStatus.REJECTED


def test_pass_package_names_match_exactly_never_by_prefix(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    short, long_ = seed(ctx.database, ["2299", "22993"])

    def pass_names(uow: UnitOfWork) -> None:  # as PASS named them (2017-07 format)
        for one in (short, long_):
            uow.records.get(Deposit, one.deposit).deposit_status_ref = (
                f"nihms-package:nihms-native-2017-07_2023-10-23_13-10-30_{one.submission}")

    run_unit(ctx.database, pass_names)
    report = parse_html(row("Package ID=nihms-native-2017-07_2023-10-23_13-10-30_2299 failed "
                            "because all manuscripts from this journal go to PMC directly."))
    outcome = record_mail(ctx, report, "<p>")
    assert [deposit_id for deposit_id, _ in outcome.changed] == [short.deposit]
    assert deposit(ctx, long_.deposit)[0].deposit_status is DepositStatus.SUBMITTED
