"""SwordV2Transport against the SWORDv2 test server on a loopback port."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
import zipfile
from datetime import UTC, datetime

import pytest

from deposit_services.assemblers.base import create_assembler
from deposit_services.errors import (
    AuthenticationError,
    OutcomeUnknown,
    PermanentTransferError,
    RepositoryConfigError,
    TransientTransferError,
)
from deposit_services.model.builder import build_deposit_submission
from deposit_services.model.graph import Graph, resolve_file_uris
from deposit_services.model.submission import DepositSubmission
from deposit_services.transports.base import create_transport
from deposit_services.transports.sword.lookup import slug_for
from deposit_services.transports.sword.transport import SwordV2Transport
from tests.support.graphs import make_graph
from tests.support.sword_server import METS_DSPACE, running_sword_server


def _posts(server):
    return [r for r in server.requests if r.method == "POST"]


def test_deposit_full_package(sword_server, binding, make_transport, package, submission,
                              user_agent):
    transport = make_transport(binding)
    receipt = transport.send(package, submission)

    [deposit] = sword_server.deposits.values()
    # the server hashed what it received and checked it against our Content-MD5
    assert deposit.md5 == package.md5
    assert deposit.size == package.size == package.path.stat().st_size
    assert hashlib.sha256(deposit.path.read_bytes()).hexdigest() == package.sha256
    assert deposit.filename == package.name
    assert deposit.packaging == package.specification
    assert deposit.content_type == package.mime_type
    assert deposit.in_progress is False
    assert deposit.slug == slug_for(package) and deposit.id == deposit.slug
    assert deposit.headers["Content-Md5"] == package.md5  # hex, not base64
    assert deposit.headers["User-Agent"] == user_agent
    assert "On-Behalf-Of" not in deposit.headers

    assert receipt.accepted is False
    assert receipt.status_ref == sword_server.statement_url(deposit.id, "atom")
    assert receipt.access_url == f"{sword_server.base_url}/items/{deposit.id}"
    assert receipt.external_ids == (receipt.access_url,)
    assert receipt.details["edit_iri"] == sword_server.edit_url(deposit.id)
    assert receipt.details["ore_statement"] == sword_server.statement_url(deposit.id, "ore")
    assert receipt.details["em_iri"].endswith(f"/edit-media/{deposit.id}")
    assert receipt.details["se_iri"] == sword_server.edit_url(deposit.id)
    assert receipt.details["collection"] == sword_server.collection_url("default")


def test_slug_is_deterministic(package):
    assert slug_for(package) == slug_for(dataclasses.replace(package))
    assert slug_for(dataclasses.replace(package, name="a b/c.zip")) == "a-b-c"


def test_registered_by_protocol_name(binding):
    transport = create_transport(binding)
    assert isinstance(transport, SwordV2Transport)
    transport.close()


def test_unknown_binding_key_is_a_config_error(binding):
    with pytest.raises(RepositoryConfigError, match="colection-hints"):
        create_transport({**binding, "colection-hints": {}})


def test_binding_user_agent_wins(sword_server, binding, make_transport, package, submission):
    make_transport({**binding, "user-agent": "pass-deposit/x.y.z"}).send(package, submission)
    assert _posts(sword_server)[0].headers["User-Agent"] == "pass-deposit/x.y.z"


def test_collection_hints(sword_server, binding, make_transport, package, submission):
    hints = {"Covid": sword_server.collection_url("theses"), "nobel": "http://elsewhere/x"}
    transport = make_transport({**binding, "collection-hints": hints})
    # case-insensitive, first matching tag of the submission wins
    tagged = dataclasses.replace(submission, collection_tags=("unrelated", "covid", "nobel"))
    transport.send(package, tagged)
    transport.send(dataclasses.replace(package, name="second.zip"), submission)
    collections = sorted(d.collection for d in sword_server.deposits.values())
    assert collections == ["default", "theses"]


def test_collection_must_be_in_service_document(sword_server, binding, make_transport, package,
                                                submission):
    transport = make_transport({**binding, "default-collection": sword_server.collection_url("x")})
    with pytest.raises(PermanentTransferError, match="not in the service document"):
        transport.send(package, submission)
    assert _posts(sword_server) == []
    # it was looked up again before giving up (the collection may be new)
    assert len([r for r in sword_server.requests if r.path.endswith("/servicedocument")]) == 2
    slash = make_transport({**binding,
                            "default-collection": sword_server.collection_url("default") + "/"})
    slash.check_collection(slash.choose_collection(submission), package)  # trailing "/" ok


def test_service_document_is_cached(sword_server, binding, make_transport, package, submission):
    transport = make_transport(binding)
    transport.send(package, submission)
    transport.send(dataclasses.replace(package, name="again.zip"), submission)
    gets = [r for r in sword_server.requests if r.path.endswith("/servicedocument")]
    assert len(gets) == 1
    assert len(sword_server.deposits) == 2


def test_on_behalf_of(sword_server, binding, make_transport, package, submission):
    make_transport({**binding, "on-behalf-of": "owner@example.org"}).send(package, submission)
    [deposit] = sword_server.deposits.values()
    assert deposit.on_behalf_of == "owner@example.org"
    service_get = next(r for r in sword_server.requests if r.path.endswith("/servicedocument"))
    assert service_get.headers["On-Behalf-Of"] == "owner@example.org"


def test_unknown_owner_is_permanent(sword_server, binding, make_transport, package, submission):
    transport = make_transport({**binding, "on-behalf-of": "nobody@example.org"})
    with pytest.raises(PermanentTransferError) as caught:
        transport.send(package, submission)
    assert not isinstance(caught.value, TransientTransferError)  # not retried
    assert "403" in str(caught.value) and "TargetOwnerUnknown" in str(caught.value)
    assert "nobody@example.org" in str(caught.value)


def test_checksum_mismatch_is_permanent(sword_server, binding, make_transport, package,
                                        submission):
    wrong_md5 = hashlib.md5(b"other", usedforsecurity=False).hexdigest()
    corrupt = dataclasses.replace(package, md5=wrong_md5)
    with pytest.raises(PermanentTransferError) as caught:
        make_transport(binding).send(corrupt, submission)
    message = str(caught.value)
    assert not isinstance(caught.value, TransientTransferError)  # not retried
    assert "412" in message and "ErrorChecksumMismatch" in message
    assert package.md5 in message  # the server's summary names what it computed
    assert sword_server.deposits == {}


def test_server_413_is_permanent_with_its_words(tmp_path, binding_for, make_transport, package,
                                                submission):
    limit = package.size - 1
    with (
        running_sword_server(max_upload_size=limit, advertise_limits=False) as server,
        pytest.raises(PermanentTransferError) as caught,
    ):
        make_transport(binding_for(server)).send(package, submission)
    assert server.deposits == {}
    assert len(_posts(server)) == 1  # the server itself refused it
    message = str(caught.value)
    assert "413" in message and "MaxUploadSizeExceeded" in message
    assert f"maximum upload size of {limit} bytes" in message
    assert "raise its upload limit" in message  # what the operator can do


def test_advertised_max_upload_size_is_checked_before_upload(binding_for, make_transport,
                                                             package, submission):
    with running_sword_server(max_upload_size=package.size // 2) as server:
        with pytest.raises(PermanentTransferError, match="maxUploadSize"):
            make_transport(binding_for(server)).send(package, submission)
        assert _posts(server) == []


def test_server_415_unknown_packaging(binding_for, make_transport, package, submission):
    odd = dataclasses.replace(package, specification="http://example.org/package/Odd")
    with (
        running_sword_server(advertise_limits=False) as server,
        pytest.raises(PermanentTransferError) as caught,
    ):
        make_transport(binding_for(server)).send(odd, submission)
    assert "415" in str(caught.value) and "ErrorContent" in str(caught.value)
    assert "http://example.org/package/Odd" in str(caught.value)


def test_advertised_packaging_is_checked_before_upload(sword_server, binding, make_transport,
                                                       package, submission):
    odd = dataclasses.replace(package, specification="http://example.org/package/Odd")
    with pytest.raises(PermanentTransferError, match="does not accept packaging"):
        make_transport(binding).send(odd, submission)
    assert _posts(sword_server) == []
    mets = dataclasses.replace(package, specification=METS_DSPACE)
    make_transport(binding).send(mets, submission)
    assert [d.packaging for d in sword_server.deposits.values()] == [METS_DSPACE]


def test_wrong_credentials(sword_server, binding, make_transport, package, submission):
    transport = make_transport({**binding, "password": "wrong"})
    with pytest.raises(AuthenticationError) as caught:
        transport.send(package, submission)
    assert not isinstance(caught.value, TransientTransferError)  # not retried
    assert "401" in str(caught.value) and "wrong" not in str(caught.value)


def test_wrong_credentials_on_deposit(sword_server, binding, make_transport, package, submission):
    transport = make_transport({**binding, "check-collection": False, "password": "wrong"})
    with pytest.raises(AuthenticationError, match=r"SWORD deposit .* 401"):
        transport.send(package, submission)


def test_503_is_transient_then_succeeds(sword_server, binding, make_transport, package,
                                        submission):
    transport = make_transport(binding)
    transport.service_document()  # cached, so the fault hits the deposit itself
    sword_server.fail_next(1, status=503, retry_after=30)
    with pytest.raises(TransientTransferError) as caught:
        transport.send(package, submission)
    assert isinstance(caught.value, TransientTransferError)  # retried
    assert "503" in str(caught.value) and "Retry-After: 30" in str(caught.value)
    assert sword_server.deposits == {}
    transport.send(package, submission)  # the retry goes through
    assert [d.md5 for d in sword_server.deposits.values()] == [package.md5]


def test_429_is_transient(sword_server, binding, make_transport, package, submission):
    sword_server.fail_next(1, status=429)
    with pytest.raises(TransientTransferError, match="429"):
        make_transport(binding).send(package, submission)


def test_connection_refused_is_transient(binding_for, sword_server, make_transport, closed_port,
                                         package, submission):
    url = f"http://127.0.0.1:{closed_port}/swordv2"
    binding = binding_for(sword_server, **{"service-doc": url + "/servicedocument",
                                           "default-collection": url + "/collection/default"})
    with pytest.raises(TransientTransferError, match="failed"):
        make_transport(binding).send(package, submission)


def test_read_timeout_is_transient(sword_server, binding, make_transport, package, submission):
    transport = make_transport({**binding, "read-timeout": 0.3})
    transport.service_document()
    sword_server.delay_next(1, seconds=1.5)
    started = time.monotonic()
    with pytest.raises(TransientTransferError, match="timed out") as caught:
        transport.send(package, submission)
    assert time.monotonic() - started < 1.4  # gave up at the read timeout, not the server
    assert "outcome unknown" in str(caught.value)  # the body had gone out in full
    assert isinstance(caught.value, OutcomeUnknown)  # the attempt stays open


def test_connection_dropped_mid_upload_is_transient(sword_server, binding, make_transport,
                                                    package, submission, tmp_path):
    # big enough that loopback socket buffers cannot swallow it before the server hangs up
    big = tmp_path / "big.zip"
    big.write_bytes(os.urandom(32 * 1024 * 1024))
    large = dataclasses.replace(package, path=big, name="big.zip", size=big.stat().st_size)
    transport = make_transport(binding)
    transport.service_document()
    sword_server.drop_next(1)
    with pytest.raises(TransientTransferError) as caught:
        transport.send(large, submission)
    assert sword_server.deposits == {}
    assert "outcome unknown" not in str(caught.value)
    assert not isinstance(caught.value, OutcomeUnknown)  # nothing whole went out


def test_find_existing(sword_server, binding, make_transport, package, submission):
    transport = make_transport(binding)
    receipt = transport.send(package, submission)
    found = transport.find_existing(receipt.details["edit_iri"])
    assert found is not None
    assert found.status_ref == receipt.status_ref
    assert found.access_url == receipt.access_url
    assert transport.find_existing(sword_server.edit_url("never-deposited")) is None


def test_find_existing_transient(sword_server, binding, make_transport, package, submission):
    transport = make_transport(binding)
    receipt = transport.send(package, submission)
    sword_server.fail_next(1, status=502)
    with pytest.raises(TransientTransferError):
        transport.find_existing(receipt.details["edit_iri"])


def test_submission_without_tags_uses_default(sword_server, binding, make_transport, package):
    hints = {"covid": sword_server.collection_url("theses")}
    make_transport({**binding, "collection-hints": hints}).send(package, DepositSubmission(id="1"))
    assert [d.collection for d in sword_server.deposits.values()] == ["default"]


def test_full_submission_from_graph_lands_in_the_tagged_collection(
    sword_server, binding, make_transport, tmp_path
):
    """Graph -> DepositSubmission (hints.collection-tags from the metadata blob) -> DSpace
    METS SIP -> SWORDv2 deposit: the hinted collection gets the package byte for byte."""
    files = tmp_path / "files"
    entities = make_graph("sub-77", files, metadata={"hints": {"collection-tags": ["COVID"]}})
    graph = resolve_file_uris(Graph.parse(entities), files)
    submission = build_deposit_submission(graph.submission, graph)
    assert submission.collection_tags == ("COVID",)
    package = create_assembler(METS_DSPACE, {}).assemble(
        submission, tmp_path / "work", datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    )
    hints = {"covid": sword_server.collection_url("theses")}
    receipt = make_transport({**binding, "collection-hints": hints}).send(package, submission)

    [deposit] = sword_server.deposits.values()
    assert deposit.collection == "theses"
    assert deposit.packaging == METS_DSPACE
    assert hashlib.sha256(deposit.path.read_bytes()).hexdigest() == package.sha256
    with zipfile.ZipFile(deposit.path) as archive:
        names = archive.namelist()
    assert "mets.xml" in names and any(n.startswith("data/") for n in names)
    assert receipt.status_ref == sword_server.statement_url(deposit.id, "atom")
