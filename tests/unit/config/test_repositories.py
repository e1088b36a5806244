"""repositories.json: PASS's format loads, placeholders resolve, problems name key paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deposit_services.config.repositories import (
    RepositoriesConfig,
    interpolate,
    load_repositories,
    parse_repositories,
    spring_name,
)
from deposit_services.errors import ConfigurationError
from deposit_services.model.entities import Repository

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "config"


def filesystem_entry(base: str = "/srv/deposits") -> dict[str, Any]:
    return {
        "assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
        "transport-config": {"protocol-binding": {"protocol": "filesystem", "baseDir": base}},
    }


def problems_of(data: Any, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        parse_repositories(data, env or {})
    return caught.value.problems


def test_pass_34_file_loads_once_its_spring_placeholders_are_provided() -> None:
    env = {"DSPACE_HOST": "dspace.example.edu", "DSPACE_PORT": "8080",
           "ftp.host": "ftp.example.gov", "FTP_PORT": "21"}
    config = load_repositories(str(FIXTURES / "repositories-jhu-3.4.json"), env)
    assert set(config.entries) == {"JScholarship", "PubMed Central"}
    sword = config.entries["JScholarship"]
    assert sword.protocol_binding["service-doc"] == (
        "http://dspace.example.edu:8080/swordv2/servicedocument")
    assert sword.auth_realms[2].url == "http://dspace.example.edu:8080/swordv2"
    assert sword.mapping["http://dspace.org/state/archived"] == "accepted"
    pmc = config.entries["PubMed Central"]
    assert pmc.protocol_binding["server-fqdn"] == "ftp.example.gov"  # name as given wins
    assert pmc.assembler.specification == "nihms-native-2017-07"


def test_pass_34_file_without_its_placeholders_names_every_key_path() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_repositories(str(FIXTURES / "repositories-jhu-3.4.json"), {})
    problems = "\n".join(caught.value.problems)
    assert "JScholarship.transport-config.protocol-binding.server-fqdn: ${dspace.host}" in problems
    assert "DSPACE_HOST" in problems
    assert "PubMed Central.transport-config.protocol-binding.server-port: ${ftp.port}" in problems


def test_interpolation_defaults_spring_names_and_non_strings() -> None:
    problems: list[str] = []
    value = interpolate(
        {"a": "${HOST:localhost}:${port}", "b": ["${x.y-z}"], "c": None, "d": 3, "e": True},
        {"PORT": "8080", "X_Y_Z": "zz"}, "k", problems,
    )
    assert value == {"a": "localhost:8080", "b": ["zz"], "c": None, "d": 3, "e": True}
    assert problems == []
    assert spring_name("dspace.host") == "DSPACE_HOST"
    interpolate({"a": "${MISSING}"}, {}, "key", problems)
    assert problems == ["key.a: ${MISSING} is not set (environment variable MISSING)"]


def test_unknown_keys_in_our_sections_are_errors_with_their_path() -> None:
    typo = filesystem_entry()
    typo["assembler"]["specificaton"] = "typo"
    binding = filesystem_entry()
    binding["transport-config"]["protocol-binding"]["basedir"] = "/x"
    problems = problems_of({"archive": typo, "other": binding})
    assert "archive.assembler.specificaton: unknown key" in problems
    assert any(p.startswith("other.transport-config.protocol-binding:") and "basedir" in p
               for p in problems)


def test_every_problem_is_listed_not_just_the_first() -> None:
    problems = problems_of({
        "one": {"assembler": {"specification": "no-such-format"},
                "transport-config": {"protocol-binding": {"protocol": "devnull"}}},
        "two": {"assembler": {"specification": "simple"},
                "transport-config": {"protocol-binding": {"protocol": "carrier-pigeon"}}},
        "three": {"assembler": {"specification": "simple"}},
        "four": "not an object",
        "five": {**filesystem_entry(), "deposit-config": {"mapping": {"x": "maybe"}}},
        "six": {"assembler": {"specification": "simple", "options": {"archive": "RAR"}},
                "transport-config": {"protocol-binding": {"protocol": "devnull"}}},
    })
    text = "\n".join(problems)
    assert "one.assembler: unknown assembler specification 'no-such-format'" in text
    assert "two.transport-config.protocol-binding: unknown transport protocol" in text
    assert "three.transport-config: Field required" in text
    assert "four: must be a JSON object" in text
    assert "five.deposit-config.mapping" in text and "'maybe'" in text
    assert "six.assembler:" in text and "RAR" in text


def test_pass_keys_we_do_not_use_are_accepted_and_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = filesystem_entry()
    entry["deposit-config"] = {"processing": {"beanName": "x.y.Z"}, "mapping": {}}
    entry["assembler"]["beanName"] = "simpleAssembler"
    with caplog.at_level("INFO"):
        parse_repositories({"a": entry, "b": entry}, {})
    notes = [r.getMessage() for r in caplog.records if "not used" in r.getMessage()]
    assert len(notes) == 1
    assert "deposit-config.processing" in notes[0]
    assert "beanName" not in notes[0]  # PASS's beanName chooses the format: it is used


def test_keys_differing_only_in_case_are_ambiguous() -> None:
    problems = problems_of({"Archive": filesystem_entry(), "archive": filesystem_entry()})
    assert len(problems) == 2 and all("differs only in case" in p for p in problems)


def test_find_by_repository_key_then_name_then_id_ignoring_case() -> None:
    config = parse_repositories(
        {"PubMed Central": filesystem_entry("/a"), "repo-7": filesystem_entry("/b"),
         "JScholarship": filesystem_entry("/c")}, {})
    assert isinstance(config, RepositoriesConfig)
    by_key = config.find(Repository(id="1", repository_key="pubmed central", name="JScholarship"))
    assert by_key is not None and by_key.key == "PubMed Central"
    by_name = config.find(Repository(id="1", repository_key="other", name="jscholarship"))
    assert by_name is not None and by_name.key == "JScholarship"
    by_id = config.find(Repository(id="REPO-7"))
    assert by_id is not None and by_id.key == "repo-7"
    assert config.find(Repository(id="nothing", name="none")) is None


def test_unreadable_and_malformed_files_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot read repositories\.json"):
        load_repositories(str(tmp_path / "absent.json"), {})
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": ')
    with pytest.raises(ConfigurationError, match="is not valid JSON"):
        load_repositories(str(broken), {})
    broken.write_text("[1, 2]")
    with pytest.raises(ConfigurationError, match="top level must be a JSON object"):
        load_repositories(broken.as_uri(), {})


def test_extra_values_fill_placeholders_the_environment_lacks(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"a": filesystem_entry("${DEPOSIT_DATA_DIR}/deposits")}))
    config = load_repositories(str(path), {}, extra={"DEPOSIT_DATA_DIR": "/data"})
    assert config.entries["a"].protocol_binding["baseDir"] == "/data/deposits"
    config = load_repositories(str(path), {"DEPOSIT_DATA_DIR": "/env"},
                               extra={"DEPOSIT_DATA_DIR": "/data"})
    assert config.entries["a"].protocol_binding["baseDir"] == "/env/deposits"


def test_auth_realm_passwords_stay_out_of_reprs() -> None:
    entry = filesystem_entry()
    entry["transport-config"]["auth-realms"] = [
        {"mech": "basic", "url": "https://h/", "username": "u", "password": "hunter2"}]
    config = parse_repositories({"a": entry}, {})
    assert "hunter2" not in repr(config)


REPO_ROOT = Path(__file__).resolve().parents[3]


def test_the_shipped_configurations_load() -> None:
    default = load_repositories(str(REPO_ROOT / "config" / "repositories.json"), {},
                                extra={"DEPOSIT_DATA_DIR": "/data"})
    assert default.entries["example-archive"].protocol_binding["baseDir"] == (
        "/data/deposits/example-archive")
    env = {"DSPACE_HOST": "dspace.example.edu", "DSPACE_USER": "u", "DSPACE_PASSWORD": "p",
           "NIHMS_FTP_USER": "u", "NIHMS_FTP_PASSWORD": "p", "NIHMS_FTP_HOST": "ftp.example"}
    for path in sorted((REPO_ROOT / "config" / "examples").glob("*.json")):
        config = load_repositories(str(path), env)
        assert config.entries, path
