"""The dtool transport against dserver itself: a frozen dataset that dtoolcore opens with
every hash matching, registered and found by UUID and by tag; dserver down, a wrong
token and an unknown base URI end as specified, and a retry repeats only the
registration (one dataset, one registration)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dtoolcore
import pytest
import yaml

from deposit_services.assemblers.base import Package
from deposit_services.assemblers.rocrate import RoCrateAssembler
from deposit_services.assemblers.simple import SimpleZipAssembler
from deposit_services.errors import (
    AuthenticationError,
    PermanentTransferError,
    TransientTransferError,
)
from deposit_services.model.entities import DepositStatus, FileRole
from deposit_services.model.submission import (
    ArticleMetadata,
    DepositFile,
    DepositSubmission,
    GrantInfo,
    JournalMetadata,
    Person,
    PersonType,
)
from deposit_services.transports.base import create_transport
from deposit_services.transports.dtool.dataset import dataset_name, dataset_uuid
from deposit_services.transports.dtool.status import DServerResolver
from deposit_services.transports.dtool.transport import DtoolTransport
from tests.support.dserver import DServer, rsa_key_pair, sign_token

STAMP = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[3]


def submission(folder: Path) -> DepositSubmission:
    """The dataset submission; its files are written on the first call for ``folder``."""
    if not folder.exists():
        folder.mkdir(parents=True)
        (folder / "readings.csv").write_bytes(b"t,salinity\n" + b"1,30.1\n" * 5000)
        (folder / "notes.txt").write_text("Collected at the estuary mouth.\n", encoding="utf-8")
        (folder / "raw.bin").write_bytes(os.urandom(2 * 1024 * 1024 + 5))
    files = tuple(DepositFile(id=f"f{i}", name=name, location=str(folder / name),
                              role=FileRole.SUPPLEMENTAL)
                  for i, name in enumerate(("readings.csv", "notes.txt", "raw.bin")))
    return DepositSubmission(
        id="ds-7", submitted_date=STAMP,
        article=ArticleMetadata(title="Estuary salinity", abstract="Hourly salinity.",
                                doi="10.5555/estuary.7"),
        journal=JournalMetadata(title="Journal of Examples"),
        persons=(Person(PersonType.AUTHOR, full_name="Ada Lovelace",
                        orcid="https://orcid.org/0000-0002-1825-0097"),),
        grants=(GrantInfo("R01EX000001", "National Institutes of Health"),),
        files=files)


@pytest.fixture
def package(tmp_path: Path) -> Package:
    return SimpleZipAssembler({"archive": "ZIP"}).assemble(
        submission(tmp_path / "files"), tmp_path / "work", STAMP)


def binding(server: DServer, base_uri: str, user: str, **extra: object) -> dict[str, object]:
    return {"protocol": "dtool", "base-uri": base_uri, "dserver-url": server.url,
            "private-key-file": str(server.private_key), "username": user,
            "repository-key": "estuary-data", "tags": ["pass-deposit", "estuary"], **extra}


def registrations(server: DServer, uuid: str, user: str) -> list[dict[str, object]]:
    """Every registered copy of ``uuid`` that ``user`` (who may search the base URI) sees."""
    status, body = server.request("GET", f"/uuids/{uuid}", username=user)
    assert status == 200, body
    assert isinstance(body, list)
    return body


def datasets(base_uri: str) -> list[dtoolcore.DataSet]:
    return list(dtoolcore.iter_datasets_in_base_uri(base_uri))


def test_deposit_is_a_frozen_dataset_found_in_dserver_by_uuid_and_tag(
        dserver_app: DServer, base_uri: str, worker: str, package: Package,
        tmp_path: Path) -> None:
    transport = create_transport(binding(dserver_app, base_uri, worker))
    receipt = transport.send(package, submission(tmp_path / "files"))

    assert receipt.accepted and receipt.status_ref is not None
    dataset = dtoolcore.DataSet.from_uri(receipt.access_url)
    assert dataset.admin_metadata["type"] == "dataset"
    assert receipt.external_ids == (dataset.uuid,)
    assert dataset.uuid == dataset_uuid(base_uri, package.name)
    assert dataset.name == dataset_name(package.name)
    files = tmp_path / "files"
    items = {dataset.item_properties(i)["relpath"]: i for i in dataset.identifiers}
    assert set(items) == {"readings.csv", "notes.txt", "raw.bin", "manifest-sha256.txt"}
    for name in ("readings.csv", "notes.txt", "raw.bin"):
        content = (files / name).read_bytes()
        props = dataset.item_properties(items[name])
        assert props["hash"] == hashlib.md5(content).hexdigest()  # dtool's md5sum_hexdigest
        stored = Path(dataset.item_content_abspath(items[name])).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(content).hexdigest()
    readme = yaml.safe_load(dataset.get_readme_content())
    assert readme["title"] == "Estuary salinity"
    assert readme["doi"] == "10.5555/estuary.7"
    assert readme["authors"] == [{"name": "Ada Lovelace",
                                  "orcid": "https://orcid.org/0000-0002-1825-0097"}]
    assert readme["grants"] == [{"award_number": "R01EX000001",
                                 "funder": "National Institutes of Health"}]
    assert readme["submission_id"] == "ds-7"
    assert {n: dataset.get_annotation(n) for n in dataset.list_annotation_names()} == {
        "doi": "10.5555/estuary.7", "repository_key": "estuary-data", "submission_id": "ds-7"}
    assert sorted(dataset.list_tags()) == ["estuary", "pass-deposit"]

    found = registrations(dserver_app, dataset.uuid, worker)
    assert [e["uri"] for e in found] == [dataset.uri]
    status, by_tag = dserver_app.request("POST", "/uris", {"tags": ["estuary"]}, worker)
    assert status == 200 and [e["uuid"] for e in by_tag] == [dataset.uuid]
    status, manifest = dserver_app.request(
        "GET", "/manifests/" + receipt.status_ref.split("/uris/", 1)[1], username=worker)
    assert status == 200 and len(manifest["items"]) == 4

    resolver = DServerResolver.from_binding({}, binding(dserver_app, base_uri, worker), "t")
    assert resolver.resolve(receipt.status_ref).deposit_status is DepositStatus.ACCEPTED
    status, _ = dserver_app.request("DELETE", "/uris/" + receipt.status_ref.split(
        "/uris/", 1)[1], username=worker)
    assert status == 200
    gone = resolver.resolve(receipt.status_ref)
    assert (gone.state, gone.deposit_status) == ("missing", DepositStatus.FAILED)


def test_an_ro_crate_package_becomes_the_dataset_items(
        dserver_app: DServer, base_uri: str, worker: str, tmp_path: Path) -> None:
    work = submission(tmp_path / "files")
    crate = RoCrateAssembler({"license": "https://spdx.org/licenses/CC0-1.0"}).assemble(
        work, tmp_path / "work", STAMP)
    receipt = create_transport(binding(dserver_app, base_uri, worker)).send(crate, work)
    dataset = dtoolcore.DataSet.from_uri(receipt.access_url)
    relpaths = {dataset.item_properties(i)["relpath"] for i in dataset.identifiers}
    assert "ro-crate-metadata.json" in relpaths and "raw.bin" in relpaths


@pytest.fixture
def black_hole() -> Iterator[tuple[str, threading.Event]]:
    """An http URL whose server accepts connections and never answers, and an event set
    when it has accepted one."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()
    accepted = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
                accepted.set()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_sigkill_after_freezing_before_registering_gives_one_dataset_one_registration(
        dserver_app: DServer, base_uri: str, worker: str, package: Package, tmp_path: Path,
        black_hole: tuple[str, threading.Event]) -> None:
    # A worker process freezes the dataset, then hangs registering (dserver never
    # answers); it is SIGKILLed there. The retry finds the frozen dataset and registers it.
    url, connected = black_hole
    hung = binding(dserver_app, base_uri, worker, **{"dserver-url": url})
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from deposit_services.assemblers.base import Package\n"
        "from deposit_services.model.submission import DepositSubmission\n"
        "from deposit_services.transports.base import create_transport\n"
        "args = json.loads(sys.argv[1])\n"
        "package = Package(**{**args['package'], 'path': Path(args['package']['path'])})\n"
        "create_transport(args['binding']).send(package, DepositSubmission(id='ds-7'))\n")
    fields = {k: str(v) if isinstance(v, Path) else v for k, v in package.__dict__.items()}
    fields["warnings"] = list(fields["warnings"])
    child = subprocess.Popen([sys.executable, "-c", script,
                              json.dumps({"package": fields, "binding": hung})], cwd=ROOT)
    try:
        # registering comes after freezing: once dserver's connection is open, the
        # worker is inside the registration request, which never returns
        assert connected.wait(60), "the worker never started registering"
        assert child.poll() is None
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    frozen = datasets(base_uri)
    assert len(frozen) == 1
    frozen_at = frozen[0].admin_metadata["frozen_at"]
    assert registrations(dserver_app, frozen[0].uuid, worker) == []

    receipt = create_transport(binding(dserver_app, base_uri, worker)).send(
        package, submission(tmp_path / "files"))
    again = datasets(base_uri)
    assert [d.uuid for d in again] == [frozen[0].uuid]
    assert again[0].admin_metadata["frozen_at"] == frozen_at  # not frozen a second time
    found = registrations(dserver_app, frozen[0].uuid, worker)
    assert [e["uri"] for e in found] == [receipt.access_url]


def test_dserver_down_is_a_retry_that_then_repeats_only_the_registration(
        dserver_app: DServer, base_uri: str, worker: str, package: Package,
        tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"  # nothing listens there
    down = create_transport(binding(dserver_app, base_uri, worker, **{"dserver-url": closed}))
    with pytest.raises(TransientTransferError, match="failed"):
        down.send(package, submission(tmp_path / "files"))
    [dataset] = datasets(base_uri)
    frozen_at = dataset.admin_metadata["frozen_at"]

    receipt = create_transport(binding(dserver_app, base_uri, worker)).send(
        package, submission(tmp_path / "files"))
    [after] = datasets(base_uri)
    assert (after.uuid, after.admin_metadata["frozen_at"]) == (dataset.uuid, frozen_at)
    assert len(registrations(dserver_app, dataset.uuid, worker)) == 1
    # a third send (a duplicate message) replaces the same entry: still one registration
    create_transport(binding(dserver_app, base_uri, worker)).send(
        package, submission(tmp_path / "files"))
    assert len(registrations(dserver_app, dataset.uuid, worker)) == 1
    assert receipt.access_url == dataset.uri


def test_a_wrong_token_fails_with_what_to_fix_and_registers_nothing(
        dserver_app: DServer, base_uri: str, worker: str, package: Package,
        tmp_path: Path) -> None:
    other_private, _ = rsa_key_pair(tmp_path)  # a key dserver does not trust
    token = sign_token(other_private, worker)
    wrong = {**binding(dserver_app, base_uri, worker), "token": token}
    del wrong["private-key-file"], wrong["username"]
    transport = create_transport(wrong)
    with pytest.raises(AuthenticationError) as failure:
        transport.send(package, submission(tmp_path / "files"))
    message = str(failure.value)
    assert "refused the credentials" in message and "retry the deposit" in message
    assert token not in message
    [dataset] = datasets(base_uri)  # written, waiting for the registration
    assert registrations(dserver_app, dataset.uuid, worker) == []


def test_an_unknown_user_is_an_authentication_failure(
        dserver_app: DServer, base_uri: str, worker: str, package: Package,
        tmp_path: Path) -> None:
    stranger = binding(dserver_app, base_uri, "nobody-registered-me")
    with pytest.raises(AuthenticationError, match="flask user add nobody-registered-me"):
        create_transport(stranger).send(package, submission(tmp_path / "files"))


def test_an_unknown_base_uri_fails_until_an_admin_adds_it(
        dserver_app: DServer, base_uri: str, worker: str, tmp_path: Path,
        package: Package) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other_uri = dtoolcore.utils.sanitise_uri(str(elsewhere))
    transport = create_transport(binding(dserver_app, other_uri, worker))
    with pytest.raises(PermanentTransferError, match="is not registered in dserver") as failure:
        transport.send(package, submission(tmp_path / "files"))
    assert f"flask base_uri add {other_uri}" in str(failure.value)
    [dataset] = datasets(other_uri)

    dserver_app.add_base_uri(other_uri, register=[worker], search=[worker])  # the fix
    receipt = transport.send(package, submission(tmp_path / "files"))
    assert receipt.external_ids == (dataset.uuid,)
    assert len(datasets(other_uri)) == 1


def test_a_proto_dataset_left_by_a_crash_is_resumed_and_frozen_once(
        dserver_app: DServer, base_uri: str, worker: str, package: Package,
        tmp_path: Path) -> None:
    admin = dtoolcore.generate_admin_metadata(dataset_name(package.name), worker)
    admin["uuid"] = dataset_uuid(base_uri, package.name)
    proto = dtoolcore.generate_proto_dataset(admin, base_uri)
    proto.create()
    half = tmp_path / "half.csv"
    half.write_bytes(b"t,sal")  # a partial item, as a crash mid-copy leaves it
    proto.put_item(str(half), "readings.csv")

    receipt = create_transport(binding(dserver_app, base_uri, worker)).send(
        package, submission(tmp_path / "files"))
    [dataset] = datasets(base_uri)
    assert dataset.uri == receipt.access_url
    items = {dataset.item_properties(i)["relpath"]: dataset.item_properties(i)
             for i in dataset.identifiers}
    content = (tmp_path / "files" / "readings.csv").read_bytes()
    assert items["readings.csv"]["hash"] == hashlib.md5(content).hexdigest()
    assert len(items) == 4


def test_another_dataset_under_the_same_name_is_left_alone(
        dserver_app: DServer, base_uri: str, worker: str, package: Package,
        tmp_path: Path) -> None:
    foreign = dtoolcore.create_proto_dataset(dataset_name(package.name), base_uri)
    with pytest.raises(PermanentTransferError, match="holds another dtool dataset"):
        create_transport(binding(dserver_app, base_uri, worker)).send(
            package, submission(tmp_path / "files"))
    assert dtoolcore.ProtoDataSet.from_uri(foreign.uri).uuid == foreign.uuid


def test_binding_needs_exactly_one_credential(dserver_app: DServer, base_uri: str) -> None:
    from deposit_services.errors import RepositoryConfigError

    both = {**binding(dserver_app, base_uri, "u"), "token": "t"}
    with pytest.raises(RepositoryConfigError, match="exactly one of token"):
        DtoolTransport(both)
    transport = DtoolTransport({"protocol": "dtool", "base-uri": base_uri,
                                "dserver-url": dserver_app.url, "token": "secret-token"})
    assert "secret-token" not in repr(transport.binding)
    assert "secret-token" not in repr(transport.binding.credentials())


def test_a_self_signed_token_is_renewed_before_it_expires(dserver_app: DServer) -> None:
    import jwt

    from deposit_services.transports.dtool.dserver import Credentials, TokenSource
    from tests.support.clock import FakeClock

    clock = FakeClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    tokens = TokenSource(Credentials(private_key=dserver_app.private_key, username="w"),
                         clock=clock)
    first = tokens.get()
    clock.advance(3 * 60)
    assert tokens.get() == first  # 2 minutes left: kept
    clock.advance(90)
    second = tokens.get()  # 30 seconds left: renewed
    assert second != first
    claims = jwt.decode(second, dserver_app.public_key.read_text(), algorithms=["RS256"],
                        options={"verify_exp": False})
    assert claims["sub"] == "w"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["iat"] == int(datetime(2026, 11, 2, 9, 4, 30, tzinfo=UTC).timestamp())


def test_dserver_refuses_an_expired_self_signed_token(
        dserver_app: DServer, base_uri: str, worker: str, package: Package,
        tmp_path: Path) -> None:
    from deposit_services.transports.base import TransportContext
    from tests.support.clock import FakeClock

    stale = TransportContext(clock=FakeClock(datetime(2020, 1, 1, tzinfo=UTC)))
    transport = DtoolTransport(binding(dserver_app, base_uri, worker), stale)
    with pytest.raises(AuthenticationError, match="invalid or expired"):
        transport.send(package, submission(tmp_path / "files"))


@pytest.mark.parametrize(("given", "verify"), [("false", False), ("True", True),
                                               ("/etc/ssl/ca.pem", "/etc/ssl/ca.pem")])
def test_verify_from_an_environment_variable(base_uri: str, given: str,
                                             verify: bool | str) -> None:
    transport = DtoolTransport({"protocol": "dtool", "base-uri": base_uri, "token": "t",
                                "dserver-url": "https://dserver.example.org", "verify": given})
    assert transport.binding.verify == verify


def test_a_directory_left_by_a_crash_inside_create_is_replaced(
        dserver_app: DServer, base_uri: str, base_dir: Path, worker: str, package: Package,
        tmp_path: Path) -> None:
    partial = base_dir / dataset_name(package.name)
    (partial / ".dtool").mkdir(parents=True)  # structure made, no admin metadata yet
    receipt = create_transport(binding(dserver_app, base_uri, worker)).send(
        package, submission(tmp_path / "files"))
    [dataset] = datasets(base_uri)
    assert dataset.uri == receipt.access_url and len(list(dataset.identifiers)) == 4
