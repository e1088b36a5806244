"""File-drop transports (SFTP, FTP): the upload algorithm, written once, and what the
protocols share (PASS's binding keys, the dated directory, temporary names, the receipt).

A drop is complete when the whole package stands under its final name: it is first
written to a hidden ``.<name>.<random>.part`` name in the same directory, its size is
checked, then it is renamed; a failure on the way removes the temporary file (best
effort: a later successful attempt removes leftovers of earlier ones). Package names
and bytes are deterministic, so a final name that already holds the package's size is
the same package sent before (not sent again); a different size is something an
operator must look at.

``DropTransport`` runs that algorithm (``send``, ``reconcile``) on a ``DropSession``: the
few primitive remote operations a protocol provides (stat, mkdir -p, upload, rename,
remove, list) over one connection whose library errors the protocol maps to
TransientTransferError / PermanentTransferError. ``ftp.py`` and ``sftp.py`` provide only
those primitives, the connection and their error mapping.

With a dated ``default-directory`` (``%s``), a worker that died after sending and is
restarted on a later day would look for the package in a new directory and send it
again: ``earlier_directories`` names the directories of the attempt's own day (and the
day after, for an attempt begun just before midnight), which ``reconcile`` checks first.

Receipt: ACCEPTED at once, like the filesystem transport, unless the binding names a
``status-source``. A file drop has no status document to follow; once the whole package
stands under its final name the repository has custody and ingests it by its own
process. Recording SUBMITTED without a status reference would leave the deposit, and so
the submission, unfinished forever. With ``"status-source": "nihms-email"`` (PubMed
Central: NIHMS reports each package only by its "Bulk submission" mails) the deposit is
SUBMITTED with ``nihms-package:<package id>`` and followed by ``deposit_services.nihms_mail``.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr

from deposit_services.assemblers.base import Package
from deposit_services.errors import PermanentTransferError, TransientTransferError
from deposit_services.model.submission import DepositSubmission
from deposit_services.nihms_mail.refs import STATUS_SOURCE, package_id, package_ref
from deposit_services.transports.base import Binding, Receipt, Transport

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"


class DropBinding(Binding):
    """PASS's keys for a server that receives files (``server-fqdn`` ... ``default-directory``)."""

    server_fqdn: str = Field(alias="server-fqdn", min_length=1)
    server_port: int | None = Field(default=None, alias="server-port", ge=1, le=65535)
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    default_directory: str = Field(default="", alias="default-directory")
    connect_timeout: float = Field(default=30.0, alias="connect-timeout", gt=0)
    read_timeout: float = Field(default=120.0, alias="read-timeout", gt=0)
    status_source: Literal["nihms-email"] | None = Field(default=None, alias="status-source")
    """Who reports what became of a package: none (ACCEPTED once it stands there) or
    ``nihms-email`` (SUBMITTED until NIHMS's mail about it is read)."""


def dated_directory(template: str, now: datetime) -> str:
    """``default-directory`` with each ``%s`` replaced by the UTC date (yyyy-MM-dd) of
    ``now`` (the transport's clock: ``TransportContext.clock``)."""
    day = now.astimezone(UTC).strftime("%Y-%m-%d")
    directory = template.replace("%s", day).strip()
    return directory.rstrip("/") or ("/" if directory.startswith("/") else "")


def earlier_directories(template: str, started_at: str | None, now: datetime) -> list[str]:
    """The dated directories an attempt begun at ``started_at`` (ISO 8601, from the
    attempt log) may have written to, other than today's (``send`` checks that one);
    empty when ``template`` has no ``%s`` or the start is unknown."""
    if "%s" not in template or not started_at:
        return []
    try:
        start = datetime.fromisoformat(started_at)
    except ValueError:
        return []
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    today = dated_directory(template, now)
    found: list[str] = []
    for day in (start, start + timedelta(days=1)):
        if day > now:
            break
        directory = dated_directory(template, day)
        if directory != today and directory not in found:
            found.append(directory)
    return found


def directory_prefixes(directory: str) -> list[str]:
    """``a/b/c`` -> ``[a, a/b, a/b/c]`` (absolute paths keep their leading slash)."""
    parts = [p for p in directory.split("/") if p and p != "."]
    prefix = "/" if directory.startswith("/") else ""
    out: list[str] = []
    for part in parts:
        prefix = posixpath.join(prefix, part) if prefix else part
        out.append(prefix)
    return out


def temp_name(final_name: str) -> str:
    """A hidden name, unique per attempt, for the upload in progress."""
    return f".{final_name}.{os.urandom(6).hex()}{PART_SUFFIX}"


def is_leftover_part(name: str, final_name: str) -> bool:
    """True for a temporary name this package's earlier (failed) attempts could have left
    (exactly ``temp_name``'s shape: another package's temporary files never match)."""
    return re.fullmatch(rf"\.{re.escape(final_name)}\.[0-9a-f]{{12}}{re.escape(PART_SUFFIX)}", name
                        ) is not None


def check_existing(location: str, remote_size: int, package_size: int) -> None:
    """Raise unless the file already under the final name is this package (same size)."""
    if remote_size != package_size:
        raise PermanentTransferError(
            f"{location} already exists with {remote_size} bytes but this package has "
            f"{package_size}; it is not ours or a damaged earlier upload: remove it from the "
            "server (or tell the repository), then retry the deposit"
        )


def drop_url(scheme: str, host: str, port: int, path: str) -> str:
    """``scheme://host:port/path`` for the package's final location."""
    if not path.startswith("/"):
        path = "/" + path
    return f"{scheme}://{host}:{port}{quote(path)}"


def drop_receipt(url: str, size: int, already_present: bool, name: str = "",
                 status_source: str | None = None) -> Receipt:
    """Accepted at once: the complete package ``name`` stands under its final name; with
    a ``status_source``, SUBMITTED with the ref it follows (see module docs)."""
    message = (
        f"{url} already held this package ({size} bytes); not sent again"
        if already_present
        else f"delivered to {url} ({size} bytes, size verified)"
    )
    if status_source == STATUS_SOURCE:
        package = package_id(name)
        return Receipt(accepted=False, status_ref=package_ref(package), access_url=url,
                       external_ids=(url,),
                       message=f"{message}; waiting for NIHMS's Bulk submission email "
                               f"about package {package}")
    return Receipt(accepted=True, access_url=url, external_ids=(url,), message=message)


class DropSession(ABC):
    """One open connection to a drop server: the primitives ``DropTransport`` builds on.

    ``directory`` is as ``dated_directory`` gives it (absolute, or relative to the login
    directory; ``""`` is the login directory), ``name`` a file name in it. Primitives
    raise the library's own errors (``faults``); the transport's ``connect`` maps them.
    """

    faults: ClassVar[tuple[type[BaseException], ...]]
    """The library's errors that mean "this remote operation failed"."""

    @abstractmethod
    def make_directories(self, directory: str) -> None:
        """``mkdir -p directory``; a name in the way that is not a directory is an error."""

    @abstractmethod
    def is_directory(self, directory: str) -> bool:
        """True if ``directory`` exists (False if not; other faults raise)."""

    @abstractmethod
    def size(self, directory: str, name: str) -> int | None:
        """The size of file ``name``; None when there is no such file."""

    @abstractmethod
    def upload(self, directory: str, name: str, package: Package) -> None:
        """Write the package's bytes to ``name`` (created or truncated)."""

    @abstractmethod
    def rename(self, directory: str, old: str, new: str) -> None:
        """Rename ``old`` to ``new`` in ``directory`` (atomically where the server can)."""

    @abstractmethod
    def remove(self, directory: str, name: str) -> None:
        """Delete file ``name``; one that is not there (any more) is not an error."""

    @abstractmethod
    def names(self, directory: str) -> list[str]:
        """The names of the entries of ``directory`` (no paths)."""

    @abstractmethod
    def url(self, directory: str, name: str) -> str:
        """The URL of ``name`` as the receipt gives it (``drop_url``)."""

    def abandon(self, directory: str, name: str) -> None:
        """Remove the temporary file of a failed upload. Never raises: the failure that
        led here is the error to report; a file left behind is removed by the next
        successful attempt."""
        try:
            self.remove(directory, name)
        except self.faults as exc:
            log.warning("could not remove temporary file %s: %s", remote_path(directory, name), exc)


class DropTransport(Transport):
    """``send`` and ``reconcile`` of a file drop, on a protocol's ``DropSession``."""

    binding: DropBinding

    @abstractmethod
    def connect(self, directory: str) -> AbstractContextManager[DropSession]:
        """A connected, logged-in session; the library's errors raised in the ``with``
        block leave it as TransferErrors. ``directory`` is the one the session is for
        (named in the advice of a permission error)."""

    def send(self, package: Package, submission: DepositSubmission) -> Receipt:
        directory = dated_directory(self.binding.default_directory, self.context.clock.now())
        with self.connect(directory) as session:
            return _deliver(session, package, directory, self.binding.status_source)

    def reconcile(self, package: Package, evidence: Mapping[str, str]) -> Receipt | None:
        """The package in the dated directory of the attempt's own day, if it is there
        (``send`` then checks today's, see ``earlier_directories``)."""
        earlier = earlier_directories(self.binding.default_directory, evidence.get("started_at"),
                                      self.context.clock.now())
        if not earlier:
            return None
        with self.connect(earlier[0]) as session:
            for directory in earlier:
                if session.is_directory(directory):
                    receipt = _already_there(session, package, directory,
                                             self.binding.status_source)
                    if receipt is not None:
                        return receipt
        return None


def _deliver(session: DropSession, package: Package, directory: str,
             status_source: str | None) -> Receipt:
    """Upload to a temporary name, check its size, rename; unless it is there already."""
    session.make_directories(directory)
    already = _already_there(session, package, directory, status_source)
    if already is not None:
        return already
    url = session.url(directory, package.name)
    temp = temp_name(package.name)
    try:
        session.upload(directory, temp, package)
        size = session.size(directory, temp)
        if size != package.size:
            held = "no file" if size is None else f"{size} of {package.size} bytes"
            raise TransientTransferError(f"{url}: the server holds {held} after the upload")
        session.rename(directory, temp, package.name)
    except BaseException:
        session.abandon(directory, temp)
        raise
    log.info("uploaded %s (%d bytes) to %s", package.name, package.size, url)
    _remove_leftovers(session, directory, package.name)
    return drop_receipt(url, package.size, already_present=False, name=package.name,
                        status_source=status_source)


def _already_there(session: DropSession, package: Package, directory: str,
                   status_source: str | None) -> Receipt | None:
    """The receipt for the package standing in ``directory`` under its final name with
    its size (leftovers of earlier attempts removed); None if it is not there."""
    existing = session.size(directory, package.name)
    if existing is None:
        return None
    url = session.url(directory, package.name)
    check_existing(url, existing, package.size)
    log.info("%s already holds %s with the same size; not sent again", url, package.name)
    _remove_leftovers(session, directory, package.name)
    return drop_receipt(url, package.size, already_present=True, name=package.name,
                        status_source=status_source)


def _remove_leftovers(session: DropSession, directory: str, name: str) -> None:
    """Remove temporary files of earlier failed attempts at this package (best effort:
    stops at the first failure, the connection may be gone; the next attempt retries)."""
    try:
        for entry in session.names(directory):
            if is_leftover_part(entry, name):
                session.remove(directory, entry)
    except session.faults as exc:
        log.warning("could not remove leftovers of %s in %s: %s", name, directory or ".", exc)


def remote_path(directory: str, name: str) -> str:
    """``directory/name``; just ``name`` in the login directory (``""``)."""
    return posixpath.join(directory, name) if directory else name
