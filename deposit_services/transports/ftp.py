"""FTP and FTPS transport (protocol ``ftp``, ftplib): the package is dropped into a directory.

Binding keys: PASS's ``server-fqdn``, ``server-port`` (21), ``username``, ``password``,
``data-type`` (binary), ``transfer-mode`` (stream), ``use-pasv`` (true),
``default-directory`` (``%s`` = UTC date yyyy-MM-dd, created like ``mkdir -p``), plus
``use-tls`` (explicit FTPS: AUTH TLS, then PROT P for the data), ``ca-file`` (the CA to
trust instead of the system's), ``verify-tls`` (true; false is logged as a warning),
``connect-attempts`` / ``connect-backoff`` (the connection is retried with exponential
backoff before the deposit is given back as transient), ``connect-timeout``,
``read-timeout`` and ``block-size``.

The upload goes to a hidden temporary name, its size is checked with SIZE, then it is
renamed (RNFR/RNTO). A final name with the same size is the package sent before (not
sent again); a different size must be looked at by an operator. A fault mid-upload
removes the temporary file (over a fresh connection if the first one is gone).

Replies: 530 is an AuthenticationError; other 5xx replies are permanent, 4xx replies,
connection errors and timeouts transient; the server's reply text is in the message.

Receipt: ACCEPTED at once, as for SFTP and the filesystem: a file drop has no status
document to follow, and once the whole package stands under its final name the
repository (e.g. PubMed Central's NIHMS loader) has custody and ingests it by its own
process. SUBMITTED without a status reference would never finish.
"""

from __future__ import annotations

import contextlib
import ftplib
import logging
import posixpath
import socket
import ssl
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from deposit_services.assemblers.base import Package
from deposit_services.errors import (
    AuthenticationError,
    PermanentTransferError,
    TransferError,
    TransientTransferError,
)
from deposit_services.model.submission import DepositSubmission
from deposit_services.transports.base import Receipt, Transport
from deposit_services.transports.drop import (
    DropBinding,
    check_existing,
    dated_directory,
    directory_prefixes,
    drop_receipt,
    drop_url,
    earlier_directories,
    is_leftover_part,
    temp_name,
)

log = logging.getLogger(__name__)

DEFAULT_BLOCK_SIZE = 64 * 1024


class FtpBinding(DropBinding):
    data_type: Literal["binary"] = Field(default="binary", alias="data-type")
    transfer_mode: Literal["stream"] = Field(default="stream", alias="transfer-mode")
    use_pasv: bool = Field(default=True, alias="use-pasv")
    use_tls: bool = Field(default=False, alias="use-tls")
    ca_file: Path | None = Field(default=None, alias="ca-file")
    verify_tls: bool = Field(default=True, alias="verify-tls")
    connect_attempts: int = Field(default=3, alias="connect-attempts", ge=1, le=10)
    connect_backoff: float = Field(default=1.0, alias="connect-backoff", ge=0)
    block_size: int = Field(default=DEFAULT_BLOCK_SIZE, alias="block-size", ge=1024)

    @field_validator("data_type", "transfer_mode", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        """PASS writes these in any case; packages are archives: binary, stream only."""
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def port(self) -> int:
        return self.server_port or 21


class FtpTransport(Transport):
    protocol = "ftp"
    binding_model = FtpBinding
    binding: FtpBinding

    def __init__(self, binding: Any, context: Any = None) -> None:
        super().__init__(binding, context)
        b = self.binding
        self._scheme = "ftps" if b.use_tls else "ftp"
        self._where = f"{self._scheme}://{b.username}@{b.server_fqdn}:{b.port}"
        if b.use_tls and not b.verify_tls:
            log.warning("%s: TLS certificate verification is OFF (verify-tls: false)",
                        self._where)

    def send(self, package: Package, submission: DepositSubmission) -> Receipt:
        directory = dated_directory(self.binding.default_directory)
        with self._errors(), self._session(directory, self.binding.connect_attempts) as ftp:
            return self._deliver(ftp, package, directory)

    def reconcile(self, package: Package, evidence: Mapping[str, str]) -> Receipt | None:
        """The package in the dated directory of the attempt's own day, if it is there
        (``send`` then checks today's, see ``earlier_directories``)."""
        earlier = earlier_directories(self.binding.default_directory, evidence.get("started_at"))
        if not earlier:
            return None
        with self._errors(), self._session("", self.binding.connect_attempts) as ftp:
            home = ftp.pwd()
            for directory in earlier:
                try:
                    ftp.cwd(posixpath.join(home, directory))
                except ftplib.error_perm:
                    continue  # no such directory: nothing was sent there
                receipt = self._already_there(ftp, package)
                if receipt is not None:
                    return receipt
        return None

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """ftplib's and the socket's errors as our TransferErrors, with advice."""
        try:
            yield
        except TransferError:
            raise
        except ftplib.error_perm as exc:
            reply = _reply(exc)
            if reply.startswith("530"):
                raise AuthenticationError(
                    f"{self._where} refused the login ({reply}); check username and password "
                    "in the protocol-binding"
                ) from exc
            raise PermanentTransferError(f"{self._where} refused: {reply}") from exc
        except ftplib.error_temp as exc:
            raise TransientTransferError(f"{self._where} answered {_reply(exc)}") from exc
        except ssl.SSLCertVerificationError as exc:
            raise PermanentTransferError(
                f"{self._where}: the server's TLS certificate cannot be verified "
                f"({exc.verify_message or exc}); if the repository uses its own CA, give it in "
                "ca-file"
            ) from exc
        except TimeoutError as exc:
            raise TransientTransferError(f"{self._where}: timed out ({exc or 'no answer'})"
                                         ) from exc
        except (OSError, EOFError, ftplib.Error) as exc:
            raise TransientTransferError(
                f"{self._where}: connection failed or dropped ({_describe(exc)})"
            ) from exc

    # -- connection -------------------------------------------------------------------

    @contextlib.contextmanager
    def _session(self, directory: str, attempts: int) -> Iterator[ftplib.FTP]:
        """Connected, logged in, binary, in ``directory`` (created as needed)."""
        ftp = self._connect(attempts)
        try:
            b = self.binding
            password = b.password.get_secret_value() if b.password is not None else ""
            ftp.login(b.username, password)
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.prot_p()
            ftp.voidcmd("TYPE I")
            ftp.set_pasv(b.use_pasv)
            _change_directory(ftp, directory)
            yield ftp
            with contextlib.suppress(OSError, EOFError, ftplib.Error):
                ftp.quit()
        finally:
            ftp.close()

    def _connect(self, attempts: int) -> ftplib.FTP:
        b = self.binding
        for attempt in range(1, attempts + 1):
            ftp = self._client()
            try:
                ftp.connect(b.server_fqdn, b.port, timeout=b.connect_timeout)
            except (OSError, EOFError, ftplib.error_temp, ftplib.error_proto) as exc:
                ftp.close()
                if attempt == attempts:
                    raise TransientTransferError(
                        f"{self._where}: cannot connect ({_describe(exc)}; {attempts} "
                        "attempt(s))"
                    ) from exc
                delay = b.connect_backoff * 2 ** (attempt - 1)
                log.info("%s: connect attempt %d failed (%s); next in %.1fs", self._where,
                         attempt, exc, delay)
                time.sleep(delay)
                continue
            # connect()'s timeout also serves the data connections: from now on, reads
            ftp.timeout = b.read_timeout
            if ftp.sock is not None:
                ftp.sock.settimeout(b.read_timeout)
            return ftp
        raise AssertionError("unreachable")  # pragma: no cover

    def _client(self) -> ftplib.FTP:
        b = self.binding
        if not b.use_tls:
            return ftplib.FTP()  # noqa: S321 - plain FTP is what the binding asks for
        if b.verify_tls:
            if b.ca_file is not None and not b.ca_file.is_file():
                raise PermanentTransferError(f"ca-file {b.ca_file} does not exist; fix the "
                                             "protocol-binding")
            try:
                context = ssl.create_default_context(
                    cafile=str(b.ca_file) if b.ca_file else None)
            except (OSError, ssl.SSLError) as exc:
                raise PermanentTransferError(f"ca-file {b.ca_file} cannot be used: {exc}"
                                             ) from exc
        else:
            context = ssl._create_unverified_context()  # noqa: S323 - operator's explicit choice
        return _SessionReusingFTP_TLS(context=context)

    # -- upload -----------------------------------------------------------------------

    def _deliver(self, ftp: ftplib.FTP, package: Package, directory: str) -> Receipt:
        b = self.binding
        already = self._already_there(ftp, package)
        if already is not None:
            return already
        here = ftp.pwd()
        url = self._url(here, package.name)
        temp = temp_name(package.name)
        try:
            _store(ftp, temp, package, b.block_size)
        except BaseException as exc:
            # a data connection that broke leaves the STOR's reply pending on the control one
            self._abandon(ftp, directory, posixpath.join(here, temp),
                          pending_reply=not isinstance(exc, ftplib.Error))
            raise
        try:
            size = _size_of(ftp, temp)
            if size != package.size:
                raise TransientTransferError(
                    f"{url}: the server holds {size} of {package.size} bytes after the upload"
                )
            ftp.rename(temp, package.name)
        except BaseException:
            self._abandon(ftp, directory, posixpath.join(here, temp), pending_reply=False)
            raise
        log.info("uploaded %s (%d bytes) to %s", package.name, package.size, url)
        _remove_leftovers(ftp, package.name)
        return drop_receipt(url, package.size, already_present=False)

    def _url(self, directory: str, name: str) -> str:
        b = self.binding
        return drop_url(self._scheme, b.server_fqdn, b.port, posixpath.join(directory, name))

    def _already_there(self, ftp: ftplib.FTP, package: Package) -> Receipt | None:
        """The receipt for the package standing in the current directory under its final
        name with its size (leftovers of earlier attempts removed); None if it is not."""
        existing = _size_of(ftp, package.name)
        if existing is None:
            return None
        url = self._url(ftp.pwd(), package.name)
        check_existing(url, existing, package.size)
        log.info("%s already holds %s with the same size; not sent again", url, package.name)
        _remove_leftovers(ftp, package.name)
        return drop_receipt(url, package.size, already_present=True)

    def _abandon(self, ftp: ftplib.FTP, directory: str, temp: str, pending_reply: bool) -> None:
        """Remove the temporary file; over a fresh connection if this one is unusable."""
        try:
            if pending_reply:
                if ftp.sock is not None:
                    ftp.sock.settimeout(5)
                with contextlib.suppress(ftplib.Error):
                    ftp.getresp()
            _delete(ftp, temp)
            return
        except (OSError, EOFError, ftplib.Error) as exc:
            log.info("%s: removing %s over a new connection (%s)", self._where, temp, exc)
        try:
            with self._session(directory, attempts=1) as fresh:
                _delete(fresh, temp)
        except (OSError, EOFError, ftplib.Error, TransferError) as exc:
            log.warning("%s: temporary file %s may remain on the server (removed by the next "
                        "successful attempt): %s", self._where, temp, exc)


class _SessionReusingFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session.

    Servers such as vsftpd (``require_ssl_reuse``, on by default) refuse a data
    connection that does not; ftplib's own FTP_TLS never offers the session.
    """

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)  # noqa: S321
        if self._prot_p:  # type: ignore[attr-defined]
            session = self.sock.session if isinstance(self.sock, ssl.SSLSocket) else None
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        return conn, size  # type: ignore[return-value]


def _store(ftp: ftplib.FTP, name: str, package: Package, block_size: int) -> None:
    """STOR streamed from the package file through one reused buffer, plain or TLS.

    Plain ``sendall`` of 64 KiB blocks, as ``curl -T`` sends, and not ``sendfile``: on
    loopback to pyftpdlib zero-copy took 1.0 s for 1 GB where this takes 0.74-0.84 s
    (``bench/transfer.py``); over a real network the link decides, not the copy.

    Some servers (pyftpdlib among them) close a TLS data connection without answering
    our close_notify; that is not a failure by itself: the reply on the control
    connection and the SIZE check that follows decide whether the upload is whole.
    """
    buffer = bytearray(block_size)
    view = memoryview(buffer)
    with package.path.open("rb", buffering=0) as src, \
            ftp.transfercmd(f"STOR {name}") as conn:
        while count := src.readinto(buffer):
            conn.sendall(view[:count])
        if isinstance(conn, ssl.SSLSocket):
            try:
                conn.unwrap()
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError) as exc:
                log.debug("TLS data connection closed without close_notify: %s", exc)
    ftp.voidresp()


def _change_directory(ftp: ftplib.FTP, directory: str) -> None:
    """``cd`` into ``directory``, creating what is missing (``mkdir -p``)."""
    if not directory:
        return
    if directory.startswith("/"):
        ftp.cwd("/")
    try:
        ftp.cwd(directory)
        return
    except ftplib.error_perm:
        pass
    for part in [p.rsplit("/", 1)[-1] for p in directory_prefixes(directory)]:
        try:
            ftp.cwd(part)
            continue
        except ftplib.error_perm:
            pass
        made: ftplib.error_perm | None = None
        try:
            ftp.mkd(part)
            log.info("created directory %s/%s", ftp.pwd().rstrip("/"), part)
        except ftplib.error_perm as exc:  # exists already (made meanwhile) or not allowed
            made = exc
        try:
            ftp.cwd(part)
        except ftplib.error_perm:
            if made is not None:
                raise made from None
            raise


def _size_of(ftp: ftplib.FTP, name: str) -> int | None:
    """SIZE of ``name``; None when there is no such file (550)."""
    try:
        size = ftp.size(name)
    except ftplib.error_perm as exc:
        if _reply(exc).startswith("550"):
            return None
        raise PermanentTransferError(
            f"the server refused SIZE {name} ({_reply(exc)}); uploads cannot be verified "
            "without it"
        ) from exc
    if size is None:
        raise PermanentTransferError(f"the server gave no size for {name}")
    return size


def _delete(ftp: ftplib.FTP, path: str) -> None:
    try:
        ftp.delete(path)
    except ftplib.error_perm as exc:
        if not _reply(exc).startswith("550"):  # 550: not there (any more)
            raise


def _remove_leftovers(ftp: ftplib.FTP, name: str) -> None:
    """Remove temporary files of earlier failed attempts at this package (best effort)."""
    try:
        for entry in ftp.nlst():
            entry = posixpath.basename(entry)
            if is_leftover_part(entry, name):
                _delete(ftp, entry)
    except (OSError, EOFError, ftplib.Error) as exc:
        log.warning("could not remove leftovers of %s: %s", name, exc)


def _reply(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


def _describe(exc: BaseException) -> str:
    text = _reply(exc)
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused ({text}); is the server up?"
    if isinstance(exc, EOFError):
        return "the server closed the connection"
    return text
