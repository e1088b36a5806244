"""Project-wide fixtures: the SQL databases every backend-parametrised test runs on.

PostgreSQL is a real server on 127.0.0.1:5432 (user ``postgres``, trust auth; override
with ``DEPOSIT_TEST_POSTGRES_URL``, an admin URL to the ``postgres`` database). Each
fixture creates a uniquely named database and drops it afterwards. If the server is not
reachable the tests using it FAIL with the reason: a missing service is never a skip.

``store_url`` runs one test body on both backends (dramatiq's ``result_backend`` style):
``test_x[sqlite]`` on a fresh SQLite file, ``test_x[postgresql]`` on a fresh database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from deposit_services.settings import mask_url

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class PostgresDatabases:
    """Creates and drops throwaway databases on the test PostgreSQL server."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        try:
            return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            pytest.fail(
                f"PostgreSQL is required by this test and is not reachable at "
                f"{mask_url(self.admin_url)} ({exc}). Start it (e.g. `service postgresql "
                "start`) or set DEPOSIT_TEST_POSTGRES_URL to an admin URL.",
                pytrace=False,
            )

    def check(self) -> None:
        with self._admin() as conn:
            conn.execute("SELECT 1")

    def create(self) -> str:
        """A new empty database; returns its URL (same server and user as the admin)."""
        name = f"ds_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{name}"

    def drop(self, url: str) -> None:
        name = url.rpartition("/")[2]
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if name in self.created:
            self.created.remove(name)


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    """The server's database factory; fails the test at once if PostgreSQL is down."""
    databases = PostgresDatabases(os.environ.get("DEPOSIT_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL))
    databases.check()
    yield databases
    for name in list(databases.created):
        databases.drop(f"/{name}")


@pytest.fixture(scope="session")
def postgres_url(postgres_databases: PostgresDatabases) -> Iterator[str]:
    """One fresh database for the whole session (tests sharing it must use unique ids)."""
    url = postgres_databases.create()
    yield url
    postgres_databases.drop(url)


@pytest.fixture
def fresh_postgres_url(postgres_databases: PostgresDatabases) -> Iterator[str]:
    """A fresh database for this test only."""
    url = postgres_databases.create()
    yield url
    postgres_databases.drop(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file (not created yet) in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'db' / 'deposit-services.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """The same test on a fresh SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    return url
