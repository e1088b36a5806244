"""The ops HTTP server on a real socket: /metrics, /healthz, /readyz (503 naming each
failing check, a raising check included, secrets masked), other paths to the mounted
app or 404."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator

import pytest

from deposit_services.observability.http import Check, OpsApp, OpsServer
from deposit_services.observability.metrics import Metrics

DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(server: OpsServer, path: str) -> tuple[int, str, str]:
    try:
        with DIRECT.open(f"http://127.0.0.1:{server.port}{path}", timeout=5) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def dashboard(environ: dict[str, object], start_response: object) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/html")])  # type: ignore[operator]
    return [f"dashboard {environ['PATH_INFO']}".encode()]


@pytest.fixture
def state() -> dict[str, str | None]:
    return {"broker": None, "records": None}


@pytest.fixture
def server(state: dict[str, str | None]) -> Iterator[OpsServer]:
    def broken() -> str | None:
        if state["records"] == "raise":
            raise RuntimeError("connect to postgresql://deposit:hunter22@db/x failed")
        return state["records"]

    checks: dict[str, Check] = {"broker": lambda: state["broker"], "records": broken}
    ops = OpsServer(OpsApp(Metrics(), checks), "127.0.0.1", 0).start()
    yield ops
    ops.close()


def test_health_metrics_and_unknown_paths(server: OpsServer) -> None:
    assert get(server, "/healthz")[::2] == (200, "ok\n")
    status, kind, body = get(server, "/metrics")
    assert status == 200 and kind.startswith("text/plain; version=0.0.4")
    assert "deposit_services_errors_total" in body
    assert get(server, "/elsewhere")[0] == 404


def test_readyz_names_each_failing_part(server: OpsServer, state: dict[str, str | None]
                                        ) -> None:
    status, _, body = get(server, "/readyz")
    assert status == 200 and json.loads(body) == {"ready": True,
                                                  "checked": ["broker", "records"]}
    state["broker"] = "not connected to the broker"
    status, kind, body = get(server, "/readyz")
    assert status == 503 and kind == "application/json"
    assert json.loads(body)["failing"] == {"broker": "not connected to the broker"}
    state["records"] = "raise"
    failing = json.loads(get(server, "/readyz")[2])["failing"]
    assert set(failing) == {"broker", "records"}
    assert "RuntimeError" in failing["records"] and "hunter22" not in failing["records"]
    state.update(broker=None, records=None)
    assert get(server, "/readyz")[0] == 200


def test_other_paths_go_to_the_mounted_app() -> None:
    ops = OpsServer(OpsApp(Metrics(), {}, fallback=dashboard), "127.0.0.1", 0).start()
    try:
        assert get(ops, "/deposits/7")[::2] == (200, "dashboard /deposits/7")
        assert get(ops, "/healthz")[2] == "ok\n"
    finally:
        ops.close()


def test_a_port_in_use_is_a_configuration_error_naming_the_setting(server: OpsServer) -> None:
    from deposit_services.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="DEPOSIT_HTTP_PORT"):
        OpsServer(OpsApp(Metrics(), {}), "127.0.0.1", server.port)
