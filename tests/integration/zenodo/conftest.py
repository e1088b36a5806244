"""Fixtures for the Zenodo tests: a live Zenodo test server; the submission, package,
clock and transport maker are the InvenioRDM tests' (one protocol family)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.invenio.conftest import (  # noqa: F401 - fixtures
    clock,
    make_transport,
    package,
    submission,
)
from tests.support.zenodo_server import ZenodoServer, running_zenodo_server


@pytest.fixture
def zenodo(tmp_path: Path) -> Iterator[ZenodoServer]:
    store = tmp_path / "zenodo-files"
    store.mkdir()
    with running_zenodo_server(store) as server:
        yield server


def zenodo_binding(server: ZenodoServer, **overrides: Any) -> dict[str, Any]:
    binding: dict[str, Any] = {"protocol": "zenodo", "api-url": server.api_url,
                               "access-token": server.token, "connect-timeout": 2,
                               "read-timeout": 10}
    binding.update(overrides)
    return binding
