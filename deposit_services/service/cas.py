"""Compare-and-set with retry: re-read, re-check the precondition, re-apply."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from deposit_services.errors import Conflict, StaleVersion
from deposit_services.model.entities import Entity
from deposit_services.store.base import Store

E = TypeVar("E", bound=Entity)
log = logging.getLogger(__name__)

MAX_ATTEMPTS = 25


def update_with_retry(
    store: Store, cls: type[E], entity_id: str, change: Callable[[E], bool]
) -> tuple[E, bool]:
    """Apply ``change`` to a fresh copy of the entity and write it with compare-and-set.

    ``change`` mutates the entity in place and returns True to write it, or False when
    its precondition no longer holds (nothing is written). On a lost race the entity is
    read again and ``change`` re-applied. Returns the entity as stored and whether this
    call wrote it.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        entity = store.get(cls, entity_id)
        if not change(entity):
            return entity, False
        try:
            return store.update(entity), True
        except StaleVersion:
            log.debug("%s %s changed under us (attempt %d); re-reading", cls.TYPE, entity_id,
                      attempt)
            time.sleep(random.uniform(0, 0.01 * attempt))
    raise Conflict(f"{cls.TYPE} {entity_id}: gave up after {MAX_ATTEMPTS} conflicting writes")
