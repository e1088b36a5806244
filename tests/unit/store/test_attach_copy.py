"""``RecordSession.attach`` works on a copy: nothing the unit changes in it, however
deep, reaches the entity an earlier unit read."""

from __future__ import annotations

from deposit_services.model.entities import AggregatedDepositStatus, Submission
from deposit_services.store.memory import MemoryDatabase


def test_changes_to_an_attached_entity_leave_the_original_as_it_was() -> None:
    original = Submission(id="s1", repositories=["r1"], grants=["g1"],
                          aggregated_deposit_status=AggregatedDepositStatus.IN_PROGRESS,
                          passExtra={"nested": [{"k": "v"}]})
    original.version = 4
    before = original.model_dump(by_alias=True)
    with MemoryDatabase().unit_of_work() as uow:
        copy = uow.records.attach(original)
        assert copy is not original
        assert copy == original and copy.version == 4
        copy.repositories.append("r2")
        copy.grants.clear()
        extra = copy.model_extra
        assert extra is not None
        extra["passExtra"]["nested"][0]["k"] = "changed"
        copy.aggregated_deposit_status = AggregatedDepositStatus.ACCEPTED
        assert uow.records.attach(original) is copy  # once per unit
    assert original.model_dump(by_alias=True) == before
    assert original.version == 4
