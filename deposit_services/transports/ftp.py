"""FTP and FTPS transport (protocol ``ftp``, ftplib): the package is dropped into a directory.

Binding keys: PASS's ``server-fqdn``, ``server-port`` (21), ``username``, ``password``,
``data-type`` (binary), ``transfer-mode`` (stream), ``use-pasv`` (true),
``default-directory`` (``%s`` = UTC date yyyy-MM-dd, created like ``mkdir -p``), plus
``use-tls`` (explicit FTPS: AUTH TLS, then PROT P for the data), ``ca-file`` (the CA to
trust instead of the system's), ``verify-tls`` (true; false is logged as a warning),
``connect-attempts`` / ``connect-backoff`` (the connection is retried with exponential
backoff before the deposit is given back as transient), ``connect-timeout``,
``read-timeout`` and ``block-size``.

The upload algorithm (temporary name, size check, rename, "already sent", reconcile)
and the receipt are ``drop.DropTransport``'s; this module gives it FTP's primitives:
SIZE, MKD/CWD, STOR, RNFR/RNTO, DELE, NLST. A fault mid-upload removes the temporary
file over a fresh connection if the first one is gone.

Replies: 530 is an AuthenticationError; other 5xx replies are permanent, 4xx replies,
connection errors and timeouts transient; the server's reply text is in the message.
"""

from __future__ import annotations

import contextlib
import ftplib
import logging
import posixpath
import socket
import ssl
import time
from collections.abc import Iterator
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
from deposit_services.transports.drop import (
    DropBinding,
    DropSession,
    DropTransport,
    directory_prefixes,
    drop_url,
    remote_path,
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


class FtpTransport(DropTransport):
    protocol = "ftp"
    binding_model = FtpBinding
    binding: FtpBinding

    def __init__(self, binding: Any, context: Any = None) -> None:
        super().__init__(binding, context)
        b = self.binding
        self.scheme = "ftps" if b.use_tls else "ftp"
        self.where = f"{self.scheme}://{b.username}@{b.server_fqdn}:{b.port}"
        if b.use_tls and not b.verify_tls:
            log.warning("%s: TLS certificate verification is OFF (verify-tls: false)",
                        self.where)

    @contextlib.contextmanager
    def connect(self, directory: str) -> Iterator[DropSession]:
        with self._errors(), self._session(self.binding.connect_attempts) as ftp:
            yield _FtpSession(self, ftp)

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
                    f"{self.where} refused the login ({reply}); check username and password "
                    "in the protocol-binding"
                ) from exc
            raise PermanentTransferError(f"{self.where} refused: {reply}") from exc
        except ftplib.error_temp as exc:
            raise TransientTransferError(f"{self.where} answered {_reply(exc)}") from exc
        except ssl.SSLCertVerificationError as exc:
            raise PermanentTransferError(
                f"{self.where}: the server's TLS certificate cannot be verified "
                f"({exc.verify_message or exc}); if the repository uses its own CA, give it in "
                "ca-file"
            ) from exc
        except TimeoutError as exc:
            raise TransientTransferError(f"{self.where}: timed out ({exc or 'no answer'})"
                                         ) from exc
        except (OSError, EOFError, ftplib.Error) as exc:
            raise TransientTransferError(
                f"{self.where}: connection failed or dropped ({_describe(exc)})"
            ) from exc

    # -- connection -------------------------------------------------------------------

    @contextlib.contextmanager
    def _session(self, attempts: int) -> Iterator[ftplib.FTP]:
        """Connected, logged in, binary, in the login directory."""
        ftp = self._connect(attempts)
        try:
            b = self.binding
            password = b.password.get_secret_value() if b.password is not None else ""
            ftp.login(b.username, password)
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.prot_p()
            ftp.voidcmd("TYPE I")
            ftp.set_pasv(b.use_pasv)
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
                        f"{self.where}: cannot connect ({_describe(exc)}; {attempts} "
                        "attempt(s))"
                    ) from exc
                delay = b.connect_backoff * 2 ** (attempt - 1)
                log.info("%s: connect attempt %d failed (%s); next in %.1fs", self.where,
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

    def remove_over_new_connection(self, directory: str, name: str) -> None:
        """Delete ``directory/name`` over a fresh connection (the first one is unusable);
        never raises: the file is then left for the next successful attempt."""
        try:
            with self._session(attempts=1) as fresh:
                _change_directory(fresh, directory)
                _delete(fresh, name)
        except (OSError, EOFError, ftplib.Error, TransferError) as exc:
            log.warning("%s: temporary file %s may remain on the server (removed by the next "
                        "successful attempt): %s", self.where, remote_path(directory, name), exc)


class _FtpSession(DropSession):
    """FTP's primitives over one logged-in connection.

    FTP works in a current directory: each primitive first changes into its
    ``directory`` (relative ones from the login directory), unless it is there already.
    """

    faults = (OSError, EOFError, ftplib.Error)

    def __init__(self, transport: FtpTransport, ftp: ftplib.FTP) -> None:
        self._transport = transport
        self.ftp = ftp
        self._home: str | None = None  # the login directory, read before leaving it
        self._cwd: str | None = ""  # the directory (as the algorithm names it) we are in
        self._broken: BaseException | None = None  # why this connection cannot be reused

    def _enter(self, directory: str) -> None:
        if directory == self._cwd:
            return
        self._leave_home()
        self.ftp.cwd(posixpath.join(self._home or "/", directory))
        self._cwd = directory

    def _leave_home(self) -> None:
        if self._home is None:
            self._home = self.ftp.pwd()

    def make_directories(self, directory: str) -> None:
        if directory == self._cwd:
            return
        self._leave_home()
        if self._cwd != "" and not directory.startswith("/"):
            self.ftp.cwd(self._home or "/")
        self._cwd = None  # unknown until the last step is done
        _change_directory(self.ftp, directory)
        self._cwd = directory

    def is_directory(self, directory: str) -> bool:
        try:
            self._enter(directory)
        except ftplib.error_perm:
            return False  # no such directory
        return True

    def size(self, directory: str, name: str) -> int | None:
        self._enter(directory)
        return _size_of(self.ftp, name)

    def upload(self, directory: str, name: str, package: Package) -> None:
        self._enter(directory)
        try:
            _store(self.ftp, name, package, self._transport.binding.block_size)
        except BaseException as exc:
            if not isinstance(exc, ftplib.Error):
                # a data connection that broke leaves the STOR's reply pending on the
                # control one: read it, or this connection cannot be used any more
                self._broken = _drain_reply(self.ftp)
            raise

    def rename(self, directory: str, old: str, new: str) -> None:
        self._enter(directory)
        self.ftp.rename(old, new)

    def remove(self, directory: str, name: str) -> None:
        self._enter(directory)
        _delete(self.ftp, name)

    def names(self, directory: str) -> list[str]:
        self._enter(directory)
        return [posixpath.basename(entry) for entry in self.ftp.nlst()]

    def url(self, directory: str, name: str) -> str:
        self._enter(directory)
        t = self._transport
        return drop_url(t.scheme, t.binding.server_fqdn, t.binding.port,
                        posixpath.join(self.ftp.pwd(), name))

    def abandon(self, directory: str, name: str) -> None:
        """Remove the temporary file; over a fresh connection if this one is unusable."""
        reason = self._broken
        if reason is None:
            try:
                self.remove(directory, name)
                return
            except self.faults as exc:
                reason = exc
        log.info("%s: removing %s over a new connection (%s)", self._transport.where,
                 remote_path(directory, name), reason)
        self._transport.remove_over_new_connection(directory, name)


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


def _drain_reply(ftp: ftplib.FTP) -> BaseException | None:
    """Read the reply a broken STOR left pending; the fault if the connection is unusable."""
    try:
        if ftp.sock is not None:
            ftp.sock.settimeout(5)
        with contextlib.suppress(ftplib.Error):
            ftp.getresp()
    except (OSError, EOFError) as exc:
        return exc
    return None


def _reply(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


def _describe(exc: BaseException) -> str:
    text = _reply(exc)
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused ({text}); is the server up?"
    if isinstance(exc, EOFError):
        return "the server closed the connection"
    return text
