"""Intake: a pass-core JSON graph written into the store and announced (``submit``).

Entities the store already has (Users, Repositories, Journals shared between
submissions) are kept as they are; the Submission itself must be new: submitting the
same graph twice is refused, never duplicated.
"""

from __future__ import annotations

import logging
from pathlib import Path

from deposit_services.errors import AlreadyExists, DepositServicesError, NotFound
from deposit_services.messaging.base import Broker
from deposit_services.model.entities import Entity, Submission
from deposit_services.model.graph import Graph, resolve_file_uris
from deposit_services.model.messages import SubmissionReady
from deposit_services.store.base import Store

log = logging.getLogger(__name__)


class SubmissionExists(DepositServicesError):
    """The graph's Submission is already in the store."""


def load_submission_graph(path: Path, files_dir: Path | None) -> Graph:
    graph = Graph.load(path)
    return resolve_file_uris(graph, files_dir or path.parent)


def submit_graph(store: Store, broker: Broker, graph: Graph, queue: str) -> Submission:
    """Store every entity of ``graph`` (the Submission last) and publish SubmissionReady."""
    submission = graph.submission
    try:
        existing = store.get(Submission, submission.id)
    except NotFound:
        existing = None
    if existing is not None:
        raise SubmissionExists(
            f"submission {submission.id} is already in the store "
            f"(aggregatedDepositStatus {existing.aggregated_deposit_status}); not submitted again"
        )
    with store.atomic():
        for entity in graph.entities:
            if entity is submission:
                continue
            _add_if_absent(store, entity)
        try:
            stored = store.add(submission)
        except AlreadyExists as exc:
            raise SubmissionExists(f"submission {submission.id} is already in the store") from exc
    broker.publish(queue, SubmissionReady(stored.id).to_json(), {"type": "SubmissionReady"})
    log.info("submission %s stored and announced on %s", stored.id, queue)
    return stored


def _add_if_absent(store: Store, entity: Entity) -> None:
    try:
        store.get(type(entity), entity.id)
    except NotFound:
        store.add(entity)
