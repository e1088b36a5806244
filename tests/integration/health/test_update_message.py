"""A corrected resubmission on the SWORDv2 test server (SQLite and PostgreSQL): the
refreshes that follow say the item is still in progress, and the deposit's message
keeps saying which item was updated; the final answer replaces both."""

from __future__ import annotations

from collections.abc import Callable

from deposit_services.model.entities import DepositStatus, Publication
from deposit_services.model.graph import Graph, resolve_file_uris
from deposit_services.service.lifecycle import DepositProcessor
from deposit_services.service.submissions import SubmissionProcessor
from tests.integration.lifecycle.conftest import (  # the fixtures this test runs on
    SWORD_REPO,
    World,
    make_world,  # noqa: F401
    sword_server,  # noqa: F401
)
from tests.support.graphs import make_graph, write_graph

DOI = "10.5555/corrected"


def seed(world: World, sid: str, title: str) -> None:
    files = world.root / "files"
    path = write_graph(world.root / f"{sid}.json", make_graph(
        sid, files, repositories=[SWORD_REPO], metadata={"doi": DOI, "title": title}))
    for entity in resolve_file_uris(Graph.load(path), files).entities:
        if isinstance(entity, Publication):
            entity.doi = DOI
        world.store.add_if_absent(entity)


def test_refresh_keeps_the_update_note_until_the_repository_answers(
        make_world: Callable[..., World]) -> None:  # noqa: F811 - the fixture
    world = make_world()
    seed(world, "u1", "Draft title")
    SubmissionProcessor(world.ctx).process("u1")
    seed(world, "u2", "Final title")
    SubmissionProcessor(world.ctx).process("u2")
    first, second = world.deposit_of("u1"), world.deposit_of("u2")
    [remote] = world.server.deposits  # one item, updated in place
    assert second.deposit_status is DepositStatus.SUBMITTED
    note = f"a corrected resubmission of DOI {DOI}: updated the item of deposit {first.id}"
    assert note in (second.status_message or "")

    processor = DepositProcessor(world.ctx)
    versions = []
    for _ in range(2):
        outcome = processor.refresh(second.id)
        refreshed = world.deposit_of("u2")
        message = refreshed.status_message or ""
        assert outcome.ok and outcome.message == message
        assert message.startswith("still in progress at the repository (")
        assert note in message.partition("; when sent: ")[2]
        versions.append(refreshed.version)
    assert versions[0] == versions[1]  # the same word again: nothing written

    world.server.set_state(remote, "archived")
    outcome = processor.refresh(second.id)
    accepted = world.deposit_of("u2")
    assert accepted.deposit_status is DepositStatus.ACCEPTED
    assert note not in (accepted.status_message or "") and outcome.changed
