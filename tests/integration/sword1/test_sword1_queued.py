"""SWORD 1.3's 202 Accepted: the deposit is SUBMITTED and followed through the entry's
link (Sword1EntryResolver) until the repository has ingested or dropped the package."""

from __future__ import annotations

import pytest

from deposit_services.config.repositories import parse_repositories
from deposit_services.model.entities import DepositStatus, Repository
from deposit_services.service.targets import Targets
from deposit_services.status.base import StatusDocumentError, StatusUnavailable
from deposit_services.transports.sword.v1_status import Sword1EntryResolver
from tests.support.sword1_server import running_sword1_server

PASS_MAPPING = {"http://dspace.org/state/archived": "accepted", "default-mapping": "submitted"}


@pytest.fixture
def queued_server():
    with running_sword1_server(queue=True) as server:
        yield server


def _resolver(server, **mapping):
    return Sword1EntryResolver.from_binding({**PASS_MAPPING, **mapping}, server.binding(),
                                            "ds-test/1")


def test_queued_deposit_is_followed_until_ingested(queued_server, make_transport, mets_package,
                                                   submission):
    receipt = make_transport(queued_server.binding()).send(mets_package, submission)
    assert receipt.accepted is False and receipt.status_ref
    resolver = _resolver(queued_server)
    try:
        waiting = resolver.resolve(receipt.status_ref)
        assert waiting.state == "queued"
        assert waiting.deposit_status is DepositStatus.SUBMITTED
        assert not waiting.is_terminal

        queued_server.process()
        done = resolver.resolve(receipt.status_ref)
        assert done.state == "deposited"
        assert done.deposit_status is DepositStatus.ACCEPTED
        assert "MyCoRe object" in (done.description or "")  # the server's treatment
    finally:
        resolver.close()
    gets = [r for r in queued_server.requests if r.method == "GET" and "/entry/" in r.path]
    assert [r.status for r in gets] == [202, 200]
    assert all(r.headers.get("Authorization", "").startswith("Basic ") for r in gets)


def test_a_dropped_package_is_rejected(queued_server, make_transport, mets_package, submission):
    receipt = make_transport(queued_server.binding()).send(mets_package, submission)
    [item] = queued_server.items.values()
    queued_server.drop(item.id)
    resolver = _resolver(queued_server)
    try:
        gone = resolver.resolve(receipt.status_ref or "")
    finally:
        resolver.close()
    assert gone.state == "gone" and gone.deposit_status is DepositStatus.REJECTED


def test_the_repository_mapping_wins(queued_server, make_transport, mets_package, submission):
    receipt = make_transport(queued_server.binding()).send(mets_package, submission)
    queued_server.process()
    resolver = _resolver(queued_server, deposited="submitted")  # e.g. a review follows
    try:
        assert resolver.resolve(receipt.status_ref or "").deposit_status \
            is DepositStatus.SUBMITTED
    finally:
        resolver.close()


def test_faults(queued_server, make_transport, mets_package, submission):
    receipt = make_transport(queued_server.binding()).send(mets_package, submission)
    wrong = Sword1EntryResolver.from_binding(
        PASS_MAPPING, queued_server.binding(password="wrong"), "ds-test/1")
    try:
        with pytest.raises(StatusDocumentError, match="authentication failed"):
            wrong.resolve(receipt.status_ref or "")
    finally:
        wrong.close()
    down = Sword1EntryResolver.from_binding(
        PASS_MAPPING, queued_server.binding(**{"connect-timeout": 0.5}), "ds-test/1")
    queued_server.stop()
    try:
        with pytest.raises(StatusUnavailable):
            down.resolve(receipt.status_ref or "")
    finally:
        down.close()


def test_targets_build_the_resolver_for_protocol_sword1(queued_server):
    config = parse_repositories({"mycore": {
        "deposit-config": {"mapping": PASS_MAPPING},
        "assembler": {"specification": "http://purl.org/net/sword/package/METSDSpaceSIP"},
        "transport-config": {"protocol-binding": queued_server.binding()},
    }}, {})
    targets = Targets(config, "ds-test/1")
    try:
        resolver = targets.resolver_for(Repository(id="1", repository_key="mycore"))
        assert isinstance(resolver, Sword1EntryResolver)
    finally:
        targets.close()
