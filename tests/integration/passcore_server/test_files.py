"""pass-core's file service: upload (multipart), download (streamed), delete."""

from __future__ import annotations

import hashlib
import os

import requests

from tests.support.passcore import PassCore


def test_upload_then_download_streams_the_bytes(client: requests.Session,
                                                passcore: PassCore) -> None:
    data = os.urandom(5 * 1024 * 1024 + 17)
    upload = client.post(f"{passcore.base_url}/file",
                         files={"file": ("big report.pdf", data, "application/pdf")})
    assert upload.status_code == 201
    stored = upload.json()
    assert set(stored) == {"id", "uuid", "fileName", "mimeType", "storageType", "size",
                           "extension"}
    assert stored["id"] == f"{stored['uuid']}/big report.pdf"
    assert upload.headers["Location"] == stored["uuid"]
    assert (stored["fileName"], stored["mimeType"], stored["storageType"], stored["size"],
            stored["extension"]) == ("big report.pdf", "application/pdf", "FILE_SYSTEM",
                                     len(data), "pdf")
    uri = f"/file/{stored['uuid']}/big%20report.pdf"  # what the PASS UI records
    with client.get(passcore.base_url + uri, stream=True) as download:
        assert download.status_code == 200
        assert download.headers["Content-Type"] == "application/pdf"
        assert download.headers["Content-Length"] == str(len(data))
        assert download.headers["Content-Disposition"] == 'attachment; filename="big report.pdf"'
        digest = hashlib.sha256()
        for chunk in download.iter_content(64 * 1024):
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert passcore.file_bytes(uri) == data


def test_download_needs_basic_auth_and_unknown_files_are_404(client: requests.Session,
                                                             passcore: PassCore) -> None:
    stored = client.post(f"{passcore.base_url}/file", files={"file": ("a.txt", b"abc")}).json()
    url = f"{passcore.base_url}/file/{stored['id']}"
    assert requests.get(url, timeout=10).status_code == 401
    assert client.get(url).headers["Content-Type"].startswith("text/plain")
    missing = client.get(f"{passcore.base_url}/file/{stored['uuid']}/other.txt")
    assert missing.status_code == 404 and missing.content == b""


def test_delete_and_refusals(client: requests.Session, passcore: PassCore) -> None:
    stored = client.post(f"{passcore.base_url}/file", files={"file": ("x.bin", b"\0\1")}).json()
    url = f"{passcore.base_url}/file/{stored['id']}"
    deleted = client.delete(url)
    assert (deleted.status_code, deleted.text) == (200, "Deleted")
    assert client.get(url).status_code == 404
    assert client.delete(url).status_code == 404
    empty = client.post(f"{passcore.base_url}/file", files={"file": ("e.txt", b"")})
    assert empty.status_code == 400 and empty.content == b""
    no_part = client.post(f"{passcore.base_url}/file", files={"other": ("e.txt", b"x")})
    assert no_part.status_code == 400
    unknown = client.post(f"{passcore.base_url}/file", files={"file": ("noext", b"x")}).json()
    assert unknown["mimeType"] is None and unknown["extension"] == ""
    assert client.get(f"{passcore.base_url}/file/{unknown['id']}").headers["Content-Type"] == (
        "application/octet-stream"
    )
    escaped = client.post(f"{passcore.base_url}/file", files={"file": ("a&b.txt", b"x")}).json()
    assert escaped["fileName"] == "a&amp;b.txt"  # Jsoup.clean on the original name
