"""Fixtures for the lifecycle tests: a real store (SQLite and PostgreSQL), a real SWORDv2
test server and a filesystem target, and a service context wired to them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from deposit_services.config.repositories import parse_repositories
from deposit_services.model.entities import Deposit
from deposit_services.model.graph import Graph, resolve_file_uris
from deposit_services.model.messages import parse_message
from deposit_services.service.context import ServiceContext
from deposit_services.service.retry import RetryPolicy
from deposit_services.service.targets import Targets
from deposit_services.store.sql import SqlDatabase
from tests.support.graphs import make_graph, write_graph
from tests.support.store import StoreView
from tests.support.sword_server import SwordServer, running_sword_server

STATE = "http://dspace.org/state/"
SWORD_REPO = {"@type": "Repository", "id": "repo-dspace", "name": "DSpace",
              "repositoryKey": "dspace", "integrationType": "FULL"}
FS_REPO = {"@type": "Repository", "id": "repo-archive", "name": "Archive",
           "repositoryKey": "archive", "integrationType": "ONE_WAY"}
FAST_RETRY = RetryPolicy(base_seconds=0.05, factor=2, cap_seconds=0.2, max_attempts=8,
                         jitter="none")


def sword_entry(server: SwordServer, **binding: Any) -> dict[str, Any]:
    """A PASS-style repositories.json entry for the test SWORD server."""
    return {
        "deposit-config": {"mapping": {
            STATE + "archived": "accepted", STATE + "withdrawn": "rejected",
            "default-mapping": "submitted",
        }},
        "assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
        "transport-config": {
            "auth-realms": [{"mech": "basic", "url": server.base_url,
                             "username": server.username, "password": server.password}],
            "protocol-binding": {
                "protocol": "SWORDv2", "username": server.username,
                "password": server.password, "service-doc": server.service_document_url,
                "default-collection": server.collection_url("default"),
                "connect-timeout": 2, "read-timeout": 10, **binding,
            },
        },
    }


def filesystem_entry(base: Path) -> dict[str, Any]:
    return {
        "assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
        "transport-config": {"protocol-binding": {"protocol": "filesystem",
                                                  "baseDir": str(base)}},
    }


@dataclass
class World:
    """One store, one SWORD server, one filesystem target and a context over them."""

    root: Path
    store: StoreView
    server: SwordServer
    ctx: ServiceContext
    notified: list[str] = field(default_factory=list)

    @property
    def target_dir(self) -> Path:
        return self.root / "target"

    def seed(self, submission_id: str, repositories: list[dict[str, Any]]) -> str:
        """Store a submission graph (as ``submit`` would, without the message)."""
        files = self.root / "files"
        path = write_graph(self.root / f"{submission_id}.json",
                           make_graph(submission_id, files, repositories=repositories))
        graph = resolve_file_uris(Graph.load(path), files)
        for entity in graph.entities:
            self.store.add_if_absent(entity)
        return submission_id

    def deposit_of(self, submission_id: str) -> Deposit:
        found = self.store.find(Deposit, submission=submission_id)
        assert len(found) == 1, found
        return found[0]


@pytest.fixture
def sword_server(tmp_path: Path) -> Iterator[SwordServer]:
    with running_sword_server() as server:
        yield server


@pytest.fixture
def make_world(
    tmp_path: Path, store_url: str, sword_server: SwordServer
) -> Iterator[Callable[..., World]]:
    """``make_world(policy=..., **binding)``: a World on this test's store backend."""
    made: list[World] = []

    def make(policy: RetryPolicy = FAST_RETRY, **binding: Any) -> World:
        database = SqlDatabase(store_url)
        store = StoreView(database)
        config = parse_repositories({
            "dspace": sword_entry(sword_server, **binding),
            "archive": filesystem_entry(tmp_path / "target"),
        }, {})
        targets = Targets(config, "deposit-services-test")
        notified: list[str] = []
        database.publisher = lambda m: notified.append(
            getattr(parse_message(m.body, m.headers), "deposit", ""))
        ctx = ServiceContext(database=database, targets=targets, work_dir=tmp_path / "work",
                             owner=f"test-{len(made)}", lease_seconds=10, retry_policy=policy)
        world = World(tmp_path, store, sword_server, ctx, notified)
        made.append(world)
        return world

    yield make
    for world in made:
        world.ctx.targets.close()
        world.store.close()
