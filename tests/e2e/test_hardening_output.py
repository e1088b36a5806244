"""The real CLI (``python -m deposit_services``) prints and logs no credential, no forged
line and no unbounded value; wrong settings exit 2 naming the variable."""

from __future__ import annotations

import json

from deposit_services.messaging.local import LocalBroker
from deposit_services.model.entities import AggregatedDepositStatus, Deposit, Submission
from tests.e2e.conftest import Daemon, wait_until

SECRETS = ("store-pw", "store-pw2", "amq-pw", "es-token", "pc-pw", "cfg-token", "origin-sig")


def test_config_show_prints_no_credential(daemon: Daemon) -> None:
    daemon.env.update({
        "DEPOSIT_STORE_URL": "postgresql://me:store-pw@db.example:5432/deposits"
                             "?password=store-pw2&sslmode=require",
        "DEPOSIT_BROKER_URL": "stomp+ssl://amq:amq-pw@broker.example:61614",
        "PASS_ELASTICSEARCH_URL": "http://es.example:9200/?token=es-token",
        "PASS_CORE_URL": "https://pc:pc-pw@pass.example",
        "DEPOSIT_FILE_ORIGINS": "https://files.example/?sig=origin-sig",
    })
    result = daemon.cli("config", "show")
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr, secret
    assert ("postgresql://me:***@db.example:5432/deposits?password=***&sslmode=require"
            in result.stdout)
    assert "stomp+ssl://amq:***@broker.example:61614" in result.stdout
    assert "http://es.example:9200/?token=***" in result.stdout


def test_a_bogus_log_level_exits_2_with_the_reason(daemon: Daemon) -> None:
    daemon.env["DEPOSIT_LOG_LEVEL"] = "bogus"
    daemon.env["DEPOSIT_BROKER_URL"] = "amqp://guest:amq-pw@rabbit.example:5672"
    result = daemon.cli("config", "show", check=False)
    assert result.returncode == 2
    assert "DEPOSIT_LOG_LEVEL='bogus': use one of DEBUG, INFO, WARNING, ERROR, CRITICAL" \
        in result.stderr
    assert "DEPOSIT_BROKER_URL='amqp://guest:***@rabbit.example:5672': unknown scheme" \
        in result.stderr
    assert "amq-pw" not in result.stderr and result.stdout == ""


def test_status_shows_hostile_values_on_their_own_line_and_json_exact(daemon: Daemon) -> None:
    daemon.cli("status")  # creates the store
    store = daemon.store()
    try:
        store.add(Submission(id="s1\nFAKE-ROW", aggregated_deposit_status=(
            AggregatedDepositStatus.FAILED), status_message="see\x1b[2J"))
        store.add(Deposit(id="d1", submission="s1\nFAKE-ROW", status_message=(
            "SWORD deposit to https://alice:sword-pw@sword.example/col failed: 401")))
    finally:
        store.close()
    table = daemon.cli("status").stdout
    assert len(table.splitlines()) == 3
    assert not any(line.startswith("FAKE-ROW") for line in table.splitlines())
    assert "sword-pw" not in table and "\x1b" not in table
    assert "https://alice:***@sword.example/col" in table
    data = json.loads(daemon.cli("status", "--json").stdout)
    assert data[0]["id"] == "s1\nFAKE-ROW" and data[0]["statusMessage"] == "see\x1b[2J"
    assert data[0]["deposits"][0]["statusMessage"] == (
        "SWORD deposit to https://alice:***@sword.example/col failed: 401")


def test_the_listen_log_has_no_forged_line_no_huge_line_and_no_credential(
    daemon: Daemon,
) -> None:
    daemon.env["PASS_ELASTICSEARCH_URL"] = "http://es.example:9200/?token=es-token"
    daemon.data_dir.mkdir(parents=True, exist_ok=True)
    forged = "nope\n2026-01-01 00:00:00,000 ERROR   MainThread FAKE: injected line"
    huge = "x" * (10 * 1024 * 1024)
    broker = LocalBroker(daemon.env["DEPOSIT_STORE_URL"])
    try:
        broker.publish("submission", json.dumps({"submission": forged,
                                                 "type": "SubmissionReady"}))
        broker.publish("submission", json.dumps({"submission": huge,
                                                 "type": "SubmissionReady"}))
        daemon.listen()
        wait_until(lambda: len(broker.dead_letters()) == 2, 60, "two dead letters",
                   daemon.processes)
    finally:
        broker.close()
    daemon.stop_all()
    log = daemon.log_text()
    lines = log.splitlines()
    assert "http://es.example:9200/?token=***" in log and "es-token" not in log
    # the forged record is logged inside the real one, escaped: no line of its own
    assert any("nope\\n2026-01-01 00:00:00,000 ERROR" in line for line in lines)
    assert not any(line.startswith(("2026-01-01 00:00:00,000", "FAKE")) for line in lines)
    assert max(len(line) for line in lines) < 10_000  # the 10 MB id is not logged whole
