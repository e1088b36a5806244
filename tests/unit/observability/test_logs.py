"""Structured logs: one JSON object a line with the ids of the work in hand; every
configured secret masked in both formats; the secrets found where configurations keep
them (and a repository's ``key`` not taken for one)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from deposit_services.cli import LOG_FORMAT
from deposit_services.observability import logs
from deposit_services.settings import load_settings


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, logging.StreamHandler[io.StringIO], io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.observability.capture")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logs.clear()
    yield logger, handler, stream
    logger.removeHandler(handler)
    logs.clear()


def test_json_lines_carry_the_context_and_stay_one_line(capture) -> None:
    logger, handler, stream = capture
    handler.setFormatter(logs.formatter("json", LOG_FORMAT))
    logs.clear(submission="s-1")
    logs.bind(deposit="d-9", repository="archive", attempt=2)
    logger.warning("sent %s\nforged line", "pkg.zip")
    logs.bind(attempt=None)
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        logger.exception("failed")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "sent pkg.zip\nforged line"  # our template's own newline
    assert (first["submission"], first["deposit"], first["repository"], first["attempt"]) \
        == ("s-1", "d-9", "archive", 2)
    assert first["level"] == "WARNING" and first["logger"] == logger.name
    assert "attempt" not in second and "ValueError" in second["exception"]
    logs.clear(job="retry")
    logger.info("next run")
    third = json.loads(stream.getvalue().splitlines()[-1])
    assert third.get("job") == "retry" and "deposit" not in third


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_configured_secrets_are_masked_in_both_formats(capture, fmt: str) -> None:
    logger, handler, stream = capture
    formatter = logs.formatter(fmt, LOG_FORMAT)
    handler.setFormatter(formatter)
    formatter.protect(["Passphrase-4711", "tok-abcdef"])
    logger.error("key decrypt with %s failed; header Bearer tok-abcdef", "Passphrase-4711")
    logger.error("url https://user:pw-inline@host/x")
    text = stream.getvalue()
    assert "Passphrase-4711" not in text and "tok-abcdef" not in text
    assert "pw-inline" not in text
    assert text.count("***") >= 3


def test_secret_values_from_settings_and_repositories() -> None:
    settings = load_settings({"SPRING_ACTIVEMQ_PASSWORD": "amq-secret", "HOME": "/tmp"})
    config = {"sftp": {"key": "sftp", "transport-config": {"protocol-binding": {
        "username": "depositor", "private-key-passphrase": "pp-123456",
        "password": "pw-123456", "api-token": "tok-123456", "server-port": "22"}}}}
    found = logs.secret_values(settings, config)
    assert found == {"amq-secret", "pp-123456", "pw-123456", "tok-123456"}
