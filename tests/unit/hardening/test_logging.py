"""Log injection: every record's arguments are escaped, cut and redacted by the one
formatter ``cli.configure_logging`` installs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from deposit_services import cli
from deposit_services.observability.logs import Scrubbed
from deposit_services.safetext import MAX_SHOWN, SafeFormatter

FORGED = "sub-1\n2026-01-01 00:00:00,000 ERROR   MainThread FAKE: injected line"


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through SafeFormatter, with cli's format, into a string."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter(cli.LOG_FORMAT))
    logger = logging.getLogger("tests.hardening.logged")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_a_forged_line_in_an_argument_stays_on_its_line(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    logger.error("message %s dead-lettered: %s", FORGED, "unknown submission")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "sub-1\\n2026-01-01 00:00:00,000 ERROR   MainThread FAKE: injected line" in lines[0]
    assert lines[0].endswith("dead-lettered: unknown submission")


@pytest.mark.parametrize("separator", ["\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028",
                                       "\u2029"])
def test_no_line_separator_of_any_kind_gets_through(
    logged: tuple[logging.Logger, io.StringIO], separator: str,
) -> None:
    logger, stream = logged
    logger.warning("id %s", f"a{separator}FAKE ERROR injected")
    assert len(stream.getvalue().splitlines()) == 1


def test_a_10_mb_argument_is_cut_and_says_how_long_it_was(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    body = '{"submission": "' + "x" * (10 * 1024 * 1024 - 32) + '"}'
    logger.error("message %s dead-lettered: %s", body, "no such submission")
    line = stream.getvalue()
    assert line.count("\n") == 1
    assert len(line) < MAX_SHOWN + 200
    assert f"...[cut: {len(body)} chars] dead-lettered: no such submission" in line


def test_terminal_escapes_and_bidi_controls_are_escaped(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    logger.info("file %s, agent %r", "\x1b]0;owned\x07evil\u202etxt.exe", "\x1b[2J")
    text = stream.getvalue()
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "file \\x1b]0;owned\\x07evil\\u202etxt.exe, agent '\\x1b[2J'" in text


def test_url_credentials_in_arguments_and_templates_are_masked(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    logger.info("setting %s = %s", "elasticsearch_url", "http://es:9200/?token=es-secret")
    logger.info("deposit to https://alice:pw@sword.example/col failed")
    logger.info("%(where)s: %(count)d", {"where": "stomp://u:stomp-pw@b:61613", "count": 3})
    text = stream.getvalue()
    assert "es-secret" not in text and ":pw@" not in text and "stomp-pw" not in text
    assert "http://es:9200/?token=***" in text
    assert "https://alice:***@sword.example/col" in text
    assert "stomp://u:***@b:61613: 3" in text


def test_numbers_keep_their_conversions(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    logger.info("%d of %5.1f%% (%x) %s", 3, 12.34, 255, True)
    assert stream.getvalue().rstrip().endswith("3 of  12.3% (ff) True")


def test_our_own_template_keeps_its_newlines(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    logger.info("summary:\n  %s", "a\nb")
    assert stream.getvalue().splitlines()[1] == "  a\\nb"


def test_a_message_that_is_not_text_is_a_value(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    logger.error(ValueError("boom\nFAKE ERROR injected"))
    assert len(stream.getvalue().splitlines()) == 1


def test_tracebacks_stay_multi_line_but_their_messages_are_escaped_and_redacted(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    try:
        try:
            raise OSError("connect to http://u:cause-pw@h/ refused")
        except OSError as cause:
            raise RuntimeError("deposit failed\nFAKE ERROR injected ?token=x "
                               "https://h/?token=tb-secret") from cause
    except RuntimeError:
        logger.exception("processing %s failed", "sub-1")
    text = stream.getvalue()
    lines = text.splitlines()
    assert lines[0].endswith("processing sub-1 failed")
    assert "Traceback (most recent call last):" in lines
    assert not any(line.startswith("FAKE") for line in lines)
    assert "RuntimeError: deposit failed\\nFAKE ERROR injected" in text
    assert "cause-pw" not in text and "tb-secret" not in text
    assert "OSError: connect to http://u:***@h/ refused" in text


def test_the_record_is_left_as_logged_for_other_handlers(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, _ = logged
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep()
    logger.addHandler(keep)
    try:
        logger.error("id %s", "a\nb")
    finally:
        logger.removeHandler(keep)
    assert seen[0].getMessage() == "id a\nb"


def test_configure_logging_installs_one_safe_handler_on_the_root() -> None:
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        cli.configure_logging("WARNING")
        cli.configure_logging("DEBUG")  # again: replaced, not doubled
        ours = [h for h in root.handlers if h not in before[0]]
        assert len(ours) == 1
        formatter = ours[0].formatter
        assert isinstance(formatter, Scrubbed) and isinstance(formatter.inner, SafeFormatter)
        assert root.level == logging.DEBUG
    finally:
        for handler in [h for h in root.handlers if h not in before[0]]:
            root.removeHandler(handler)
        root.setLevel(before[1])
