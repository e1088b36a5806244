"""Intake: a pass-core JSON graph written into the store and announced (``submit``).

The whole graph is one unit of work (all or nothing). Entities the store already has
(Users, Repositories, Journals shared between submissions) are kept as they are; the
Submission itself must be new: submitting the same graph twice is refused, never
duplicated, unless ``replace`` is asked for a submission that never started or FAILED
before any deposit was made (its graph fixed, e.g. a manuscript added).

SubmissionReady goes into the store's outbox in the intake's own transaction
(``UnitOfWork.publish``): it is published right after the commit, and if the broker
cannot take it, it stays in the outbox and a running worker's outbox job relays it.
So a broker that is down never loses a stored submission's announcement, and the
operator is not told to submit again what is already stored. (With the local queue in
the store's database the message is written into the queue in that same transaction.)
A graph whose Submission has ``submitted: false`` is stored and not announced.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from deposit_services.errors import DepositServicesError, GraphError
from deposit_services.messaging.base import Broker
from deposit_services.model.entities import (
    AggregatedDepositStatus,
    Deposit,
    Entity,
    Repository,
    Submission,
)
from deposit_services.model.graph import Graph, resolve_file_uris
from deposit_services.model.messages import SubmissionReady
from deposit_services.store.base import OutboxMessage
from deposit_services.store.uow import Database, UnitOfWork, get_or_none, run_unit

log = logging.getLogger(__name__)


class SubmissionExists(DepositServicesError):
    """The graph's Submission is already in the store (and may not be replaced)."""


# Statuses whose graph ``submit --replace`` may replace: nothing was deposited yet.
REPLACEABLE = (None, AggregatedDepositStatus.NOT_STARTED, AggregatedDepositStatus.FAILED)


@dataclass(frozen=True)
class Intake:
    """What ``submit`` did: the Submission as stored, whether an existing one was
    replaced, and how it was announced: ``announced`` True (the broker took
    SubmissionReady, or the system of record announces it itself), False (stored but
    not announced, see ``waiting``)."""

    submission: Submission
    replaced: bool
    announced: bool
    waiting: str | None = None


def load_submission_graph(path: Path, files_dir: Path | None) -> Graph:
    """The graph with its File uris resolved against ``files_dir`` (default: the graph's
    directory), which its Submission keeps as the one directory its local files may be
    read from (besides DEPOSIT_FILE_ROOTS)."""
    base = (files_dir or path.parent).resolve()
    graph = resolve_file_uris(Graph.load(path), base)
    graph.submission.files_root = str(base)
    return graph


def _replaceable(uow: UnitOfWork, existing: Submission, replace: bool) -> None:
    """Raise SubmissionExists unless ``existing`` may have its graph replaced."""
    status = existing.aggregated_deposit_status
    shown = status.value if status is not None else "not set"
    if not replace:
        hint = (" (to store a corrected graph in its place: submit --replace)"
                if status in REPLACEABLE else "")
        raise SubmissionExists(
            f"submission {existing.id} is already in the store (aggregatedDepositStatus "
            f"{shown}); not submitted again{hint}")
    if status not in REPLACEABLE:
        raise SubmissionExists(
            f"submission {existing.id} is {shown}: only a NOT_STARTED or FAILED submission's "
            "graph can be replaced (one in progress or finished is left as it is)")
    if uow.records.find(Deposit, submission=existing.id):
        raise SubmissionExists(
            f"submission {existing.id} already has deposits: its graph is not replaced "
            "(use retry for its FAILED deposits)")


def store_graph(uow: UnitOfWork, graph: Graph) -> Submission:
    """``store_or_replace`` of a new Submission only."""
    return store_or_replace(uow, graph, replace=False)[0]


def store_or_replace(uow: UnitOfWork, graph: Graph, replace: bool
                     ) -> tuple[Submission, bool]:
    """Add the graph's entities the store lacks (one batched read per type) and its
    Submission, which must be new, or (``replace``) NOT_STARTED or FAILED with no
    deposit: then it takes the graph's fields and starts again as NOT_STARTED.
    Repositories are matched by their repositoryKey too: a store that assigns its own
    ids (pass-core) already holds them under others, and the graph's references are
    pointed at those. Returns the Submission as stored (its id is the store's) and
    whether it replaced one."""
    submission = graph.submission
    existing = get_or_none(uow, Submission, submission.id)
    if existing is not None:
        _replaceable(uow, existing, replace)
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
    if existing is None:
        return uow.records.add(stored), False
    for name in Submission.model_fields:  # changed in place: a compare-and-set at commit
        if name not in ("id", "version"):
            setattr(existing, name, getattr(stored, name))
    existing.aggregated_deposit_status = AggregatedDepositStatus.NOT_STARTED
    existing.status_message = None
    return existing, True


def submit_graph(database: Database, broker: Broker, graph: Graph, queue: str) -> Submission:
    """Store every entity of ``graph`` in one unit, then publish SubmissionReady on
    ``broker`` (unless the system of record announces it itself, as pass-core does):
    for callers whose database has no outbox publisher wired (tests, benchmarks)."""
    stored = run_unit(database, lambda uow: store_graph(uow, graph),
                      what=f"submission {graph.submission.id} intake")
    if database.announces_changes:
        log.info("submission %s stored (as %s); the system of record announces it",
                 graph.submission.id, stored.id)
        return stored
    broker.publish(queue, SubmissionReady(stored.id).to_json(), {"type": "SubmissionReady"})
    log.info("submission %s stored and announced on %s", stored.id, queue)
    return stored


def intake_graph(database: Database, graph: Graph, queue: str, *,
                 replace: bool = False) -> Intake:
    """Store every entity of ``graph`` in one unit with SubmissionReady in its outbox
    (unless the system of record announces it itself, as pass-core does, or the
    submission is not ``submitted``); it is published after the commit. Whether the
    broker took it is in the result: if not, it stays in the outbox for a worker."""
    waiting = None if graph.submission.submitted else "submitted is false"
    announce = waiting is None and not database.announces_changes

    def intake(uow: UnitOfWork) -> tuple[Submission, bool]:
        stored, replaced = store_or_replace(uow, graph, replace)
        if announce:
            uow.publish(queue, SubmissionReady(stored.id).to_json(),
                        {"type": "SubmissionReady"})
        return stored, replaced

    failures: list[BaseException] = []
    publisher = database.publisher
    if announce and publisher is not None:
        def watched(message: OutboxMessage) -> None:
            try:
                publisher(message)
            except BaseException as exc:
                failures.append(exc)
                raise

        database.publisher = watched
    try:
        stored, replaced = run_unit(database, intake,
                                    what=f"submission {graph.submission.id} intake")
    finally:
        database.publisher = publisher
    if waiting is not None:
        log.info("submission %s stored, not announced (%s)", stored.id, waiting)
        return Intake(stored, replaced, announced=False, waiting=waiting)
    if not announce:
        log.info("submission %s stored (as %s); the system of record announces it",
                 graph.submission.id, stored.id)
        return Intake(stored, replaced, announced=True)
    if failures:
        return Intake(stored, replaced, announced=False,
                      waiting=f"the broker did not take SubmissionReady ({failures[-1]})")
    # its outbox row goes with the claim (SubmissionProcessor.claim): no transaction here
    log.info("submission %s stored and announced on %s", stored.id, queue)
    return Intake(stored, replaced, announced=True)
