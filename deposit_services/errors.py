"""The one exception tree of deposit-services.

Library exceptions (sqlalchemy, requests, paramiko, ftplib, stomp) are converted to
these at the adapter boundary with ``raise ... from exc``. The class decides what the
service layer does: a ``transient`` deposit error puts the Deposit in RETRY, any other
deposit error FAILS it, a message error dead-letters the message.

    DepositServicesError
    ├── Transient                   mixed into every error that may go away by itself
    ├── ConfigurationError          settings or repositories.json are wrong (exit 2)
    ├── ModelError                  a PASS entity graph or metadata blob is wrong
    │   └── GraphError              wrong type / dangling reference (names id and field)
    ├── StoreError                  the system of record
    │   ├── NotFound                no entity with that type and id
    │   ├── Conflict                a write lost a race
    │   │   ├── StaleVersion        compare-and-set on the version failed
    │   │   └── AlreadyExists       an insert hit an existing id / unique key
    │   └── StoreUnavailable        the store cannot be reached (transient)
    ├── SearchError                 the search index refused a request (bad query ...)
    │   └── SearchUnavailable       the search index cannot be reached (transient)
    ├── MessagingError
    │   ├── MalformedMessage        a body we cannot decode (dead-lettered at once)
    │   └── BrokerUnavailable       the broker cannot be reached (transient)
    └── DepositError                one deposit cannot proceed; becomes statusMessage
        ├── AssemblyError           a package cannot be built (unreadable file, ...)
        │   └── TransientAssemblyError  disk full, a download that broke -> RETRY
        ├── RepositoryConfigError   no / unusable repositories.json entry
        └── TransferError           the transport failed
            ├── TransientTransferError   connect refused, timeout, 5xx, 429 -> RETRY
            │   └── OutcomeUnknown       sent whole, no answer: the target is asked first
            └── PermanentTransferError   auth, 4xx, server error document -> FAILED
                └── AuthenticationError
"""

from __future__ import annotations


class DepositServicesError(Exception):
    """Base of every error this package raises on purpose."""


class Transient(DepositServicesError):
    """A fault that may go away by itself (an outage, a time-out, a full disk): the
    work is tried again later. Mixed into the transient classes of each branch."""


class ConfigurationError(DepositServicesError):
    """Settings or repositories.json are invalid; ``problems`` lists every one found."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or [message]
        super().__init__(message)


class ModelError(DepositServicesError):
    """A PASS entity, graph or metadata blob is not usable."""


class GraphError(ModelError):
    """A graph entity has a wrong type or a reference to nothing."""


class StoreError(DepositServicesError):
    """The system of record failed."""


class NotFound(StoreError):
    """No entity of that type with that id."""


class Conflict(StoreError):
    """A write lost a race with another writer."""


class StaleVersion(Conflict):
    """A compare-and-set update found a newer version than the one it read."""


class AlreadyExists(Conflict):
    """An insert found an entity with the same id or unique key."""


class StoreUnavailable(StoreError, Transient):
    """The store cannot be reached right now; try again later."""


class SearchError(DepositServicesError):
    """The search index refused a request (a query it cannot parse, a bad mapping)."""


class SearchUnavailable(SearchError, Transient):
    """The search index cannot be reached or is overloaded: indexing catches up later."""


class MessagingError(DepositServicesError):
    """The broker or a message failed."""


class MalformedMessage(MessagingError):
    """A message body that cannot be decoded into a command."""


class BrokerUnavailable(MessagingError, Transient):
    """The broker cannot be reached right now."""


class DepositError(DepositServicesError):
    """One deposit cannot proceed. ``Transient`` ones are retried, others fail it."""


class AssemblyError(DepositError):
    """A package could not be built (a file cannot be read, bad options, ...)."""


class TransientAssemblyError(AssemblyError, Transient):
    """A package could not be built for a reason that may go away (disk full, quota,
    a download that broke or a server that answered 5xx)."""


class RepositoryConfigError(DepositError):
    """The repository has no usable entry in repositories.json."""


class TransferError(DepositError):
    """The transport could not hand the package over."""


class TransientTransferError(TransferError, Transient):
    """A fault that may go away: connection refused, timeout, 5xx, 429."""


class OutcomeUnknown(TransientTransferError):
    """A transfer went out (every byte sent) and no answer came, so the target may hold
    the package. Any transport raises it instead of a plain transient fault when sending
    again could deposit twice: the attempt stays open in the attempt log ("outcome
    unknown"), and the next attempt, on whichever replica, first asks the target
    (``Transport.reconcile``) whether it holds the package."""


class PermanentTransferError(TransferError):
    """A fault that will not go away by retrying: 4xx, error document, bad package."""


class AuthenticationError(PermanentTransferError):
    """The target refused our credentials."""
