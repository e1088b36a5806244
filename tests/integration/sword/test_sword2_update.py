"""SwordV2Transport.update: a corrected resubmission replaces the item an earlier deposit
left (same Edit-IRI, new content and metadata), on the SWORDv2 test server."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from lxml import etree

from deposit_services.errors import PermanentTransferError
from deposit_services.model.submission import ArticleMetadata
from deposit_services.transports.base import PriorItem
from deposit_services.transports.sword.entry import metadata_entry
from tests.support.packages import sample_package


def _prior(receipt):
    return PriorItem(status_ref=receipt.status_ref, access_url=receipt.access_url,
                     external_ids=receipt.external_ids, evidence=dict(receipt.details))


def test_update_replaces_content_and_metadata_under_the_same_edit_iri(
        sword_server, binding, make_transport, package, submission, tmp_path):
    transport = make_transport(binding)
    assert transport.supports_update is True
    first = transport.send(package, submission)
    assert {"edit_iri", "em_iri"} <= set(first.details)

    corrected = dataclasses.replace(submission, article=dataclasses.replace(
        submission.article, title="Two stupendous minds (corrected)"))
    (tmp_path / "files" / "manuscript.txt").write_text("corrected manuscript text\n")
    new_package = sample_package(corrected, tmp_path / "work2")
    assert new_package.md5 != package.md5

    updated = transport.update(new_package, corrected, _prior(first))

    [deposit] = sword_server.deposits.values()  # still one item
    assert updated.details["edit_iri"] == first.details["edit_iri"]
    assert updated.status_ref == first.status_ref
    assert deposit.md5 == new_package.md5 and deposit.size == new_package.size
    assert hashlib.sha256(deposit.path.read_bytes()).hexdigest() == new_package.sha256
    assert deposit.title == "Two stupendous minds (corrected)"
    entry = etree.fromstring(deposit.metadata[-1])
    titles = entry.findall("{http://purl.org/dc/terms/}title")
    assert [t.text for t in titles] == ["Two stupendous minds (corrected)"]
    puts = [r for r in sword_server.requests if r.method == "PUT"]
    assert [r.path.split("/")[2] for r in puts] == ["edit-media", "edit"]
    assert puts[0].headers["Content-Md5"] == new_package.md5
    assert len([r for r in sword_server.requests if r.method == "POST"]) == 1


def test_update_without_an_edit_iri_says_what_to_do(binding, make_transport, package,
                                                    submission):
    with pytest.raises(PermanentTransferError, match="recorded no Edit-IRI"):
        make_transport(binding).update(package, submission, PriorItem())


def test_update_of_an_item_the_server_no_longer_has(sword_server, binding, make_transport,
                                                    package, submission):
    transport = make_transport(binding)
    first = transport.send(package, submission)
    with sword_server.app._lock:
        sword_server.app.deposits.clear()
    with pytest.raises(PermanentTransferError, match="no longer has that item"):
        transport.update(package, submission, _prior(first))


def test_metadata_entry_escapes_and_carries_the_doi(submission):
    odd = dataclasses.replace(submission, article=ArticleMetadata(
        title="A <b>&amp; title", doi="10.1234/abc"))
    entry = etree.fromstring(metadata_entry(odd))
    dc = "{http://purl.org/dc/terms/}"
    assert entry.find(f"{dc}title").text == "A <b>&amp; title"
    assert entry.find(f"{dc}identifier").text == "https://doi.org/10.1234/abc"
