"""What the CLI prints: one line per row whatever the values hold, credentials masked;
and the store's error messages, which the CLI and the logs show."""

from __future__ import annotations

import json
from argparse import Namespace
from typing import Any

import pytest
from sqlalchemy import exc

from deposit_services import cli
from deposit_services.entrypoints import configuration, operations, reports, submissions
from deposit_services.entrypoints.command import EXIT_OK
from deposit_services.errors import ConfigurationError, StoreError, StoreUnavailable
from deposit_services.service.lifecycle import Outcome
from deposit_services.settings import load_settings
from deposit_services.store.engine import db_errors, make_engine, masked

FORGED = "sub-1\nsub-2  SUBMITTED  FAKE ROW"


def _report() -> list[dict[str, Any]]:
    return [{
        "id": FORGED, "aggregatedDepositStatus": "FAILED",
        "statusMessage": "deposit to https://alice:sword-pw@sword.example/col failed\n\x1b[2J",
        "deposits": [{
            "repositoryKey": "archive\u202e", "depositStatus": "FAILED",
            "statusMessage": "x" * 50_000, "repositoryCopy": None,
        }],
    }]


def test_the_status_table_has_one_line_per_row_and_no_secret() -> None:
    table = reports.status_table(_report())
    lines = table.splitlines()
    assert len(lines) == 3  # header, submission, deposit
    assert lines[1].startswith("sub-1\\nsub-2  SUBMITTED  FAKE ROW")
    assert "sword-pw" not in table and "https://alice:***@sword.example/col" in table
    assert "\x1b" not in table and "\u202e" not in table
    assert lines[2].endswith("...[cut: 50000 chars]")


def test_status_json_stays_exact_but_for_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    class App:
        database = None

        def close(self) -> None:
            pass

    monkeypatch.setattr(submissions, "bootstrap", lambda settings, with_broker: App())
    monkeypatch.setattr(reports, "status_report", lambda database, submission: _report())
    settings = load_settings({"HOME": "/h"})
    assert submissions.cmd_status(settings, Namespace(submission=None, json=True)) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data[0]["id"] == FORGED
    assert data[0]["statusMessage"] == (
        "deposit to https://alice:***@sword.example/col failed\n\x1b[2J")
    assert data[0]["deposits"][0]["statusMessage"] == "x" * 50_000


def test_config_show_prints_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings({
        "HOME": "/h", "SPRING_ACTIVEMQ_PASSWORD": "amq-pw",
        "DEPOSIT_STORE_URL": "postgresql://me:pg-pw@db/x?password=pg-pw2",
        "PASS_ELASTICSEARCH_URL": "http://es:9200/?token=es-token",
    })
    configuration.cmd_config_show(settings, Namespace())
    out = capsys.readouterr().out
    assert "amq-pw" not in out and "pg-pw" not in out and "es-token" not in out
    assert "postgresql://me:***@db/x?password=***" in out


def test_configuration_problems_are_printed_one_per_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli.print_problems(ConfigurationError("bad", ["X='a\nb': no", "Y='http://u:pw@h': no"]))
    err = capsys.readouterr().err.splitlines()
    assert err == ["configuration error: bad", "  - X='a\\nb': no",
                   "  - Y='http://u:***@h': no"]


def test_batch_outcomes_are_shown_safe() -> None:
    outcome = Outcome(deposit_id="d-1\nFAKE", ok=False, status="FAILED",
                      message="refused by https://u:pw@h/\x1b[31m")
    shown = operations.shown(outcome)
    assert shown.deposit_id == "d-1\\nFAKE"
    assert shown.message == "refused by https://u:***@h/\\x1b[31m"


def test_store_urls_and_errors_show_no_password() -> None:
    engine = make_engine("postgresql://me:pg-pw@db.example:5432/x?password=pg-pw2&sslmode=require")
    try:
        where = masked(engine)
        assert "pg-pw" not in where and "password=***" in where
        driver = Exception('connection to "postgresql://me:pg-pw3@db.example/x" failed')
        with pytest.raises(StoreUnavailable) as caught, db_errors(where):
            raise exc.OperationalError("SELECT 1", {}, driver)
        assert "pg-pw" not in str(caught.value)
        assert str(caught.value).startswith(f"database unavailable ({where}): ")
        with pytest.raises(StoreError) as failed, db_errors(where):
            raise exc.ProgrammingError("SELECT 1", {}, driver)
        assert "pg-pw" not in str(failed.value)
    finally:
        engine.dispose()


def test_unsupported_store_urls_are_refused_without_their_password() -> None:
    with pytest.raises(StoreError) as caught:
        make_engine("mysql://root:my-pw@db/x?password=my-pw2")
    assert "my-pw" not in str(caught.value)
