"""PASS's own repositories.json files, unchanged: they load, and each repository gets
the format PASS writes for it. PASS's ``beanName`` decides the format (its
``nihmsAssembler`` writes the NIHMS 2022-05 package even where ``specification`` says
``nihms-native-2017-07``); without a beanName the specification decides, so the 2017
format stays reachable on purpose."""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

import pytest

from deposit_services.assemblers.base import choose_format, create_assembler
from deposit_services.config.repositories import load_repositories, parse_repositories
from deposit_services.entrypoints import configuration
from deposit_services.entrypoints.command import EXIT_OK
from deposit_services.errors import ConfigurationError, RepositoryConfigError
from deposit_services.settings import load_settings

PASS = Path(__file__).resolve().parents[2] / "fixtures" / "pass"
CURRENT = PASS / "current"
PMC_ENV = {"PMC_FTP_USER": "pmcsftpuser", "PMC_FTP_PASSWORD": "pmcsftppass",
           "PMC_FTP_HOST": "sftp.example.org", "PMC_FTP_PORT": "22"}
SIMPLE = "http://purl.org/net/sword/package/SimpleZip"


def formats(source: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    config = load_repositories(str(source), env or {})
    return {key: create_assembler(entry.assembler.specification, entry.assembler.options)
            .specification for key, entry in config.entries.items()}


@pytest.mark.parametrize("source", [CURRENT / "repositories.json",
                                    PASS / "2020" / "repositories.json"])
def test_pass_default_files_are_simple_zip_throughout(source: Path) -> None:
    assert formats(source) == {"JScholarship": SIMPLE, "PubMed Central": SIMPLE,
                               "BagIt": SIMPLE, "dash": SIMPLE}


def test_nihms_assembler_bean_writes_the_2022_package_whatever_the_label() -> None:
    config = load_repositories(str(CURRENT / "full-test-s3-repositories.json"), {})
    pmc = config.entries["PubMed Central-S3"].assembler
    assert (pmc.specification, pmc.label, pmc.bean_name) == (
        "nihms-native-2022-05", "nihms-native-2017-07", "nihmsAssembler")
    assert formats(CURRENT / "full-test-s3-repositories.json") == {
        "JScholarship-S3": SIMPLE, "PubMed Central-S3": "nihms-native-2022-05",
        "BagIt": SIMPLE, "dash": SIMPLE}


def test_the_2017_format_is_chosen_by_naming_it_without_a_bean_name() -> None:
    config = load_repositories(str(PASS.parent / "config" / "repositories-jhu-3.4.json"), {
        "DSPACE_HOST": "dspace.example.edu", "DSPACE_PORT": "8080",
        "FTP_HOST": "ftp.example.gov", "FTP_PORT": "21"})
    assert config.entries["PubMed Central"].assembler.specification == "nihms-native-2017-07"
    assert choose_format("nihms-native-2017-07").specification == "nihms-native-2017-07"
    assert choose_format("nihms-native-2017-07", "nihmsAssembler").specification == (
        "nihms-native-2022-05")


@pytest.mark.parametrize(("bean", "spec"), [
    ("nihmsAssembler", "nihms-native-2022-05"), ("bagItAssembler", "bagit-1.0"),
    ("simpleAssembler", "simple"), ("dspaceMetsAssembler", "dspace-mets"),
    ("NIHMSASSEMBLER", "nihms-native-2022-05"),
])
def test_every_implemented_pass_bean_maps_to_a_format(bean: str, spec: str) -> None:
    choice = choose_format("any label", bean)
    assert choice.specification == spec
    assert create_assembler("any label", {}, bean_name=bean).specification == (
        create_assembler(spec, {}).specification)


def test_the_deployment_file_names_pass_only_beans_and_loads_its_pmc_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # PASS's DSpace entry names only its protocol: the rest is PASS's environment
    for name in ("DSPACE_API_URL", "DSPACE_WEBSITE_URL", "DSPACE_USER", "DSPACE_PASSWORD",
                 "DSPACE_COLLECTION_HANDLE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError) as caught:
        load_repositories(str(CURRENT / "pass-docker-deposit-repositories.json"), PMC_ENV)
    assert "DSpace.transport-config.protocol-binding: DSPACE_API_URL: Field required" in (
        caught.value.problems)
    monkeypatch.setenv("DSPACE_API_URL", "https://dspace.example.edu/server/api")
    monkeypatch.setenv("DSPACE_WEBSITE_URL", "https://dspace.example.edu")
    monkeypatch.setenv("DSPACE_USER", "pass@example.edu")
    monkeypatch.setenv("DSPACE_PASSWORD", "secret")
    monkeypatch.setenv("DSPACE_COLLECTION_HANDLE", "123456789/2")
    with pytest.raises(ConfigurationError) as caught:
        load_repositories(str(CURRENT / "pass-docker-deposit-repositories.json"), PMC_ENV)
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "InvenioRDM.transport-config.protocol-binding"] * 2
    assert "INVENIORDM_API_BASE_URL" in problems[0]  # PASS's environment names it
    monkeypatch.setenv("INVENIORDM_API_BASE_URL", "https://rdm.example.edu/api")
    monkeypatch.setenv("INVENIORDM_API_TOKEN", "token")
    config = load_repositories(str(CURRENT / "pass-docker-deposit-repositories.json"), PMC_ENV)
    dspace = config.entries["DSpace"].assembler  # the submission's files, as PASS sends them
    assert (dspace.specification, dspace.bean_name) == ("simple", "DSpaceAssembler")
    whole = json.loads((CURRENT / "pass-docker-deposit-repositories.json").read_text())
    config = parse_repositories({"pmc": whole["pmc"]}, PMC_ENV)
    assert config.entries["pmc"].assembler.specification == "nihms-native-2022-05"


def test_an_unknown_bean_is_a_problem_naming_it() -> None:
    entry = {"assembler": {"specification": "simple", "beanName": "fancyAssembler"},
             "transport-config": {"protocol-binding": {"protocol": "devnull"}}}
    with pytest.raises(ConfigurationError) as caught:
        parse_repositories({"x": entry}, {})
    assert caught.value.problems[0].startswith("x.assembler: unknown beanName 'fancyAssembler'")
    with pytest.raises(RepositoryConfigError, match="fancyAssembler"):
        choose_format("simple", "fancyAssembler")


@pytest.mark.parametrize(("source", "env", "lines"), [
    (CURRENT / "full-test-s3-repositories.json", {}, [
        "  JScholarship-S3: SimpleZip package (beanName simpleAssembler; label simple) "
        "over filesystem",
        "  PubMed Central-S3: NIHMS bulk package 2022-05 (beanName nihmsAssembler; "
        "label nihms-native-2017-07) over filesystem",
    ]),
    (PASS.parent / "config" / "repositories-jhu-3.4.json",
     {"DSPACE_HOST": "h", "DSPACE_PORT": "80", "FTP_HOST": "f", "FTP_PORT": "21"}, [
        "  JScholarship: DSpace METS SIP (specification "
        "http://purl.org/net/sword/package/METSDSpaceSIP) over SWORDv2",
        "  PubMed Central: NIHMS bulk package 2017-07 (specification nihms-native-2017-07) "
        "over ftp",
    ]),
])
def test_config_check_prints_each_repositorys_format(
    source: Path, env: dict[str, str], lines: list[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings({"HOME": str(tmp_path),
                              "PASS_DEPOSIT_REPOSITORY_CONFIGURATION": str(source)})
    assert configuration.cmd_config_check(settings, Namespace()) == EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("repositories, OK")
    for line in lines:
        assert line in out
