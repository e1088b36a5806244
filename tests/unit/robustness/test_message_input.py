"""Hostile or broken message bodies: each is a MalformedMessage on its first delivery,
saying what is wrong, so the worker dead-letters it at once with that reason."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from deposit_services.config.repositories import parse_repositories
from deposit_services.entrypoints.worker import MessageHandler
from deposit_services.errors import MalformedMessage
from deposit_services.messaging.base import Broker, Delivery
from deposit_services.model.graph import MAX_ID_LENGTH
from deposit_services.model.messages import (
    MAX_BODY_BYTES,
    DepositStatusChanged,
    SubmissionReady,
    parse_message,
)
from deposit_services.service.context import ServiceContext
from deposit_services.service.targets import Targets
from deposit_services.store.memory import MemoryDatabase


def malformed(body: str | bytes, headers: Mapping[str, Any] | None = None) -> str:
    with pytest.raises(MalformedMessage) as caught:
        parse_message(body, headers)
    return str(caught.value)


def test_a_body_nested_50000_deep_is_malformed() -> None:
    assert "message body: arrays and objects are nested more than 8 levels deep (from char 8)" \
        in malformed("[" * 50_000 + "]" * 50_000)
    assert "nested more than 8 levels deep" in malformed('{"a":' * 40_000 + "1" + "}" * 40_000)


def test_nesting_the_parser_survives_is_still_limited() -> None:
    body = {"submission": "1", "type": "SubmissionReady", "extra": [[[[[[[[["x"]]]]]]]]]}
    assert "message body at extra[0][0][0][0][0][0][0]: arrays and objects are nested more " \
        "than 8 levels deep" in malformed(json.dumps(body))


@pytest.mark.parametrize(("body", "words"), [
    ("[1, 2]", "message body is an array, not a JSON object: '[1, 2]'"),
    ('"SubmissionReady"', "message body is a string, not a JSON object"),
    ("15", "message body is a number, not a JSON object"),
    ("null", "message body is null, not a JSON object"),
    ("true", "message body is a boolean, not a JSON object"),
    ("", "message body is empty"),
    ("  \n", "message body is empty"),
    (b"\xff\xfe{}", "message body is not UTF-8: byte 0xff at offset 0 (invalid start byte)"),
    ('{"submission": "1", "submission": "2", "type": "SubmissionReady"}',
     "message body is not JSON: the key 'submission' appears twice in one object"),
    ('{"submission": NaN, "type": "SubmissionReady"}', "NaN is not a JSON number"),
    ('{"submission": ' + "1" * 5000 + ', "type": "SubmissionReady"}',
     "a number of 5000 digits (at most 4300)"),
])
def test_bodies_that_are_not_one_json_object_are_malformed(body: str | bytes,
                                                           words: str) -> None:
    assert words in malformed(body)


@pytest.mark.parametrize(("value", "words"), [
    ({"id": "1"}, "(an object: {'id': '1'})"),
    (["1"], "(an array: ['1'])"),
    (True, "(a boolean: True)"),
    (1.5, "(a number: 1.5)"),
    ("", "(a string: '')"),
    ("  ", "(a string: '  ')"),
])
def test_ids_of_the_wrong_type_are_malformed(value: Any, words: str) -> None:
    message = malformed(json.dumps({"submission": value, "type": "SubmissionReady"}))
    assert ("SubmissionReady message needs a non-empty 'submission' id (a string or an "
            f"integer) {words}; the body has keys: 'submission', 'type'") in message


def test_a_huge_id_is_malformed_and_not_quoted_whole() -> None:
    message = malformed(json.dumps({"deposit": "7" * 100_000, "type": "DepositStatus"}))
    assert f"DepositStatus message: the 'deposit' id is 100000 characters long; ids are at " \
           f"most {MAX_ID_LENGTH}" in message
    assert len(message) < 300


@pytest.mark.parametrize(("value", "words"), [
    ("1\x00", "message body at deposit: contains a NUL character at position 1"),
    ("1\n2", "the 'deposit' id '1\\n2' contains the control character '\\n'"),
    ("1\x1b[2J", "contains the control character '\\x1b'"),
    ("\ud800", "message body at deposit: contains a lone UTF-16 surrogate '\\ud800'"),
])
def test_control_characters_in_ids_are_malformed(value: str, words: str) -> None:
    assert words in malformed(json.dumps({"deposit": value, "type": "DepositStatus"}))


def test_an_id_with_surrounding_blanks_is_still_read() -> None:
    assert parse_message('{"deposit": " 31\\n", "type": "DepositStatus"}') == (
        DepositStatusChanged("31"))


def test_a_type_only_in_the_header_names_itself_and_what_is_missing() -> None:
    message = malformed('{"submission": "15"}', {"type": "DepositStatus"})
    assert message == ("DepositStatus message (type from the 'type' header) needs a non-empty "
                       "'deposit' id (a string or an integer); the body has keys: 'submission'")


@pytest.mark.parametrize(("body", "headers", "words"), [
    ('{"submission": "1", "type": "SubmissionReady"}', {"type": "DepositStatus"},
     "the body's type 'SubmissionReady' contradicts the 'type' header 'DepositStatus'"),
    ('{"submission": "1", "type": ["SubmissionReady"]}', None,
     "'type' in the body must be a string, not an array: ['SubmissionReady']"),
    ('{"submission": "1", "type": 5}', None, "'type' in the body must be a string, not a number"),
    ('{"submission": "1"}', {"type": 5}, "the 'type' header must be a string, not a number"),
    ('{"submission": "1"}', None, "message has no type: neither 'type' in the body nor a "
                                  "'type' header (one of SubmissionReady, DepositStatus); the "
                                  "body has keys: 'submission'"),
    ('{"submission": "1", "type": "' + "X" * 10_000 + '"}', None,
     "unknown message type 'XXXX"),
])
def test_the_type_must_be_one_known_string(body: str, headers: Mapping[str, Any] | None,
                                           words: str) -> None:
    message = malformed(body, headers)
    assert words in message and len(message) < 300


def test_a_header_that_agrees_with_the_body_is_fine() -> None:
    assert parse_message('{"submission": "1", "type": "SubmissionReady"}',
                         {"type": "SubmissionReady"}) == SubmissionReady("1")
    assert parse_message(b'\xef\xbb\xbf{"submission": "1", "type": "SubmissionReady"}') == (
        SubmissionReady("1"))


def test_a_body_too_large_is_malformed_before_it_is_parsed() -> None:
    body = '{"submission": "1", "type": "SubmissionReady", "x": "' + "x" * MAX_BODY_BYTES + '"}'
    assert f"message body is {len(body)} characters long; a message is at most " \
           f"{MAX_BODY_BYTES} bytes" in malformed(body)
    assert "bytes long" in malformed(body.encode())


class DeadLetters(Broker):
    """Settles deliveries into lists."""

    def __init__(self) -> None:
        self.settled: list[tuple[str, str]] = []

    def publish(self, queue: str, body: str, headers: Mapping[str, str] | None = None) -> None:
        raise AssertionError("nothing is published for a malformed message")

    def receive(self, queues: Sequence[str], timeout: float) -> Delivery | None:
        return None

    def ack(self, delivery: Delivery) -> None:
        self.settled.append(("ack", ""))

    def nack(self, delivery: Delivery, reason: str) -> None:
        self.settled.append(("nack", reason))

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self.settled.append(("dead", reason))


@pytest.mark.parametrize("body", [
    "[" * 50_000 + "]" * 50_000,
    '{"deposit": {"id": 1}, "type": "DepositStatus"}',
    '{"submission": "1\\u0000"}',
])
def test_the_worker_dead_letters_them_on_the_first_delivery(body: str, tmp_path: Path) -> None:
    broker = DeadLetters()
    ctx = ServiceContext(database=MemoryDatabase(), targets=Targets(
        parse_repositories({}, {}), "test"), work_dir=tmp_path, owner="w1")
    handler = MessageHandler(ctx, broker, touch_interval=1.0)
    handler.handle(Delivery(queue="submission", body=body,
                            headers={"type": "SubmissionReady"}, delivery_count=1))
    ((verdict, reason),) = broker.settled
    assert verdict == "dead" and reason == malformed(body, {"type": "SubmissionReady"})
