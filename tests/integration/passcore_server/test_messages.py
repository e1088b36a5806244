"""Messages after commit, as pass-core's JmsConfiguration hooks send them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.integration.passcore_server.conftest import Ids, client_for, patch, post
from tests.support.graphs import make_graph
from tests.support.passcore import (
    DEPOSIT_STATUS,
    SUBMISSION_EVENT,
    SUBMISSION_READY,
    Message,
    PassCore,
    running_passcore,
)


def _bodies(received: list[Message]) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    return [(m.kind, json.loads(m.body), m.properties) for m in received]


def test_submission_ready_on_create_and_every_real_update_while_submitted(
        client: requests.Session, passcore: PassCore, received: list[Message]) -> None:
    draft = post(client, passcore, "submission", attributes={"submitted": False})
    sub = draft.json()["data"]["id"]
    assert received == []  # not submitted: no message
    patch(client, passcore, "submission", sub, attributes={"submitted": True, "version": 0})
    assert _bodies(received) == [
        ("submission", {"submission": sub, "type": SUBMISSION_READY}, {"type": SUBMISSION_READY})
    ]
    assert received[0].body == f'{{"submission":"{sub}","type":"SubmissionReady"}}'
    # any later real change while submitted=true announces it again (not only the transition)
    patch(client, passcore, "submission", sub,
          attributes={"aggregatedDepositStatus": "in-progress", "version": 1})
    assert len(received) == 2
    patch(client, passcore, "submission", sub, attributes={"version": 2})  # nothing changed
    assert len(received) == 2
    created = post(client, passcore, "submission", attributes={"submitted": True})
    assert json.loads(received[-1].body)["submission"] == created.json()["data"]["id"]


def test_deposit_status_on_every_create_and_change(client: requests.Session,
                                                   passcore: PassCore,
                                                   received: list[Message]) -> None:
    dep = post(client, passcore, "deposit", attributes={"depositStatus": "submitted"})
    dep_id = dep.json()["data"]["id"]
    patch(client, passcore, "deposit", dep_id,
          attributes={"depositStatusRef": "https://x/1", "version": 0})
    assert _bodies(received) == [
        ("deposit", {"deposit": dep_id, "type": DEPOSIT_STATUS}, {"type": DEPOSIT_STATUS}),
    ] * 2


def test_submission_event_on_create(client: requests.Session, passcore: PassCore,
                                    received: list[Message]) -> None:
    event = post(client, passcore, "submissionEvent",
                 attributes={"eventType": "submitted", "comment": "ok"})
    assert _bodies(received) == [(
        "submission-event",
        {"submission-event": event.json()["data"]["id"], "type": SUBMISSION_EVENT},
        {"type": SUBMISSION_EVENT},
    )]


def test_no_message_for_a_failed_request(client: requests.Session, passcore: PassCore,
                                         ids: Ids, received: list[Message]) -> None:
    sub = ids[("Submission", "s1")]
    assert patch(client, passcore, "submission", sub,
                 attributes={"submitterName": "x"}).status_code == 409
    assert patch(client, passcore, "submission", sub,
                 attributes={"submitted": "perhaps", "version": 0}).status_code == 400
    assert post(client, passcore, "deposit",
                attributes={"depositStatus": "DONE"}).status_code == 400
    with client_for(passcore, csrf=False) as bare:
        assert bare.post(f"{passcore.data_url}/deposit", json={"data": {"type": "deposit"}},
                         headers={"Content-Type": "application/vnd.api+json"}).status_code == 403
    passcore.fail_next(1, 503)
    assert post(client, passcore, "deposit").status_code == 503
    assert received == [] and passcore.messages == []


def test_the_message_comes_after_the_commit(passcore: PassCore, ids: Ids) -> None:
    """The callback runs after the change is stored: a reader it starts sees it."""
    seen: list[str] = []
    reader = client_for(passcore)

    def on_message(kind: str, body: str, properties: dict[str, str]) -> None:
        dep = json.loads(body)["deposit"]
        status = reader.get(f"{passcore.data_url}/deposit/{dep}").json()
        seen.append(status["data"]["attributes"]["depositStatus"])

    passcore.on_message = on_message
    with client_for(passcore) as client:
        post(client, passcore, "deposit", attributes={"depositStatus": "accepted"})
    assert seen == ["accepted"]


def test_a_publisher_failure_is_a_500_but_the_change_stays(tmp_path: Path) -> None:
    def broken(kind: str, body: str, properties: dict[str, str]) -> None:
        raise RuntimeError("broker down")

    with running_passcore(broken) as server, client_for(server) as client:
        response = post(client, server, "deposit", attributes={"depositStatus": "failed"})
        assert response.status_code == 500
        assert server.find("deposit", depositStatus="failed")


def test_seeding_is_silent_unless_announced(tmp_path: Path) -> None:
    got: list[str] = []
    with running_passcore(lambda kind, body, props: got.append(kind)) as server:
        server.load_graph(make_graph("s1", tmp_path), files_dir=tmp_path)
        assert got == []
        server.load_graph(make_graph("s2", tmp_path), files_dir=tmp_path, announce=True)
        assert got == ["submission"]


@pytest.mark.parametrize("attribute", ["aggregatedDepositStatus", "submissionStatus"])
def test_update_helper_goes_through_the_write_path(passcore: PassCore, ids: Ids,
                                                   received: list[Message],
                                                   attribute: str) -> None:
    sub = ids[("Submission", "s1")]
    value = "in-progress" if attribute == "aggregatedDepositStatus" else "complete"
    updated = passcore.update("submission", sub, {attribute: value})
    assert updated["attributes"]["version"] == 1
    assert [m.kind for m in received] == ["submission"]
