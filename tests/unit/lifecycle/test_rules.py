"""PASS's submission-status rule, deposit URIs, the batch summary and progress lines."""

from __future__ import annotations

import io

import pytest

from deposit_services.entrypoints.progress import Progress, summary_table
from deposit_services.model.entities import (
    CopyStatus,
    Deposit,
    DepositStatus,
    RepositoryCopy,
    SubmissionStatus,
)
from deposit_services.service.lifecycle import Outcome
from deposit_services.service.operations import deposit_id_from_uri
from deposit_services.service.submission_status import calculate


def _dep(status: DepositStatus | None, repo: str = "r1") -> Deposit:
    return Deposit(id=f"d-{repo}", deposit_status=status, repository=repo)


def _copy(status: CopyStatus, repo: str = "r1") -> RepositoryCopy:
    return RepositoryCopy(id=f"c-{repo}", copy_status=status, repository=repo)


def test_every_repository_complete_is_complete() -> None:
    deposits = [_dep(DepositStatus.ACCEPTED, "r1"), _dep(DepositStatus.ACCEPTED, "r2")]
    copies = [_copy(CopyStatus.COMPLETE, "r1"), _copy(CopyStatus.COMPLETE, "r2")]
    assert calculate(["r1", "r2"], deposits, copies) is SubmissionStatus.COMPLETE
    assert calculate(["r1", "r2"], deposits, copies[:1]) is SubmissionStatus.SUBMITTED


@pytest.mark.parametrize("deposit,copy", [
    (DepositStatus.REJECTED, None),
    (DepositStatus.SUBMITTED, CopyStatus.REJECTED),
    (DepositStatus.SUBMITTED, CopyStatus.STALLED),
])
def test_trouble_needs_attention_even_when_others_are_complete(
    deposit: DepositStatus, copy: CopyStatus | None
) -> None:
    copies = [_copy(CopyStatus.COMPLETE, "r2")] + ([_copy(copy)] if copy else [])
    status = calculate(["r1", "r2"], [_dep(deposit), _dep(DepositStatus.ACCEPTED, "r2")], copies)
    assert status is SubmissionStatus.NEEDS_ATTENTION


def test_in_progress_and_failed_stay_submitted() -> None:
    deposits = [_dep(DepositStatus.FAILED), _dep(DepositStatus.RETRY, "r2")]
    assert calculate(["r1", "r2"], deposits, [_copy(CopyStatus.IN_PROGRESS)]) \
        is SubmissionStatus.SUBMITTED
    assert calculate([], [], []) is SubmissionStatus.SUBMITTED


@pytest.mark.parametrize("uri,ident", [
    ("31", "31"),
    ("  abc123 ", "abc123"),
    ("https://pass.example/data/deposit/31", "31"),
    ("https://pass.example/data/deposit/31/", "31"),
    ("http://h/deposits/a%20b", "a b"),
])
def test_a_deposit_is_named_by_id_or_url(uri: str, ident: str) -> None:
    assert deposit_id_from_uri(uri) == ident


@pytest.mark.parametrize("uri", ["", "  ", "https://pass.example/", "/"])
def test_no_id_is_a_usage_error(uri: str) -> None:
    with pytest.raises(ValueError, match="does not name a deposit"):
        deposit_id_from_uri(uri)


def test_summary_lists_each_deposit_and_counts() -> None:
    outcomes = [Outcome("d1", True, "ACCEPTED", "archived"),
                Outcome("d2", False, "FAILED", "HTTP 401\nUnauthorized"),
                Outcome("d3", False, "ACCEPTED", "only FAILED...", skipped=True)]
    table = summary_table(outcomes, "retry").splitlines()
    assert table[0].split() == ["DEPOSIT", "RESULT", "STATUS", "MESSAGE"]
    assert table[1].split()[:3] == ["d1", "done", "ACCEPTED"]
    assert table[2].split()[:3] == ["d2", "failing", "FAILED"] and "401 Unauthorized" in table[2]
    assert table[3].split()[:2] == ["d3", "skipped"]
    assert table[-1] == "retry: 1 done, 2 not done (of 3)"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise() -> None:
    tty, plain = _Tty(), io.StringIO()
    for stream in (tty, plain):
        progress = Progress(2, "refresh", stream)
        progress.step(1, 2, Outcome("d1", True, "ACCEPTED"))
        progress.step(2, 2, Outcome("d2", False, "SUBMITTED"))
        progress.close()
    assert "\r" in tty.getvalue() and "[###############...............] 1/2" in tty.getvalue()
    assert tty.getvalue().endswith("\n")
    assert plain.getvalue().splitlines() == [
        "refresh 1/2 deposit d1: ACCEPTED (ok)", "refresh 2/2 deposit d2: SUBMITTED (not done)"]
