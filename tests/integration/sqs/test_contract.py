"""The broker port's shared test bodies, run on SQS (moto in server mode).

The very bodies the local queue, ActiveMQ and RabbitMQ are held to
(tests/integration/stomp/test_brokers.py and test_worker_on_brokers.py): every one of
them that asks for ``broker_kit`` is collected here too, where ``broker_kit`` is the SQS
kit (conftest.py). A promise added there is kept by SQS as well, or fails here. The
STOMP-only ones (``stomp_kit``: prefetch, reconnection) are left out.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

from tests.integration.stomp import test_brokers, test_worker_on_brokers


def _shared(module: ModuleType) -> dict[str, Callable[..., Any]]:
    return {
        name: value for name, value in vars(module).items()
        if name.startswith("test_") and callable(value)
        and "broker_kit" in inspect.signature(value).parameters
    }


SHARED = {**_shared(test_brokers), **_shared(test_worker_on_brokers)}
globals().update(SHARED)  # pytest collects them as this module's tests


def test_the_shared_bodies_are_here() -> None:
    """Guard: the imports found the bodies (a move there must not empty this module)."""
    assert len(_shared(test_brokers)) >= 6, sorted(SHARED)
    assert _shared(test_worker_on_brokers), sorted(SHARED)
