"""The Broker port's dead-letter operations, as ``deposit-services dead-letters`` uses
them: list with reasons (without consuming), requeue one as a new message, purge."""

from __future__ import annotations

import time
from typing import Any

from deposit_services.messaging.base import Broker, DeadLetter


def _listed(broker: Broker, queue: str, expected: int, timeout: float = 20.0
            ) -> list[DeadLetter]:
    deadline = time.monotonic() + timeout
    while True:
        letters = broker.dead_letters([queue])
        if len(letters) == expected or time.monotonic() > deadline:
            return letters
        time.sleep(0.2)


def test_dead_letters_are_listed_requeued_and_purged(kit: Any) -> None:
    broker = kit.make(max_deliveries=1)
    queue = kit.queue("dl")
    for n in range(3):
        broker.publish(queue, f'{{"n": {n}}}', {"type": "SubmissionReady"})
    for _ in range(3):
        delivery = broker.receive([queue], timeout=10)
        assert delivery is not None
        broker.dead_letter(delivery, f"bad message {delivery.body}")
    letters = _listed(broker, queue, 3)
    assert sorted(d.body for d in letters) == ['{"n": 0}', '{"n": 1}', '{"n": 2}']
    assert all(d.reason == f"bad message {d.body}" and d.queue == queue for d in letters)
    assert len({d.id for d in letters}) == 3 and all(d.id for d in letters)
    assert len(_listed(broker, queue, 3)) == 3, "listing consumes nothing"

    first, second, third = sorted(letters, key=lambda d: d.body)
    assert broker.requeue_dead_letters([first.id], [queue]) == [first.id]
    delivery = broker.receive([queue], timeout=10)
    assert delivery is not None and delivery.body == first.body
    assert delivery.delivery_count == 1, "a requeued message starts its count again"
    assert delivery.headers.get("type") == "SubmissionReady"
    broker.ack(delivery)

    assert broker.purge_dead_letters([second.id, "no-such-id"], [queue]) == [second.id]
    left = _listed(broker, queue, 1)
    assert [d.id for d in left] == [third.id]
    assert broker.purge_dead_letters(None, [queue]) == [third.id]
    assert _listed(broker, queue, 0) == []
    assert broker.receive([queue], timeout=1) is None, "purged letters are not requeued"
