"""NIHMS mail parsing: every wording, both table shapes, the mail around the HTML."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from string import Template

import pytest

from deposit_services.nihms_mail.parser import (
    Outcome,
    UnreadableMail,
    addresses,
    html_body,
    is_from_nihms,
    parse_html,
    read_notice,
)
from deposit_services.nihms_mail.refs import manuscript_id, package_id, submission_of

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "nihms_mail"
IDS = {name: f"nihms-native-2022-05_2026-11-30_01-02-03_{name}-sub" for name in (
    "ok", "failed", "not_submitted", "corrupt", "used", "problem", "unrecognized")}


def fixture(name: str, **values: str) -> str:
    return Template((FIXTURES / name).read_text(encoding="utf-8")).substitute(values)


def test_every_wording_in_one_mail() -> None:
    report = parse_html(fixture("all_patterns.html", **IDS))
    by_package = {n.package: n for n in report.notices}
    assert set(by_package) == set(IDS.values())
    assert report.unknown == ()
    ok = by_package[IDS["ok"]]
    assert (ok.outcome, ok.manuscript) == (Outcome.SUBMITTED, "1502302")
    for name in ("failed", "not_submitted", "corrupt", "used", "problem", "unrecognized"):
        notice = by_package[IDS[name]]
        assert notice.outcome is Outcome.REJECTED, name
        assert notice.manuscript is None
        assert notice.text.startswith(f"Package ID={IDS[name]} ")
    # the NIHMS text, whitespace of the HTML folded, is the reason kept
    assert by_package[IDS["failed"]].text == (
        f"Package ID={IDS['failed']} failed because all manuscripts from this journal "
        "should be submitted directly to PMC.")


def test_rows_without_the_message_class_use_the_second_cell() -> None:
    report = parse_html(fixture("no_class.html", failed="pkg_a", ok="pkg_b"))
    assert [(n.package, n.outcome, n.manuscript) for n in report.notices] == [
        ("pkg_a", Outcome.REJECTED, None), ("pkg_b", Outcome.SUBMITTED, "1502555")]


def test_a_text_that_says_nothing_known_is_reported_not_guessed() -> None:
    report = parse_html(fixture("unknown_text.html", odd="pkg_odd"))
    assert report.notices == ()
    assert report.unknown == ("Package ID=pkg_odd is waiting for a reviewer to look at it.",)


@pytest.mark.parametrize("html", [
    (FIXTURES / "malformed.html").read_text(encoding="utf-8"),
    "",
    "<html><body><table><tr><td>only one cell</td></tr></table></body></html>",
])
def test_a_mail_without_package_rows_is_unreadable(html: str) -> None:
    with pytest.raises(UnreadableMail):
        parse_html(html)


@pytest.mark.parametrize(("text", "outcome"), [
    ("package id=abc FAILED BECAUSE x", Outcome.REJECTED),
    ("Package ID = abc was not submitted", Outcome.REJECTED),
    ("Package ID=abc for Manuscript ID 12 was submitted successfully", Outcome.SUBMITTED),
    ("Package ID=abc was received", None),
    ("Manuscript 12 was submitted successfully", None),
])
def test_read_notice(text: str, outcome: Outcome | None) -> None:
    notice = read_notice(text)
    assert (notice.outcome if notice else None) is outcome
    if notice is not None:
        assert notice.package == "abc"


def _mail(sender: str, subject: str, html: str | None, text: str = "plain") -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["Subject"] = subject
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def test_which_mails_are_nihms_bulk_submission_reports() -> None:
    nihms = addresses("NIHMS-Help@ncbi.nlm.nih.gov, other@example.org")
    assert is_from_nihms(_mail("NIHMS <nihms-help@ncbi.nlm.nih.gov>", "Bulk submission (errors "
                               "encountered)", None), nihms)
    assert is_from_nihms(_mail("other@example.org", "Fwd: Bulk submission", None), nihms)
    assert not is_from_nihms(_mail("someone@example.org", "Bulk submission", None), nihms)
    assert not is_from_nihms(_mail("other@example.org", "NIHMS update", None), nihms)


def test_the_html_part_of_a_multipart_mail_is_read() -> None:
    message = _mail("a@b", "Bulk submission", "<table><tr><td>x</td><td>y</td></tr></table>")
    assert "<table>" in html_body(message)
    with pytest.raises(UnreadableMail, match="no text/html part"):
        html_body(_mail("a@b", "Bulk submission", None))


def test_refs() -> None:
    name = "nihms-native-2022-05_2026-11-30_01-02-03_42"
    assert package_id(name + ".tar.gz") == name
    assert package_id(name + ".zip") == name
    assert package_id(name) == name
    assert submission_of(name) == "42"
    assert submission_of("nihms-native-2017-07_2023-10-23_13-10-30_a_b") == "a_b"
    assert submission_of("no-underscores") is None
    assert manuscript_id("nihms-id:1502302") == "1502302"
    assert manuscript_id("nihms-package:x") is None
    assert manuscript_id(None) is None
