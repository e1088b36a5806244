"""The CLI's rich output: tables cut to the terminal, values escaped and never read as
markup, log lines above the live progress bar, JSON summaries; repositories.json found
from any directory."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from deposit_services.entrypoints import configuration
from deposit_services.entrypoints.progress import Progress, summary_data, summary_table
from deposit_services.entrypoints.reports import Column, render_table, status_table
from deposit_services.errors import ConfigurationError
from deposit_services.service.lifecycle import Outcome
from deposit_services.settings import load_settings


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_table_is_cut_to_the_width_in_its_message_column_only() -> None:
    rows = [("d-" + "1" * 30, "FAILED", "x" * 500)]
    table = render_table([Column("ID"), Column("STATUS"), Column("MESSAGE", cut=True)], rows,
                         width=80)
    lines = table.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[1].startswith("d-" + "1" * 30 + "  FAILED  ")
    assert lines[1].endswith("…")


def test_values_are_escaped_and_never_markup() -> None:
    table = status_table([{"id": "[bold red]s1[/]\n\x1b[2J", "aggregatedDepositStatus": None,
                           "statusMessage": "https://u:pw@h/x", "deposits": []}])
    line = table.splitlines()[1]
    assert line.startswith("[bold red]s1[/]\\n\\x1b[2J")
    assert "pw@" not in table and "\x1b" not in table


def test_log_lines_print_above_the_live_bar_and_the_handlers_come_back() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    stream = _Tty()
    with Progress(2, "retry", stream) as progress:
        assert root.handlers != before
        logging.getLogger("deposit_services.test").warning("a line with %s", "a\x1b[31m")
        progress.step(1, 2, Outcome("d1", True, "ACCEPTED"))
        progress.step(2, 2, Outcome("d2", False, "FAILED"))
    assert root.handlers == before
    out = stream.getvalue()
    assert "a line with a\\x1b[31m" in out
    assert "[##############################] 2/2" in out


def test_summaries_as_a_table_and_as_json() -> None:
    outcomes = [Outcome("d1", True, "ACCEPTED"), Outcome("d2", False, "FAILED", "refused")]
    table = summary_table(outcomes, "retry")
    assert table.splitlines()[-1] == "retry: 1 done, 1 not done (of 2)"
    data = summary_data(outcomes, "retry")
    assert data["done"] == 1 and data["notDone"] == 1
    assert data["deposits"][1] == {"id": "d2", "result": "failing", "status": "FAILED",
                                   "message": "refused"}


def test_the_default_repositories_json_is_looked_for_and_every_place_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PASS_DEPOSIT_REPOSITORY_CONFIGURATION", raising=False)
    monkeypatch.setattr(configuration, "PACKAGE_ROOT", tmp_path / "nowhere")
    settings = load_settings({"HOME": str(tmp_path), "DEPOSIT_DATA_DIR": str(tmp_path / "d")})
    assert configuration.locate_repositories(settings, required=False) == settings
    with pytest.raises(ConfigurationError) as caught:
        configuration.locate_repositories(settings, required=True)
    for place in configuration.repository_configuration_candidates(settings):
        assert str(place) in str(caught.value)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "repositories.json").write_text("{}")
    found = configuration.locate_repositories(settings, required=True)
    assert found.repository_configuration == str(tmp_path / "d" / "repositories.json")
