"""SWORDv2: an upload that went out whole and got no answer is not deposited twice.

The test server is told to answer late (it stores the deposit, then holds its answer
until the test releases it); the client's read timeout is shorter, so it gives up after
the upload. The collection's listing is searched at once; not there yet, the transport
raises OutcomeUnknown, and the next attempt (any process: the transport keeps nothing)
calls ``reconcile``, which searches the listing before the package is sent again.
"""

from __future__ import annotations

import threading

import pytest
import requests

from deposit_services.errors import OutcomeUnknown, PermanentTransferError
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


def test_slow_ingest_is_found_by_the_next_attempts_reconcile(
        sword_server, binding, make_transport, package, submission, release):
    transport = make_transport({**binding, "read-timeout": 0.5})
    sword_server.answer_late_next(release, ingested=False)
    with pytest.raises(OutcomeUnknown, match="outcome unknown") as caught:
        transport.send(package, submission)
    assert "not in the collection's listing yet" in str(caught.value)
    release.set()  # the ingest finishes; the item shows in the listing

    # the next attempt, in another process: a transport that never saw the first
    other = make_transport(binding)
    receipt = other.reconcile(package, {"title": submission.title or ""})
    [deposit] = sword_server.deposits.values()
    assert receipt is not None
    assert receipt.details["edit_iri"] == sword_server.edit_url(deposit.id)
    assert receipt.status_ref == sword_server.statement_url(deposit.id, "atom")
    assert len(_posts_to_collection(sword_server)) == 1, "one item, not two"


def test_slow_ingest_that_never_arrived_is_sent_again(sword_server, binding, make_transport,
                                                     package, submission, release):
    transport = make_transport({**binding, "read-timeout": 0.5})
    sword_server.answer_late_next(release, ingested=False)
    with pytest.raises(OutcomeUnknown):
        transport.send(package, submission)
    with sword_server.app._lock:  # the server lost it (say, its ingest failed)
        sword_server.app.deposits.clear()
    release.set()
    assert transport.reconcile(package, {}) is None, "not there: safe to send again"
    transport.send(package, submission)
    assert len(_posts_to_collection(sword_server)) == 2
    assert len(sword_server.deposits) == 1


def test_a_listing_that_fails_after_the_upload_leaves_the_outcome_unknown(
        sword_server, binding, make_transport, package, submission, release):
    transport = make_transport({**binding, "read-timeout": 0.5})
    transport.service_document()
    sword_server.answer_late_next(release)
    sword_server.fail_next(1, status=503)  # the POST is answered late; the listing 503
    with pytest.raises(OutcomeUnknown, match="listing failed too") as caught:
        transport.send(package, submission)
    release.set()
    assert "503" in str(caught.value)
    found = transport.reconcile(package, {})  # the listing answers again
    assert found is not None and len(sword_server.deposits) == 1


def test_reconcile_looks_in_every_collection_the_hints_can_choose(
        sword_server, binding, make_transport, package, submission):
    hinted = {**binding, "collection-hints": {"thesis": sword_server.collection_url("theses")}}
    sent = make_transport({**binding, "default-collection":
                           sword_server.collection_url("theses")}).send(package, submission)
    found = make_transport(hinted).reconcile(package, {})
    assert found is not None and found.details["edit_iri"] == sent.details["edit_iri"]
    assert found.details["collection"] == sword_server.collection_url("theses")


def test_reconcile_without_listing_fails_naming_package_md5_and_slug(
        tmp_path, binding_for, make_transport, package):
    with running_sword_server(listing=False) as server:
        transport = make_transport(binding_for(server))
        with pytest.raises(PermanentTransferError) as caught:
            transport.reconcile(package, {"package_md5": package.md5})
    message = str(caught.value)
    assert package.name in message and package.md5 in message
    assert slug_for(package) in message and "offers no collection listing" in message


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
    assert package.md5 in str(caught.value)
    # the next attempt's reconcile is told the title by the service (reconcile.py)
    with pytest.raises(PermanentTransferError, match="titled"):
        make_transport(binding).reconcile(package, {"title": submission.title})
    release.set()


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
