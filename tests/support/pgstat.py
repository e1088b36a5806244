"""Committed transactions of one PostgreSQL database, as PostgreSQL counts them."""

from __future__ import annotations

import psycopg

from tests.e2e.conftest import wait_until


class Commits:
    """``xact_commit`` of one database, read from the admin database (so the reading
    is not counted). A backend reports its counts when it goes idle or exits;
    ``settled`` waits until two reads in a row agree. Every new connection costs one
    committed transaction of PostgreSQL's own (its start-up)."""

    def __init__(self, admin_url: str, database_url: str) -> None:
        self.admin_url = admin_url
        self.name = database_url.rpartition("/")[2]

    def now(self) -> int:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s",
                               (self.name,)).fetchone()
        assert row is not None
        return int(row[0])

    def settled(self) -> int:
        reads = [self.now()]

        def steady() -> bool:
            reads.append(self.now())
            return reads[-1] == reads[-2]

        wait_until(steady, 30, "PostgreSQL's statistics to settle")
        return reads[-1]


class ServerNoise:
    """Idle connections in a database of their own, counting what other work on the
    same server makes PostgreSQL commit on behalf of idle connections (a catch-up with
    the server-wide invalidation or notification queue after other databases' DDL or
    NOTIFY): what an idle worker's connections commit for the same reason is not the
    worker's doing. On a quiet server it is nothing."""

    def __init__(self, admin_url: str, database_url: str, connections: int) -> None:
        self.commits = Commits(admin_url, database_url)
        self._url = database_url
        self._count = connections
        self._conns: list[psycopg.Connection[tuple[object, ...]]] = []
        self._before = 0

    def start(self) -> None:
        self._before = self.commits.settled()
        self._conns = [psycopg.connect(self._url, autocommit=True) for _ in range(self._count)]
        self._conns[0].execute("LISTEN nothing_is_sent_here")

    def stop(self) -> int:
        """Commits beyond the connections' own start-ups and the LISTEN."""
        for conn in self._conns:
            conn.close()
        return max(self.commits.settled() - self._before - self._count - 1, 0)
