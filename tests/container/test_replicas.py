"""Three worker containers (``--network host``) against ActiveMQ and PostgreSQL on the
host, started by the same fixtures as the e2e tests: 200 submissions, one replica
stopped (SIGTERM: exit 0) and one killed mid-run; every submission deposited once (one
package each, one ACCEPTED deposit, claimed once across the replicas' logs), nothing left
on the queues or their dead-letter queues."""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Daemon, make_daemon, wait_until
from tests.e2e.test_stomp_activemq import (  # activemq: the module's broker fixture
    accepted,
    activemq,  # noqa: F401
    claims,
    leftovers,
    submit_many,
)
from tests.support.activemq import ActiveMQ
from tests.support.docker import Docker

RESUMED = re.compile(r"submission (\S+) resumed")

COUNT = 200
REPLICAS = ("replica-a", "replica-b", "replica-c")


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A directory the containers' user (uid 10001) can read (pytest's tmp is root's only)."""
    root = Path(tempfile.mkdtemp(prefix="deposit-replicas-"))
    root.chmod(0o755)
    yield root
    import shutil

    shutil.rmtree(root, ignore_errors=True)


def said_of(daemon: Daemon, ids: Iterable[str]) -> str:
    """Every replica's log lines that name one of ``ids``, for a failure's message."""
    return "\n".join(f"{short}: {line}" for short in REPLICAS
                     for line in daemon.log_text(short).splitlines()
                     if any(sid in line for sid in ids))


def replica_args(daemon: Daemon, image: str, name: str) -> list[str]:
    env = {k: v for k, v in daemon.env.items() if k.startswith(("DEPOSIT_", "PASS_"))}
    env.pop("DEPOSIT_DATA_DIR")  # the image's own volume
    args = ["run", "-d", "--name", name, "--network", "host",
            "-v", f"{daemon.root}:{daemon.root}:ro",
            "-v", f"{daemon.target_dir}:{daemon.target_dir}"]
    for key, value in sorted(env.items()):
        args += ["-e", f"{key}={value}"]
    return [*args, image]


def test_three_replicas_each_submission_deposited_once(
        docker: Docker, worker_image: str, activemq: ActiveMQ,  # noqa: F811 - the fixture
        shared_root: Path,
        fresh_postgres_url: str) -> None:
    daemon = make_daemon(shared_root, store_url=fresh_postgres_url)
    tag = uuid.uuid4().hex[:8]
    daemon.env.update({
        "DEPOSIT_BROKER_URL": activemq.url,
        "PASS_DEPOSIT_QUEUE_SUBMISSION_NAME": f"submission-{tag}",
        "PASS_DEPOSIT_QUEUE_DEPOSIT_NAME": f"deposit-{tag}",
        "PASS_DEPOSIT_WORKERS_CONCURRENCY": "4",
        "PASS_DEPOSIT_JOBS_DEFAULT_INTERVAL_MS": "3000",
        "DEPOSIT_LEASE_SECONDS": "6",
    })
    daemon.data_dir.mkdir(parents=True, exist_ok=True)
    daemon.target_dir.mkdir(parents=True, exist_ok=True)
    daemon.target_dir.chmod(0o777)
    daemon.cli("status")  # the schema, once, before the replicas race for it
    first = submit_many(daemon, COUNT // 2, prefix=f"rep{tag}a")
    for path in shared_root.rglob("*"):
        os.chmod(path, 0o777 if path.is_dir() else 0o644)
    names = [f"{name}-{tag}" for name in REPLICAS]
    killed, stopped, survivor = names
    try:
        for name in names:
            docker.run(*replica_args(daemon, worker_image, name))
        wait_until(lambda: accepted(daemon, first) >= 5, 240, "5 submissions ACCEPTED")
        docker.run("kill", killed)
        at_kill = accepted(daemon, first)
        docker.run("stop", "-t", "60", stopped, timeout=120)
        assert docker.state(stopped)["ExitCode"] == 0
        assert at_kill < len(first), "the kill came too late to test anything"
        ids = first + submit_many(daemon, COUNT - len(first), prefix=f"rep{tag}b")
        for path in shared_root.rglob("*"):
            os.chmod(path, 0o777 if path.is_dir() else 0o644)
        wait_until(lambda: accepted(daemon, ids) == COUNT, 300, f"all {COUNT} ACCEPTED")
        docker.run("stop", "-t", "60", survivor, timeout=120)
        assert docker.state(survivor)["ExitCode"] == 0
        assert docker.state(killed)["ExitCode"] == 137
    finally:
        for name, short in zip(names, REPLICAS, strict=True):  # kept, also on a failure
            logs = docker.run("logs", name, check=False)
            (daemon.root / f"{short}.log").write_text(logs.stdout + logs.stderr)
            docker.run("rm", "-f", "-v", name, check=False)
    packages = sorted(p.name for p in daemon.target_dir.iterdir())
    assert len(packages) == COUNT, f"{len(packages)} packages for {COUNT} deposits"
    assert not [p for p in packages if p.startswith(".")], "temporary files left behind"
    from deposit_services.model.entities import Deposit, DepositStatus

    store = daemon.store()
    try:
        for sid in ids:
            found = store.find(Deposit, submission=sid)
            assert [d.deposit_status for d in found] == [DepositStatus.ACCEPTED], sid
    finally:
        store.close()
    claimed = claims(daemon, list(REPLICAS))
    # A claim is logged after its unit commits, so the killed replica can take a claim
    # and die before saying so; another replica then logs "resumed" for it.
    resumed = {m.group(1) for short in REPLICAS
               for m in RESUMED.finditer(daemon.log_text(short))}
    assert sorted(set(claimed) | resumed) == sorted(ids), "every submission claimed"
    twice = {sid: n for sid, n in claimed.items() if n != 1}
    assert not twice, f"a submission claimed twice: {twice}\n" + said_of(daemon, twice)
    per_replica = {short: sum(claims(daemon, [short]).values()) for short in REPLICAS}
    assert all(per_replica.values()), f"a replica took no work: {per_replica}"
    assert leftovers(daemon) == {}, "messages left on the queues"
