"""A test repository switched up, down (transient faults) or refusing (permanent
faults) by the test, with a transport for it that can update items: the health,
duplicate and update rules of the service layer tested without a network.

``protocol-binding``: ``{"protocol": "switch", "server": "<name in SERVERS>",
"updates": true|false}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from deposit_services.assemblers.base import Package
from deposit_services.errors import PermanentTransferError, TransientTransferError
from deposit_services.model.submission import DepositSubmission
from deposit_services.transports.base import Binding, PriorItem, Receipt, Transport

UP, DOWN, REFUSING = "up", "down", "refusing"


@dataclass
class SwitchServer:
    mode: str = UP
    items: dict[str, list[str]] = field(default_factory=dict)  # item id -> package names
    calls: list[str] = field(default_factory=list)  # "send" / "update <item>" in order

    def take(self, package: Package, item: str | None) -> Receipt:
        self.calls.append("send" if item is None else f"update {item}")
        if self.mode == DOWN:
            raise TransientTransferError("connection refused (the test switched it down)")
        if self.mode == REFUSING:
            raise PermanentTransferError("package refused (the test made it refuse)")
        if item is None:
            item = f"item-{len(self.items) + 1}"
        self.items.setdefault(item, []).append(package.name)
        return Receipt(accepted=True, access_url=f"https://switch.test/{item}",
                       external_ids=(item,), details={"edit_iri": f"https://switch.test/{item}"})


SERVERS: dict[str, SwitchServer] = {}


class SwitchBinding(Binding):
    server: str
    updates: bool = False


class SwitchTransport(Transport):
    protocol: ClassVar[str] = "switch"
    binding_model = SwitchBinding

    def __init__(self, binding: Any, context: Any = None) -> None:
        super().__init__(binding, context)
        self.server = SERVERS[self.binding.server]
        self.supports_update = bool(self.binding.updates)  # type: ignore[misc]

    def send(self, package: Package, submission: DepositSubmission) -> Receipt:
        return self.server.take(package, None)

    def update(self, package: Package, submission: DepositSubmission,
               prior: PriorItem) -> Receipt:
        item = prior.evidence["edit_iri"].rsplit("/", 1)[-1]
        return self.server.take(package, item)
