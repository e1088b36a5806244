"""make_engine: URL handling and the SQLite connection set-up, on real databases."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from deposit_services.errors import BrokerUnavailable, StoreError
from deposit_services.messaging.local import LocalBroker
from deposit_services.store.engine import make_engine, normalise_url


def test_postgres_urls_use_psycopg3() -> None:
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


def test_other_schemes_are_refused_with_the_password_masked() -> None:
    with pytest.raises(StoreError) as caught:
        make_engine("mysql://root:hunter2@db/x")
    assert "mysql" in str(caught.value) and "hunter2" not in str(caught.value)


def test_sqlite_engine_creates_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "store.db"
    engine = make_engine(f"sqlite:///{path}")
    assert path.parent.is_dir()
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_sqlite_write_transactions_begin_immediate(tmp_path: Path) -> None:
    """A second writer waits for the first instead of failing on a lock upgrade."""
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (0)"))
    holding, done = threading.Event(), threading.Event()

    def other_writer() -> None:
        holding.wait(10)
        with engine.begin() as conn:  # blocks at BEGIN IMMEDIATE until the first commits
            value = conn.execute(text("SELECT n FROM t")).scalar_one()
            conn.execute(text("UPDATE t SET n = :v"), {"v": value + 1})
        done.set()

    thread = threading.Thread(target=other_writer)
    thread.start()
    with engine.begin() as conn:
        value = conn.execute(text("SELECT n FROM t")).scalar_one()
        holding.set()
        assert not done.wait(0.3)  # the other writer is held off while we hold the lock
        conn.execute(text("UPDATE t SET n = :v"), {"v": value + 1})
    thread.join(30)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM t")).scalar_one() == 2
    engine.dispose()


def test_unreachable_database_is_broker_unavailable_for_the_queue() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(BrokerUnavailable) as caught:
        LocalBroker(f"postgresql://someone:s3cret-pw@127.0.0.1:{port}/q")
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)
