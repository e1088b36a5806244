"""Hostile or broken graph files: each ends in a GraphError that names the file, the
entity and field (or the byte offset) and the rule broken; never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deposit_services import cli
from deposit_services.entrypoints import command
from deposit_services.errors import GraphError
from deposit_services.model.entities import File, Submission
from deposit_services.model.graph import MAX_GRAPH_BYTES, MAX_ID_LENGTH, Graph


def entities() -> list[dict[str, Any]]:
    return [
        {"@type": "Submission", "id": "15", "submitted": True, "repositories": ["4"]},
        {"@type": "Repository", "id": "4", "repositoryKey": "pmc"},
        {"@type": "File", "id": "16", "name": "a.doc", "uri": "a.doc", "submission": "15"},
    ]


def load_error(path: Path, content: bytes | str | list[Any]) -> str:
    if isinstance(content, list):
        content = json.dumps(content)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(GraphError) as caught:
        Graph.load(path)
    message = str(caught.value)
    assert str(path) in message
    return message


def changed(change: Callable[[list[dict[str, Any]]], object]) -> list[dict[str, Any]]:
    data = entities()
    change(data)
    return data


def test_a_graph_that_is_not_utf8_names_the_byte_and_its_offset(tmp_path: Path) -> None:
    text = json.dumps(changed(lambda g: g[2].update(name="café.doc")), ensure_ascii=False)
    offset = text.encode("utf-8").index("é".encode())
    message = load_error(tmp_path / "latin1.json", text.encode("latin-1"))
    assert f"is not UTF-8: byte 0xe9 at offset {offset}" in message
    utf16 = load_error(tmp_path / "utf16.json", json.dumps(entities()).encode("utf-16"))
    assert "is not UTF-8: byte 0xff at offset 0" in utf16


def test_a_utf8_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(entities()).encode())
    assert Graph.load(path).submission.id == "15"


@pytest.mark.parametrize(("type_value", "words"), [
    (["Submission"], "field @type: must be a string (one of: User, Repository, Journal, "),
    (["Submission"], "), not an array: ['Submission']"),
    ({"name": "Submission"}, "field @type: must be a string (one of: "),
    ({"name": "Submission"}, "not an object: {'name': 'Submission'}"),
    (7, "not a number: 7"),
    (None, ": no @type (one of: User"),
])
def test_an_at_type_that_is_not_a_string_is_named(tmp_path: Path, type_value: Any,
                                                  words: str) -> None:
    message = load_error(tmp_path / "g.json",
                         changed(lambda g: g[0].update({"@type": type_value})))
    assert "entity '15' (graph entry 0)" in message and words in message


def test_json_nested_100000_deep_is_a_clear_error(tmp_path: Path) -> None:
    message = load_error(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    assert "arrays and objects are nested more than 64 levels deep (from char 64)" in message
    objects = '{"a":' * 100_000 + "1" + "}" * 100_000
    assert "nested more than 64 levels deep" in load_error(tmp_path / "deep2.json", objects)


def test_nesting_the_parser_survives_is_still_limited_and_located(tmp_path: Path) -> None:
    deep: Any = "x"
    for _ in range(100):
        deep = [deep]
    message = load_error(tmp_path / "g.json", changed(lambda g: g[0].update(extra=deep)))
    assert "Submission '15' (graph entry 0) field extra[0][0]" in message
    assert "nested more than 64 levels deep" in message


def test_a_nul_in_a_file_uri_names_the_entity_and_field(tmp_path: Path) -> None:
    message = load_error(tmp_path / "nul.json", changed(lambda g: g[2].update(uri="a\x00b")))
    assert "File '16' (graph entry 2) field uri: contains a NUL character at position 1" in message


@pytest.mark.parametrize(("field", "value", "words"), [
    ("uri", "a\nb.doc", "field uri: contains the control character '\\n' at position 1"),
    ("name", "a\x1b[31m.doc", "field name: contains the control character '\\x1b'"),
    ("id", "16\r", "field id: contains the control character '\\r'"),
])
def test_control_characters_in_ids_names_and_uris_are_refused(
    tmp_path: Path, field: str, value: str, words: str,
) -> None:
    message = load_error(tmp_path / "g.json", changed(lambda g: g[2].update({field: value})))
    assert f"(graph entry 2) {words}" in message


def test_a_nul_or_lone_surrogate_anywhere_is_refused(tmp_path: Path) -> None:
    title = load_error(tmp_path / "a.json",
                       changed(lambda g: g[0].update(title="x\x00")))
    assert "Submission '15' (graph entry 0) field title: contains a NUL character" in title
    surrogate = load_error(tmp_path / "b.json", '[{"@type": "User", "id": "\\ud800"}]')
    assert "field id: contains a lone UTF-16 surrogate '\\ud800'" in surrogate
    key = load_error(tmp_path / "c.json", '[{"@type": "User", "id": "1", "k\\u0000": 1}]')
    assert "User '1' (graph entry 0) field" in key and "the key contains a NUL" in key


@pytest.mark.parametrize(("id_value", "words"), [
    ({"x": 1}, "field id: Input should be a valid string (it is an object)"),
    ([16], "field id: Input should be a valid string (it is an array)"),
    (1.5, "field id: Input should be a valid string (it is a number)"),
    (True, "field id: Input should be a valid string (it is a boolean)"),
    ("9" * (MAX_ID_LENGTH + 1), f"field id: {MAX_ID_LENGTH + 1} characters long; at most "
                                f"{MAX_ID_LENGTH}"),
])
def test_ids_of_the_wrong_kind_or_size_are_named(tmp_path: Path, id_value: Any,
                                                 words: str) -> None:
    message = load_error(tmp_path / "g.json", changed(lambda g: g[2].update(id=id_value)))
    assert "(graph entry 2)" in message and words in message
    assert len(message) < 600, "the input is quoted cut short, not whole"


def test_pass_cores_id_forms_still_load(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(changed(lambda g: (g[0].update(id=15),
                                                  g[2].update(submission={"id": "15"})))))
    assert Graph.load(path).get(File, "16").submission == "15"


def test_numbers_where_strings_belong_name_the_field(tmp_path: Path) -> None:
    message = load_error(tmp_path / "g.json", changed(lambda g: g[2].update(name=5)))
    assert "File '16' (graph entry 2): field name: Input should be a valid string (it is a " \
           "number)" in message


def test_a_huge_id_is_quoted_short_and_a_huge_reference_too(tmp_path: Path) -> None:
    huge = "1" * 10_000_000
    message = load_error(tmp_path / "a.json", changed(lambda g: g[0].update(id=huge)))
    assert f"field id: {len(huge)} characters long" in message and len(message) < 600
    dangling = load_error(tmp_path / "b.json",
                          changed(lambda g: g[0].update(repositories=["x" * 100_000])))
    assert "field repositories: refers to Repository 'xxx" in dangling
    assert len(dangling) < 600


def test_a_long_text_field_is_content_not_an_attack(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(changed(lambda g: g[0].update(metadata="m" * 5_000_000))))
    assert len(Graph.load(path).get(Submission, "15").metadata or "") == 5_000_000


@pytest.mark.parametrize(("content", "words"), [
    ("", "is empty"),
    (" \n\t ", "is empty"),
    ("5", "a graph is a JSON list of entities, each with @type and id; this is a number"),
    ("null", "this is null"),
    ('"graph"', "this is a string"),
    ('{"entities": []}', "this is an object"),
    ('["15"]', "graph entry 0 is a string, not a JSON object with @type and id"),
    ("[[]]", "graph entry 0 is an array, not a JSON object"),
    ('[{"@type": "User", "id": "1", "id": "2"}]',
     "is not JSON: the key 'id' appears twice in one object"),
    ('[{"@type": "User", "id": "1", "n": NaN}]', "is not JSON: NaN is not a JSON number"),
    ('[{"@type": "User", "id": "1", "n": -Infinity}]', "-Infinity is not a JSON number"),
    ('[{"@type": "User", "id": ' + "7" * 5000 + "}]",
     "is not JSON: a number of 5000 digits (at most 4300)"),
    ("[{", "is not JSON: Expecting property name"),
])
def test_other_shapes_are_clear_errors(tmp_path: Path, content: str, words: str) -> None:
    assert words in load_error(tmp_path / "g.json", content)


def test_a_file_too_large_to_be_a_graph_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as sparse:
        sparse.truncate(MAX_GRAPH_BYTES + 1)
    with pytest.raises(GraphError, match=f"is {MAX_GRAPH_BYTES + 1} bytes; a graph over"):
        Graph.load(path)


def test_the_cli_reports_a_bad_graph_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DEPOSIT_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "nul.json"
    path.write_text(json.dumps(changed(lambda g: g[2].update(uri="a\x00b"))))
    assert cli.main(["submit", str(path)]) == command.EXIT_FAILURE
    err = capsys.readouterr().err
    assert "field uri: contains a NUL character" in err and "Traceback" not in err
