"""PASS_DEPOSIT_NIHMS_EMAIL_*: what is missing is named; the token never shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from deposit_services.errors import ConfigurationError
from deposit_services.nihms_mail.mailbox import MailboxError
from deposit_services.nihms_mail.settings import AUTH_XOAUTH2, MailSettings
from deposit_services.settings import load_settings

BASE = {"DEPOSIT_DATA_DIR": "/tmp/x", "PASS_DEPOSIT_NIHMS_EMAIL_HOST": "imap.example.edu",
        "PASS_DEPOSIT_NIHMS_EMAIL_USER": "pass@example.edu",
        "PASS_DEPOSIT_NIHMS_EMAIL_FROM": "NIHMS-Help@ncbi.nlm.nih.gov"}


def test_login_and_pass_spellings() -> None:
    mail = MailSettings.from_settings(load_settings({
        **BASE, "NIHMS_MAIL_PASSWORD": "pw", "NIHMS_MAIL_PORT": "1993"}))
    assert (mail.port, mail.password, mail.senders) == (1993, "pw",
                                                        ("nihms-help@ncbi.nlm.nih.gov",))
    assert "pw" not in repr(mail)


def test_what_is_missing_is_named() -> None:
    with pytest.raises(ConfigurationError) as raised:
        MailSettings.from_settings(load_settings({"DEPOSIT_DATA_DIR": "/tmp/x"}))
    text = " ".join(raised.value.problems)
    for name in ("HOST", "USER", "FROM", "PASSWORD"):
        assert f"PASS_DEPOSIT_NIHMS_EMAIL_{name}" in text
    with pytest.raises(ConfigurationError, match="TOKEN_COMMAND"):
        MailSettings.from_settings(load_settings({**BASE,
                                                  "PASS_DEPOSIT_NIHMS_EMAIL_AUTH": "xoauth2"}))
    with pytest.raises(ConfigurationError, match="PASS_DEPOSIT_NIHMS_EMAIL_AUTH"):
        load_settings({**BASE, "PASS_DEPOSIT_NIHMS_EMAIL_AUTH": "kerberos"})


def test_ms_exchange_oauth2_is_xoauth2_and_a_failing_token_command_says_so(
        tmp_path: Path) -> None:
    mail = MailSettings.from_settings(load_settings({
        **BASE, "PASS_DEPOSIT_NIHMS_EMAIL_AUTH": "MS_EXCHANGE_OAUTH2",
        "PASS_DEPOSIT_NIHMS_EMAIL_TOKEN_COMMAND": "sh -c 'echo s3cret-token; exit 3'"}))
    assert mail.auth == AUTH_XOAUTH2
    with pytest.raises(MailboxError, match="exited with 3") as raised:
        mail.token()
    assert "s3cret-token" not in str(raised.value)
    empty = tmp_path / "token"
    empty.write_text("\n")
    with pytest.raises(MailboxError, match="is empty"):
        MailSettings(host="h", port=993, user="u", senders=("a",), auth=AUTH_XOAUTH2,
                     token_file=str(empty)).token()
