"""Fault injection (fail, delay, drop; before or after the commit) and concurrent writers."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.integration.passcore_server.conftest import Ids, client_for, patch, post
from tests.support.passcore import Message, PassCore


def test_fail_next_counts_and_matches_the_path(client: requests.Session,
                                               passcore: PassCore, ids: Ids) -> None:
    passcore.fail_next(2, status=503, path_prefix="/data/deposit")
    url = f"{passcore.data_url}/submission/{ids[('Submission', 's1')]}"
    assert client.get(url).status_code == 200  # another path: untouched
    first = client.get(f"{passcore.data_url}/deposit")
    assert first.status_code == 503 and first.json()["status"] == 503
    assert client.get(f"{passcore.data_url}/deposit").status_code == 503
    assert client.get(f"{passcore.data_url}/deposit").status_code == 200
    passcore.fail_next(1, status=429)
    throttled = client.get(url)
    assert throttled.status_code == 429 and throttled.json()["errors"]
    statuses = [r.status for r in passcore.requests]
    assert statuses == [200, 503, 503, 200, 429]


def test_a_failure_before_the_commit_changes_nothing(client: requests.Session,
                                                     passcore: PassCore,
                                                     received: list[Message]) -> None:
    passcore.fail_next(1, status=500, path_prefix="/data")
    assert post(client, passcore, "deposit").status_code == 500
    assert passcore.find("deposit") == [] and received == []


def test_a_lost_answer_after_the_commit(client: requests.Session, passcore: PassCore,
                                        received: list[Message]) -> None:
    passcore.fail_next(1, status=502, after_commit=True)
    assert post(client, passcore, "deposit").status_code == 502
    assert len(passcore.find("deposit")) == 1 and len(received) == 1
    passcore.drop_next(1, after_commit=True)
    with pytest.raises(requests.ConnectionError):
        post(client, passcore, "deposit")
    assert len(passcore.find("deposit")) == 2 and len(received) == 2


def test_drop_and_delay(client: requests.Session, passcore: PassCore) -> None:
    passcore.drop_next(1, path_prefix="/data/grant")
    with pytest.raises(requests.ConnectionError):
        client.get(f"{passcore.data_url}/grant")
    assert passcore.find("grant") == []
    passcore.delay_next(1, seconds=0.4)
    started = time.monotonic()
    assert client.get(f"{passcore.data_url}/grant").status_code == 200
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    client.get(f"{passcore.data_url}/grant")
    assert time.monotonic() - started < 0.4
    passcore.fail_next(3)
    passcore.clear_faults()
    assert client.get(f"{passcore.data_url}/grant").status_code == 200


def test_concurrent_claims_one_winner(passcore: PassCore, ids: Ids,
                                      received: list[Message]) -> None:
    """Eight workers PATCH the same submission with the version they read: one wins."""
    sub = ids[("Submission", "s1")]

    def claim(worker: int) -> int:
        with client_for(passcore) as client:
            return patch(client, passcore, "submission", sub,
                         attributes={"aggregatedDepositStatus": "in-progress",
                                     "submitterName": f"worker {worker}", "version": 0}
                         ).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(claim, range(8)))
    assert statuses == [200] + [409] * 7
    assert passcore.resource("submission", sub)["attributes"]["version"] == 1
    assert len(received) == 1


def test_concurrent_creates_get_distinct_ids(passcore: PassCore) -> None:
    def create(_: int) -> str:
        with client_for(passcore) as client:
            return str(post(client, passcore, "deposit").json()["data"]["id"])

    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(create, range(40)))
    assert len(set(created)) == 40
    assert len(passcore.find("deposit")) == 40
