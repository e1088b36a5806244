"""The DSpace transport against the DSpace REST test server: deposit, status, faults,
token renewal and crash reconciliation."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from deposit_services.errors import (
    AuthenticationError,
    PermanentTransferError,
    RepositoryConfigError,
    TransientTransferError,
)
from deposit_services.model.entities import DepositStatus
from deposit_services.status.base import StatusUnavailable
from deposit_services.transports.base import transport_class
from deposit_services.transports.dspace.status import DSpaceItemResolver
from deposit_services.transports.dspace.transport import DSpaceTransport
from tests.integration.dspace.conftest import dspace_binding


def _resolver(binding):
    return DSpaceItemResolver.from_binding({}, binding, "ds-test/1.0")


def test_registered_by_protocol_name():
    assert transport_class("DSpace") is DSpaceTransport


def test_unknown_binding_key_is_a_config_error(binding):
    with pytest.raises(RepositoryConfigError, match="colection"):
        DSpaceTransport({**binding, "colection": "x"})


def test_spring_style_keys_are_accepted(dspace, make_transport, package, submission):
    binding = {"protocol": "DSpace", "dspace.api.url": dspace.api_url,
               "dspace.website.url": dspace.website_url, "dspace.user": dspace.user,
               "dspace.password": dspace.password, "dspace.collection.handle": "123456789/2",
               "dspace.server": "127.0.0.1"}
    receipt = make_transport(binding).send(package, submission)
    assert receipt.status_ref


def test_deposit_then_accepted(dspace, binding, make_transport, package, submission):
    receipt = make_transport(binding).send(package, submission)

    [item] = dspace.app.items.values()
    assert item.workflow_id is not None and item.workspace_id is None
    # each file of the submission is its own bitstream, as PASS uploads them
    on_disk = {f.name: Path(f.location).read_bytes() for f in submission.files}
    assert {f.name: f.data for f in item.files} == on_disk
    assert all(f.md5 == hashlib.md5(on_disk[f.name]).hexdigest() for f in item.files)
    assert {f.name: f.mime_type for f in item.files}["manuscript.txt"] == "text/plain"
    meta = {k: [v["value"] for v in vs] for k, vs in item.metadata.items()}
    assert meta["dc.title"] == ["Two stupendous minds"]
    assert meta["dc.publisher"] == ["Mind Press"]
    assert meta["dc.identifier.doi"] == ["10.1234/abc"]
    assert meta["dc.description.abstract"] == ["Minds meet."]
    assert meta["dc.date.issued"] == ["2024-05-01"]
    assert meta["dc.contributor.author"] == ["Ada Lovelace", "Charles Babbage"]
    assert meta["dc.identifier.citation"] == [
        'Lovelace, Ada, Babbage, Charles. (2024-05-01). "Two stupendous minds." J. Minds. '
        "7 (2). 10.1234/abc."]
    assert meta["dc.identifier.other"] == [f"deposit-services:sub-15:{package.name}"]
    assert meta["local.embargo.lift"] == ["2030-01-01"]
    assert item.access_conditions == [{"name": "embargo", "startDate": "2030-01-01"}]
    assert item.license_granted

    assert not receipt.accepted
    assert receipt.access_url == f"{dspace.website_url}/items/{item.uuid}"
    assert receipt.status_ref == f"{dspace.api_url}/core/items/{item.uuid}"
    assert receipt.external_ids == (item.uuid,)
    assert receipt.details["workflow_item"] == str(item.workflow_id)

    resolver = _resolver(binding)
    try:
        assert resolver.resolve(receipt.status_ref).deposit_status is DepositStatus.SUBMITTED
        handle = dspace.app.archive(item.uuid)
        resolved = resolver.resolve(receipt.status_ref)
        assert resolved.deposit_status is DepositStatus.ACCEPTED
        assert handle in (resolved.description or "")
        dspace.app.withdraw(item.uuid)
        assert resolver.resolve(receipt.status_ref).deposit_status is DepositStatus.REJECTED
    finally:
        resolver.close()


def test_calls_follow_the_contract(dspace, binding, make_transport, package, submission):
    make_transport(binding).send(package, submission)
    calls = [f"{m} {p.removeprefix('/server/api')}" for m, p in dspace.app.calls]
    order = ["GET /security/csrf", "POST /authn/login", "POST /submission/workspaceitems",
             "PATCH /submission/workspaceitems/", "POST /workflow/workflowitems"]
    positions = [next(i for i, c in enumerate(calls) if c.startswith(o)) for o in order]
    assert positions == sorted(positions)


def test_rejected_and_deleted_items(dspace, binding, make_transport, package, submission):
    receipt = make_transport(binding).send(package, submission)
    [item] = dspace.app.items.values()
    resolver = _resolver(binding)
    try:
        dspace.app.reject(item.uuid)
        assert resolver.resolve(receipt.status_ref).deposit_status is DepositStatus.REJECTED
        dspace.app.delete(item.uuid)
        assert resolver.resolve(receipt.status_ref).deposit_status is DepositStatus.REJECTED
    finally:
        resolver.close()


def test_resolver_5xx_is_unavailable(dspace, binding, make_transport, package, submission):
    receipt = make_transport(binding).send(package, submission)
    dspace.app.fail("item", 503)
    resolver = _resolver(binding)
    try:
        with pytest.raises(StatusUnavailable):
            resolver.resolve(receipt.status_ref or "")
    finally:
        resolver.close()


def test_csrf_token_is_renewed(dspace, binding, make_transport, package, submission):
    transport = make_transport(binding)
    transport.collection_uuid()
    dspace.app.rotate_csrf()  # the server forgets the token the client holds
    transport.send(package, submission)
    assert len(dspace.app.workflow_items()) == 1


def test_expired_jwt_logs_in_again(dspace, binding, make_transport, package, submission):
    transport = make_transport(binding)
    transport.collection_uuid()
    assert dspace.app.logins == 1
    dspace.app.expire_tokens()
    transport.send(package, submission)
    assert dspace.app.logins == 2
    assert len(dspace.app.workflow_items()) == 1


def test_wrong_password_is_authentication_error(dspace, make_transport, package, submission):
    transport = make_transport(dspace_binding(dspace, DSPACE_PASSWORD="nope"))
    with pytest.raises(AuthenticationError, match="DSPACE_PASSWORD"):
        transport.send(package, submission)


def test_403_is_authentication_error(dspace, binding, make_transport, package, submission):
    dspace.app.fail("create", 403)
    with pytest.raises(AuthenticationError, match="403"):
        make_transport(binding).send(package, submission)


def test_422_names_the_field(dspace, binding, make_transport, package, submission):
    transport = make_transport({**binding, "form-section": "nosuchform"})
    with pytest.raises(PermanentTransferError, match="section nosuchform"):
        transport.send(package, submission)
    assert not isinstance(PermanentTransferError, TransientTransferError)


def test_missing_required_field_is_422(dspace, binding, make_transport, package, submission):
    from dataclasses import replace

    untitled = replace(submission, article=replace(submission.article, title=None))
    with pytest.raises(PermanentTransferError, match=r"422.*dc\.title"):
        make_transport(binding).send(package, untitled)


def test_503_and_429_are_transient(dspace, binding, make_transport, package, submission):
    transport = make_transport(binding)
    dspace.app.fail("create", 503)
    with pytest.raises(TransientTransferError, match="503"):
        transport.send(package, submission)
    dspace.app.fail("submit", 429, headers={"Retry-After": "30"})
    with pytest.raises(TransientTransferError, match="Retry-After: 30") as caught:
        transport.send(package, submission)
    assert caught.value.retry_after == "30"  # type: ignore[attr-defined]


def test_timeout_is_transient(closed_port_binding, make_transport, package, submission):
    with pytest.raises(TransientTransferError):
        make_transport(closed_port_binding).send(package, submission)


@pytest.fixture
def closed_port_binding(binding):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return {**binding, "DSPACE_API_URL": f"http://127.0.0.1:{port}/server/api"}


def test_unexpected_shape_is_permanent(dspace, binding, make_transport, package, submission,
                                       monkeypatch):
    monkeypatch.setattr(dspace.app, "_page", lambda name, objects: {"oops": True})
    with pytest.raises(PermanentTransferError, match="no workspace item id"):
        make_transport(binding).send(package, submission)


@pytest.mark.parametrize("step", ["create", "patch"])
def test_crash_between_steps_reuses_the_item(dspace, binding, make_transport, package,
                                             submission, step):
    first = make_transport(binding)
    dspace.app.fail(step, 503, after=True)  # done, but the answer is lost
    with pytest.raises(TransientTransferError):
        first.send(package, submission)
    assert len(dspace.app.workspace_items()) == 1

    restarted = make_transport(binding)
    assert restarted.reconcile(package, {}) is None  # not submitted yet
    receipt = restarted.send(package, submission)
    assert len(dspace.app.items) == 1
    [item] = dspace.app.items.values()
    assert item.workflow_id is not None
    assert receipt.access_url == f"{dspace.website_url}/items/{item.uuid}"
    assert [v["value"] for v in item.metadata["dc.title"]] == ["Two stupendous minds"]


@pytest.mark.parametrize(("algorithms", "reads"), [(["sha256", "md5"], 0), (["sha256"], 2)],
                         ids=["manifest-md5", "no-md5-manifest"])
def test_unpatched_item_matched_by_the_manifests_md5s(dspace, binding, make_transport,
                                                     submission, tmp_path, monkeypatch,
                                                     algorithms, reads):
    """After a crash before the PATCH, the workspace item is matched by its files' names
    and MD5s: taken from the zip's manifest-md5.txt where the package has one (no file
    read again), else read out of the package."""
    from deposit_services.assemblers.simple import SimpleZipAssembler
    from deposit_services.transports.files import open_file
    from tests.support.packages import PACKAGE_TIME

    (tmp_path / "out").mkdir()
    package = SimpleZipAssembler({"archive": "ZIP", "algorithms": algorithms}).assemble(
        submission, tmp_path / "out", PACKAGE_TIME)
    dspace.app.fail("create", 503, after=True)
    with pytest.raises(TransientTransferError):
        make_transport(binding).send(package, submission)
    opened: list[str] = []

    def counted(package, file):
        opened.append(file.key)
        return open_file(package, file)

    monkeypatch.setattr("deposit_services.transports.dspace.transport.open_file", counted)
    make_transport(binding).send(package, submission)
    assert len(opened) == reads, opened
    [item] = dspace.app.items.values()  # the first attempt's item, carried on
    assert item.workflow_id is not None and len(item.files) == 2


def test_crash_after_submit_is_reconciled(dspace, binding, make_transport, package,
                                          submission):
    dspace.app.fail("submit", 503, after=True)
    with pytest.raises(TransientTransferError):
        make_transport(binding).send(package, submission)
    restarted = make_transport(binding)
    receipt = restarted.reconcile(package, {})
    [item] = dspace.app.items.values()
    assert receipt is not None and receipt.status_ref.endswith(item.uuid)
    again = restarted.send(package, submission)  # a send anyway makes no second item
    assert again.status_ref == receipt.status_ref and len(dspace.app.items) == 1
    dspace.app.archive(item.uuid)
    archived = restarted.reconcile(package, {})
    assert archived is not None and archived.external_ids == (item.handle,)


def test_multipart_body_is_read_in_bounded_blocks(tmp_path):
    import io

    from deposit_services.transports.dspace.client import MultipartBody

    data = bytes(range(256)) * (12 * 1024)  # 3 MiB
    body = MultipartBody([("file", 'a"b.bin', "application/octet-stream",
                           io.BytesIO(data), len(data))], boundary="XyZ")
    blocks = []
    while block := body.read(16 * 1024):
        blocks.append(block)
    raw = b"".join(blocks)
    assert len(raw) == len(body) == body.sent
    assert max(len(b) for b in blocks) <= MultipartBody.BLOCK
    assert raw.startswith(b"--XyZ\r\n") and raw.endswith(b"\r\n--XyZ--\r\n")
    assert data in raw and b'filename="a\'b.bin"' in raw
