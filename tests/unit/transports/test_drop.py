"""The file-drop helpers shared by the SFTP and FTP transports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from deposit_services.errors import PermanentTransferError
from deposit_services.transports.drop import (
    check_existing,
    dated_directory,
    directory_prefixes,
    drop_url,
    earlier_directories,
    is_leftover_part,
    temp_name,
)


def test_percent_s_is_the_utc_date() -> None:
    evening_in_new_york = datetime(2024, 5, 4, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert dated_directory("/logs/upload/%s", evening_in_new_york) == "/logs/upload/2024-05-05"
    assert dated_directory("in/%s/x-%s/", datetime(2024, 1, 2, tzinfo=UTC)) == (
        "in/2024-01-02/x-2024-01-02")


@pytest.mark.parametrize(("template", "expected"), [
    ("", ""), ("/", "/"), ("  ", ""), ("plain", "plain"), ("/abs/dir/", "/abs/dir")])
def test_templates_without_a_date(template: str, expected: str) -> None:
    assert dated_directory(template, NOW) == expected


def test_directory_prefixes_for_mkdir_p() -> None:
    assert directory_prefixes("/a/b/c") == ["/a", "/a/b", "/a/b/c"]
    assert directory_prefixes("a//b/./c") == ["a", "a/b", "a/b/c"]
    assert directory_prefixes("") == []


def test_temporary_names_are_hidden_unique_and_recognised() -> None:
    first, second = temp_name("pkg.zip"), temp_name("pkg.zip")
    assert first != second
    assert first.startswith(".pkg.zip.") and first.endswith(".part")
    assert is_leftover_part(first, "pkg.zip")
    assert not is_leftover_part(first, "pkg")
    assert not is_leftover_part("pkg.zip", "pkg.zip")


def test_a_final_name_of_another_size_needs_the_operator() -> None:
    check_existing("ftp://h:21/x", 10, 10)  # the same package: fine
    with pytest.raises(PermanentTransferError, match=r"11 bytes but this package has 10.*remove"):
        check_existing("ftp://h:21/x", 11, 10)


def test_drop_urls_quote_the_path() -> None:
    assert drop_url("sftp", "host", 2222, "in/a b.zip") == "sftp://host:2222/in/a%20b.zip"


NOW = datetime(2024, 5, 6, 0, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize(("started_at", "expected"), [
    # begun just before midnight, the worker restarted after it: that day, not today
    ("2024-05-05T23:59:59.900000+00:00", ["up/2024-05-05"]),
    # days earlier: that day and the next (the directory is dated when send() begins)
    ("2024-05-01T23:59:59+00:00", ["up/2024-05-01", "up/2024-05-02"]),
    ("2024-05-01T10:00:00", ["up/2024-05-01", "up/2024-05-02"]),  # naive: UTC
    ("2024-05-06T00:00:01+00:00", []),  # today: send() checks today's directory itself
    (None, []),
    ("not a date", []),
])
def test_earlier_directories_of_an_attempt(started_at: str | None, expected: list[str]) -> None:
    assert earlier_directories("up/%s", started_at, NOW) == expected


def test_no_earlier_directories_without_a_date_in_the_template() -> None:
    assert earlier_directories("/logs/upload", "2024-05-01T10:00:00+00:00", NOW) == []
