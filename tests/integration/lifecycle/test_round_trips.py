"""Round trips to the store, counted as the database's transactions (SQLAlchemy's
``begin`` events) on SQLite and PostgreSQL: one SubmissionReady with R deposit
repositories costs at most 1 + 2R (claim; intent and outcome per deposit), ``submit``
one, the DepositStatus message our own outcome produced one read and no write, and
``status`` one read whatever the number of submissions."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import event

from deposit_services.entrypoints.reports import status_report
from deposit_services.messaging.base import Broker, Delivery
from deposit_services.model.entities import (
    AggregatedDepositStatus,
    Deposit,
    DepositStatus,
    Submission,
)
from deposit_services.model.graph import Graph, resolve_file_uris
from deposit_services.service.context import WorkerMemory
from deposit_services.service.intake import submit_graph
from deposit_services.service.lifecycle import DepositProcessor
from deposit_services.service.submissions import SubmissionProcessor
from tests.integration.lifecycle.conftest import FS_REPO, SWORD_REPO, World
from tests.support.graphs import make_graph, write_graph


@dataclass
class Counted:
    transactions: int = 0
    writes: list[str] = field(default_factory=list)


@contextmanager
def counting(world: World) -> Iterator[Counted]:
    """Transactions begun and writing statements run on the world's database."""
    counted = Counted()
    engine = world.store.engine

    def begun(conn: Any) -> None:
        counted.transactions += 1

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if sql.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            counted.writes.append(sql)

    event.listen(engine, "begin", begun)
    event.listen(engine, "before_cursor_execute", statement)
    try:
        yield counted
    finally:
        event.remove(engine, "begin", begun)
        event.remove(engine, "before_cursor_execute", statement)


class RecordingBroker(Broker):
    """Keeps what is published (the store is what is counted here, not a broker)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str]] = []

    def publish(self, queue: str, body: str, headers: Mapping[str, str] | None = None) -> None:
        self.published.append((queue, body))

    def receive(self, queues: Sequence[str], timeout: float) -> Delivery | None:
        return None

    def ack(self, delivery: Delivery) -> None: ...

    def nack(self, delivery: Delivery, reason: str) -> None: ...

    def dead_letter(self, delivery: Delivery, reason: str) -> None: ...


def test_submit_is_one_transaction(make_world: Callable[..., World]) -> None:
    world = make_world()
    path = write_graph(world.root / "one.json",
                       make_graph("one", world.root / "files", repositories=[FS_REPO]))
    graph = resolve_file_uris(Graph.load(path), world.root / "files")
    broker = RecordingBroker()
    world.store.find(Submission)  # a database in use (its first unit checks the schema)
    with counting(world) as counted:
        submit_graph(world.ctx.database, broker, graph, "submission")
    assert counted.transactions == 1
    assert broker.published == [
        ("submission", '{"submission": "one", "type": "SubmissionReady"}')]
    for entity in graph.entities:  # all of it, in that one transaction
        assert world.store.get(type(entity), entity.id).version == 1


def test_one_repository_costs_three_transactions(make_world: Callable[..., World]) -> None:
    world = make_world()
    world.seed("r1", [FS_REPO])
    with counting(world) as counted:
        SubmissionProcessor(world.ctx).process("r1")
    assert counted.transactions <= 3, counted.transactions
    assert world.deposit_of("r1").deposit_status is DepositStatus.ACCEPTED
    assert (world.store.get(Submission, "r1").aggregated_deposit_status
            is AggregatedDepositStatus.ACCEPTED)


def test_two_repositories_cost_five_transactions(make_world: Callable[..., World]) -> None:
    world = make_world(**{"check-collection": False})
    world.seed("r2", [FS_REPO, SWORD_REPO])
    with counting(world) as counted:
        SubmissionProcessor(world.ctx).process("r2")
    assert counted.transactions <= 5, counted.transactions
    statuses = sorted(str(d.deposit_status) for d in world.store.find(Deposit, submission="r2"))
    assert statuses == ["ACCEPTED", "SUBMITTED"]


def test_our_own_deposit_status_message_costs_no_write(make_world: Callable[..., World]) -> None:
    world = make_world()
    world.seed("own", [FS_REPO])
    SubmissionProcessor(world.ctx).process("own")
    assert world.notified, "the outcome announces the deposit (DepositStatus)"
    before = world.deposit_of("own")
    with counting(world) as counted:  # the worker that recorded it: nothing to read
        for deposit_id in world.notified:
            DepositProcessor(world.ctx).process(deposit_id)
    assert counted.transactions == 0
    other = replace(world.ctx, memory=WorkerMemory())  # a replica that did not
    with counting(world) as counted:
        for deposit_id in world.notified:
            DepositProcessor(other).process(deposit_id)
    assert counted.transactions == len(world.notified)  # one read each
    assert counted.writes == []
    assert world.deposit_of("own").version == before.version


def test_a_deposit_status_message_settles_what_racing_outcomes_left_open(
    make_world: Callable[..., World],
) -> None:
    """Two deposits of one submission recorded by replicas at the same moment may each
    see the other still open; the DepositStatus message settles the submission."""
    world = make_world()
    world.seed("race", [FS_REPO])
    SubmissionProcessor(world.ctx).process("race")
    submission = world.store.get(Submission, "race")
    submission.aggregated_deposit_status = AggregatedDepositStatus.IN_PROGRESS
    world.store.update(submission)  # as if the outcome had not seen itself settle it
    other = replace(world.ctx, memory=WorkerMemory())
    DepositProcessor(other).process(world.deposit_of("race").id)
    assert (world.store.get(Submission, "race").aggregated_deposit_status
            is AggregatedDepositStatus.ACCEPTED)


def test_status_report_is_one_read_whatever_the_number(make_world: Callable[..., World]) -> None:
    world = make_world()
    for n in range(6):
        world.seed(f"s{n}", [FS_REPO])
        SubmissionProcessor(world.ctx).process(f"s{n}")
    with counting(world) as counted:
        report = status_report(world.ctx.database)
    assert counted.transactions == 1
    assert counted.writes == []
    assert [s["id"] for s in report] == [f"s{n}" for n in range(6)]
    assert all(s["deposits"][0]["attempts"] == 1 for s in report)
    assert all(s["deposits"][0]["repositoryCopy"]["copyStatus"] == "COMPLETE" for s in report)
