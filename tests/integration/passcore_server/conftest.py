"""Fixtures for the test pass-core's own tests: a running server, a client that speaks
to it as pass-support's JsonApiPassClient does (Basic auth, a fixed CSRF token in cookie
and header), and a graph loaded from tests/support/graphs.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.graphs import make_graph
from tests.support.passcore import JSON_API, Message, PassCore, running_passcore

TOKEN = "anyvalue"  # pass-support's OkHttpCsrfInterceptor sends this one

Ids = dict[tuple[str, str], str]  # load_graph's answer: (@type, old id) -> new id


@pytest.fixture
def received() -> list[Message]:
    """What the server's on_message callback was given, in order."""
    return []


@pytest.fixture
def passcore(received: list[Message]) -> Iterator[PassCore]:
    def on_message(kind: str, body: str, properties: dict[str, str]) -> None:
        received.append(Message(kind, body, properties))

    with running_passcore(on_message) as server:
        yield server


def client_for(server: PassCore, csrf: bool = True) -> requests.Session:
    session = requests.Session()
    session.auth = server.auth
    session.headers["Accept"] = JSON_API
    if csrf:
        session.headers["X-XSRF-TOKEN"] = TOKEN
        session.cookies.set("XSRF-TOKEN", TOKEN, domain="127.0.0.1", path="/")
    return session


@pytest.fixture
def client(passcore: PassCore) -> Iterator[requests.Session]:
    with client_for(passcore) as session:
        yield session


@pytest.fixture
def ids(passcore: PassCore, tmp_path: Path) -> Ids:
    """make_graph("s1") stored in the server (no messages)."""
    return passcore.load_graph(make_graph("s1", tmp_path), files_dir=tmp_path)


def document(type: str, attributes: dict[str, Any] | None = None,
             relationships: dict[str, Any] | None = None, id: str | None = None) -> dict[str, Any]:
    """A JSON:API request document; relationship values: "id", ["id", ...] or None."""
    data: dict[str, Any] = {"type": type, "attributes": attributes or {}}
    if id is not None:
        data["id"] = id
    if relationships:
        data["relationships"] = {}
        for name, (target, value) in relationships.items():
            linkage: Any = (
                None if value is None
                else [{"type": target, "id": v} for v in value] if isinstance(value, list)
                else {"type": target, "id": value}
            )
            data["relationships"][name] = {"data": linkage}
    return {"data": data}


def post(client: requests.Session, server: PassCore, type: str, **kwargs: Any) -> requests.Response:
    return client.post(f"{server.data_url}/{type}", json=document(type, **kwargs),
                       headers={"Content-Type": JSON_API})


def patch(client: requests.Session, server: PassCore, type: str, id: str,
          **kwargs: Any) -> requests.Response:
    return client.patch(f"{server.data_url}/{type}/{id}", json=document(type, id=id, **kwargs),
                        headers={"Content-Type": JSON_API})
