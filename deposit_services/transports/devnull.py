"""devnull transport: reads the package to its end and keeps nothing (benchmarks, tests)."""

from __future__ import annotations

from deposit_services.assemblers.base import CHUNK_SIZE, Package
from deposit_services.model.submission import DepositSubmission
from deposit_services.transports.base import Receipt, Transport


class DevNullTransport(Transport):
    protocol = "devnull"

    def send(self, package: Package, submission: DepositSubmission) -> Receipt:
        with package.open() as src:
            while src.read(CHUNK_SIZE):
                pass
        return Receipt(accepted=True, message="discarded by the devnull transport")
