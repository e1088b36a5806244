"""The Zenodo transport against the Zenodo test server: deposit, faults, crashes between
steps, new versions."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from deposit_services.errors import (
    AuthenticationError,
    PermanentTransferError,
    TransientTransferError,
)
from deposit_services.transports.base import PriorItem, transport_class
from deposit_services.transports.invenio.zenodo import ZenodoTransport
from tests.integration.invenio.conftest import submitted_files
from tests.integration.zenodo.conftest import zenodo_binding


def test_registered_by_protocol_name():
    assert transport_class("zenodo") is ZenodoTransport


def test_deposit_is_published_with_files_and_metadata(zenodo, make_transport, package,
                                                      submission):
    receipt = make_transport(zenodo_binding(zenodo)).send(package, submission)

    [deposition] = zenodo.app.depositions.values()
    assert deposition.published
    expected = submitted_files(submission)
    assert set(deposition.files) == set(expected)
    for name, data in expected.items():
        assert deposition.files[name].data() == data
        assert deposition.files[name].md5 == hashlib.md5(data).hexdigest()
    meta = deposition.metadata
    assert meta["title"] == "Two stupendous minds"
    assert meta["upload_type"] == "publication" and meta["publication_type"] == "article"
    assert meta["description"] == "Minds meet."
    assert meta["publication_date"] == "2024-05-01"
    assert meta["creators"] == [
        {"name": "Lovelace, Ada", "affiliation": "Analytical Society",
         "orcid": "0000-0002-1825-0097"},
        {"name": "Babbage, Charles"}]
    assert meta["journal_title"] == "J. Minds"
    assert (meta["journal_volume"], meta["journal_issue"]) == ("7", "2")
    assert meta["access_right"] == "embargoed" and meta["embargo_date"] == "2030-01-01"
    assert meta["notes"] == "Funding: National Institutes of Health R01-123"
    assert meta["related_identifiers"] == [
        {"identifier": f"urn:deposit-services:sub-15:{package.name}",
         "relation": "isAlternateIdentifier", "scheme": "urn"},
        {"identifier": "10.1234/abc", "relation": "isVariantFormOf", "scheme": "doi"}]

    assert receipt.accepted
    assert receipt.access_url == (f"{zenodo.api_url.removesuffix('/api')}/record/"
                                  f"{deposition.id}")
    assert receipt.external_ids == (deposition.doi, str(deposition.id))
    assert receipt.details == {"record_id": str(deposition.id), "doi": deposition.doi}


def test_calls_follow_the_deposition_api(zenodo, make_transport, package, submission):
    make_transport(zenodo_binding(zenodo)).send(package, submission)
    [d] = zenodo.app.depositions.values()
    calls = [f"{m} {p.removeprefix('/api')}" for m, p in zenodo.app.calls]
    assert calls == ["GET /deposit/depositions", "POST /deposit/depositions",
                     f"PUT /files/{d.bucket}/manuscript.txt", f"PUT /files/{d.bucket}/data.bin",
                     f"POST /deposit/depositions/{d.id}/actions/publish"]


def test_wrong_token_is_authentication_error(zenodo, make_transport, package, submission):
    transport = make_transport(zenodo_binding(zenodo, **{"access-token": "nope"}))
    with pytest.raises(AuthenticationError, match=r"401.*access-token"):
        transport.send(package, submission)


def test_read_only_token_is_403(zenodo, make_transport, package, submission):
    transport = make_transport(zenodo_binding(zenodo, **{"access-token": zenodo.read_token}))
    with pytest.raises(AuthenticationError, match="403"):
        transport.send(package, submission)


def test_validation_error_names_the_field(zenodo, make_transport, package, submission):
    transport = make_transport(zenodo_binding(zenodo, **{"publication-type": "novel"}))
    with pytest.raises(PermanentTransferError, match=r"400.*metadata\.publication_type"):
        transport.send(package, submission)
    untitled = replace(submission, article=replace(submission.article, title=None))
    with pytest.raises(PermanentTransferError, match=r"metadata\.title: Field is required"):
        make_transport(zenodo_binding(zenodo)).send(package, untitled)


def test_publish_5xx_is_retried_with_backoff(zenodo, make_transport, clock, package,
                                             submission):
    zenodo.app.fail("publish", 504)
    receipt = make_transport(zenodo_binding(zenodo)).send(package, submission)
    assert receipt.accepted and len(zenodo.app.published()) == 1 and clock.slept == [1.0]


def test_429_upload_is_transient_with_retry_after(zenodo, make_transport, package, submission):
    zenodo.app.fail("upload", 429, headers={"Retry-After": "12"})
    with pytest.raises(TransientTransferError, match="Retry-After: 12"):
        make_transport(zenodo_binding(zenodo)).send(package, submission)


def test_unexpected_list_shape_is_a_clear_error(zenodo, make_transport, package, submission,
                                                monkeypatch):
    from tests.support.invenio_api import json_response

    monkeypatch.setattr(zenodo.app, "_list", lambda request: json_response({"hits": 1}))
    with pytest.raises(PermanentTransferError, match="not a list"):
        make_transport(zenodo_binding(zenodo)).send(package, submission)


@pytest.mark.parametrize("step", ["create", "upload"])
def test_crash_after_a_step_leaves_one_record(zenodo, make_transport, package, submission,
                                              step):
    zenodo.app.fail(step, 503, after=True)
    with pytest.raises(TransientTransferError):
        make_transport(zenodo_binding(zenodo)).send(package, submission)
    assert len(zenodo.app.depositions) == 1 and not zenodo.app.published()
    restarted = make_transport(zenodo_binding(zenodo))
    assert restarted.reconcile(package, {}) is None and not zenodo.app.depositions
    receipt = restarted.send(package, submission)
    [d] = zenodo.app.depositions.values()
    assert d.published and receipt.details["record_id"] == str(d.id)


def test_a_lost_publish_answer_is_recognised(zenodo, make_transport, package, submission):
    zenodo.app.fail("publish", 504, after=True)  # published; the retry is refused (400)
    receipt = make_transport(zenodo_binding(zenodo)).send(package, submission)
    [d] = zenodo.app.depositions.values()
    assert d.published and receipt.details == {"record_id": str(d.id), "doi": d.doi}


def test_crash_after_publish_is_reconciled(zenodo, make_transport, package, submission):
    zenodo.app.fail("publish", 500, after=True)
    zenodo.app.fail("get", 503)  # and the check whether it was published fails too
    with pytest.raises(TransientTransferError):
        make_transport(zenodo_binding(zenodo, **{"publish-attempts": 1})).send(
            package, submission)
    [d] = zenodo.app.depositions.values()
    restarted = make_transport(zenodo_binding(zenodo))
    receipt = restarted.reconcile(package, {})
    assert receipt is not None and receipt.details["record_id"] == str(d.id)
    assert restarted.send(package, submission).details["record_id"] == str(d.id)
    assert len(zenodo.app.depositions) == 1


def test_update_publishes_a_new_version(zenodo, make_transport, package, submission,
                                        tmp_path):
    from tests.support.packages import sample_package

    transport = make_transport(zenodo_binding(zenodo))
    first = transport.send(package, submission)
    (tmp_path / "files" / "manuscript.txt").write_text("Corrected.\n")
    corrected = replace(submission, article=replace(submission.article, title="Corrected"))
    work = tmp_path / "work2"
    work.mkdir()
    new_package = replace(sample_package(corrected, work), name="v2.zip")
    prior = PriorItem(status_ref=first.status_ref, evidence=dict(first.details))
    receipt = transport.update(new_package, corrected, prior)
    old = zenodo.app.depositions[int(first.details["record_id"])]
    new = zenodo.app.depositions[int(receipt.details["record_id"])]
    assert new.id != old.id and new.concept == old.concept and new.published
    assert new.metadata["title"] == "Corrected"
    assert new.files["manuscript.txt"].data() == b"Corrected.\n"
    assert old.files["manuscript.txt"].data() != b"Corrected.\n"
    assert transport.update(new_package, corrected, prior).details == receipt.details
    assert len(zenodo.app.depositions) == 2
