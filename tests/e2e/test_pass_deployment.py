"""A PASS deployment end to end: ``deposit-services listen`` processes (separate
processes, as in production) with pass-core as the system of record (the test
pass-core, over HTTP) and pass-core's messages on SQS (moto in server mode), depositing
to a filesystem target and to the SWORD test server. What pass-core holds afterwards is
what PASS's own deposit services write; a worker SIGKILLed mid-batch loses nothing and
duplicates nothing."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.e2e.conftest import Daemon, filesystem_repo, make_daemon, wait_until
from tests.integration.lifecycle.conftest import sword_entry
from tests.support.graphs import make_graph
from tests.support.moto_server import (
    AWS_TEST_ENVIRONMENT,
    AWS_UNSET,
    REGION,
    MotoServer,
    running_moto,
)
from tests.support.passcore import PassCore, running_passcore
from tests.support.sword_server import SwordServer, running_sword_server

FS = {"@type": "Repository", "id": "repo-archive", "name": "Archive",
      "repositoryKey": "archive", "integrationType": "one-way"}
SWORD = {"@type": "Repository", "id": "repo-dspace", "name": "DSpace",
         "repositoryKey": "dspace", "integrationType": "full"}


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    try:
        with running_moto() as server:
            yield server
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


class Pass:
    """pass-core with its messages sent to two SQS queues, as pass-core does."""

    def __init__(self, passcore: PassCore, moto: MotoServer) -> None:
        self.passcore = passcore
        tag = uuid.uuid4().hex[:8]
        self.queues = {"submission": f"pass-submission-{tag}", "deposit": f"pass-deposit-{tag}"}
        self.sqs = boto3.client("sqs", endpoint_url=moto.endpoint, region_name=REGION,
                                aws_access_key_id=AWS_TEST_ENVIRONMENT["AWS_ACCESS_KEY_ID"],
                                aws_secret_access_key=AWS_TEST_ENVIRONMENT[
                                    "AWS_SECRET_ACCESS_KEY"])
        self.urls = {}
        for kind, name in self.queues.items():
            self.urls[kind] = self.sqs.create_queue(QueueName=name)["QueueUrl"]
            self.sqs.create_queue(QueueName=f"{name}-dlq")
        passcore.on_message = self.publish

    def publish(self, kind: str, body: str, properties: dict[str, str]) -> None:
        if kind in self.urls:
            self.sqs.send_message(QueueUrl=self.urls[kind], MessageBody=body, MessageAttributes={
                k: {"DataType": "String", "StringValue": v} for k, v in properties.items()})

    def submit(self, sid: str, files: Path, repositories: list[dict[str, Any]]) -> str:
        """A submission made in the PASS UI: stored in pass-core, which announces it."""
        ids = self.passcore.load_graph(make_graph(sid, files, repositories=repositories),
                                       files_dir=files, announce=True)
        return ids[("Submission", sid)]

    def left(self) -> dict[str, int]:
        """Messages still on the queues and their dead-letter queues (visible or not)."""
        found = {}
        for name in [*self.queues.values(), *(f"{q}-dlq" for q in self.queues.values())]:
            url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
            count = sum(int(v) for v in attributes["Attributes"].values())
            if count:
                found[name] = count
        return found


@pytest.fixture
def world(tmp_path: Path, moto: MotoServer) -> Iterator[tuple[Pass, SwordServer, Daemon]]:
    with running_passcore() as passcore, running_sword_server() as sword:
        pass_ = Pass(passcore, moto)
        daemon = make_daemon(tmp_path)
        for name in AWS_UNSET:
            daemon.env.pop(name, None)
        daemon.env.update(AWS_TEST_ENVIRONMENT)
        daemon.env.update({
            "DEPOSIT_BROKER_URL": moto.broker_url(create=False),
            "PASS_CORE_URL": passcore.base_url,
            "PASS_CORE_USER": passcore.username,
            "PASS_CORE_PASSWORD": passcore.password,
            "PASS_CORE_SUBMISSION_QUEUE": pass_.queues["submission"],
            "PASS_CORE_DEPOSIT_QUEUE": pass_.queues["deposit"],
            "PASS_DEPOSIT_JOBS_DISABLED": "true",
        })
        daemon.write_repositories({"archive": filesystem_repo(daemon.target_dir),
                                   "dspace": sword_entry(sword, **{"check-collection": False})})
        try:
            yield pass_, sword, daemon
        finally:
            daemon.stop_all()


def _deposits(passcore: PassCore, sid: str) -> dict[str, dict[str, Any]]:
    """The submission's deposits by repository key."""
    found = {}
    for deposit in passcore.find("deposit", submission=sid):
        repo_id = deposit["relationships"]["repository"]["data"]["id"]
        key = passcore.resource("repository", repo_id)["attributes"]["repositoryKey"]
        found[key] = deposit
    return found


def test_pass_core_and_sqs_end_to_end(world: tuple[Pass, SwordServer, Daemon]) -> None:
    pass_, sword, daemon = world
    files = daemon.root / "files"
    worker = daemon.listen()
    sids = [pass_.submit(f"pass-{n}", files, [FS, SWORD]) for n in range(4)]

    def recorded() -> bool:
        return all(
            {k: d["attributes"]["depositStatus"] for k, d in _deposits(pass_.passcore,
                                                                      sid).items()}
            == {"archive": "accepted", "dspace": "submitted"} for sid in sids)

    wait_until(recorded, 120, "every deposit recorded in pass-core", [worker])
    passcore = pass_.passcore
    for sid in sids:
        deposits = _deposits(passcore, sid)
        archive, dspace = deposits["archive"], deposits["dspace"]
        copy = passcore.resource("repositoryCopy",
                                 archive["relationships"]["repositoryCopy"]["data"]["id"])
        assert copy["attributes"]["copyStatus"] == "complete"
        assert copy["attributes"]["accessUrl"].startswith("file:")
        ref = dspace["attributes"]["depositStatusRef"]
        assert ref and ref.startswith(sword.base_url), ref
        sword_copy = passcore.resource("repositoryCopy",
                                       dspace["relationships"]["repositoryCopy"]["data"]["id"])
        assert sword_copy["attributes"]["copyStatus"] == "in-progress"
        assert sword_copy["attributes"]["accessUrl"]
        assert sword_copy["attributes"]["externalIds"]
        attributes = passcore.resource("submission", sid)["attributes"]
        assert attributes["aggregatedDepositStatus"] == "in-progress"  # SWORD not done yet
    # DSpace archives them; a refresh (the operator's, or the job's) settles each
    for deposit_id in list(sword.deposits):
        sword.set_state(deposit_id, "archived")
    daemon.cli("refresh")

    def settled() -> bool:
        return all(passcore.resource("submission", sid)["attributes"]["aggregatedDepositStatus"]
                   == "accepted" for sid in sids)

    wait_until(settled, 60, "every submission accepted", [worker])
    for sid in sids:
        dspace = _deposits(passcore, sid)["dspace"]
        assert dspace["attributes"]["depositStatus"] == "accepted"
    assert len(sword.deposits) == len(sids)  # one package each, never two
    assert len(list(daemon.target_dir.iterdir())) == len(sids)
    wait_until(lambda: pass_.left() == {}, 60, "the queues emptied", [worker])
    daemon.stop_all()
    assert worker.returncode == 0


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(
    world: tuple[Pass, SwordServer, Daemon],
) -> None:
    pass_, _, daemon = world
    files = daemon.root / "files"
    first = daemon.listen("first")
    second = daemon.listen("second")
    sids = [pass_.submit(f"kill-{n}", files, [FS]) for n in range(24)]
    passcore = pass_.passcore

    def accepted() -> int:
        return sum(passcore.resource("submission", sid)["attributes"]["aggregatedDepositStatus"]
                   == "accepted" for sid in sids)

    wait_until(lambda: accepted() >= 3, 60, "a few submissions done", [first, second])
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert accepted() < len(sids), "the kill came too late to test anything"
    wait_until(lambda: accepted() == len(sids), 180, "all accepted after the kill", [second])
    for sid in sids:
        (deposit,) = passcore.find("deposit", submission=sid)  # one deposit, never two
        assert deposit["attributes"]["depositStatus"] == "accepted"
    packages = sorted(p.name for p in daemon.target_dir.iterdir())
    assert len(packages) == len(sids), packages
    assert not [p for p in packages if p.startswith(".")], "temporary files left behind"
    wait_until(lambda: pass_.left() == {}, 90, "the queues emptied", [second])
    daemon.stop_all()
    assert second.returncode == 0
    assert os.path.getsize(daemon.root / "second.log") > 0
    assert json.loads(daemon.cli("status", "--json").stdout) is not None


def test_refused_credentials_stop_listen_and_config_check_with_exit_2(
    world: tuple[Pass, SwordServer, Daemon],
) -> None:
    _, _, daemon = world
    daemon.env["PASS_CORE_PASSWORD"] = "not-the-password"
    checked = daemon.cli("config", "check", check=False)
    assert checked.returncode == 2, checked.stderr
    assert "refused the credentials" in checked.stderr
    assert "not-the-password" not in checked.stderr + checked.stdout
    worker = daemon.listen("refused")
    assert worker.wait(60) == 2
    assert "refused the credentials" in daemon.log_text("refused")
