"""The worker with pass-core as its system of record, over HTTP to the test pass-core:
what pass-core holds afterwards is what PASS writes, in few requests, and pass-core's
faults leave the work to be done again."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote

import pytest

from deposit_services.entrypoints.worker import MessageHandler
from deposit_services.errors import ConfigurationError
from deposit_services.messaging.base import Broker, Delivery
from deposit_services.service.submissions import SubmissionProcessor
from deposit_services.store.passcore.client import PassCoreClient
from tests.integration.passcore.conftest import FS_REPO, FS_REPO_2, World, attributes, related


class Settled(Broker):
    """Records how the handler settled each delivery (the broker is not under test)."""

    def __init__(self) -> None:
        self.settled: list[tuple[str, str]] = []

    def publish(self, queue: str, body: str, headers: Mapping[str, str] | None = None) -> None:
        raise AssertionError("behind pass-core the worker publishes nothing itself")

    def receive(self, queues: Sequence[str], timeout: float) -> Delivery | None:
        return None

    def ack(self, delivery: Delivery) -> None:
        self.settled.append(("ack", ""))

    def nack(self, delivery: Delivery, reason: str) -> None:
        self.settled.append(("nack", reason))

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self.settled.append(("dead-letter", reason))


def handler_for(world: World) -> MessageHandler:
    return MessageHandler(world.ctx, Settled(), touch_interval=30)


def test_a_submission_ends_as_pass_writes_it(make_world: Callable[..., World]) -> None:
    world = make_world()
    sid = world.seed("s1", [FS_REPO])
    SubmissionProcessor(world.ctx).process(sid, redelivered=False)
    (deposit,) = world.passcore.find("deposit", submission=sid)
    assert deposit["attributes"]["depositStatus"] == "accepted"
    assert related(world, "deposit", deposit["id"], "repository") == related(
        world, "submission", sid, "repositories")[0]
    copy_id = related(world, "deposit", deposit["id"], "repositoryCopy")
    copy = attributes(world, "repositoryCopy", copy_id)
    assert copy["copyStatus"] == "complete"
    assert copy["accessUrl"].startswith("file:") and copy["accessUrl"].endswith(".zip")
    assert related(world, "repositoryCopy", copy_id, "publication") == related(
        world, "submission", sid, "publication")
    assert attributes(world, "submission", sid)["aggregatedDepositStatus"] == "accepted"
    packages = list((world.root / "target" / "archive").iterdir())
    assert len(packages) == 1  # its files came from pass-core's file service, with our login
    file_gets = [r for r in world.passcore.requests if r.path.startswith("/file/")]
    assert len(file_gets) == 2 and all(r.status == 200 for r in file_gets)


@pytest.mark.parametrize("repositories", [[FS_REPO], [FS_REPO, FS_REPO_2]],
                         ids=["one repository", "two repositories"])
def test_json_api_requests_per_submission(make_world: Callable[..., World],
                                          repositories: list[dict[str, str]]) -> None:
    world = make_world()
    sid = world.seed("s1", repositories)
    world.passcore.clear_requests()
    handler = handler_for(world)
    world.messages.append(("submission", f'{{"submission": "{sid}", '
                                         '"type": "SubmissionReady"}', {"type": "SubmissionReady"}))
    world.drain(handler)  # the SubmissionReady, then every echo of our own writes
    r = len(repositories)
    assert world.json_api_requests() <= 2 + 4 * r, "\n".join(
        f"{q.method} {q.path} {unquote(q.query)[:90]}" for q in world.passcore.requests
        if q.path.startswith("/data"))
    assert attributes(world, "submission", sid)["aggregatedDepositStatus"] == "accepted"
    deposits = world.passcore.find("deposit", submission=sid)
    assert len(deposits) == r, "one deposit per repository: no echo claimed it again"
    assert {d["attributes"]["depositStatus"] for d in deposits} == {"accepted"}
    assert handler.broker.settled == [("ack", "")] * len(handler.broker.settled)  # type: ignore[attr-defined]


def test_echoes_seen_by_another_replica_cost_reads_and_change_nothing(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    sid = world.seed("s1", [FS_REPO])
    SubmissionProcessor(world.ctx).process(sid, redelivered=False)
    before = {d["id"]: d["attributes"]["version"]
              for d in world.passcore.find("deposit", submission=sid)}
    from dataclasses import replace

    from deposit_services.service.context import WorkerMemory

    other = MessageHandler(replace(world.ctx, owner="replica-2", memory=WorkerMemory()),
                           Settled(), touch_interval=30)
    world.passcore.clear_requests()
    assert world.drain(other) >= 2  # SubmissionReady and DepositStatus echoes
    assert all(r.method == "GET" for r in world.passcore.requests if r.path.startswith("/data"))
    after = {d["id"]: d["attributes"]["version"]
             for d in world.passcore.find("deposit", submission=sid)}
    assert after == before


def test_a_lost_race_is_re_read_and_re_applied(make_world: Callable[..., World],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    world = make_world()
    sid = world.seed("s1", [FS_REPO])
    from deposit_services.transports.filesystem import FilesystemTransport

    send = FilesystemTransport.send

    def send_while_someone_edits(self: FilesystemTransport, *args: object) -> object:
        receipt = send(self, *args)  # type: ignore[arg-type]
        world.passcore.update("submission", sid, {"submitterName": "edited meanwhile"})
        return receipt

    monkeypatch.setattr(FilesystemTransport, "send", send_while_someone_edits)
    SubmissionProcessor(world.ctx).process(sid, redelivered=False)
    assert any(r.status == 409 for r in world.passcore.requests)  # our stale settle
    submission = attributes(world, "submission", sid)
    assert submission["aggregatedDepositStatus"] == "accepted"
    assert submission["submitterName"] == "edited meanwhile"  # theirs kept, ours applied


def test_pass_core_failing_sends_the_message_back(make_world: Callable[..., World]) -> None:
    world = make_world()
    sid = world.seed("s1", [FS_REPO])
    handler = handler_for(world)
    world.passcore.fail_next(1, status=503, path_prefix="/data")
    delivery = Delivery("submission", f'{{"submission": "{sid}", "type": "SubmissionReady"}}',
                        {"type": "SubmissionReady"})
    handler.handle(delivery)
    settled = handler.broker.settled  # type: ignore[attr-defined]
    assert settled[0][0] == "nack" and "503" in settled[0][1]
    assert attributes(world, "submission", sid)["aggregatedDepositStatus"] == "not-started"
    handler.handle(delivery)  # redelivered: pass-core is back
    assert settled[1] == ("ack", "")
    assert attributes(world, "submission", sid)["aggregatedDepositStatus"] == "accepted"


def test_refused_credentials_are_a_configuration_error(make_world: Callable[..., World],
                                                       tmp_path: Path) -> None:
    world = make_world()
    client = PassCoreClient(world.passcore.base_url, world.passcore.username, "wrong")
    with pytest.raises(ConfigurationError, match="refused the credentials"):
        client.check()
    client.close()
    PassCoreClient(world.passcore.base_url, world.passcore.username,
                   world.passcore.password).check()
