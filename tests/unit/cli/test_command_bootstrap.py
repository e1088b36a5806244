"""Every command bootstraps through entrypoints.command.bootstrap, which masks the
secrets of the settings and of repositories.json in every log line from then on (the
``pause``/``resume`` and ``web`` commands included)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from deposit_services.cli import configure_logging
from deposit_services.entrypoints.command import bootstrap
from deposit_services.settings import load_settings

FTP_PASSWORD = "ftp-pw-31337"


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


def test_a_repositorys_password_is_masked_once_a_command_has_bootstrapped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], root_logging: None,
) -> None:
    config = tmp_path / "repositories.json"
    config.write_text(json.dumps({"ftp-repo": {
        "assembler": {"specification": "simple"},
        "transport-config": {"protocol-binding": {
            "protocol": "ftp", "server-fqdn": "ftp.example", "server-port": "21",
            "username": "depositor", "password": FTP_PASSWORD}}}}))
    settings = load_settings({"HOME": str(tmp_path), "DEPOSIT_DATA_DIR": str(tmp_path / "d"),
                              "PASS_DEPOSIT_REPOSITORY_CONFIGURATION": str(config)})
    configure_logging("INFO")
    log = logging.getLogger("tests.command")
    log.warning("before: %s", FTP_PASSWORD)
    app = bootstrap(settings, with_broker=False, with_repositories=True)
    try:
        assert "ftp-repo" in app.repositories.entries
        log.warning("after: %s", FTP_PASSWORD)
    finally:
        app.close()
    err = capsys.readouterr().err
    assert f"before: {FTP_PASSWORD}" in err  # not yet known as a secret
    assert "after: ***" in err and err.count(FTP_PASSWORD) == 1


def test_the_search_command_masks_the_settings_secrets_like_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], root_logging: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from deposit_services import cli

    password = "index-pw-27182"
    for name, value in {"HOME": str(tmp_path), "DEPOSIT_DATA_DIR": str(tmp_path / "d"),
                        "DEPOSIT_SEARCH_PASSWORD": password}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DEPOSIT_SEARCH_URL", raising=False)
    assert cli.main(["search", "anything"]) == 0  # the records' own search: no index
    logging.getLogger("tests.command").warning("after: %s", password)
    err = capsys.readouterr().err
    assert "after: ***" in err and password not in err
