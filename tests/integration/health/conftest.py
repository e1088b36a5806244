"""Fixtures shared with the store contract (``store``: memory, SQLite, PostgreSQL) and
the lifecycle tests (``sword_server``)."""

from tests.integration.lifecycle.conftest import sword_server  # noqa: F401 - the fixture
from tests.integration.store.conftest import store  # noqa: F401 - the fixture
