"""The store contract's ``store`` fixture: each test on memory, SQLite and PostgreSQL."""

from tests.integration.store.test_contract import store  # noqa: F401 - the fixture
