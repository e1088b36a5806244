"""Heartbeat: call a function every few seconds while a block of work runs.

Used to renew leases (a deposit's claim, a local-queue message's invisibility) so a
live worker keeps them however long a transfer takes, and a dead one loses them soon.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(
        self, interval: float, beat: Callable[[], object], name: str = "heartbeat"
    ) -> None:
        self._interval = interval
        self._beat = beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._beat()
            except Exception:  # a failed renewal must not kill the work it guards
                log.warning("heartbeat %s failed", self._thread.name, exc_info=True)
