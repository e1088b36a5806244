"""``listen`` with DEPOSIT_HTTP_PORT on a real ActiveMQ: /metrics moves as deposits are
made, /readyz turns 503 (naming the broker) while the broker is down and 200 when it is
back. The exposition is parsed with prometheus_client's own parser, and every counter is
compared with what the store and the target directory hold."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Daemon, wait_until
from tests.e2e.test_stomp_activemq import (  # activemq: the module's broker fixture
    accepted,
    activemq,  # noqa: F401
    assert_each_processed_once,
    stomp_daemon,
    submit_many,
)
from tests.support.activemq import ActiveMQ, free_port

DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy


def get(port: int, path: str) -> tuple[int, str]:
    """Status and body; status 0 while nothing listens yet."""
    try:
        with DIRECT.open(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except urllib.error.URLError as exc:
        return 0, str(exc.reason)


def samples(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, text = get(port, "/metrics")
    assert status == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return sum(v for (n, ls), v in found.items()
               if n == name and set(labels.items()) <= set(ls))


def all_accepted(daemon: Daemon, ids: list[str]) -> Callable[[], bool]:
    return lambda: accepted(daemon, ids) == len(ids)


def test_metrics_follow_deposits_and_readyz_follows_the_broker(
        tmp_path: Path, activemq: ActiveMQ) -> None:  # noqa: F811 - the fixture
    daemon: Daemon = stomp_daemon(tmp_path, activemq)
    port = free_port()
    daemon.env["DEPOSIT_HTTP_PORT"] = str(port)
    queue = daemon.env["PASS_DEPOSIT_QUEUE_SUBMISSION_NAME"]
    try:
        daemon.listen("worker")
        wait_until(lambda: get(port, "/readyz")[0] == 200, 60, "/readyz 200",
                   daemon.processes)
        assert get(port, "/healthz") == (200, "ok\n")
        before = samples(port)
        assert value(before, "deposit_services_deposits_total") == 0
        assert value(before, "deposit_services_retry_backlog") == 0

        ids: list[str] = []
        for batch, size in enumerate((7, 5), start=1):
            ids += submit_many(daemon, size, prefix=f"ops{batch}")
            wait_until(all_accepted(daemon, list(ids)), 120, f"{len(ids)} ACCEPTED",
                       daemon.processes)
            now = samples(port)
            assert value(now, "deposit_services_deposits_total",
                         repository="archive", status="ACCEPTED") == len(ids)
            assert value(now, "deposit_services_messages_consumed_total",
                         queue=queue, type="SubmissionReady") == len(ids)
            assert value(now, "deposit_services_transfer_attempts_total",
                         protocol="filesystem", result="ok") == len(ids)
            assert value(now, "deposit_services_transfer_bytes_count",
                         protocol="filesystem") == len(ids)
            assert value(now, "deposit_services_submissions_in_progress") == 0
        sizes = sum(p.stat().st_size for p in daemon.target_dir.iterdir())
        assert value(now, "deposit_services_transfer_bytes_sum", protocol="filesystem") == sizes
        assert value(now, "deposit_services_messages_dead_lettered_total") == 0

        activemq.stop()
        wait_until(lambda: get(port, "/readyz")[0] == 503, 60, "/readyz 503", daemon.processes)
        _, body = get(port, "/readyz")
        failing = json.loads(body)["failing"]
        assert list(failing) == ["broker"], failing
        assert get(port, "/healthz")[0] == 200  # alive, not ready
        activemq.start()
        wait_until(lambda: get(port, "/readyz")[0] == 200, 90, "/readyz 200 again",
                   daemon.processes)
        assert value(samples(port), "deposit_services_errors_total", component="store") == 0
        assert_each_processed_once(daemon, ids, ["worker"])
    finally:
        daemon.stop_all()
