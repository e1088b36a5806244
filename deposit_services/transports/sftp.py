"""SFTP transport (protocol ``sftp``, paramiko): the package is dropped into a directory.

Binding keys: PASS's ``server-fqdn``, ``server-port`` (22), ``username``, ``password``,
``default-directory`` (``%s`` = UTC date yyyy-MM-dd, created like ``mkdir -p``), plus
``private-key`` / ``private-key-passphrase``, ``known-hosts`` (OpenSSH format; default
``~/.ssh/known_hosts``), ``host-key-fingerprint`` (``SHA256:...`` as ``ssh-keygen -l``
prints it; several may be given, comma-separated), ``allow-unknown-host-key`` (false),
``connect-timeout``, ``read-timeout``, ``banner-timeout``, ``auth-timeout``, ``write-size``
(bytes per SFTP write request; default 128 KiB for OpenSSH servers, 32 KiB otherwise).
PASS's FTP-only keys (``data-type``, ``transfer-mode``, ``use-pasv``) are accepted and
ignored with a warning, so an FTP binding switched to ``sftp`` still loads.

The server's host key is checked before any credential is sent: a pinned fingerprint
must match; otherwise the key must be the one known_hosts holds for the host. An
unknown or changed key is refused with the offered fingerprint in the message, unless
``allow-unknown-host-key`` is true (then the key is logged and accepted).

The upload algorithm (temporary name, size check, rename, "already sent", reconcile)
and the receipt are ``drop.DropTransport``'s; this module gives it SFTP's primitives:
stat, mkdir, pipelined writes streamed from the package file, posix-rename where the
server has it, remove, listdir. A fault mid-upload removes the temporary file when the
connection still allows it.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import logging
import socket
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import paramiko
from pydantic import Field, SecretStr, model_validator

from deposit_services.assemblers.base import CHUNK_SIZE, Package
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

# Bigger windows keep more data in flight per round trip. SFTP write requests: the
# protocol's safe 32 KiB, raised to 128 KiB for OpenSSH servers (whose sftp-server takes
# messages up to 256 KiB): a quarter of the requests and replies paramiko must handle in
# Python; measured 1.5x faster on loopback, on par with OpenSSH's sftp (bench/transfer.py).
WINDOW_SIZE = 16 * 1024 * 1024
MAX_PACKET_SIZE = 64 * 1024
SAFE_WRITE_SIZE = 32 * 1024
OPENSSH_WRITE_SIZE = 128 * 1024
PERMANENT_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
# AES-GCM first: one pass for cipher and MAC, measured ~1.5x faster than paramiko's
# default aes128-ctr + hmac-sha2-256 (bench/transfer.py); the rest stay as fallbacks.
FAST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


class SftpBinding(DropBinding):
    private_key: Path | None = Field(default=None, alias="private-key")
    private_key_passphrase: SecretStr | None = Field(default=None, alias="private-key-passphrase")
    known_hosts: Path | None = Field(default=None, alias="known-hosts")
    host_key_fingerprint: str | None = Field(default=None, alias="host-key-fingerprint")
    allow_unknown_host_key: bool = Field(default=False, alias="allow-unknown-host-key")
    banner_timeout: float = Field(default=30.0, alias="banner-timeout", gt=0)
    write_size: int | None = Field(default=None, alias="write-size", ge=1024, le=255 * 1024)
    # PASS's FTP keys: meaningless over SFTP, accepted so that PASS configurations load
    data_type: str | None = Field(default=None, alias="data-type")
    transfer_mode: str | None = Field(default=None, alias="transfer-mode")
    use_pasv: bool | None = Field(default=None, alias="use-pasv")
    auth_timeout: float = Field(default=30.0, alias="auth-timeout", gt=0)

    @model_validator(mode="after")
    def _needs_a_credential(self) -> SftpBinding:
        if self.password is None and self.private_key is None:
            raise ValueError("give a password or a private-key")
        return self

    @property
    def port(self) -> int:
        return self.server_port or 22


def fingerprint(key: paramiko.PKey) -> str:
    """The key's fingerprint as ``ssh-keygen -l`` prints it: ``SHA256:<base64, no padding>``."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


class SftpTransport(DropTransport):
    protocol = "sftp"
    binding_model = SftpBinding
    binding: SftpBinding

    def __init__(self, binding: Any, context: Any = None) -> None:
        super().__init__(binding, context)
        b = self.binding
        self._where = f"sftp://{b.username}@{b.server_fqdn}:{b.port}"
        ignored = [k for k in ("data-type", "transfer-mode", "use-pasv")
                   if getattr(b, k.replace("-", "_")) is not None]
        if ignored:
            log.warning("%s: protocol-binding keys %s mean nothing for SFTP; ignored",
                        self._where, ", ".join(ignored))

    @contextlib.contextmanager
    def connect(self, directory: str) -> Iterator[DropSession]:
        with self._errors(directory), self._session() as sftp:
            yield _SftpSession(self, sftp)

    @contextlib.contextmanager
    def _errors(self, directory: str) -> Iterator[None]:
        """paramiko's and the socket's errors as our TransferErrors, with advice."""
        try:
            yield
        except TransferError:
            raise
        except paramiko.AuthenticationException as exc:
            if "timeout" in str(exc).lower():  # the server did not answer in time
                raise TransientTransferError(
                    f"{self._where}: authentication timed out ({exc})") from exc
            raise AuthenticationError(
                f"{self._where} refused our credentials ({exc}); check username, password "
                "and private-key in the protocol-binding"
            ) from exc
        except TimeoutError as exc:
            raise TransientTransferError(f"{self._where}: timed out ({exc or 'no answer'})"
                                         ) from exc
        except OSError as exc:
            if exc.errno in PERMANENT_ERRNOS:
                raise PermanentTransferError(
                    f"{self._where}: permission denied ({exc}); the account cannot write to "
                    f"{directory or 'its home directory'}: fix the account or default-directory"
                ) from exc
            raise TransientTransferError(f"{self._where}: {_describe(exc)}") from exc
        except (paramiko.SSHException, EOFError) as exc:
            raise TransientTransferError(
                f"{self._where}: connection failed or dropped ({_describe(exc)})"
            ) from exc

    # -- connection -------------------------------------------------------------------

    @contextlib.contextmanager
    def _session(self) -> Iterator[paramiko.SFTPClient]:
        b = self.binding
        pkey = self._private_key()
        sock = socket.create_connection((b.server_fqdn, b.port), timeout=b.connect_timeout)
        try:
            transport = paramiko.Transport(
                sock, default_window_size=WINDOW_SIZE, default_max_packet_size=MAX_PACKET_SIZE
            )
        except BaseException:
            sock.close()
            raise
        try:
            transport.banner_timeout = b.banner_timeout
            transport.handshake_timeout = b.connect_timeout
            transport.auth_timeout = b.auth_timeout
            _prefer(transport, "ciphers", FAST_CIPHERS)
            known = self._known_keys()
            if known:
                _prefer_key_types(transport, known)
            transport.start_client(timeout=b.connect_timeout)
            self._check_host_key(transport.get_remote_server_key(), known)
            self._authenticate(transport, pkey)
            sftp = paramiko.SFTPClient.from_transport(
                transport, window_size=WINDOW_SIZE, max_packet_size=MAX_PACKET_SIZE
            )
            if sftp is None:
                raise paramiko.SSHException("the server opened no SFTP channel")
            channel = sftp.get_channel()
            if channel is not None:
                channel.settimeout(b.read_timeout)
            try:
                yield sftp
            finally:
                sftp.close()
        finally:
            transport.close()
            sock.close()

    def _private_key(self) -> paramiko.PKey | None:
        b = self.binding
        if b.private_key is None:
            return None
        passphrase = b.private_key_passphrase.get_secret_value() if (
            b.private_key_passphrase) else None
        try:
            # paramiko hands the passphrase to cryptography, which wants bytes
            return paramiko.PKey.from_path(
                b.private_key, passphrase.encode() if passphrase is not None else None  # type: ignore[arg-type]
            )
        except (paramiko.PasswordRequiredException, TypeError) as exc:
            if passphrase is not None:  # TypeError: cryptography's "no password given"
                raise PermanentTransferError(
                    f"private-key {b.private_key} cannot be loaded ({exc}); fix the binding"
                ) from exc
            raise PermanentTransferError(
                f"private-key {b.private_key} is encrypted: set private-key-passphrase"
            ) from exc
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise PermanentTransferError(
                f"private-key {b.private_key} cannot be loaded ({exc}); fix the binding"
            ) from exc

    def _known_keys(self) -> dict[str, paramiko.PKey]:
        """The keys known_hosts holds for this host (type -> key); empty when pinned."""
        b = self.binding
        if b.host_key_fingerprint:
            return {}
        path = b.known_hosts or Path.home() / ".ssh" / "known_hosts"
        host_keys = paramiko.HostKeys()
        try:
            host_keys.load(str(path))
        except FileNotFoundError:
            if b.known_hosts is not None:
                raise PermanentTransferError(
                    f"known-hosts file {path} does not exist; fix the binding"
                ) from None
            return {}
        except OSError as exc:
            raise PermanentTransferError(f"known-hosts file {path} cannot be read: {exc}"
                                         ) from exc
        name = b.server_fqdn if b.port == 22 else f"[{b.server_fqdn}]:{b.port}"
        entry = host_keys.lookup(name)
        return dict(entry) if entry else {}

    def _check_host_key(self, key: paramiko.PKey, known: dict[str, paramiko.PKey]) -> None:
        b = self.binding
        offered = fingerprint(key)
        host = f"{b.server_fqdn}:{b.port}"
        if b.host_key_fingerprint:
            pinned = [f.strip().rstrip("=") for f in b.host_key_fingerprint.split(",")]
            if offered in pinned:
                return
            raise PermanentTransferError(
                f"host key of {host} ({key.get_name()} {offered}) does not match the pinned "
                f"host-key-fingerprint {b.host_key_fingerprint}; the key changed or this is "
                "not the right server: check with the repository before updating the pin"
            )
        expected = known.get(key.get_name())
        if expected is not None:
            if expected.asbytes() == key.asbytes():
                return
            raise PermanentTransferError(
                f"host key of {host} CHANGED: it offers {key.get_name()} {offered}, known-hosts "
                f"has {fingerprint(expected)}; check with the repository before replacing the "
                "known-hosts entry"
            )
        if b.allow_unknown_host_key:
            log.warning("accepting unknown host key of %s: %s %s (allow-unknown-host-key)",
                        host, key.get_name(), offered)
            return
        raise PermanentTransferError(
            f"host key of {host} is unknown: it offers {key.get_name()} {offered}; after "
            "checking it with the repository, add it to known-hosts or set "
            "host-key-fingerprint (or allow-unknown-host-key: true, not recommended)"
        )

    def _authenticate(self, transport: paramiko.Transport, pkey: paramiko.PKey | None) -> None:
        b = self.binding
        failure: paramiko.AuthenticationException | None = None
        if pkey is not None:
            try:
                transport.auth_publickey(b.username, pkey)
            except paramiko.AuthenticationException as exc:
                failure = exc
        if not transport.is_authenticated() and b.password is not None:
            transport.auth_password(b.username, b.password.get_secret_value())
        if not transport.is_authenticated():
            raise failure or paramiko.AuthenticationException("authentication incomplete")

    def write_size(self, sftp: paramiko.SFTPClient) -> int:
        """``write-size``, else 128 KiB for OpenSSH, else the protocol's safe 32 KiB."""
        if self.binding.write_size:
            return self.binding.write_size
        channel = sftp.get_channel()
        transport = channel.get_transport() if channel is not None else None
        version = str(getattr(transport, "remote_version", ""))
        return OPENSSH_WRITE_SIZE if "OpenSSH" in version else SAFE_WRITE_SIZE


class _SftpSession(DropSession):
    """SFTP's primitives over one open SFTP channel (paths, no current directory)."""

    faults = (OSError, paramiko.SSHException, EOFError)

    def __init__(self, transport: SftpTransport, sftp: paramiko.SFTPClient) -> None:
        self._transport = transport
        self.sftp = sftp

    def make_directories(self, directory: str) -> None:
        if not directory or _is_dir(self.sftp, directory):
            return
        for prefix in directory_prefixes(directory):
            if _is_dir(self.sftp, prefix):
                continue
            try:
                self.sftp.mkdir(prefix)
            except OSError:
                if not _is_dir(self.sftp, prefix):  # not created by someone else meanwhile
                    raise
            log.info("created directory %s", prefix)

    def is_directory(self, directory: str) -> bool:
        return _is_dir(self.sftp, directory)

    def size(self, directory: str, name: str) -> int | None:
        try:
            return self.sftp.stat(remote_path(directory, name)).st_size
        except FileNotFoundError:
            return None

    def upload(self, directory: str, name: str, package: Package) -> None:
        write_size = self._transport.write_size(self.sftp)
        with package.open() as src, self.sftp.open(remote_path(directory, name), "wb") as remote:
            remote.MAX_REQUEST_SIZE = write_size
            remote.set_pipelined(True)
            while chunk := src.read(CHUNK_SIZE):
                remote.write(chunk)

    def rename(self, directory: str, old: str, new: str) -> None:
        """posix-rename (atomic, OpenSSH extension); plain SFTP rename where it is missing."""
        source, target = remote_path(directory, old), remote_path(directory, new)
        try:
            self.sftp.posix_rename(source, target)
        except OSError as exc:
            if exc.errno is not None:
                raise
            log.debug("posix-rename refused (%s); using plain rename", exc)
            self.sftp.rename(source, target)

    def remove(self, directory: str, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.sftp.remove(remote_path(directory, name))

    def names(self, directory: str) -> list[str]:
        return self.sftp.listdir(directory or ".")

    def url(self, directory: str, name: str) -> str:
        b = self._transport.binding
        url = drop_url("sftp", b.server_fqdn, b.port, self.sftp.normalize(directory or "."))
        return f"{url.rstrip('/')}/{name}"

    def abandon(self, directory: str, name: str) -> None:
        channel = self.sftp.get_channel()
        transport = channel.get_transport() if channel is not None else None
        if transport is None or not transport.is_active():
            log.warning("connection lost: temporary file %s may remain on the server (removed "
                        "by the next successful attempt)", remote_path(directory, name))
            return
        super().abandon(directory, name)


def _is_dir(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        mode = sftp.stat(path).st_mode
    except FileNotFoundError:
        return False
    if mode is None or not stat.S_ISDIR(mode):
        raise PermanentTransferError(f"{path} exists on the server and is not a directory; "
                                     "fix default-directory")
    return True


def _prefer_key_types(transport: paramiko.Transport, known: dict[str, paramiko.PKey]) -> None:
    """Ask the server for a host key type known_hosts holds (as OpenSSH's client does)."""
    wanted: list[str] = []
    for key_type in known:
        if key_type == "ssh-rsa":
            wanted += ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
        else:
            wanted.append(key_type)
    _prefer(transport, "key_types", wanted)


def _prefer(transport: paramiko.Transport, kind: str, wanted: Sequence[str]) -> None:
    """Move the ``wanted`` algorithms paramiko supports to the front of its ``kind`` list."""
    options = transport.get_security_options()
    current = list(getattr(options, kind))
    first = [k for k in wanted if k in current]
    if first:
        setattr(options, kind, tuple(first + [k for k in current if k not in first]))


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused ({text}); is the server up?"
    if isinstance(exc, socket.gaierror):
        return f"host name cannot be resolved ({text})"
    return text
