"""The SWORDv2 test server driven by the PyPI ``sword2`` client (not our own code).

So that the server follows the SWORDv2 profile and is not a mirror of our transport:
sword2 validates the service document, the receipt, both statements, and matches
each error IRI with the HTTP status codes the profile gives it.

sword2 0.3 (httplib2) works on Python 3.11 for these calls; the one workaround is to
give it an httplib2 cache directory under tmp_path (its default is ``./.cache``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket

import pytest
import sword2
from sword2.http_layer import HttpLib2Layer

from tests.support.sword_server import METS_DSPACE, SIMPLE_ZIP, running_sword_server


def _connection(server, tmp_path, password=None, on_behalf_of=None):
    return sword2.Connection(
        server.service_document_url,
        user_name=server.username,
        user_pass=password or server.password,
        on_behalf_of=on_behalf_of,
        error_response_raises_exceptions=False,
        http_impl=HttpLib2Layer(cache_dir=str(tmp_path / "httplib2-cache"), timeout=10),
    )


def _create(conn, server, payload, collection="default", packaging=SIMPLE_ZIP, md5sum=None):
    return conn.create(
        col_iri=server.collection_url(collection),
        payload=payload,
        mimetype="application/zip",
        filename="package.zip",
        packaging=packaging,
        md5sum=md5sum,
    )


def test_service_document(sword_server, tmp_path):
    conn = _connection(sword_server, tmp_path)
    conn.get_service_document()
    assert conn.sd is not None and conn.sd.valid
    assert conn.sd.version == "2.0"
    [(title, collections)] = conn.workspaces
    assert title == "Test repository"
    hrefs = {c.href: c for c in collections}
    assert set(hrefs) == {sword_server.collection_url("default"),
                          sword_server.collection_url("theses")}
    default = hrefs[sword_server.collection_url("default")]
    assert default.accept == ["*/*"] and default.accept_multipart == ["*/*"]
    assert default.mediation is True
    # sword2 does not read sword:acceptPackaging; it is in the namespace it expects
    packagings = [e.text for e in default.dom.findall(
        "{http://purl.org/net/sword/terms/}acceptPackaging")]
    assert METS_DSPACE in packagings and SIMPLE_ZIP in packagings


def test_deposit_receipt_and_statements(sword_server, tmp_path):
    payload = os.urandom(50_000)
    conn = _connection(sword_server, tmp_path, on_behalf_of="owner@example.org")
    receipt = _create(conn, sword_server, payload)
    assert receipt.code == 201 and receipt.parsed
    [deposit] = sword_server.deposits.values()
    # sword2 sends Content-MD5 as hex, and the server checked it
    assert deposit.md5 == hashlib.md5(payload, usedforsecurity=False).hexdigest()
    assert deposit.on_behalf_of == "owner@example.org"
    assert receipt.edit == receipt.location == sword_server.edit_url(deposit.id)
    assert receipt.edit_media.endswith(f"/edit-media/{deposit.id}")
    assert receipt.se_iri == sword_server.edit_url(deposit.id)
    assert receipt.alternate == f"{sword_server.base_url}/items/{deposit.id}"
    assert receipt.atom_statement_iri == sword_server.statement_url(deposit.id, "atom")
    assert receipt.ore_statement_iri == sword_server.statement_url(deposit.id, "ore")
    assert SIMPLE_ZIP in receipt.packaging

    atom = conn.get_atom_sword_statement(receipt.atom_statement_iri)
    assert atom.states == [("http://dspace.org/state/inprogress", "The item is in progress")]
    assert [r.uri for r in atom.original_deposits] == [
        f"{receipt.edit_media}/package.zip"
    ]
    sword_server.set_state(deposit.id, "archived")
    ore = conn.get_ore_sword_statement(receipt.ore_statement_iri)
    assert ore.valid
    assert ore.states == [("http://dspace.org/state/archived", "The item has been archived")]
    assert [r.uri for r in ore.original_deposits] == [f"{receipt.edit_media}/package.zip"]
    assert ore.original_deposits[0].packaging == [SIMPLE_ZIP]

    fetched = conn.get_deposit_receipt(receipt.edit)
    assert fetched.atom_statement_iri == receipt.atom_statement_iri


@pytest.mark.parametrize(
    ("case", "status", "name"),
    [
        ("checksum", 412, "ErrorChecksumMismatch"),
        ("packaging", 415, "ErrorContent"),
        ("size", 413, "MaxUploadSizeExceeded"),
        ("owner", 403, "TargetOwnerUnknown"),
    ],
)
def test_error_documents_follow_the_profile(tmp_path, case, status, name):
    payload = os.urandom(20_000)
    with running_sword_server(max_upload_size=10_000) as server:
        conn = _connection(server, tmp_path, on_behalf_of="who@example.org" if case == "owner"
                           else None)
        kwargs = {}
        if case == "checksum":
            kwargs["md5sum"] = hashlib.md5(b"something else", usedforsecurity=False).hexdigest()
        if case == "packaging":
            kwargs["packaging"] = "http://example.org/package/Unknown"
        body = payload if case == "size" else payload[:5_000]
        error = _create(conn, server, body, **kwargs)
        assert server.deposits == {}
    assert error.code == status
    # sword2 matched the error IRI to the profile's list and its HTTP codes
    assert error.error_info["name"] == name
    assert error.error_href == f"http://purl.org/net/sword/error/{name}"
    assert error.summary


def test_mediation_not_allowed(tmp_path):
    with running_sword_server(mediation=False) as server:
        conn = _connection(server, tmp_path, on_behalf_of="owner@example.org")
        error = _create(conn, server, b"x" * 100)
    assert error.code == 412
    assert error.error_info["name"] == "MediationNotAllowed"


def test_wrong_password_is_401_without_body(sword_server, tmp_path):
    conn = _connection(sword_server, tmp_path, password="wrong")
    error = _create(conn, sword_server, b"x" * 100)
    assert error.code == 401
    assert error.dom is None  # no error document, as the profile allows
    unauthenticated = [r for r in sword_server.requests if r.status == 401]
    assert unauthenticated and sword_server.deposits == {}


def test_503_fault(sword_server, tmp_path):
    conn = _connection(sword_server, tmp_path)
    sword_server.fail_next(1, status=503)
    error = _create(conn, sword_server, b"x" * 100)
    assert error.code == 503
    assert _create(conn, sword_server, b"x" * 100).code == 201


def test_expect_100_continue_is_answered(sword_server):
    """curl asks before large uploads (bench/transfer.py compares with it): the server
    says 100 Continue at once instead of letting the client wait for a timeout."""
    body = os.urandom(2_000_000)
    credentials = base64.b64encode(f"{sword_server.username}:{sword_server.password}".encode())
    head = (
        f"POST /swordv2/collection/default HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Basic {credentials.decode()}\r\nContent-Length: {len(body)}\r\n"
        "Content-Disposition: attachment; filename=x.bin\r\n"
        f"Content-MD5: {hashlib.md5(body, usedforsecurity=False).hexdigest()}\r\n"
        "Expect: 100-continue\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", sword_server.port), timeout=5) as sock:
        sock.sendall(head)
        sock.settimeout(0.5)  # curl would give up waiting after 1 s
        interim = sock.recv(64)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.settimeout(5)
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.split(b"\r\n", 1)[0].endswith(b"201 Created")
    [deposit] = sword_server.deposits.values()
    assert deposit.size == len(body)
