"""``status`` shows the NIHMS manuscript id of a deposit NIHMS took and the reason of
one NIHMS refused."""

from __future__ import annotations

from deposit_services.entrypoints.reports import status_report, status_table
from deposit_services.model.entities import Deposit, DepositStatus
from deposit_services.store.memory import MemoryDatabase
from deposit_services.store.uow import UnitOfWork, run_unit
from tests.integration.nihms_mail.world import seed


def test_status_shows_the_manuscript_id_and_the_rejection_reason() -> None:
    database = MemoryDatabase()
    taken, refused, waiting = seed(database, ["s1", "s2", "s3"])

    def move(uow: UnitOfWork) -> None:
        uow.records.get(Deposit, taken.deposit).deposit_status_ref = "nihms-id:1502302"
        deposit = uow.records.get(Deposit, refused.deposit)
        deposit.deposit_status = DepositStatus.REJECTED
        deposit.status_message = f"Package ID={refused.package} is corrupt"

    run_unit(database, move)
    report = {s["id"]: s["deposits"][0] for s in status_report(database)}
    assert report["s1"]["nihmsManuscriptId"] == "1502302"
    assert report["s1"]["rejectionReason"] is None
    assert report["s2"]["rejectionReason"] == f"Package ID={refused.package} is corrupt"
    assert report["s3"]["nihmsManuscriptId"] is None
    table = status_table(status_report(database), width=400)
    assert "NIHMS manuscript 1502302" in table
    assert f"rejected: Package ID={refused.package} is corrupt" in table
    assert waiting.package in table  # still waiting: its copy's URL
