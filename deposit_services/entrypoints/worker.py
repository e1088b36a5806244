"""The worker: N consumer threads that take messages, process them and settle them.

A message is acked only after the state it leads to is committed (at-least-once): a
crash before that leaves it unacked and the broker delivers it again. A message that
can never succeed (malformed, an unknown id, any other error of ours that is not
``Transient``) is dead-lettered at once with the reason; a transient failure (the
store or a broker down) or an unexpected one (a bug) is nacked, redelivered a bounded
number of times, then dead-lettered. An idle consumer removes the published messages
from the outbox. ``stop`` lets the in-flight messages finish and settle before the
threads exit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from deposit_services.errors import DepositServicesError, MalformedMessage, NotFound, Transient
from deposit_services.messaging.base import Broker, Delivery
from deposit_services.model.messages import DepositStatusChanged, SubmissionReady, parse_message
from deposit_services.safetext import redact
from deposit_services.service.context import ServiceContext
from deposit_services.service.heartbeat import Heartbeat
from deposit_services.service.lifecycle import DepositProcessor
from deposit_services.service.submissions import SubmissionProcessor

log = logging.getLogger(__name__)

RECEIVE_TIMEOUT = 1.0


class MessageHandler:
    """Decodes one delivery and runs the service layer for it; settles the delivery."""

    def __init__(self, ctx: ServiceContext, broker: Broker, touch_interval: float) -> None:
        self.ctx = ctx
        self.broker = broker
        self.submissions = SubmissionProcessor(ctx)
        self.deposits = DepositProcessor(ctx)
        self.touch_interval = touch_interval

    def handle(self, delivery: Delivery) -> None:
        try:
            message = parse_message(delivery.body, delivery.headers)
        except MalformedMessage as exc:
            log.error("malformed message on %s dead-lettered: %s; body %.200r", delivery.queue,
                      exc, delivery.body)
            self.broker.dead_letter(delivery, redact(str(exc)))
            return
        try:
            with Heartbeat(self.touch_interval, lambda: self.broker.touch(delivery),
                           name=f"touch-{delivery.message_id}"):
                self.dispatch(message, redelivered=delivery.delivery_count > 1)
        except DepositServicesError as exc:
            self.ctx.metrics.error(exc)  # store and broker errors counted
            if isinstance(exc, Transient):
                log.warning("processing %s failed (delivery %d): %s; it will be redelivered",
                            delivery.body, delivery.delivery_count, exc)
                self.broker.nack(delivery, redact(f"{type(exc).__name__}: {exc}"))
                return
            reason = (f"unknown id: {exc}" if isinstance(exc, NotFound)
                      else f"{type(exc).__name__}: {exc}")
            log.error("message %s dead-lettered: %s", delivery.body, reason)
            self.broker.dead_letter(delivery, redact(reason))
            return
        except Exception as exc:
            log.exception("processing %s failed (delivery %d); it will be redelivered",
                          delivery.body, delivery.delivery_count)
            self.broker.nack(delivery, redact(f"{type(exc).__name__}: {exc}"))
            return
        self.broker.ack(delivery)

    def dispatch(self, message: SubmissionReady | DepositStatusChanged,
                 redelivered: bool = False) -> None:
        if isinstance(message, SubmissionReady):
            self.submissions.process(message.submission, redelivered=redelivered)
        else:
            self.deposits.process(message.deposit)


class Worker:
    """Runs ``concurrency`` consumer threads until ``stop`` is set."""

    def __init__(self, handler: MessageHandler, queues: Sequence[str], concurrency: int) -> None:
        self.handler = handler
        self.queues = list(queues)
        self.concurrency = concurrency

    def run(self, stop: threading.Event) -> None:
        threads = [
            threading.Thread(target=self._consume, args=(stop,), name=f"consumer-{n}")
            for n in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        log.info("worker consuming %s with %d threads", ", ".join(self.queues), self.concurrency)
        for thread in threads:
            thread.join()
        self._idle()
        log.info("worker stopped; in-flight messages settled")

    def _idle(self) -> None:
        """Nothing to do: remove what was published from the outbox now."""
        try:
            self.handler.ctx.database.flush_published()
        except DepositServicesError as exc:
            log.warning("outbox clean-up failed (%s); the next unit of work does it", exc)

    def _consume(self, stop: threading.Event) -> None:
        broker = self.handler.broker
        while not stop.is_set():
            try:
                delivery = broker.receive(self.queues, RECEIVE_TIMEOUT)
            except Exception:
                log.exception("receiving failed; retrying in 2 s")
                stop.wait(2.0)
                continue
            if delivery is None:
                self._idle()
                continue
            try:
                self.handler.handle(delivery)
            except Exception:
                log.exception("settling delivery %s failed; the broker will redeliver it",
                              delivery.message_id)
