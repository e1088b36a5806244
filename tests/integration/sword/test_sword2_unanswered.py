"""SWORDv2: an upload that went out whole and got no answer is not deposited twice.

The test server is told to answer late (it stores the deposit, then holds its answer
until the test releases it); the client's read timeout is shorter, so it gives up after
the upload. Before the package is sent again the collection's listing is searched.
"""

from __future__ import annotations

import threading

import pytest
import requests

from deposit_services.errors import PermanentTransferError, TransientTransferError
from deposit_services.transports.sword.lookup import slug_for
from tests.support.sword_server import running_sword_server


def _posts_to_collection(server):
    return [r for r in server.requests if r.method == "POST" and "/collection/" in r.path]


@pytest.fixture
def release():
    event = threading.Event()
    yield event
    event.set()  # never leave a server thread waiting


def test_late_answer_finds_the_first_item(sword_server, binding, make_transport, package,
                                          submission, release):
    transport = make_transport({**binding, "read-timeout": 0.5})
    sword_server.answer_late_next(release)
    receipt = transport.send(package, submission)
    release.set()

    [deposit] = sword_server.deposits.values()
    assert len(_posts_to_collection(sword_server)) == 1
    assert receipt.details["edit_iri"] == sword_server.edit_url(deposit.id)
    assert receipt.status_ref == sword_server.statement_url(deposit.id, "atom")
    # it looked in the collection's listing after the timeout
    assert any(r.method == "GET" and r.path.endswith("/collection/default")
               for r in sword_server.requests)


def test_slow_ingest_is_looked_for_before_sending_again(sword_server, binding, make_transport,
                                                        package, submission, release):
    transport = make_transport({**binding, "read-timeout": 0.5})
    sword_server.answer_late_next(release, ingested=False)
    with pytest.raises(TransientTransferError, match="outcome unknown") as caught:
        transport.send(package, submission)
    assert "looked at again before the package is sent again" in str(caught.value)
    release.set()  # the ingest finishes; the item shows in the listing

    receipt = transport.send(package, submission)  # the retry
    [deposit] = sword_server.deposits.values()
    assert len(_posts_to_collection(sword_server)) == 1, "one item, not two"
    assert receipt.details["edit_iri"] == sword_server.edit_url(deposit.id)


def test_slow_ingest_that_never_arrived_is_sent_again(sword_server, binding, make_transport,
                                                     package, submission, release):
    transport = make_transport({**binding, "read-timeout": 0.5})
    sword_server.answer_late_next(release, ingested=False)
    with pytest.raises(TransientTransferError):
        transport.send(package, submission)
    with sword_server.app._lock:  # the server lost it (say, its ingest failed)
        sword_server.app.deposits.clear()
    release.set()
    transport.send(package, submission)
    assert len(_posts_to_collection(sword_server)) == 2
    assert len(sword_server.deposits) == 1


def test_no_listing_fails_with_name_and_checksum(tmp_path, binding_for, make_transport, package,
                                                submission, release):
    with running_sword_server(listing=False) as server:
        transport = make_transport({**binding_for(server), "read-timeout": 0.5})
        server.answer_late_next(release)
        with pytest.raises(PermanentTransferError) as caught:
            transport.send(package, submission)
        release.set()
        message = str(caught.value)
        assert package.name in message and package.md5 in message
        assert slug_for(package) in message
        assert "offers no collection listing" in message
        assert len(server.deposits) == 1


def test_an_item_with_the_title_that_names_nothing_cannot_be_told(
        sword_server, binding, make_transport, package, submission, release):
    """DSpace lists items by title only: an item with our title may be ours."""
    assert submission.title
    entry = (f'<entry xmlns="http://www.w3.org/2005/Atom"><title>{submission.title}</title>'
             "</entry>").encode()
    made = requests.post(sword_server.collection_url("default"), data=entry,
                         auth=(sword_server.username, sword_server.password),
                         headers={"Content-Type": "application/atom+xml;type=entry"},
                         timeout=10)
    assert made.status_code == 201, made.text
    transport = make_transport({**binding, "read-timeout": 0.5})
    transport.service_document()
    with sword_server.app._lock:  # DSpace ignores the Slug: the item has no name of ours
        sword_server.app.deposits["0b5f"] = sword_server.app.deposits.pop(
            next(iter(sword_server.app.deposits)))
    sword_server.answer_late_next(release, ingested=False)
    with pytest.raises(PermanentTransferError, match="titled") as caught:
        transport.send(package, submission)
    release.set()
    assert package.md5 in str(caught.value)


def test_a_refused_listing_still_names_what_to_look_for(sword_server, binding, make_transport,
                                                        package, submission, release):
    transport = make_transport({**binding, "read-timeout": 0.5})
    transport.service_document()
    sword_server.answer_late_next(release)
    sword_server.fail_next(1, status=403)  # the POST is answered late; the listing refused
    with pytest.raises(PermanentTransferError) as caught:
        transport.send(package, submission)
    release.set()
    message = str(caught.value)
    assert package.md5 in message and "listing cannot be read" in message and "403" in message
