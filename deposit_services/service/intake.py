"""Intake: a pass-core JSON graph written into the store and announced (``submit``).

The whole graph is one unit of work (all or nothing). Entities the store already has
(Users, Repositories, Journals shared between submissions) are kept as they are; the
Submission itself must be new: submitting the same graph twice is refused, never
duplicated. SubmissionReady is published after the commit; if that fails, the
submission is still ready in the store and the ``unstarted`` job processes it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

from deposit_services.errors import DepositServicesError, GraphError
from deposit_services.messaging.base import Broker
from deposit_services.model.entities import Entity, Repository, Submission
from deposit_services.model.graph import Graph, resolve_file_uris
from deposit_services.model.messages import SubmissionReady
from deposit_services.store.uow import Database, UnitOfWork, get_or_none, run_unit

log = logging.getLogger(__name__)


class SubmissionExists(DepositServicesError):
    """The graph's Submission is already in the store."""


def load_submission_graph(path: Path, files_dir: Path | None) -> Graph:
    """The graph with its File uris resolved against ``files_dir`` (default: the graph's
    directory), which its Submission keeps as the one directory its local files may be
    read from (besides DEPOSIT_FILE_ROOTS)."""
    base = (files_dir or path.parent).resolve()
    graph = resolve_file_uris(Graph.load(path), base)
    graph.submission.files_root = str(base)
    return graph


def store_graph(uow: UnitOfWork, graph: Graph) -> Submission:
    """Add the graph's entities the store lacks (one batched read per type) and its
    Submission, which must be new. Repositories are matched by their repositoryKey
    too: a store that assigns its own ids (pass-core) already holds them under others,
    and the graph's references are pointed at those. Returns the Submission as stored
    (its id is the store's)."""
    submission = graph.submission
    existing = get_or_none(uow, Submission, submission.id)
    if existing is not None:
        raise SubmissionExists(
            f"submission {submission.id} is already in the store "
            f"(aggregatedDepositStatus {existing.aggregated_deposit_status}); not submitted again"
        )
    by_type: dict[type[Entity], list[Entity]] = defaultdict(list)
    for entity in graph.entities:
        if entity is not submission:
            by_type[type(entity)].append(entity)
    same: dict[str, str] = {}  # graph Repository id -> the stored one's
    for cls, entities in by_type.items():
        present = {e.id: e for e in uow.records.get_many(cls, [e.id for e in entities])}
        for entity in entities:
            stored = present.get(entity.id)
            if isinstance(stored, Repository) and isinstance(entity, Repository) and (
                    stored.repository_key != entity.repository_key):
                raise GraphError(
                    f"Repository {entity.id} is stored with repositoryKey "
                    f"{stored.repository_key!r}; the graph gives it {entity.repository_key!r}: "
                    "correct the graph (a stored repository is not changed by a submission)")
            if stored is not None:
                continue
            if isinstance(entity, Repository) and entity.repository_key:
                known = uow.records.find(Repository, repository_key=entity.repository_key)
                if known:
                    same[entity.id] = known[0].id
                    continue
            uow.records.add(entity.model_copy(deep=True))
    stored = submission.model_copy(deep=True)
    stored.repositories = [same.get(r, r) for r in stored.repositories]
    return uow.records.add(stored)


def submit_graph(database: Database, broker: Broker, graph: Graph, queue: str) -> Submission:
    """Store every entity of ``graph`` in one unit, then publish SubmissionReady (unless
    the system of record announces it itself, as pass-core does)."""
    stored = run_unit(database, lambda uow: store_graph(uow, graph),
                      what=f"submission {graph.submission.id} intake")
    if database.announces_changes:
        log.info("submission %s stored (as %s); the system of record announces it",
                 graph.submission.id, stored.id)
        return stored
    broker.publish(queue, SubmissionReady(stored.id).to_json(), {"type": "SubmissionReady"})
    log.info("submission %s stored and announced on %s", stored.id, queue)
    return stored
