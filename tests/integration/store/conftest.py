"""The store tests' ``store``: one test body on each adapter (in-memory, SQLite,
PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deposit_services.store.memory import MemoryDatabase
from tests.support.store import StoreView


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[StoreView]:
    """The same test on each adapter."""
    if request.param == "memory":
        view = StoreView(MemoryDatabase())
    else:
        fixture = "sqlite_url" if request.param == "sqlite" else "fresh_postgres_url"
        view = StoreView.sql(request.getfixturevalue(fixture))
    yield view
    view.close()
