"""Pre-flight checks of deposit targets: prove, without depositing, that a deposit to a
repository could succeed (``deposit-services check-target``).

For each repositories.json entry, in order, stopping at the first failure:

``config``   the assembler and the transport build from the entry;
``package``  the package of a small sample submission (generated files in a temporary
             directory) assembles;
``target``   the server answers and accepts the credentials, and the destination is
             usable: SWORDv2 the collection is in the service document (with the
             packaging, mediation and size checks a deposit makes); SWORD 1.3 an
             ``X-No-Op`` deposit of the real package is accepted; SFTP/FTP the directory
             exists or can be made and a probe file is written, renamed and removed (the
             drop transport's own session primitives); filesystem the same locally;
             DSpace the account logs in and the collection's handle is found;
             InvenioRDM the token lists the account's records and the community, if
             one is configured, is found; Zenodo the token lists the depositions;
             dtool a probe dataset is written at the base URI and removed, dserver
             answers, accepts the credentials and lets that user register datasets on
             the base URI.

Every failure says what to fix. Done here with the transports' public pieces rather
than a method on the Transport port, so the port stays small; a protocol without a
check here is reported as ``skip``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from deposit_services.assemblers.base import Assembler, Package, create_assembler
from deposit_services.clock import Clock, SystemClock
from deposit_services.config.repositories import RepositoriesConfig, RepositoryConfig
from deposit_services.errors import AuthenticationError, DepositServicesError
from deposit_services.model.entities import FileRole
from deposit_services.model.submission import (
    ArticleMetadata,
    DepositFile,
    DepositSubmission,
    JournalMetadata,
    Person,
    PersonType,
)
from deposit_services.transports.base import Transport, TransportContext, create_transport

log = logging.getLogger(__name__)

OK, FAIL, SKIP = "ok", "fail", "skip"
PROBE_BYTES = b"deposit-services check-target probe\n"


@dataclass(frozen=True)
class Check:
    """One check of one repository: ``status`` is ok, fail or skip; ``detail`` says what
    was proven, or what is wrong and what to fix."""

    repository: str
    check: str
    status: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.status != FAIL


def sample_submission(directory: Path) -> DepositSubmission:
    """A small, complete submission with a generated manuscript under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    manuscript = directory / "check-target-manuscript.txt"
    manuscript.write_text("deposit-services check-target sample manuscript\n" * 50,
                          encoding="utf-8")
    author = Person(type=PersonType.AUTHOR, full_name="Sample Author", first_name="Sample",
                    last_name="Author", email="author@example.org")
    return DepositSubmission(
        id="check-target-sample",
        submitted_date=datetime(2024, 1, 1, tzinfo=UTC),
        article=ArticleMetadata(title="check-target sample", doi="10.1234/check-target",
                                publication_date="2024-01-01"),
        journal=JournalMetadata(title="Journal of Checks", nlmta="J Checks"),
        persons=(author, Person(type=PersonType.SUBMITTER, full_name="Sample Author",
                                email="author@example.org")),
        files=(DepositFile(id="check-target-file", name=manuscript.name,
                           location=str(manuscript), role=FileRole.MANUSCRIPT,
                           mime_type="text/plain", root=str(directory)),),
    )


def check_targets(config: RepositoriesConfig, keys: Sequence[str] = (),
                  user_agent: str = "deposit-services", clock: Clock | None = None
                  ) -> list[Check]:
    """The checks of the repositories named by ``keys`` (all when empty), in order."""
    folded = {k.casefold(): k for k in config.entries}
    checks: list[Check] = []
    for wanted in keys or list(config.entries):
        key = folded.get(wanted.casefold())
        if key is None:
            known = ", ".join(sorted(config.entries)) or "none"
            checks.append(Check(wanted, "config", FAIL,
                                f"no repository {wanted!r} in {config.source} (known: "
                                f"{known}); name a configured repository"))
            continue
        checks.extend(_check_one(config, config.entries[key], user_agent,
                                 clock or SystemClock()))
    return checks


def _check_one(config: RepositoriesConfig, entry: RepositoryConfig, user_agent: str,
               clock: Clock) -> list[Check]:
    key = entry.key
    protocol = str(entry.protocol_binding.get("protocol", ""))
    try:
        assembler = create_assembler(entry.assembler.specification, entry.assembler.options,
                                     template_dirs=config.template_dirs)
        transport = create_transport(entry.protocol_binding, TransportContext(
            user_agent=user_agent, clock=clock,
            auth_realms=tuple(r.model_dump(by_alias=True) for r in entry.auth_realms)))
    except DepositServicesError as exc:
        return [Check(key, "config", FAIL,
                      f"{exc}; correct the repositories.json entry {key!r}")]
    checks = [Check(key, "config", OK, f"{entry.assembler.specification} over {protocol}")]
    try:
        with tempfile.TemporaryDirectory(prefix="check-target-") as tmp:
            work = Path(tmp)
            submission = sample_submission(work / "files")
            package = _assemble(assembler, submission, work, clock, key, checks)
            if package is not None:
                checks.append(_check_target(key, transport, package, submission, work))
    finally:
        transport.close()
    return checks


def _assemble(assembler: Assembler, submission: DepositSubmission, work: Path, clock: Clock,
              key: str, checks: list[Check]) -> Package | None:
    out = work / "package"
    out.mkdir()
    try:
        package = assembler.assemble(submission, out, clock.now())
    except DepositServicesError as exc:
        checks.append(Check(key, "package", FAIL,
                            f"the sample package does not assemble: {exc}; correct the "
                            "assembler section (specification, options, templates)"))
        return None
    checks.append(Check(key, "package", OK,
                        f"{package.name} ({package.size} bytes, {package.specification})"))
    return package


def _check_target(key: str, transport: Transport, package: Package,
                  submission: DepositSubmission, work: Path) -> Check:
    checker = _checker_for(transport)
    if checker is None:
        return Check(key, "target", SKIP,
                     f"no pre-flight check for protocol {transport.protocol}")
    try:
        return Check(key, "target", OK, checker(transport, package, submission, work))
    except AuthenticationError as exc:
        return Check(key, "target", FAIL, f"credentials refused: {exc}")
    except DepositServicesError as exc:
        return Check(key, "target", FAIL, str(exc))


Checker = Callable[[Transport, Package, DepositSubmission, Path], str]


def _checker_for(transport: Transport) -> Checker | None:
    from deposit_services.transports.devnull import DevNullTransport
    from deposit_services.transports.drop import DropTransport
    from deposit_services.transports.dspace.transport import DSpaceTransport
    from deposit_services.transports.dtool.transport import DtoolTransport
    from deposit_services.transports.filesystem import FilesystemTransport
    from deposit_services.transports.invenio.rdm import InvenioRdmTransport
    from deposit_services.transports.invenio.zenodo import ZenodoTransport
    from deposit_services.transports.sword.transport import SwordV2Transport
    from deposit_services.transports.sword.v1 import Sword1Transport

    table: list[tuple[type[object], Checker]] = [
        (Sword1Transport, _sword1), (SwordV2Transport, _sword2), (DropTransport, _drop),
        (FilesystemTransport, _filesystem), (DevNullTransport, _devnull),
        (DSpaceTransport, _dspace), (InvenioRdmTransport, _invenio_rdm),
        (ZenodoTransport, _zenodo), (DtoolTransport, _dtool),
    ]
    return next((check for cls, check in table if isinstance(transport, cls)), None)


def _sword1(transport: Transport, package: Package, submission: DepositSubmission,
            work: Path) -> str:
    from deposit_services.errors import PermanentTransferError
    from deposit_services.transports.sword.v1 import Sword1Transport

    assert isinstance(transport, Sword1Transport)
    receipt = transport.deposit(package, submission, no_op=True)
    collection = receipt.details.get("collection", "")
    if receipt.details.get("no_op") != "true":
        raise PermanentTransferError(
            f"{collection} answered the X-No-Op deposit without sword:noOp true: the server "
            "may ignore X-No-Op and have stored the sample package; check the repository "
            "and remove it")
    return (f"X-No-Op deposit of {package.name} to {collection} accepted "
            f"(HTTP {receipt.details.get('http_status')}); nothing stored")


def _sword2(transport: Transport, package: Package, submission: DepositSubmission,
            work: Path) -> str:
    from deposit_services.transports.sword.transport import SwordV2Transport

    assert isinstance(transport, SwordV2Transport)
    document = transport.service_document(refresh=True)  # proves server and credentials
    collection = transport.choose_collection(submission)
    # the same collection, packaging, mediation and size checks a deposit makes
    transport.check_collection(collection, package)
    return (f"{collection} is in the service document {transport.binding.service_doc} "
            f"({len(document.collections)} collections) and accepts "
            f"{package.specification}")


def _drop(transport: Transport, package: Package, submission: DepositSubmission,
          work: Path) -> str:
    from deposit_services.errors import PermanentTransferError
    from deposit_services.transports.drop import DropTransport, dated_directory

    assert isinstance(transport, DropTransport)
    directory = dated_directory(transport.binding.default_directory,
                                transport.context.clock.now())
    probe = _probe_package(work)
    final = f"deposit-services-check-{os.urandom(4).hex()}.txt"
    temp = f".{final}.part"
    user = transport.binding.username
    shown = directory or "(login directory)"
    steps: list[str] = []  # the library's errors become ours as they leave the ``with``
    try:
        with transport.connect(directory) as session:
            steps.append("create the directory")
            session.make_directories(directory)
            steps.append("write a probe file")
            session.upload(directory, temp, probe)
            steps.append("rename the probe file")
            try:
                session.rename(directory, temp, final)
            except BaseException:
                session.abandon(directory, temp)
                raise
            url = session.url(directory, final)
            steps.append("remove the probe file")
            session.remove(directory, final)
    except PermanentTransferError as exc:
        if not steps:  # host, host key and login faults say what to do themselves
            raise
        raise PermanentTransferError(
            f"cannot {steps[-1]} in {shown}: {exc}; give {user!r} permission to create, "
            "write, rename and delete files there (or correct default-directory)"
        ) from exc
    return f"directory {shown} is usable: probe {url} written, renamed and removed"


def _filesystem(transport: Transport, package: Package, submission: DepositSubmission,
                work: Path) -> str:
    from deposit_services.errors import PermanentTransferError
    from deposit_services.transports.filesystem import FilesystemTransport

    assert isinstance(transport, FilesystemTransport)
    base = transport.binding.base_dir
    if not base.is_dir() and not transport.binding.create_if_missing:
        raise PermanentTransferError(
            f"baseDir {base} does not exist and createIfMissing is false; create it or "
            "set createIfMissing to true")
    name = f"deposit-services-check-{os.urandom(4).hex()}.txt"
    temp = base / f".{name}.part"
    try:
        base.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(PROBE_BYTES)
        os.replace(temp, base / name)
        (base / name).unlink()
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise PermanentTransferError(
            f"baseDir {base} is not writable: {exc}; give the worker's user write "
            "permission on it (or correct baseDir)") from exc
    return f"baseDir {base} is usable: probe written, renamed and removed"


def _devnull(transport: Transport, package: Package, submission: DepositSubmission,
             work: Path) -> str:
    return "devnull discards packages: nothing to check"


def _dspace(transport: Transport, package: Package, submission: DepositSubmission,
            work: Path) -> str:
    from deposit_services.transports.dspace.transport import DSpaceTransport

    assert isinstance(transport, DSpaceTransport)
    b = transport.binding
    transport.client.login()  # AuthenticationError names DSPACE_USER and DSPACE_PASSWORD
    collection = transport.collection_uuid()  # names DSPACE_COLLECTION_HANDLE when missing
    return (f"logged in to {b.api_url} as {b.user!r}; collection {b.collection_handle} "
            f"found ({collection})")


def _invenio_rdm(transport: Transport, package: Package, submission: DepositSubmission,
                 work: Path) -> str:
    from deposit_services.errors import PermanentTransferError
    from deposit_services.transports.invenio.rdm import InvenioRdmTransport

    assert isinstance(transport, InvenioRdmTransport)
    b, client = transport.binding, transport.client
    client.call("GET", "user/records", f"InvenioRDM records of the token's account at "
                f"{b.api_url}", params={"size": "1"})  # 401/403 name INVENIORDM_API_TOKEN
    done = f"token accepted by {b.api_url}"
    if not b.community:
        return done + " (no community: records are published directly)"
    found = client.call("GET", f"communities/{quote(b.community, safe='')}",
                        f"InvenioRDM community {b.community!r}", missing_ok=True)
    if not isinstance(found, dict):
        raise PermanentTransferError(
            f"InvenioRDM community {b.community!r} not found at {b.api_url}; correct the "
            "binding's community (the community's slug or id) or remove it to publish "
            "without review")
    return done + f"; community {b.community!r} found ({found.get('id')})"


def _zenodo(transport: Transport, package: Package, submission: DepositSubmission,
            work: Path) -> str:
    from deposit_services.transports.invenio.zenodo import ZenodoTransport

    assert isinstance(transport, ZenodoTransport)
    api = transport.binding.api_url
    transport.client.call("GET", "deposit/depositions", f"Zenodo depositions at {api}",
                          params={"size": "1"})  # 401/403 name the access-token
    return f"token accepted by {api} (it lists the account's depositions)"


def _dtool(transport: Transport, package: Package, submission: DepositSubmission,
           work: Path) -> str:
    from deposit_services.errors import PermanentTransferError
    from deposit_services.transports.dtool.dataset import probe
    from deposit_services.transports.dtool.transport import DtoolTransport

    assert isinstance(transport, DtoolTransport)
    base, client = transport.base_uri, transport.client
    written = probe(base)
    user = client.me()  # unreachable: transient; refused: AuthenticationError saying what
    name = str(user.get("username") or "?")
    allowed = [str(u).rstrip("/") for u in user.get("register_permissions_on_base_uris") or []]
    if base not in allowed:
        raise PermanentTransferError(
            f"dserver at {client.url} does not let {name!r} register datasets on base URI "
            f"{base} (it may on: {', '.join(allowed) or 'none'}): the base URI is not "
            f"registered in dserver, or the user lacks the permission. A dserver admin "
            f"adds it (`flask base_uri add {base}`, then `flask base_uri permission "
            f"--register {name} ...`, or PUT /base-uris/...), or correct base-uri")
    return f"{written}; dserver {client.url} accepts {name!r}, who may register on it"


def _probe_package(work: Path) -> Package:
    path = work / "probe.txt"
    path.write_bytes(PROBE_BYTES)
    return Package(path=path, name=path.name, size=len(PROBE_BYTES),
                   md5=hashlib.md5(PROBE_BYTES, usedforsecurity=False).hexdigest(),
                   sha256=hashlib.sha256(PROBE_BYTES).hexdigest(), mime_type="text/plain",
                   specification="probe")
