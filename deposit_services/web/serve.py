"""``deposit-services web``: the dashboard on its own HTTP server (threads, wsgiref).

For production put it behind a TLS-terminating proxy (the session cookie is marked
Secure when the proxy passes ``wsgi.url_scheme=https``), or mount ``create_app`` in the
HTTP server ``listen`` runs.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import sys
import threading
from types import FrameType
from wsgiref.simple_server import make_server

from deposit_services.entrypoints.command import EXIT_OK, bootstrap

# the threaded server and quiet handler the worker's HTTP port uses
from deposit_services.observability.http import DebugLogRequestHandler, ThreadedWSGIServer
from deposit_services.settings import Settings
from deposit_services.web.auth import hash_password

log = logging.getLogger(__name__)


def cmd_web(settings: Settings, args: argparse.Namespace) -> int:
    if args.hash_password:
        password = (getpass.getpass("password: ") if sys.stdin.isatty()
                    else sys.stdin.readline().rstrip("\n"))
        print(hash_password(password))
        return EXIT_OK
    from deposit_services.web.app import create_app

    app = bootstrap(settings)
    if app.search is not None:
        app.search.start()  # the dashboard's retries are indexed as they commit
    stop = threading.Event()
    try:
        server = make_server(args.host, args.port, create_app(app),
                             server_class=ThreadedWSGIServer,
                             handler_class=DebugLogRequestHandler)

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        host, port = args.host, server.server_port
        log.info("dashboard on http://%s:%s/ (read access: %s)", host, port,
                 settings.web_read_access)
        print(f"dashboard on http://{host}:{port}/", flush=True)
        server.serve_forever(poll_interval=0.5)
        server.server_close()
    finally:
        app.close()
    return EXIT_OK
