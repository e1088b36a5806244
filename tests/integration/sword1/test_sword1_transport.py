"""Sword1Transport against the MyCoRe-like SWORD 1.3 test server on a loopback port."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import socket
import threading
import zipfile
from pathlib import Path

import pytest

from deposit_services.assemblers.base import Package
from deposit_services.errors import (
    AuthenticationError,
    OutcomeUnknown,
    PermanentTransferError,
    TransientTransferError,
)
from deposit_services.transports.base import create_transport
from deposit_services.transports.sword.v1 import Sword1Transport
from deposit_services.transports.sword.v1_documents import packaging_aliases
from tests.support.sword1_server import METS_V1, running_sword1_server


def test_registered_as_sword1(sword1_server):
    transport = create_transport(sword1_server.binding())
    assert isinstance(transport, Sword1Transport)
    transport.close()


def test_service_document(sword1_server, make_transport):
    document = make_transport(sword1_server.binding()).service_document()
    assert document.version == "1.3"
    assert document.no_op is True and document.verbose is True
    assert document.max_upload_size_kb == 10 * 1024
    collection = document.collection(sword1_server.collection_url)
    assert collection is not None and collection.mediation is True
    assert collection.accept_packaging == {METS_V1: 1.0}


def test_mets_deposit_is_ingested_with_its_treatment(sword1_server, make_transport,
                                                     mets_package, submission):
    transport = make_transport(sword1_server.binding(verbose=True))
    receipt = transport.send(mets_package, submission)

    [item] = sword1_server.items.values()
    assert receipt.accepted is True
    assert receipt.access_url == f"{sword1_server.base_url}/receive/{item.id}"
    assert receipt.message == item.treatment and "MyCoRe object" in item.treatment
    assert receipt.details["edit_iri"].endswith(f"/sword/entry/{item.id}")
    assert receipt.details["packaging"] == METS_V1
    assert "mets.xml" in item.files and "manuscript.txt" in item.files
    h = item.headers
    assert h["X-Packaging"] == METS_V1  # the collection's spelling of the v2 URI
    assert h["Content-Md5"] == mets_package.md5
    assert h["Content-Disposition"] == f"filename={mets_package.name}"
    assert h["X-No-Op"] == "false" and h["X-Verbose"] == "true"
    assert "X-On-Behalf-Of" not in h


def test_no_op_stores_nothing(sword1_server, make_transport, mets_package, submission):
    receipt = make_transport(sword1_server.binding()).deposit(mets_package, submission,
                                                               no_op=True)
    assert sword1_server.items == {}
    assert receipt.details["no_op"] == "true"
    assert receipt.message is not None and receipt.message.startswith("No-Op")


def test_folders_are_dropped(sword1_server, make_transport, submission, tmp_path: Path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mets.xml", "<mets/>")
        archive.writestr("data/", "")
        archive.writestr("data/table.csv", "a,b\n")
    path = tmp_path / "folders.zip"
    path.write_bytes(buffer.getvalue())
    body = path.read_bytes()
    package = Package(path, path.name, len(body), hashlib.md5(body).hexdigest(),
                      hashlib.sha256(body).hexdigest(), "application/zip",
                      "http://purl.org/net/sword/package/METSDSpaceSIP")
    receipt = make_transport(sword1_server.binding()).send(package, submission)
    [item] = sword1_server.items.values()
    assert set(item.files) == {"mets.xml", "table.csv"}
    assert "folders dropped: data" in (receipt.message or "")


def test_queued_deposit_is_not_accepted_yet(make_transport, mets_package, submission):
    with running_sword1_server(queue=True) as server:
        receipt = make_transport(server.binding()).send(mets_package, submission)
        [item] = server.items.values()
        assert receipt.accepted is False
        assert receipt.status_ref == f"{server.base_url}/sword/entry/{item.id}"
        assert "202 Accepted" in (receipt.message or "")


def test_wrong_password_is_an_authentication_error(sword1_server, make_transport,
                                                   mets_package, submission):
    transport = make_transport(sword1_server.binding(password="wrong"))
    with pytest.raises(AuthenticationError, match="check the protocol-binding's username"):
        transport.send(mets_package, submission)


def test_oversize_is_refused_before_sending(make_transport, mets_package, submission):
    with running_sword1_server(max_upload_bytes=2048) as server:
        with pytest.raises(PermanentTransferError, match="maxUploadSize of 2 kB"):
            make_transport(server.binding()).send(mets_package, submission)
        assert [r for r in server.requests if r.method == "POST"] == []


def test_oversize_refused_by_the_server(make_transport, mets_package, submission):
    with running_sword1_server(max_upload_bytes=2048) as server:
        transport = make_transport(server.binding(**{"check-collection": False}))
        with pytest.raises(PermanentTransferError, match="MaxUploadSizeExceeded"):
            transport.send(mets_package, submission)


def test_unknown_packaging_is_refused(sword1_server, make_transport, mets_package, submission):
    other = dataclasses.replace(mets_package, specification="http://example.org/Unknown")
    with pytest.raises(PermanentTransferError, match="does not accept packaging"):
        make_transport(sword1_server.binding()).send(other, submission)
    transport = make_transport(sword1_server.binding(**{"check-collection": False}))
    with pytest.raises(PermanentTransferError, match="ErrorContent"):
        transport.send(other, submission)


def test_checksum_mismatch(sword1_server, make_transport, mets_package, submission):
    bad = dataclasses.replace(mets_package, md5="0" * 32)
    with pytest.raises(PermanentTransferError, match="ErrorChecksumMismatch"):
        make_transport(sword1_server.binding()).send(bad, submission)


def test_unknown_owner_and_mediation(make_transport, mets_package, submission):
    with running_sword1_server() as server:
        transport = make_transport(server.binding(**{"on-behalf-of": "nobody"}))
        with pytest.raises(PermanentTransferError, match=r"TargetOwnerUnknown.*on-behalf-of"):
            transport.send(mets_package, submission)
    with running_sword1_server(mediation=False) as server:
        transport = make_transport(server.binding(**{"on-behalf-of": "owner@example.org"}))
        with pytest.raises(PermanentTransferError, match="does not allow mediated deposit"):
            transport.send(mets_package, submission)


def test_server_errors_and_closed_port_are_transient(make_transport, mets_package, submission):
    with running_sword1_server() as server:
        binding = server.binding()
    with pytest.raises(TransientTransferError):
        make_transport(binding).send(mets_package, submission)


def test_reconcile_by_edit_link(sword1_server, make_transport, mets_package, submission):
    transport = make_transport(sword1_server.binding())
    receipt = transport.send(mets_package, submission)
    again = transport.reconcile(mets_package, receipt.details)
    assert again is not None and again.accepted and again.access_url == receipt.access_url
    with pytest.raises(PermanentTransferError, match="no lookup"):
        transport.reconcile(mets_package, {})


def test_packaging_aliases():
    assert packaging_aliases("http://purl.org/net/sword/package/METSDSpaceSIP")[1] == METS_V1


def test_an_upload_sent_whole_without_an_answer_is_outcome_unknown(
        make_transport, mets_package, submission):
    """A server that reads the whole upload and never answers: the outcome is unknown
    (the attempt stays open), and with no entry link the next attempt's reconcile
    cannot tell: FAILED naming the package and MD5, never sent twice blindly."""
    done = threading.Event()
    received: list[int] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def swallow() -> None:  # reads the request, body and all, then says nothing
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:")))
            while len(body) < length:
                body += conn.recv(65536)
            received.append(len(body))
            done.wait(10)

    thread = threading.Thread(target=swallow, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/sword/collection"
    binding = {"protocol": "SWORD1", "username": "u", "password": "p",
               "service-doc": url, "default-collection": url, "check-collection": False,
               "connect-timeout": 2, "read-timeout": 0.5}
    try:
        with pytest.raises(OutcomeUnknown, match="outcome unknown"):
            make_transport(binding).send(mets_package, submission)
    finally:
        done.set()
        thread.join(5)
        listener.close()
    assert received == [mets_package.size]
    with pytest.raises(PermanentTransferError) as caught:
        make_transport(binding).reconcile(mets_package, {})
    assert mets_package.name in str(caught.value) and mets_package.md5 in str(caught.value)
