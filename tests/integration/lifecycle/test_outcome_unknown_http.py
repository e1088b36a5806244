"""A DSpace, InvenioRDM or Zenodo request whose outcome is unknown, across replicas.

Replica A's request that makes something (a DSpace workspace item or workflow item, an
InvenioRDM or Zenodo draft, a file's upload, a review request) reaches the test server,
which does it and holds the answer past A's read timeout: A records the deposit RETRY
with its attempt open ("outcome unknown"). Replica B, with its own context, transports
and owner over the same store (SQLite and PostgreSQL), runs the next attempt: it asks
the target first (the transport's marker-based ``reconcile``) and either records what
it finds (RECONCILED) or carries on so that the target holds one item or record.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest

from deposit_services.config.repositories import parse_repositories
from deposit_services.model.entities import Deposit, DepositStatus
from deposit_services.model.graph import Graph, resolve_file_uris
from deposit_services.service.context import ServiceContext
from deposit_services.service.lifecycle import DepositProcessor
from deposit_services.service.retry import RetryPolicy
from deposit_services.service.submissions import SubmissionProcessor
from deposit_services.service.targets import Targets
from deposit_services.store.base import AttemptOutcome
from deposit_services.store.sql import SqlDatabase
from tests.integration.dspace.conftest import HANDLE, dspace_binding
from tests.integration.dspace.test_dspace_crash import DSpacePauses
from tests.integration.invenio.conftest import rdm_binding
from tests.integration.zenodo.conftest import zenodo_binding
from tests.support.clock import FakeClock
from tests.support.dspace_server import running_dspace_server
from tests.support.graphs import make_graph, write_graph
from tests.support.invenio_server import InvenioServer, running_invenio_server
from tests.support.store import StoreView
from tests.support.zenodo_server import ZenodoServer, running_zenodo_server

POLICY = RetryPolicy(base_seconds=0.05, factor=2, cap_seconds=0.2, max_attempts=8,
                     jitter="none")
FILES = {"manuscript.txt": b"The manuscript.\n" * 2000, "figure.png": bytes(range(256)) * 40}


class Pausing(Protocol):
    def pause(self, step: str) -> threading.Event: ...

    def release(self) -> None: ...


@dataclass
class Target:
    """One test server: its binding, how to pause a step, and what it holds."""

    binding: Callable[..., dict[str, Any]]
    pauses: Pausing
    items: Callable[[], int]  # items / records / depositions held (deleted ones not)
    done: Callable[[], int]  # submitted to review, or published


@pytest.fixture
def dspace() -> Iterator[Target]:
    with running_dspace_server(collections={HANDLE: "c0ffee00-0000-4000-8000-000000000003"}
                               ) as server:
        pauses = DSpacePauses(server)
        yield Target(lambda **o: dspace_binding(server, **o), pauses,
                     lambda: len(server.app.items), lambda: len(server.app.workflow_items()))
        pauses.release()


@pytest.fixture
def invenio(tmp_path: Path) -> Iterator[Target]:
    (tmp_path / "rdm").mkdir()
    with running_invenio_server(directory=tmp_path / "rdm") as server:
        yield _invenio_target(server)
        server.app.release()


def _invenio_target(server: InvenioServer) -> Target:
    def items() -> int:
        return sum(1 for r in server.app.records.values() if not r.removed)

    def done() -> int:
        return sum(1 for r in server.app.records.values()
                   if r.published or (r.review is not None and not r.removed))

    return Target(lambda **o: rdm_binding(server, **{"publish-attempts": 1, **o}),
                  server.app, items, done)


@pytest.fixture
def zenodo(tmp_path: Path) -> Iterator[Target]:
    (tmp_path / "zenodo").mkdir()
    with running_zenodo_server(tmp_path / "zenodo") as server:
        yield _zenodo_target(server)
        server.app.release()


def _zenodo_target(server: ZenodoServer) -> Target:
    def items() -> int:
        return sum(1 for d in server.app.depositions.values() if not d.removed)

    return Target(lambda **o: zenodo_binding(server, **{"publish-attempts": 1, **o}),
                  server.app, items, lambda: len(server.app.published()))


@dataclass
class Replica:
    ctx: ServiceContext
    store: StoreView


@pytest.fixture
def replicas(tmp_path: Path, store_url: str) -> Iterator[Callable[..., Replica]]:
    """``replica(binding)``: a context of its own (transports, owner) on the store."""
    made: list[Replica] = []

    def make(binding: dict[str, Any]) -> Replica:
        database = SqlDatabase(store_url)
        config = parse_repositories({"target": {
            "assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
            "transport-config": {"protocol-binding": binding}}}, {})
        ctx = ServiceContext(database=database, targets=Targets(config, "outcome-test"),
                             work_dir=tmp_path / "work", owner=f"replica-{len(made)}",
                             lease_seconds=10, retry_policy=POLICY)
        replica = Replica(ctx, StoreView(database))
        made.append(replica)
        return replica

    yield make
    for replica in made:
        replica.ctx.targets.close()
        replica.store.close()


def _seed(tmp_path: Path, store: StoreView, sid: str) -> None:
    repository = {"@type": "Repository", "id": "repo-target", "name": "Target",
                  "repositoryKey": "target", "integrationType": "ONE_WAY"}
    files = tmp_path / "files"
    path = write_graph(tmp_path / f"{sid}.json", make_graph(
        sid, files, repositories=[repository], files=FILES,
        metadata={"publicationDate": "2024-05-01"}))
    for entity in resolve_file_uris(Graph.load(path), files).entities:
        store.add_if_absent(entity)


CASES = [
    # (server, step paused, binding overrides, outcome of B's reconcile)
    ("dspace", "create", {}, [AttemptOutcome.INTERRUPTED, AttemptOutcome.SENT]),
    ("dspace", "submit", {}, [AttemptOutcome.RECONCILED]),
    ("invenio", "create", {}, [AttemptOutcome.INTERRUPTED, AttemptOutcome.SENT]),
    ("invenio", "content", {}, [AttemptOutcome.INTERRUPTED, AttemptOutcome.SENT]),
    ("invenio", "submit_review", {"community": "pass-community"},
     [AttemptOutcome.RECONCILED]),
    ("zenodo", "create", {}, [AttemptOutcome.INTERRUPTED, AttemptOutcome.SENT]),
    ("zenodo", "upload", {}, [AttemptOutcome.INTERRUPTED, AttemptOutcome.SENT]),
]


@pytest.mark.parametrize(("server", "step", "overrides", "outcomes"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_unanswered_request_then_another_replica_leaves_one_item(
    request: pytest.FixtureRequest, tmp_path: Path, replicas: Callable[..., Replica],
    server: str, step: str, overrides: dict[str, Any], outcomes: list[AttemptOutcome],
) -> None:
    target: Target = request.getfixturevalue(server)
    first = replicas(target.binding(**{"read-timeout": 0.5, **overrides}))
    sid = f"unknown-{server}-{step}"
    _seed(tmp_path, first.store, sid)
    reached = target.pauses.pause(step)

    SubmissionProcessor(first.ctx).process(sid)
    assert reached.is_set(), f"the {step} request reached the server"
    [deposit] = first.store.find(Deposit, submission=sid)
    assert deposit.deposit_status is DepositStatus.RETRY, deposit.status_message
    assert "outcome unknown" in (deposit.status_message or "")
    (attempt,) = first.store.attempts(deposit.id)
    assert attempt.is_open, "the attempt log keeps it open"
    assert (attempt.error or "").startswith("outcome unknown: ")
    assert target.items() == 1, "A's request was done at the server"

    target.pauses.release()
    due = deposit.next_attempt_at
    assert due is not None
    second = replicas(target.binding(**overrides))
    ctx = dataclasses.replace(second.ctx, clock=FakeClock(due + timedelta(seconds=1)))
    outcome = DepositProcessor(ctx).retry(deposit.id)
    assert outcome.ok, outcome

    [deposit] = first.store.find(Deposit, submission=sid)
    assert deposit.deposit_status in (DepositStatus.SUBMITTED, DepositStatus.ACCEPTED), (
        deposit.status_message)
    assert deposit.repository_copy is not None
    assert target.items() == 1 and target.done() == 1, "one item, sent on once"
    attempts = first.store.attempts(deposit.id)
    assert [a.outcome for a in attempts] == outcomes
    if outcomes[-1] is AttemptOutcome.SENT:  # B sent on (A's request made nothing whole)
        assert attempts[-1].owner == second.ctx.owner != attempts[0].owner
