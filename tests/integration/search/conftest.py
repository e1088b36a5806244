from __future__ import annotations

from collections.abc import Iterator

import pytest

from deposit_services.store.sql import SqlDatabase
from tests.support.osmem import fresh_index, search_proxy, search_url  # noqa: F401


@pytest.fixture
def database(store_url: str) -> Iterator[SqlDatabase]:
    db = SqlDatabase(store_url)
    db.check()
    yield db
    db.close()
