"""Hostile, broken or very large repositories.json files: a ConfigurationError naming
the file and, in ``problems``, every problem of every entry with its key path; loading
stays linear in the number of entries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deposit_services import cli
from deposit_services.config.repositories import (
    case_clashes,
    load_repositories,
    parse_repositories,
)
from deposit_services.entrypoints import command
from deposit_services.errors import ConfigurationError
from deposit_services.model.entities import Repository
from deposit_services.model.graph import load_json


def entry(base: str = "/srv/deposits") -> dict[str, Any]:
    return {
        "assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
        "transport-config": {"protocol-binding": {"protocol": "filesystem", "baseDir": base}},
    }


def load_error(path: Path, content: bytes | str) -> ConfigurationError:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(ConfigurationError) as caught:
        load_repositories(str(path), {})
    assert str(path) in str(caught.value)
    return caught.value


def problems_of(data: Any) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        parse_repositories(data, {})
    return caught.value.problems


def test_a_file_that_is_not_utf8_names_the_byte_and_its_offset(tmp_path: Path) -> None:
    text = json.dumps({"archivé": entry()}, ensure_ascii=False)
    offset = text.encode().index("é".encode())
    error = load_error(tmp_path / "r.json", text.encode("latin-1"))
    assert f"is not UTF-8: byte 0xe9 at offset {offset} (invalid continuation byte)" in str(error)


def test_a_utf8_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"a": entry()}).encode())
    assert list(load_repositories(str(path), {}).entries) == ["a"]


def test_json_nested_100000_deep_is_a_clear_error(tmp_path: Path) -> None:
    error = load_error(tmp_path / "r.json", '{"a":' * 100_000 + "1" + "}" * 100_000)
    assert "arrays and objects are nested more than 64 levels deep (from char " in str(error)


def test_nesting_the_parser_survives_is_named_by_its_key_path() -> None:
    deep: Any = 1
    for _ in range(80):
        deep = [deep]
    bad = entry()
    bad["assembler"]["options"]["extra"] = deep
    (problem,) = problems_of({"a": bad, "b": entry()})
    assert problem.startswith("a.assembler.options.extra[0][0]")
    assert problem.endswith("arrays and objects are nested more than 62 levels deep")


@pytest.mark.parametrize(("content", "words"), [
    ("", "is empty"),
    ("\n", "is empty"),
    ("5", "the top level must be a JSON object of repositories, not a number"),
    ("null", "the top level must be a JSON object of repositories, not null"),
    ("[]", "the top level must be a JSON object of repositories, not an array"),
    ('{"a": {}, "a": {}}', "is not valid JSON: the key 'a' appears twice in one object"),
    ('{"a": {"assembler": NaN}}', "is not valid JSON: NaN is not a JSON number"),
    ('{"a": ' + "9" * 5000 + "}", "is not valid JSON: a number of 5000 digits"),
])
def test_other_shapes_of_file_are_clear_errors(tmp_path: Path, content: str,
                                               words: str) -> None:
    assert words in str(load_error(tmp_path / "r.json", content))


def test_nul_and_lone_surrogates_are_named_by_key_path() -> None:
    value = entry()
    value["transport-config"]["protocol-binding"]["baseDir"] = "/srv/\x00x"
    key = entry()
    key["assembler"]["options"]["k\x00"] = "x"
    problems = problems_of({"value": value, "key": key, "name\ud800": entry()})
    assert problems == [
        "value.transport-config.protocol-binding.baseDir: contains a NUL character at "
        "position 5 (not valid in stored text)",
        "key.assembler.options.'k\\x00': the key contains a NUL character at position 1 "
        "(not valid in stored text)",
        "'name\\ud800': the repository key contains a lone UTF-16 surrogate '\\ud800' at "
        "position 4 (not valid in stored text)",
    ]


@pytest.mark.parametrize(("value", "words"), [
    (5, "a: must be a JSON object, not a number"),
    (["x"], "a: must be a JSON object, not an array"),
    (None, "a: must be a JSON object, not null"),
    ({**entry(), "assembler": ["simple"]}, "a.assembler: Input should be a valid dictionary"),
    ({**entry(), "assembler": {"specification": ["simple"]}},
     "a.assembler.specification: Input should be a valid string"),
    ({**entry(), "assembler": {"specification": 7}},
     "a.assembler.specification: Input should be a valid string"),
    ({**entry(), "deposit-config": {"mapping": {"x": 5}}},
     "a.deposit-config.mapping.x: Input should be a valid string"),
    ({**entry(), "transport-config": {"auth-realms": {"url": "x"}, "protocol-binding": {
        "protocol": "devnull"}}}, "a.transport-config.auth-realms: Input should be a valid list"),
])
def test_wrong_types_are_named_by_key_path(value: Any, words: str) -> None:
    assert words in "\n".join(problems_of({"a": value}))


def test_an_empty_repository_key_is_a_problem() -> None:
    assert problems_of({"": entry()}) == ["'': the repository key is empty"]


def test_every_problem_of_every_entry_is_listed_each_with_its_key_path() -> None:
    problems = problems_of({
        "everything": {
            "deposit-config": {"mapping": {"a": "maybe", "b": "accepted", "c": "perhaps"}},
            "assembler": {"specification": "no-such-format"},
            "transport-config": {
                "auth-realms": [{"mech": "basic", "url": "https://a/"},
                                {"mech": "digest", "url": "https://b/"},
                                {"mech": "kerberos", "url": "https://c/"}],
                "protocol-binding": {"protocol": "filesystem", "basedir": "/x",
                                     "other": "${NOT_SET}"}},
            "deposit-confg": {},
        },
        "missing-transport": {"assembler": {"specification": "no-such-format"}},
        "bad-binding-only": {**entry(), "transport-config": {
            "protocol-binding": {"protocol": "carrier-pigeon"}}},
    })
    expected = [
        "everything.deposit-config.mapping: deposit-config.mapping['a'] = 'maybe' is not one of",
        "everything.deposit-config.mapping: deposit-config.mapping['c'] = 'perhaps' is not one",
        "everything.assembler: unknown assembler specification 'no-such-format'",
        "everything.transport-config.auth-realms[1]: mech 'digest' is not supported",
        "everything.transport-config.auth-realms[2]: mech 'kerberos' is not supported",
        "everything.transport-config.protocol-binding.other: ${NOT_SET} is not set",
        "everything.transport-config.protocol-binding: basedir: unknown key",
        "everything.transport-config.protocol-binding: other: unknown key",
        "everything.deposit-confg: unknown key (known: deposit-config, assembler, "
        "transport-config, operations)",
        "missing-transport.transport-config: Field required",
        "missing-transport.assembler: unknown assembler specification 'no-such-format'",
        "bad-binding-only.transport-config.protocol-binding: unknown transport protocol",
    ]
    for words in expected:
        assert any(p.startswith(words) for p in problems), (words, problems)
    assert any(p.startswith("everything.transport-config.protocol-binding: baseDir")
               for p in problems), "the missing baseDir too"
    assert len(problems) == len(expected) + 1


class Folded(str):
    """A case-folded key that counts how often it is compared, and refuses to be compared
    more often than a linear algorithm would: a pairwise check fails fast, not slowly."""

    comparisons = 0
    budget = 0

    def __eq__(self, other: object) -> bool:
        Folded.comparisons += 1
        if Folded.comparisons > Folded.budget:
            raise AssertionError(f"more than {Folded.budget} comparisons of folded keys")
        return str.__eq__(self, other)

    __hash__ = str.__hash__


class Key(str):
    """A repositories.json key whose case-folded form is a ``Folded``."""

    def casefold(self) -> str:
        return Folded(str.casefold(self))


def test_50000_entries_load_with_a_linear_number_of_key_comparisons() -> None:
    count = 50_000
    data: dict[str, Any] = {Key(f"Repo-{n}"): entry(f"/srv/{n}") for n in range(count)}
    Folded.comparisons, Folded.budget = 0, 4 * count
    config = parse_repositories(data, {})
    assert len(config.entries) == count
    found = config.find(Repository(id="x", repository_key="repo-49999"))
    assert found is not None and found.protocol_binding["baseDir"] == "/srv/49999"
    assert config.find(Repository(id="REPO-0")) is config.entries["Repo-0"]
    assert Folded.comparisons <= 4 * count


def test_case_clashes_among_50000_keys_are_found_in_linear_comparisons() -> None:
    count = 50_000
    keys = [Key(f"Repo-{n}") for n in range(count)] + [Key("REPO-7"), Key("repo-7")]
    Folded.comparisons, Folded.budget = 0, 4 * count
    assert case_clashes(keys) == [
        "Repo-7: another key differs only in case ('REPO-7', 'repo-7')",
        "REPO-7: another key differs only in case ('Repo-7', 'repo-7')",
        "repo-7: another key differs only in case ('Repo-7', 'REPO-7')",
    ]
    assert Folded.comparisons <= 4 * count
    assert problems_of({"Archive": entry(), "archive": entry()}) == [
        "Archive: another key differs only in case ('archive')",
        "archive: another key differs only in case ('Archive')",
    ]


def test_a_large_file_is_consumed_as_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    """The parsed JSON is emptied entry by entry as entries are built, so a large file
    is held about once: the JSON dict handed to the parser is empty at the end."""
    seen: list[dict[str, Any]] = []

    def keep(*args: Any, **kwargs: Any) -> Any:
        seen.append(load_json(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr("deposit_services.config.repositories.load_json", keep)
    path = tmp_path / "r.json"
    path.write_text(json.dumps({f"r{n}": entry(f"/srv/{n}") for n in range(1000)}))
    config = load_repositories(str(path), {})
    assert len(config.entries) == 1000 and list(config.entries)[:2] == ["r0", "r1"]
    assert seen == [{}]


def test_the_cli_reports_a_non_utf8_file_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "repositories.json"
    path.write_bytes(json.dumps({"archivé": entry()}, ensure_ascii=False).encode("latin-1"))
    monkeypatch.setenv("DEPOSIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PASS_DEPOSIT_REPOSITORY_CONFIGURATION", str(path))
    assert cli.main(["config", "check"]) == command.EXIT_CONFIG
    err = capsys.readouterr().err
    assert f"{path} is not UTF-8: byte 0xe9 at offset" in err and "Traceback" not in err
