"""deposits_total follows a deposit's life on the SWORD test server: SUBMITTED when the
package is taken, ACCEPTED when the statement says archived, nothing more for a status
that does not move; the transfer is counted with its protocol and size."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from deposit_services.model.entities import DepositStatus
from deposit_services.observability.metrics import Metrics
from deposit_services.service.lifecycle import DepositProcessor
from deposit_services.service.submissions import SubmissionProcessor
from tests.integration.lifecycle.conftest import (  # the fixtures this test runs on
    SWORD_REPO,
    World,
    make_world,  # noqa: F401
    sword_server,  # noqa: F401
)


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def outcomes(metrics: Metrics) -> dict[str, float]:
    return {dict(labels)["status"]: value for (name, labels), value in samples(metrics).items()
            if name == "deposit_services_deposits_total"
            and dict(labels)["repository"] == "dspace"}


def test_deposit_outcomes_counted_as_they_are_recorded(
        make_world: Callable[..., World]) -> None:  # noqa: F811 - the fixture
    world = make_world()
    metrics = world.ctx.metrics
    world.seed("met-1", [SWORD_REPO])
    SubmissionProcessor(world.ctx).process("met-1")
    deposit = world.deposit_of("met-1")
    assert deposit.deposit_status is DepositStatus.SUBMITTED
    assert outcomes(metrics) == {"SUBMITTED": 1}
    found = samples(metrics)
    assert found[("deposit_services_transfer_attempts_total",
                  (("protocol", "SWORDv2"), ("result", "ok")))] == 1
    [remote] = world.server.deposits
    size = found[("deposit_services_transfer_bytes_sum", (("protocol", "SWORDv2"),))]
    received = world.server.deposits[remote]
    assert received is not None and size == received.size

    processor = DepositProcessor(world.ctx)
    processor.process(deposit.id)  # still in progress: no outcome
    assert outcomes(metrics) == {"SUBMITTED": 1}
    world.server.set_state(remote, "archived")
    processor.process(deposit.id)
    assert world.deposit_of("met-1").deposit_status is DepositStatus.ACCEPTED
    processor.process(deposit.id)  # a duplicate message: nothing moves, nothing counted
    assert outcomes(metrics) == {"SUBMITTED": 1, "ACCEPTED": 1}
