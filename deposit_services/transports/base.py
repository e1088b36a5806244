"""The transport port: hand a Package to a repository and say what happened.

A transport is built once per repository from its ``transport-config`` entry
(``protocol-binding`` for the transfer, ``auth-realms`` for status documents) and may
be used from several threads. Adapters are registered by protocol name in
``TRANSPORTS`` and imported lazily. Library errors become ``TransientTransferError``
(retry later) or ``PermanentTransferError`` (fail now) at this boundary.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from deposit_services.assemblers.base import Package
from deposit_services.clock import Clock, SystemClock
from deposit_services.errors import RepositoryConfigError
from deposit_services.model.submission import DepositSubmission
from deposit_services.registry import load_adapter


@dataclass(frozen=True)
class TransportContext:
    """What a transport may need besides its binding: HTTP agent, auth realms, hints,
    and the clock (dated directories are the UTC date of its ``now``)."""

    user_agent: str = "deposit-services"
    auth_realms: tuple[Mapping[str, Any], ...] = ()
    clock: Clock = field(default_factory=SystemClock)


@dataclass(frozen=True)
class Receipt:
    """The outcome of a transfer.

    ``accepted``: the repository took custody at once (Deposit ACCEPTED, copy COMPLETE);
    otherwise the deposit is SUBMITTED and ``status_ref`` is followed later.
    """

    accepted: bool
    status_ref: str | None = None
    access_url: str | None = None
    external_ids: tuple[str, ...] = ()
    message: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PriorItem:
    """The item an earlier deposit of the same work left at this repository, which a
    corrected resubmission updates instead of creating a second item.

    ``status_ref``, ``access_url`` and ``external_ids`` are what the earlier deposit
    recorded (Deposit.depositStatusRef, RepositoryCopy.accessUrl/externalIds);
    ``evidence`` is its attempt log's details (e.g. ``edit_iri``, ``em_iri``,
    ``record_id``), as ``Receipt.details`` returned them.
    """

    status_ref: str | None = None
    access_url: str | None = None
    external_ids: tuple[str, ...] = ()
    evidence: Mapping[str, str] = field(default_factory=dict)


class Binding(BaseModel):
    """Base of each transport's protocol-binding model. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    protocol: str


class Transport(ABC):
    """Sends packages with one protocol. Subclasses set ``protocol`` and ``binding_model``."""

    protocol: ClassVar[str]
    binding_model: ClassVar[type[Binding]] = Binding

    def __init__(self, binding: Mapping[str, Any], context: TransportContext | None = None) -> None:
        self.binding = parse_binding(self.binding_model, binding)
        self.context = context or TransportContext()

    @abstractmethod
    def send(self, package: Package, submission: DepositSubmission) -> Receipt:
        """Transfer ``package``. Idempotent where the protocol allows: a package already
        at the target under its final name with the same size is not sent again. Raise
        ``OutcomeUnknown`` when the package went out and whether the target took it
        cannot be known (no answer came): the attempt stays open and ``reconcile`` runs
        before the next attempt sends anything, on whichever replica."""

    def reconcile(self, package: Package, evidence: Mapping[str, str]) -> Receipt | None:
        """After a worker died between sending ``package`` and recording the outcome, or
        a send raised ``OutcomeUnknown``: the Receipt if the target already holds it,
        None if it does not (it is sent again).

        ``evidence`` is what the attempt log kept of that attempt (``edit_iri``,
        ``status_ref``, ``access_url`` when known) and the submission's ``title``. Raise
        a TransferError when the outcome cannot be told: the deposit is then FAILED for
        the operator to check, never sent twice blindly. Default: None, because ``send``
        itself recognises a package already at the target under its final name and size
        (filesystem; the file drops, SFTP and FTP, override this only to look in the
        dated directory of the attempt's own day, see ``drop.DropTransport``); protocols
        without that (SWORD) override this.
        """
        return None

    #: True where ``update`` replaces an existing item (SWORDv2 Edit-IRI, a new
    #: InvenioRDM/Zenodo version); False where a resubmission can only be a new package.
    supports_update: ClassVar[bool] = False

    def update(self, package: Package, submission: DepositSubmission,
               prior: PriorItem) -> Receipt:
        """Replace the content and metadata of the item ``prior`` names with ``package``
        (a corrected resubmission). Only called where ``supports_update`` is True."""
        raise NotImplementedError(f"{self.protocol} cannot update an existing item")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; default: nothing to release."""


def parse_binding(model: type[Binding], binding: Mapping[str, Any]) -> Any:
    try:
        return model.model_validate(dict(binding))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(binding)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise RepositoryConfigError(f"protocol-binding is invalid: {problems}") from exc


# protocol (lower case) -> "module:Class"
TRANSPORTS: dict[str, str] = {
    "filesystem": "deposit_services.transports.filesystem:FilesystemTransport",
    "devnull": "deposit_services.transports.devnull:DevNullTransport",
    "swordv2": "deposit_services.transports.sword.transport:SwordV2Transport",
    "sword1": "deposit_services.transports.sword.v1:Sword1Transport",
    "sftp": "deposit_services.transports.sftp:SftpTransport",
    "ftp": "deposit_services.transports.ftp:FtpTransport",
    "dspace": "deposit_services.transports.dspace.transport:DSpaceTransport",
    "dtool": "deposit_services.transports.dtool.transport:DtoolTransport",
    "inveniordm": "deposit_services.transports.invenio.rdm:InvenioRdmTransport",
    "zenodo": "deposit_services.transports.invenio.zenodo:ZenodoTransport",
}


def transport_class(protocol: str) -> type[Transport]:
    cls: type[Transport] = load_adapter(TRANSPORTS, protocol.strip().lower(), Transport,
                                        "transport protocol", RepositoryConfigError)
    return cls


def create_transport(
    binding: Mapping[str, Any], context: TransportContext | None = None
) -> Transport:
    protocol = str(binding.get("protocol", ""))
    if not protocol:
        raise RepositoryConfigError("protocol-binding has no 'protocol'")
    return transport_class(protocol)(binding, context)
