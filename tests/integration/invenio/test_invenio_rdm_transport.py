"""The InvenioRDM transport against the InvenioRDM test server: deposit, community
review, faults, crashes between steps, new versions."""

from __future__ import annotations

import hashlib
import socket
from dataclasses import replace

import pytest

from deposit_services.errors import (
    AuthenticationError,
    PermanentTransferError,
    RepositoryConfigError,
    TransientTransferError,
)
from deposit_services.model.entities import DepositStatus
from deposit_services.status.base import StatusUnavailable
from deposit_services.transports.base import PriorItem, transport_class
from deposit_services.transports.invenio.rdm import InvenioRdmTransport
from deposit_services.transports.invenio.status import InvenioRdmResolver
from tests.integration.invenio.conftest import rdm_binding, submitted_files


def _resolver(binding):
    return InvenioRdmResolver.from_binding({}, binding, "rdm-test/1.0")


def test_registered_by_pass_protocol_name():
    assert transport_class("invenioRdm") is InvenioRdmTransport


def test_unknown_binding_key_is_a_config_error(invenio):
    with pytest.raises(RepositoryConfigError, match="comunity"):
        InvenioRdmTransport({**rdm_binding(invenio), "comunity": "x"})


def test_binding_from_pass_environment(invenio, monkeypatch, make_transport, package,
                                       submission, caplog):
    monkeypatch.setenv("INVENIORDM_API_BASE_URL", invenio.api_url)
    monkeypatch.setenv("INVENIORDM_API_TOKEN", invenio.token)
    monkeypatch.setenv("INVENIORDM_VERIFY_SSL_CERT", "false")
    with caplog.at_level("WARNING"):
        transport = make_transport({"protocol": "invenioRdm"})
    assert transport.binding.verify_tls is False
    assert "NOT verified" in caplog.text and invenio.token not in caplog.text
    assert transport.send(package, submission).accepted
    assert invenio.token not in repr(transport.binding)


def test_deposit_is_published_with_files_and_metadata(invenio, make_transport, package,
                                                      submission):
    receipt = make_transport(rdm_binding(invenio)).send(package, submission)

    [record] = invenio.app.records.values()
    assert record.published
    expected = submitted_files(submission)
    assert set(record.files) == set(expected)  # the zip's manifest is not a record file
    for name, data in expected.items():
        stored = record.files[name]
        assert stored.data() == data and stored.committed
        assert stored.md5 == hashlib.md5(data).hexdigest()
    meta = record.metadata
    assert meta["title"] == "Two stupendous minds"
    assert meta["publication_date"] == "2024-05-01"
    assert meta["resource_type"] == {"id": "publication-article"}
    assert meta["description"] == "Minds meet."
    assert meta["publisher"] == "Mind Press"
    assert [c["person_or_org"]["name"] for c in meta["creators"]] == [
        "Lovelace, Ada", "Babbage, Charles"]
    ada = meta["creators"][0]
    assert ada["person_or_org"]["given_name"] == "Ada"
    assert ada["person_or_org"]["family_name"] == "Lovelace"
    assert ada["person_or_org"]["identifiers"] == [
        {"scheme": "orcid", "identifier": "0000-0002-1825-0097"}]
    assert ada["affiliations"] == [{"name": "Analytical Society"}]
    assert meta["related_identifiers"] == [
        {"identifier": "10.1234/abc", "scheme": "doi", "relation_type": {"id": "isversionof"}}]
    assert meta["funding"] == [{"funder": {"name": "National Institutes of Health"},
                                "award": {"number": "R01-123", "title": {"en": "R01-123"}}}]
    assert meta["identifiers"] == [
        {"identifier": f"urn:deposit-services:sub-15:{package.name}", "scheme": "urn"}]
    assert record.body["access"]["embargo"]["until"] == "2030-01-01"

    assert receipt.accepted
    assert receipt.access_url == f"{invenio.api_url.removesuffix('/api')}/records/{record.id}"
    assert receipt.status_ref == f"{invenio.api_url}/records/{record.id}"
    assert receipt.external_ids == (record.doi, record.id)
    assert receipt.details["record_id"] == record.id


def test_calls_follow_pass_sequence(invenio, make_transport, package, submission):
    make_transport(rdm_binding(invenio)).send(package, submission)
    calls = [f"{m} {p.removeprefix('/api')}" for m, p in invenio.app.calls]
    rid = next(iter(invenio.app.records))
    per_file = [[f"POST /records/{rid}/draft/files",
                 f"PUT /records/{rid}/draft/files/{key}/content",
                 f"POST /records/{rid}/draft/files/{key}/commit"]
                for key in ("manuscript.txt", "data.bin")]  # the package's order
    assert calls == ["GET /user/records", "POST /records", *per_file[0], *per_file[1],
                     f"POST /records/{rid}/draft/actions/publish"]


def test_community_review_accepted_then_declined(invenio, make_transport, package,
                                                 submission):
    binding = rdm_binding(invenio, community="pass-community")
    receipt = make_transport(binding).send(package, submission)
    [record] = invenio.app.records.values()
    assert not receipt.accepted and not record.published
    assert record.review is not None and record.review.status == "submitted"
    assert receipt.access_url.endswith(f"/records/{record.id}")  # where it will be
    resolver = _resolver(binding)
    try:
        assert resolver.resolve(receipt.status_ref).deposit_status is DepositStatus.SUBMITTED
        invenio.app.accept(record.id)
        resolved = resolver.resolve(receipt.status_ref)
        assert resolved.deposit_status is DepositStatus.ACCEPTED
        assert record.doi in (resolved.description or "")
        invenio.app.remove(record.id)
        assert resolver.resolve(receipt.status_ref).deposit_status is DepositStatus.REJECTED
    finally:
        resolver.close()


def test_community_declines(invenio, make_transport, package, submission):
    binding = rdm_binding(invenio, community="pass-community")
    receipt = make_transport(binding).send(package, submission)
    [record] = invenio.app.records.values()
    invenio.app.decline(record.id)
    resolver = _resolver(binding)
    try:
        resolved = resolver.resolve(receipt.status_ref)
        assert resolved.deposit_status is DepositStatus.REJECTED
        assert "declined" in (resolved.description or "")
    finally:
        resolver.close()


def test_unknown_community_names_the_field(invenio, make_transport, package, submission):
    transport = make_transport(rdm_binding(invenio, community="nowhere"))
    with pytest.raises(PermanentTransferError, match=r"receiver\.community"):
        transport.send(package, submission)


def test_wrong_token_is_authentication_error(invenio, make_transport, package, submission):
    transport = make_transport(rdm_binding(invenio, INVENIORDM_API_TOKEN="nope"))
    with pytest.raises(AuthenticationError, match="INVENIORDM_API_TOKEN") as caught:
        transport.send(package, submission)
    assert "401" in str(caught.value) and "nope" not in str(caught.value)


def test_read_only_token_is_403(invenio, make_transport, package, submission):
    transport = make_transport(rdm_binding(invenio, INVENIORDM_API_TOKEN=invenio.read_token))
    with pytest.raises(AuthenticationError, match="403"):
        transport.send(package, submission)


def test_missing_title_names_the_field(invenio, make_transport, package, submission):
    untitled = replace(submission, article=replace(submission.article, title=None))
    with pytest.raises(PermanentTransferError, match=r"400.*metadata\.title"):
        make_transport(rdm_binding(invenio)).send(package, untitled)
    assert not invenio.app.published()


def test_publish_5xx_is_retried_with_backoff(invenio, make_transport, clock, package,
                                             submission):
    invenio.app.fail("publish", 503)
    receipt = make_transport(rdm_binding(invenio)).send(package, submission)
    assert receipt.accepted and len(invenio.app.published()) == 1
    assert clock.slept == [1.0]


def test_publish_429_honours_retry_after(invenio, make_transport, clock, package, submission):
    invenio.app.fail("publish", 429, headers={"Retry-After": "7"})
    make_transport(rdm_binding(invenio)).send(package, submission)
    assert clock.slept == [7.0]


def test_5xx_and_429_elsewhere_are_transient(invenio, make_transport, package, submission):
    transport = make_transport(rdm_binding(invenio))
    invenio.app.fail("create", 502)
    with pytest.raises(TransientTransferError, match="502"):
        transport.send(package, submission)
    invenio.app.fail("content", 429, headers={"Retry-After": "30"})
    with pytest.raises(TransientTransferError, match="Retry-After: 30") as caught:
        transport.send(package, submission)
    assert caught.value.retry_after == "30"  # type: ignore[attr-defined]


def test_timeout_is_transient(invenio, make_transport, package, submission):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)  # accepts, never answers
        port = sock.getsockname()[1]
        binding = rdm_binding(invenio, INVENIORDM_API_BASE_URL=f"http://127.0.0.1:{port}/api",
                              **{"read-timeout": 0.5})
        with pytest.raises(TransientTransferError, match="timed out"):
            make_transport(binding).send(package, submission)


def test_a_checksum_that_differs_is_sent_again(invenio, make_transport, package, submission,
                                              monkeypatch):
    from tests.support import invenio_server
    from tests.support.invenio_api import store_body as real

    def damaged(request, directory, name):
        path, size, _ = real(request, directory, name)
        return path, size, "0" * 32

    monkeypatch.setattr(invenio_server, "store_body", damaged)
    with pytest.raises(TransientTransferError, match="damaged on the way"):
        make_transport(rdm_binding(invenio)).send(package, submission)
    assert not invenio.app.published()


def test_a_single_file_package_is_one_record_file(invenio, make_transport, submission,
                                                  tmp_path):
    from deposit_services.assemblers.base import Package

    data = b"%PDF-1.4 just one file\n" * 1000
    path = tmp_path / "paper.pdf"
    path.write_bytes(data)
    single = Package(path=path, name="paper.pdf", size=len(data),
                     md5=hashlib.md5(data).hexdigest(), sha256="", mime_type="application/pdf",
                     specification="binary")
    make_transport(rdm_binding(invenio)).send(single, submission)
    [record] = invenio.app.records.values()
    assert {k: f.data() for k, f in record.files.items()} == {"paper.pdf": data}


def test_unexpected_shape_is_a_clear_error(invenio, make_transport, package, submission,
                                           monkeypatch):
    monkeypatch.setattr(invenio.app, "_json", lambda record: {"weird": True})
    with pytest.raises(PermanentTransferError, match=r"answer has no id"):
        make_transport(rdm_binding(invenio)).send(package, submission)


@pytest.mark.parametrize("step", ["create", "init", "content", "commit"])
def test_crash_after_a_step_leaves_one_record(invenio, make_transport, package, submission,
                                              step):
    invenio.app.fail(step, 503, after=True)  # done, but the answer is lost
    with pytest.raises(TransientTransferError):
        make_transport(rdm_binding(invenio)).send(package, submission)
    assert len(invenio.app.records) == 1 and not invenio.app.published()

    restarted = make_transport(rdm_binding(invenio))
    assert restarted.reconcile(package, {}) is None  # the unfinished draft is deleted
    assert not invenio.app.records
    receipt = restarted.send(package, submission)
    [record] = invenio.app.records.values()
    assert record.published and receipt.details["record_id"] == record.id
    assert {k: f.data() for k, f in record.files.items()} == submitted_files(submission)


def test_a_lost_publish_answer_is_recognised(invenio, make_transport, clock, package,
                                             submission):
    invenio.app.fail("publish", 502, after=True)  # published; the retry is refused (404)
    receipt = make_transport(rdm_binding(invenio)).send(package, submission)
    [record] = invenio.app.records.values()
    assert receipt.accepted and receipt.details["record_id"] == record.id
    assert clock.slept == [1.0]
    assert invenio.app.calls.count(("POST", f"/api/records/{record.id}/draft/actions/publish")) == 2


def test_crash_after_publish_is_reconciled(invenio, make_transport, package, submission):
    invenio.app.fail("publish", 500, after=True)
    invenio.app.fail("record", 503)  # and the check whether it was published fails too
    first = make_transport(rdm_binding(invenio, **{"publish-attempts": 1}))
    with pytest.raises(TransientTransferError):
        first.send(package, submission)
    [record] = invenio.app.records.values()
    assert record.published
    restarted = make_transport(rdm_binding(invenio))
    receipt = restarted.reconcile(package, {"package_name": package.name})
    assert receipt is not None and receipt.accepted and receipt.details["record_id"] == record.id
    again = restarted.send(package, submission)
    assert again.details["record_id"] == record.id and len(invenio.app.records) == 1


def test_send_deletes_an_earlier_unfinished_draft(invenio, make_transport, package,
                                                  submission):
    invenio.app.fail("publish", 400)
    with pytest.raises(PermanentTransferError):
        make_transport(rdm_binding(invenio)).send(package, submission)
    [draft_id] = invenio.app.records
    make_transport(rdm_binding(invenio)).send(package, submission)
    [record] = invenio.app.records.values()
    assert record.id != draft_id and record.published
    assert ("DELETE", f"/api/records/{draft_id}/draft") in invenio.app.calls


def test_update_publishes_a_new_version(invenio, make_transport, package, submission,
                                        tmp_path):
    from tests.support.packages import sample_package

    transport = make_transport(rdm_binding(invenio))
    first = transport.send(package, submission)
    corrected_file = tmp_path / "files" / "manuscript.txt"
    corrected_file.write_text("Corrected.\n")
    corrected = replace(submission, article=replace(submission.article, title="Corrected"))
    work = tmp_path / "work2"
    work.mkdir()
    new_package = sample_package(corrected, work)
    new_package = replace(new_package, name="v2-" + new_package.name)
    prior = PriorItem(status_ref=first.status_ref, access_url=first.access_url,
                      external_ids=first.external_ids, evidence=dict(first.details))
    assert transport.supports_update
    receipt = transport.update(new_package, corrected, prior)

    old = invenio.app.records[first.details["record_id"]]
    new = invenio.app.records[receipt.details["record_id"]]
    assert new.id != old.id and new.parent == old.parent and new.version == 2
    assert new.published and new.metadata["title"] == "Corrected"
    assert new.metadata["publication_date"] == "2024-05-01"
    assert new.files["manuscript.txt"].data() == b"Corrected.\n"
    assert ("POST", f"/api/records/{old.id}/versions") in invenio.app.calls
    again = transport.update(new_package, corrected, prior)  # a repeat makes no third
    assert again.details["record_id"] == new.id and len(invenio.app.records) == 2


def test_resolver_5xx_is_unavailable(invenio, make_transport, package, submission):
    binding = rdm_binding(invenio)
    receipt = make_transport(binding).send(package, submission)
    invenio.app.fail("record", 503)
    resolver = _resolver(binding)
    try:
        with pytest.raises(StatusUnavailable):
            resolver.resolve(receipt.status_ref or "")
    finally:
        resolver.close()
