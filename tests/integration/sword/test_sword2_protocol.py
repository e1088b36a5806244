"""SwordV2Transport: streaming, service-document cache, TLS, redirects, receipts, reconcile.

Against the SWORDv2 test server on a loopback port (plain HTTP, or HTTPS with a
certificate from a throwaway CA).
"""

from __future__ import annotations

import dataclasses
import threading
import time

import certifi
import pytest
import requests

from deposit_services.errors import (
    AuthenticationError,
    PermanentTransferError,
    TransientTransferError,
)
from deposit_services.transports.sword.documents import parse_receipt
from tests.support.sword_server import running_sword_server


def _posts(server):
    return [r for r in server.requests if r.method == "POST"]


def _service_gets(server):
    return [r for r in server.requests if r.path.endswith("/servicedocument")]


def test_body_is_streamed_from_the_package_file(sword_server, binding, make_transport,
                                                 package, submission, monkeypatch):
    """requests is handed a file object with a length, never the bytes of the package."""
    bodies = []
    original = requests.adapters.HTTPAdapter.send

    def spy(adapter, request, *args, **kwargs):
        bodies.append((request.method, request.body, dict(request.headers)))
        return original(adapter, request, *args, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", spy)
    make_transport(binding).send(package, submission)

    [(_, body, headers)] = [b for b in bodies if b[0] == "POST"]
    assert not isinstance(body, (bytes, bytearray, str))
    assert callable(getattr(body, "read", None))
    assert headers["Content-Length"] == str(package.size)
    assert "Transfer-Encoding" not in headers
    [deposit] = sword_server.deposits.values()
    assert deposit.headers["Content-Length"] == str(package.size)
    assert "Transfer-Encoding" not in deposit.headers
    assert deposit.md5 == package.md5


def test_service_document_fetched_with_credentials(sword_server, binding, make_transport,
                                                   package, submission):
    make_transport(binding).send(package, submission)
    [get] = _service_gets(sword_server)
    assert get.headers["Authorization"].startswith("Basic ")
    assert get.status == 200
    assert "On-Behalf-Of" not in get.headers


def test_service_document_ttl_expires(sword_server, binding, make_transport, package,
                                      submission):
    transport = make_transport({**binding, "service-doc-ttl": 0.3})
    transport.send(package, submission)
    transport.send(dataclasses.replace(package, name="b.zip"), submission)
    assert len(_service_gets(sword_server)) == 1  # within the time-to-live: cached
    time.sleep(0.4)
    transport.send(dataclasses.replace(package, name="c.zip"), submission)
    assert len(_service_gets(sword_server)) == 2  # expired: fetched again
    assert len(sword_server.deposits) == 3


def test_three_503_then_accepted(sword_server, binding, make_transport, package, submission):
    transport = make_transport(binding)
    sword_server.fail_next(3, status=503)
    for _ in range(3):
        with pytest.raises(TransientTransferError, match="503"):
            transport.send(package, submission)
    receipt = transport.send(package, submission)
    assert [d.md5 for d in sword_server.deposits.values()] == [package.md5]
    assert receipt.status_ref is not None


def test_wrong_credentials_say_authentication_failed(sword_server, binding, make_transport,
                                                     package, submission):
    transport = make_transport({**binding, "password": "not-the-password"})
    with pytest.raises(AuthenticationError) as caught:
        transport.send(package, submission)
    message = str(caught.value)
    assert "authentication failed" in message and sword_server.username in message
    assert "not-the-password" not in message
    assert sword_server.deposits == {}


def test_tls_is_verified_by_default(binding_for, make_transport, package, submission,
                                    monkeypatch):
    # a system bundle in the environment must not override the binding's ca-bundle
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    with running_sword_server(tls=True) as server:
        assert server.base_url.startswith("https://")
        with pytest.raises(PermanentTransferError, match="TLS") as caught:
            make_transport(binding_for(server)).send(package, submission)
        assert not isinstance(caught.value, TransientTransferError)  # not retried
        assert server.deposits == {}
        # trusting the server's CA explicitly makes it work, still verified
        receipt = make_transport(binding_for(server, **{"ca-bundle": str(server.ca_file)})
                                 ).send(package, submission)
        [deposit] = server.deposits.values()
        assert deposit.md5 == package.md5
        assert receipt.status_ref.startswith("https://")


def test_deposit_is_not_sent_to_a_redirect(sword_server, binding, make_transport, package,
                                           submission):
    moved = sword_server.add_redirect("/swordv2/collection/moved",
                                      sword_server.collection_url("default"), status=307)
    transport = make_transport({**binding, "default-collection": moved,
                                "check-collection": False})
    with pytest.raises(PermanentTransferError, match=r"307.*redirects to") as caught:
        transport.send(package, submission)
    assert sword_server.collection_url("default") in str(caught.value)
    assert sword_server.deposits == {}
    assert [r.path for r in _posts(sword_server)] == ["/swordv2/collection/moved"]


def test_mediation_refused(binding_for, make_transport, package, submission):
    with running_sword_server(mediation=False) as server:
        binding = binding_for(server, **{"on-behalf-of": "owner@example.org"})
        with pytest.raises(PermanentTransferError, match="mediation"):
            make_transport(binding).send(package, submission)
        assert _posts(server) == []  # the service document said so: nothing uploaded
        unchecked = make_transport({**binding, "check-collection": False})
        with pytest.raises(PermanentTransferError) as caught:
            unchecked.send(package, submission)
        assert "412" in str(caught.value) and "MediationNotAllowed" in str(caught.value)
        assert server.deposits == {}


def test_receipt_fetched_from_location_when_not_in_response(binding_for, make_transport,
                                                            package, submission):
    with running_sword_server(receipt_in_response=False) as server:
        receipt = make_transport(binding_for(server)).send(package, submission)
        [deposit] = server.deposits.values()
        assert receipt.details["edit_iri"] == server.edit_url(deposit.id)
        assert receipt.status_ref == server.statement_url(deposit.id, "atom")
        assert receipt.access_url == f"{server.base_url}/items/{deposit.id}"
        gets = [r.path for r in server.requests if r.method == "GET"]
        assert f"/swordv2/edit/{deposit.id}" in gets


# A receipt as DSpace 6 sends it: ISO-8859-1, the atom elements in the SWORD 1.3
# namespace by mistake, IANA-spelled rel for edit, statement type with a space.
DSPACE_RECEIPT = (
    '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
    '<entry xmlns="http://purl.org/net/sword/" xmlns:sword="http://purl.org/net/sword/">'
    "<title>Caf\xe9 \xe0 la cr\xe8me</title><id>{base}/swordv2/edit/77</id>"
    '<link rel="http://www.iana.org/assignments/relation/edit" href="{base}/swordv2/edit/77"/>'
    '<link rel="edit-media" href="{base}/swordv2/edit-media/77"/>'
    '<link rel="http://purl.org/net/sword/terms/add" href="{base}/swordv2/edit/77"/>'
    '<link rel="alternate" href="http://hdl.handle.net/1774.2/77"/>'
    '<link rel="http://purl.org/net/sword/terms/statement" '
    'type="application/atom+xml; type=feed" href="{base}/swordv2/statement/77.atom"/>'
    '<link rel="http://purl.org/net/sword/terms/statement" type="application/rdf+xml" '
    'href="{base}/swordv2/statement/77.rdf"/>'
    "<sword:treatment>In der Pr\xfcfung</sword:treatment></entry>"
)


def test_dspace_style_receipt_by_local_name(sword_server, binding, make_transport):
    base = sword_server.base_url
    body = DSPACE_RECEIPT.replace("{base}", base).encode("iso-8859-1")
    url = sword_server.add_document("/dspace/edit/77", body, "application/atom+xml;type=entry")
    receipt = make_transport(binding).find_existing(url)
    assert receipt is not None
    assert receipt.accepted is False
    assert receipt.details["edit_iri"] == f"{base}/swordv2/edit/77"
    assert receipt.details["em_iri"] == f"{base}/swordv2/edit-media/77"
    assert receipt.details["se_iri"] == f"{base}/swordv2/edit/77"
    assert receipt.status_ref == f"{base}/swordv2/statement/77.atom"
    assert receipt.details["ore_statement"] == f"{base}/swordv2/statement/77.rdf"
    assert receipt.access_url == "http://hdl.handle.net/1774.2/77"
    assert receipt.external_ids == ("http://hdl.handle.net/1774.2/77",)


def test_receipt_with_external_entity_is_not_expanded(sword_server, binding, make_transport):
    body = (
        b'<?xml version="1.0"?><!DOCTYPE entry [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<entry xmlns="http://www.w3.org/2005/Atom"><title>&x;</title>'
        b'<link rel="edit" href="http://example.org/edit/1"/>'
        b'<link rel="alternate" href="http://example.org/item/1"/>'
        b'<summary>&x;</summary></entry>'
    )
    url = sword_server.add_document("/evil/edit/1", body, "application/atom+xml")
    receipt = make_transport(binding).find_existing(url)
    assert receipt is not None
    assert receipt.details["edit_iri"] == "http://example.org/edit/1"
    assert receipt.access_url == "http://example.org/item/1"
    parsed = parse_receipt(body.replace(b"<summary>", b"<sword:treatment xmlns:sword="
                                        b'"http://purl.org/net/sword/terms/">').replace(
        b"</summary>", b"</sword:treatment>"))
    assert parsed.treatment is None or "root:" not in parsed.treatment


def test_receipt_entity_bomb_is_refused(sword_server, binding, make_transport):
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE entry [<!ENTITY a "aaaaaaaaaaaaaaaaaaaa">'
        + b"".join(
            b'<!ENTITY %c "%s">' % (bytes([ord("b") + n]), (b"&%c;" % (ord("a") + n)) * 20)
            for n in range(8)
        )
        + b']><entry xmlns="http://www.w3.org/2005/Atom"><title>&i;</title></entry>'
    )
    url = sword_server.add_document("/evil/edit/2", bomb, "application/atom+xml")
    started = time.monotonic()
    with pytest.raises(PermanentTransferError, match="unreadable"):
        make_transport(binding).find_existing(url)
    assert time.monotonic() - started < 5  # refused, not expanded


def test_unreadable_receipt_on_fetch_is_permanent(sword_server, binding, make_transport):
    url = sword_server.add_document("/broken/edit/1", b"<entry><link", "application/atom+xml")
    with pytest.raises(PermanentTransferError, match="unreadable"):
        make_transport(binding).find_existing(url)


def test_reconcile_with_edit_iri(sword_server, binding, make_transport, package, submission):
    transport = make_transport(binding)
    sent = transport.send(package, submission)
    found = transport.reconcile(package, {"edit_iri": sent.details["edit_iri"]})
    assert found is not None and found.status_ref == sent.status_ref
    gone = transport.reconcile(package, {"edit_iri": sword_server.edit_url("nothing-here")})
    assert gone is None
    assert len(sword_server.deposits) == 1


def test_reconcile_without_edit_iri_reads_the_listing(sword_server, binding, make_transport,
                                                      package, submission):
    """No Edit-IRI recorded: the collection's listing decides (lookup.py); the tests of
    what it cannot tell are in test_sword2_unanswered.py."""
    transport = make_transport(binding)
    assert transport.reconcile(package, {"package_md5": package.md5}) is None  # not there
    sent = transport.send(package, submission)
    found = transport.reconcile(package, {"package_md5": package.md5})
    assert found is not None and found.details["edit_iri"] == sent.details["edit_iri"]
    assert found.status_ref == sent.status_ref


def test_each_thread_has_its_own_session_and_close_ends_all(sword_server, binding,
                                                            make_transport, package,
                                                            submission):
    transport = make_transport(binding)
    sessions = []

    def work(name):
        transport.send(dataclasses.replace(package, name=name), submission)
        sessions.append(transport.client.sessions.get())

    threads = [threading.Thread(target=work, args=(f"t{n}.zip",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(s) for s in sessions}) == 3
    assert len(sword_server.deposits) == 3
    transport.close()
    assert transport.client.sessions._all == []
    transport.send(dataclasses.replace(package, name="after-close.zip"), submission)
    assert len(sword_server.deposits) == 4  # usable again after close


def test_receipt_without_statement_says_status_cannot_be_followed(sword_server, binding,
                                                                  make_transport):
    body = (
        b'<entry xmlns="http://www.w3.org/2005/Atom">'
        b'<link rel="edit" href="http://example.org/edit/9"/>'
        b'<link rel="alternate" href="http://example.org/item/9"/></entry>'
    )
    url = sword_server.add_document("/nostatement/edit/9", body, "application/atom+xml")
    receipt = make_transport(binding).find_existing(url)
    assert receipt is not None and receipt.accepted is False
    assert receipt.status_ref is None
    assert "no statement link" in (receipt.message or "")
    assert receipt.access_url == "http://example.org/item/9"
