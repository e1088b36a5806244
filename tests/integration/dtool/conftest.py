"""dserver (dservercore from PyPI, in its own venv, on mongomock) for the dtool tests:
one server per module; each test gets its own base URI, users and permissions, set up
through dserver's admin API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dtoolcore.utils
import pytest

from tests.support import dserver
from tests.support.dserver import DServer


@pytest.fixture(scope="module")
def dserver_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DServer]:
    with dserver.running(tmp_path_factory.mktemp("dserver")) as server:
        yield server


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "datasets"
    folder.mkdir()
    return folder


@pytest.fixture
def base_uri(base_dir: Path) -> str:
    """The base URI as dtoolcore writes it (``file://<host>/path``), as dserver keys it."""
    return str(dtoolcore.utils.sanitise_uri(str(base_dir)))


@pytest.fixture
def worker(dserver_app: DServer, base_uri: str, request: pytest.FixtureRequest) -> str:
    """A dserver user that may register and search on ``base_uri`` (fresh per test)."""
    name = "worker-" + str(request.node.name).replace("_", "-")[:40].strip("-")
    dserver_app.add_user(name)
    dserver_app.add_base_uri(base_uri, register=[name], search=[name])
    return name
