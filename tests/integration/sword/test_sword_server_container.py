"""The SWORDv2 test server's container operations, driven by the PyPI ``sword2`` client
(and, for multipart, by a body the standard library's email package writes), so the
server follows the profile and not our own transport's reading of it.

sword2 0.3's own multipart writer does not run on Python 3 (it hashes a str), so the
multipart deposit is built with ``email.mime`` as the profile's 6.3.2 shows it.
"""

from __future__ import annotations

import hashlib
import os
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart

import requests
import sword2

from tests.integration.sword.test_sword_server_profile import _connection
from tests.support.sword_server import BINARY, SIMPLE_ZIP


def _create(conn, server, payload, in_progress=False, filename="package.zip"):
    return conn.create(col_iri=server.collection_url("default"), payload=payload,
                       mimetype="application/zip", filename=filename, packaging=SIMPLE_ZIP,
                       in_progress=in_progress, suggested_identifier="item-1")


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def test_in_progress_deposit_is_completed_by_an_empty_post(sword_server, tmp_path):
    conn = _connection(sword_server, tmp_path)
    receipt = _create(conn, sword_server, os.urandom(2_000), in_progress=True)
    assert receipt.code == 201
    assert sword_server.deposits["item-1"].in_progress is True
    completed = conn.complete_deposit(dr=receipt)
    assert completed.code == 200 and completed.parsed
    assert completed.edit == receipt.edit
    assert sword_server.deposits["item-1"].in_progress is False
    [post] = [r for r in sword_server.requests
              if r.method == "POST" and "/edit/" in r.path and r.status == 200]
    assert post.headers["In-Progress"] == "false" and post.headers["Content-Length"] == "0"


def test_replace_content_through_the_em_iri_and_get_it_back(sword_server, tmp_path):
    conn = _connection(sword_server, tmp_path)
    receipt = _create(conn, sword_server, os.urandom(2_000))
    new = os.urandom(3_000)
    replaced = conn.update(dr=receipt, payload=new, filename="v2.zip",
                           mimetype="application/zip", packaging=SIMPLE_ZIP)
    assert replaced.code == 204  # the profile's answer to a PUT on the EM-IRI
    deposit = sword_server.deposits["item-1"]
    assert (deposit.md5, deposit.size, deposit.filename) == (_md5(new), 3_000, "v2.zip")
    fetched = conn.get_resource(content_iri=receipt.edit_media)
    assert fetched.code == 200 and fetched.content == new


def test_replace_metadata_through_the_edit_iri(sword_server, tmp_path):
    conn = _connection(sword_server, tmp_path)
    receipt = _create(conn, sword_server, os.urandom(2_000))
    entry = sword2.Entry(title="Corrected title", id="urn:x", dcterms_abstract="Better")
    updated = conn.update(dr=receipt, metadata_entry=entry)
    assert updated.code == 200 and updated.parsed
    assert updated.title == "Corrected title"
    deposit = sword_server.deposits["item-1"]
    assert deposit.title == "Corrected title" and len(deposit.metadata) == 1
    assert b"Better" in deposit.metadata[0]
    assert deposit.md5 != ""  # the content is untouched by a metadata PUT


def test_add_a_file_to_the_media_resource(sword_server, tmp_path):
    conn = _connection(sword_server, tmp_path)
    receipt = _create(conn, sword_server, os.urandom(2_000))
    added = conn.add_file_to_resource(receipt.edit_media, payload=b"appendix", filename="a.txt",
                                      mimetype="text/plain")
    assert added.code == 201
    assert added.location == f"{receipt.edit_media}/a.txt"
    assert sword_server.deposits["item-1"].files == ["a.txt"]


def test_delete_content_then_container(sword_server, tmp_path):
    conn = _connection(sword_server, tmp_path)
    receipt = _create(conn, sword_server, os.urandom(2_000))
    assert conn.delete_content_of_resource(dr=receipt).code == 204
    assert sword_server.deposits["item-1"].size == 0
    assert conn.get_resource(content_iri=receipt.edit_media).code == 404
    assert conn.delete_container(dr=receipt).code == 204
    assert sword_server.deposits == {}
    gone = conn.get_deposit_receipt(receipt.edit)
    assert gone.code == 404


def test_metadata_only_deposit_then_content(sword_server, tmp_path):
    conn = _connection(sword_server, tmp_path)
    entry = sword2.Entry(title="Metadata first", id="urn:y")
    receipt = conn.create(col_iri=sword_server.collection_url("default"), metadata_entry=entry,
                          in_progress=True)
    assert receipt.code == 201 and receipt.parsed and receipt.title == "Metadata first"
    data = os.urandom(1_000)
    assert conn.update(dr=receipt, payload=data, filename="later.bin",
                       mimetype="application/octet-stream", packaging=BINARY).code == 204
    [deposit] = sword_server.deposits.values()
    assert deposit.md5 == _md5(data) and deposit.in_progress is True


def test_multipart_deposit(sword_server):
    data = os.urandom(5_000)
    body = MIMEMultipart("related")
    atom = MIMEApplication(
        b'<entry xmlns="http://www.w3.org/2005/Atom"><title>Multipart</title></entry>',
        "atom+xml", _encoder=lambda part: None)
    atom.add_header("Content-Disposition", "attachment", name="atom")
    body.attach(atom)
    payload = MIMEApplication(data, "zip")  # base64, as the profile's example
    payload.add_header("Content-Disposition", "attachment", name="payload",
                       filename="multi.zip")
    payload.add_header("Content-MD5", _md5(data))
    payload.add_header("Packaging", SIMPLE_ZIP)
    body.attach(payload)
    raw = body.as_bytes()
    _, _, content = raw.partition(b"\n\n")
    content_type = body["Content-Type"].replace("\n", "")
    answer = requests.post(
        sword_server.collection_url("default"), data=content, timeout=10,
        auth=(sword_server.username, sword_server.password),
        headers={"Content-Type": content_type, "In-Progress": "false"})
    assert answer.status_code == 201, answer.text
    [deposit] = sword_server.deposits.values()
    assert deposit.title == "Multipart" and deposit.filename == "multi.zip"
    assert deposit.md5 == _md5(data) and deposit.packaging == SIMPLE_ZIP
    assert answer.headers["Location"].endswith(f"/edit/{deposit.id}")


def test_multipart_with_a_wrong_checksum_is_refused(sword_server):
    body = MIMEMultipart("related")
    atom = MIMEApplication(b'<entry xmlns="http://www.w3.org/2005/Atom"><title>x</title></entry>',
                           "atom+xml", _encoder=lambda part: None)
    atom.add_header("Content-Disposition", "attachment", name="atom")
    body.attach(atom)
    payload = MIMEApplication(b"abc", "zip")
    payload.add_header("Content-Disposition", "attachment", name="payload", filename="x.zip")
    payload.add_header("Content-MD5", _md5(b"other"))
    body.attach(payload)
    _, _, content = body.as_bytes().partition(b"\n\n")
    answer = requests.post(
        sword_server.collection_url("default"), data=content, timeout=10,
        auth=(sword_server.username, sword_server.password),
        headers={"Content-Type": body["Content-Type"].replace("\n", "")})
    assert answer.status_code == 412 and b"ErrorChecksumMismatch" in answer.content
    assert sword_server.deposits == {}


def test_listing_of_the_collection(sword_server, tmp_path):
    conn = _connection(sword_server, tmp_path)
    _create(conn, sword_server, os.urandom(100))
    listing = requests.get(sword_server.collection_url("default"), timeout=10,
                           auth=(sword_server.username, sword_server.password))
    assert listing.status_code == 200
    assert listing.headers["Content-Type"].startswith("application/atom+xml")
    assert sword_server.edit_url("item-1").encode() in listing.content
    theses = requests.get(sword_server.collection_url("theses"), timeout=10,
                          auth=(sword_server.username, sword_server.password))
    assert b"<entry>" not in theses.content
