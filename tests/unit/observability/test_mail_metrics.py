"""deposits_total counts what the NIHMS mail reader settles (as ``listen``'s job runs it,
with the worker's metrics in the context): a refusal once as REJECTED, a success (the
deposit stays SUBMITTED, counted when it was sent) and a mail read again not at all."""

from __future__ import annotations

from pathlib import Path

from deposit_services.config.repositories import parse_repositories
from deposit_services.nihms_mail.applier import record_mail
from deposit_services.nihms_mail.parser import parse_html
from deposit_services.service.context import ServiceContext
from deposit_services.service.targets import Targets
from deposit_services.store.memory import MemoryDatabase
from tests.integration.nihms_mail.world import seed
from tests.unit.observability.test_metrics import read


def row(text: str) -> str:
    return f'<table><tr><td>x</td><td class="message">{text}</td></tr></table>'


def outcomes(ctx: ServiceContext) -> dict[str, float]:
    return {dict(labels)["status"]: value for (name, labels), value in read(ctx.metrics).items()
            if name == "deposit_services_deposits_total" and dict(labels)["repository"] == "pmc"}


def test_mail_outcomes_counted_once_when_settled(tmp_path: Path) -> None:
    ctx = ServiceContext(database=MemoryDatabase(), targets=Targets(
        parse_repositories({}, {}), "t"), work_dir=tmp_path, owner="t")
    taken, refused = seed(ctx.database, ["m1", "m2"])
    ok = parse_html(row(f"Package ID={taken.package} for Manuscript ID 7 was submitted "
                        "successfully"))
    assert record_mail(ctx, ok, "<ok>").changed
    assert outcomes(ctx) == {}  # still SUBMITTED: nothing settled

    bad = parse_html(row(f"Package ID={refused.package} is corrupt"))
    assert record_mail(ctx, bad, "<bad>").changed == [(refused.deposit,
                                                        f"REJECTED nihms-package:"
                                                        f"{refused.package}")]
    assert outcomes(ctx) == {"REJECTED": 1}
    assert record_mail(ctx, bad, "<bad>").unchanged == [refused.deposit]  # read again
    assert outcomes(ctx) == {"REJECTED": 1}
