"""The worker with its records in the test pass-core (over HTTP) and its worker state in
SQLite beside it; pass-core's messages are kept, to be handled as a broker would hand
them over (``World.drain``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from deposit_services.assemblers.sources import FileSources
from deposit_services.config.repositories import parse_repositories
from deposit_services.entrypoints.worker import MessageHandler
from deposit_services.model.messages import parse_message
from deposit_services.service.context import ServiceContext
from deposit_services.service.targets import Targets
from deposit_services.store.passcore.client import PassCoreClient
from deposit_services.store.passcore.database import PassCoreDatabase
from deposit_services.store.sql import SqlDatabase
from tests.support.graphs import make_graph
from tests.support.passcore import PassCore, running_passcore

FS_REPO = {"@type": "Repository", "id": "repo-archive", "name": "Archive",
           "repositoryKey": "archive", "integrationType": "one-way"}
FS_REPO_2 = {"@type": "Repository", "id": "repo-mirror", "name": "Mirror",
             "repositoryKey": "mirror", "integrationType": "one-way"}


@dataclass
class World:
    root: Path
    passcore: PassCore
    database: PassCoreDatabase
    ctx: ServiceContext
    messages: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def seed(self, sid: str, repositories: list[dict[str, Any]]) -> str:
        """A submission graph stored in pass-core (pass-core's ids); its id there."""
        files = self.root / "files"
        ids = self.passcore.load_graph(make_graph(sid, files, repositories=repositories),
                                       files_dir=files)
        return ids[("Submission", sid)]

    def json_api_requests(self) -> int:
        return sum(1 for r in self.passcore.requests if r.path.startswith("/data"))

    def drain(self, handler: MessageHandler) -> int:
        """Handle pass-core's messages (and those they lead to) until none is left, each
        as a first delivery; returns how many were handled."""
        handled = 0
        while self.messages:
            kind, body, headers = self.messages.pop(0)
            if kind not in ("submission", "deposit"):
                continue
            handler.dispatch(parse_message(body, headers), redelivered=False)
            handled += 1
        return handled


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[Callable[..., World]]:
    made: list[tuple[World, Any]] = []

    def make(**overrides: Any) -> World:
        messages: list[tuple[str, str, dict[str, str]]] = []
        server = running_passcore(on_message=lambda k, b, p: messages.append((k, b, dict(p))))
        passcore = server.__enter__()
        client = PassCoreClient(passcore.base_url, passcore.username,
                                overrides.get("password", passcore.password))
        state = SqlDatabase(f"sqlite:///{tmp_path / 'state.db'}")
        database = PassCoreDatabase(client, state)
        config = parse_repositories({key: {
            "assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
            "transport-config": {"protocol-binding": {
                "protocol": "filesystem", "baseDir": str(tmp_path / "target" / key),
                "createIfMissing": True}},
        } for key in ("archive", "mirror")}, {})
        targets = Targets(config, "test", sources=FileSources({client.base_url:
                                                               client.session}))
        ctx = ServiceContext(database=database, targets=targets, work_dir=tmp_path / "work",
                             owner=f"test-{len(made)}", lease_seconds=10, deposit_queue=None)
        world = World(tmp_path, passcore, database, ctx, messages)
        made.append((world, server))
        return world

    yield make
    for world, server in made:
        world.ctx.targets.close()
        world.database.close()
        server.__exit__(None, None, None)


def attributes(world: World, kind: str, ident: str) -> dict[str, Any]:
    resource: dict[str, Any] = world.passcore.resource(kind, ident)
    return dict(resource["attributes"])


def related(world: World, kind: str, ident: str, name: str) -> Any:
    data = world.passcore.resource(kind, ident)["relationships"][name]["data"]
    if isinstance(data, list):
        return [d["id"] for d in data]
    return data["id"] if data else None


def body(message: tuple[str, str, dict[str, str]]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(message[1])
    return parsed
