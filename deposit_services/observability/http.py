"""The worker's HTTP port (DEPOSIT_HTTP_PORT): metrics, health, and whatever app is mounted.

- ``/metrics``: Prometheus' text format (``Metrics.exposition``);
- ``/healthz``: 200 while the process answers;
- ``/readyz``: 200 when every readiness check passes, else 503 with a JSON body naming
  each failing part and why (broker not connected, records or worker state not
  reachable, configuration not loaded);
- any other path: the WSGI app given at construction (the web dashboard), else 404.

A small threaded ``wsgiref`` server on a daemon thread; ``close`` stops it. Request lines
are logged at DEBUG through ``logging`` (never to stderr raw), escaped as every record is.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from deposit_services.errors import ConfigurationError
from deposit_services.safetext import redact

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from deposit_services.observability.metrics import Metrics

log = logging.getLogger(__name__)

# name -> a check that returns None when that part is ready, else what is wrong
Check = Callable[[], str | None]
TEXT = "text/plain; charset=utf-8"
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class ThreadedWSGIServer(ThreadingMixIn, WSGIServer):
    """A WSGI server answering each request on a daemon thread (the worker's HTTP port
    and ``deposit-services web``)."""

    daemon_threads = True
    allow_reuse_address = True


class DebugLogRequestHandler(WSGIRequestHandler):
    """Request lines to ``logging`` at DEBUG (escaped as every record), never raw to
    stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s: %s", self.address_string(), format % args)


def run_checks(checks: Mapping[str, Check]) -> dict[str, str]:
    """The failing checks and why; a check that raises fails with its error."""
    failing: dict[str, str] = {}
    for name, check in checks.items():
        try:
            problem = check()
        except Exception as exc:  # noqa: BLE001 - a readiness probe reports, never raises
            problem = f"{type(exc).__name__}: {exc}"
        if problem is not None:
            failing[name] = redact(problem)
    return failing


class OpsApp:
    """The WSGI app: our three paths, everything else to ``fallback``."""

    def __init__(self, metrics: Metrics, checks: Mapping[str, Check],
                 fallback: WSGIApplication | None = None) -> None:
        self.metrics = metrics
        self.checks = dict(checks)
        self.fallback = fallback

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return _reply(start_response, "200 OK", PROMETHEUS_TEXT, self.metrics.exposition())
        if path == "/healthz":
            return _reply(start_response, "200 OK", TEXT, b"ok\n")
        if path == "/readyz":
            failing = run_checks(self.checks)
            if failing:
                log.warning("not ready: %s", "; ".join(f"{k}: {v}" for k, v in failing.items()))
                body = json.dumps({"ready": False, "failing": failing}).encode() + b"\n"
                return _reply(start_response, "503 Service Unavailable",
                              "application/json", body)
            return _reply(start_response, "200 OK", "application/json",
                          json.dumps({"ready": True, "checked": sorted(self.checks)}).encode()
                          + b"\n")
        if self.fallback is not None:
            return self.fallback(environ, start_response)
        return _reply(start_response, "404 Not Found", TEXT, b"not found\n")


def _reply(start_response: StartResponse, status: str, content_type: str, body: bytes
           ) -> list[bytes]:
    start_response(status, [("Content-Type", content_type),
                            ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store")])
    return [body]


class OpsServer:
    """``OpsApp`` served on ``host:port`` (port 0: a free one, see ``port``)."""

    def __init__(self, app: OpsApp, host: str, port: int) -> None:
        self.app = app
        try:
            self._server = make_server(host, port, app, server_class=ThreadedWSGIServer,
                                       handler_class=DebugLogRequestHandler)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot serve metrics and health on {host}:{port} ({exc.strerror or exc}): "
                "set DEPOSIT_HTTP_PORT to a free port (or unset it)") from exc
        self.host = host
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="http",
                                        daemon=True)

    def start(self) -> OpsServer:
        self._thread.start()
        log.info("metrics and health on http://%s:%d (/metrics, /healthz, /readyz)",
                 self.host, self.port)
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
