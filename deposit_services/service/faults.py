"""Fault injection for crash tests: kill the process at a named point of the work.

Enabled only by ``DEPOSIT_FAULT_INJECTION=<point>`` (Settings.fault_injection); never set
it in production. The process ends with ``os._exit`` (no cleanup, no flush of pending
transactions, as SIGKILL would), so tests can check that a restart recovers.

Points:
- ``crash-after-transfer``: right after the transport returned, before the outcome is
  recorded (the attempt log then holds an intent without an outcome).
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

CRASH_AFTER_TRANSFER = "crash-after-transfer"
POINTS = (CRASH_AFTER_TRANSFER,)
EXIT_CODE = 137  # what a shell reports for SIGKILL


def fault_point(configured: str | None, point: str) -> None:
    """Exit the process at once if ``configured`` names ``point``."""
    if configured != point:
        return
    log.critical("fault injection: exiting at %s (DEPOSIT_FAULT_INJECTION)", point)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(EXIT_CODE)
