"""A statusMessage never keeps a URL's credentials, whoever writes it (a transport's
error text, a repository's answer): it is what ``status`` shows and what PASS's UI and
pass-core hold."""

from __future__ import annotations

from deposit_services.model.entities import Deposit, Submission


def test_credentials_in_a_status_message_are_masked_when_it_is_set() -> None:
    deposit = Deposit(id="d1", status_message="refused by https://depositor:s3cr3t@dspace.example"
                                               "/swordv2/collection/1?token=abc (HTTP 401)")
    assert "s3cr3t" not in (deposit.status_message or "")
    assert "abc" not in (deposit.status_message or "")
    assert "dspace.example/swordv2/collection/1" in (deposit.status_message or "")
    deposit.status_message = "again at http://u:pw@host.example/x"  # assignment too
    assert "pw@" not in (deposit.status_message or "")
    submission = Submission.model_validate({"id": "s", "statusMessage": "see ftp://a:b@h/"})
    assert "a:b@" not in (submission.status_message or "")
    assert Deposit(id="d2", status_message="plain words stay as they are").status_message == (
        "plain words stay as they are")
