"""``deposit-services listen``: the daemon. Messages on worker threads, the scheduled
jobs, the HTTP port (metrics, health, dashboard) and the search relay, until
SIGTERM/SIGINT; a second signal aborts (EXIT_ABORTED)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from dataclasses import replace
from types import FrameType

from deposit_services import __version__
from deposit_services.entrypoints.command import EXIT_ABORTED, EXIT_OK, bootstrap
from deposit_services.settings import Settings

log = logging.getLogger(__name__)


def cmd_listen(settings: Settings, args: argparse.Namespace) -> int:
    from deposit_services.entrypoints.progress import say_what_listen_waits_for
    from deposit_services.entrypoints.worker import MessageHandler, Worker
    from deposit_services.observability.ops import Operations

    log.info("deposit-services %s; settings (secrets masked): %s", __version__,
             " ".join(f"{name}={value}" for name, value in settings.masked().items()))
    app = bootstrap(settings)
    try:
        app.database.check()
    except BaseException:
        app.close()
        raise
    stop = threading.Event()
    from deposit_services.web.app import create_app

    # metrics; with DEPOSIT_HTTP_PORT /metrics, /readyz, and the dashboard on other paths
    ops = Operations(app, fallback=create_app(app)).start()
    if app.search is not None:
        app.search.start()  # writes to the index what this and other processes commit
    ctx = replace(app.context(), metrics=ops.metrics)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            abort(name)
        stop.set()
        # the store is read on a thread of its own, never inside the handler
        threading.Thread(target=say_what_listen_waits_for, args=(ctx, name, EXIT_ABORTED),
                         daemon=True, name="stopping").start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    jobs = None
    try:
        if settings.jobs_disabled:
            log.info("scheduled jobs disabled (PASS_DEPOSIT_JOBS_DISABLED)")
        else:
            from deposit_services.entrypoints.jobs import Jobs

            jobs = Jobs(ctx, settings)
            # the message threads keep their own lease owner; a RETRY they record wakes
            # the retry job at its time
            ctx = replace(ctx, retry_scheduled=jobs.wake_retry)
            jobs.start()
        handler = MessageHandler(ctx, ops.broker,
                                 touch_interval=max(settings.lease_seconds / 3, 0.2))
        worker = Worker(handler, [settings.queue_submission, settings.queue_deposit],
                        settings.workers_concurrency)
        worker.run(stop)
    finally:
        if jobs is not None:
            jobs.shutdown()
        ops.close()
        app.close()
    return EXIT_OK


def abort(signal_name: str) -> None:
    """Second signal: exit now. Safe: every transfer writes to a temporary name and its
    intent is in the attempt log, so the next start reconciles it (and leases run out)."""
    log.warning("%s received again: aborting the transfers in flight and exiting (%d); "
                "they are reconciled and resumed on the next start", signal_name,
                EXIT_ABORTED)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(EXIT_ABORTED)
