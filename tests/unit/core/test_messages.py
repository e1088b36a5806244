from __future__ import annotations

import json

import pytest

from deposit_services.errors import MalformedMessage
from deposit_services.model.messages import DepositStatusChanged, SubmissionReady, parse_message


def test_pass_core_bodies_decode() -> None:
    assert parse_message('{"submission": "15", "type": "SubmissionReady"}') == SubmissionReady("15")
    assert parse_message(b'{"deposit": 31, "type": "DepositStatus", "extra": [1]}') == (
        DepositStatusChanged("31"))


def test_type_may_come_as_a_header() -> None:
    assert parse_message('{"submission": "7"}', {"type": "SubmissionReady"}) == SubmissionReady("7")


def test_round_trip() -> None:
    assert parse_message(SubmissionReady("a/b").to_json()) == SubmissionReady("a/b")
    assert json.loads(DepositStatusChanged("9").to_json()) == {"deposit": "9",
                                                               "type": "DepositStatus"}


@pytest.mark.parametrize(("body", "words"), [
    ("not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"submission": "1", "type": "Other"}', "unknown message type 'Other'"),
    ('{"type": "SubmissionReady"}', "'submission'"),
    ('{"submission": "  ", "type": "SubmissionReady"}', "'submission'"),
    ('{"deposit": null, "type": "DepositStatus"}', "'deposit'"),
])
def test_bad_bodies_say_what_is_wrong(body: str, words: str) -> None:
    with pytest.raises(MalformedMessage, match=words):
        parse_message(body)
