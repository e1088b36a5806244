"""pyftpdlib FTP and FTPS servers for tests and benches, on a free loopback port.

One user (``username`` / ``password``) whose home is ``root``; the server runs in a
thread and records what it received (``received``: completed uploads, ``incomplete``:
aborted ones, ``renames``: (from, to) pairs, ``tls_data_resumed``: per TLS data
connection, whether it resumed the control connection's session), so a test can see the
temporary name and the rename, and that a package was not sent again. Options:

* ``tls=True``: explicit FTPS (AUTH TLS) with TLS required on control and data
  connections; the certificate (for 127.0.0.1 and localhost) is signed by a throwaway
  CA whose certificate is ``server.ca_file``: not trusted by default, as a self-signed
  repository certificate would not be.
* ``drop_after=N``: the data connection of an upload is closed by the server once it
  has received more than N bytes (426 on the control connection), as a server or a
  firewall that drops a transfer would.
* ``perm``: pyftpdlib's permission letters for the user (default: everything).
* ``max_clients``: connections beyond this many are answered 421 (a busy server).
* ``port``: listen on this port instead of a free one (a server that comes up late).

pyftpdlib is a test dependency (and pyOpenSSL for TLS); if one is missing the caller
FAILS with the reason.

Usage::

    with running_ftp_server(tmp_path / "ftp", tls=True) as server:
        server.port, server.username, server.password, server.root, server.ca_file
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

USERNAME = "depositor"
PASSWORD = "ftp-test-password"


class FtpServerUnavailable(RuntimeError):
    """pyftpdlib (or pyOpenSSL for TLS) is missing; the message says what to install."""


@dataclass
class FtpServer:
    root: Path
    port: int
    tls: bool
    ca_file: Path | None
    username: str = USERNAME
    password: str = PASSWORD
    host: str = "127.0.0.1"
    received: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    renames: list[tuple[str, str]] = field(default_factory=list)
    tls_data_resumed: list[bool] = field(default_factory=list)


def make_certificates(directory: Path) -> tuple[Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost signed by it.

    Returns (ca certificate PEM, server certificate + key PEM).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "deposit-services test CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True,
            content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server_path = directory / "server.pem"
    server_path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    )
    return ca_path, server_path


def _handler_classes(server: FtpServer, tls: bool, certfile: Path | None,
                     drop_after: int | None) -> Any:
    try:
        from pyftpdlib.handlers import DTPHandler, FTPHandler
    except ImportError as exc:
        raise FtpServerUnavailable(f"pyftpdlib is missing ({exc}): pip install -e '.[test]'"
                                   ) from exc
    base_handler: Any = FTPHandler
    base_dtp: Any = DTPHandler
    if tls:
        try:
            from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler
        except ImportError as exc:  # pragma: no cover - depends on pyOpenSSL
            raise FtpServerUnavailable(
                f"FTPS needs pyOpenSSL ({exc}): pip install -e '.[test]'") from exc
        base_handler, base_dtp = TLS_FTPHandler, TLS_DTPHandler

    class Dtp(base_dtp):  # type: ignore[misc]
        def handle_read_event(self) -> None:  # what pyftpdlib's IO loop calls on input
            super().handle_read_event()
            if (drop_after is not None and self.receive and not self._closed
                    and self.tot_bytes_received > drop_after):
                self._resp = ("426 Connection closed by the test server; transfer aborted.",
                              logging.getLogger("pyftpdlib").warning)
                self.close()

        def handle_ssl_established(self) -> None:
            """Record whether the data connection resumed the control one's TLS session."""
            from OpenSSL._util import lib  # pyOpenSSL has no public session_reused

            server.tls_data_resumed.append(bool(lib.SSL_session_reused(self.socket._ssl)))
            super().handle_ssl_established()

    class Handler(base_handler):  # type: ignore[misc]
        dtp_handler = Dtp
        banner = "deposit-services test FTP server"

        def on_file_received(self, file: str) -> None:
            server.received.append(file)

        def on_incomplete_file_received(self, file: str) -> None:
            server.incomplete.append(file)

        def ftp_RNTO(self, path: str) -> Any:
            source = self._rnfr
            result = super().ftp_RNTO(path)
            server.renames.append((source, path))
            return result

    if tls:
        Handler.certfile = str(certfile)
        Handler.tls_control_required = True
        Handler.tls_data_required = True
        Handler.ssl_context = None
    return Handler


@contextlib.contextmanager
def running_ftp_server(
    root: Path, *, tls: bool = False, drop_after: int | None = None,
    perm: str = "elradfmwMT", max_clients: int = 0, port: int = 0,
) -> Iterator[FtpServer]:
    """A pyftpdlib server on a free loopback port; stopped on exit."""
    try:
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.ioloop import IOLoop
        from pyftpdlib.servers import FTPServer
    except ImportError as exc:
        raise FtpServerUnavailable(f"pyftpdlib is missing ({exc}): pip install -e '.[test]'"
                                   ) from exc
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    ca_file = certfile = None
    if tls:
        ca_file, certfile = make_certificates(root / "certs")
    state = FtpServer(root=home, port=0, tls=tls, ca_file=ca_file)
    handler = _handler_classes(state, tls, certfile, drop_after)
    authorizer = DummyAuthorizer()
    authorizer.add_user(USERNAME, PASSWORD, str(home), perm=perm)
    handler.authorizer = authorizer
    handler.passive_ports = None
    handler.auth_failed_timeout = 0.2  # pyftpdlib's 3 s delay after a failed login
    ftp_log = logging.getLogger("pyftpdlib")
    if not ftp_log.handlers:  # else pyftpdlib installs its own INFO handler on stderr
        ftp_log.addHandler(logging.NullHandler())
    ftp_log.setLevel(logging.WARNING)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    server = FTPServer(sock, handler, ioloop=IOLoop())  # its own loop: servers may overlap
    if max_clients:
        server.max_cons = max_clients + 1  # pyftpdlib counts the listening socket too
    state.port = sock.getsockname()[1]
    stop = threading.Event()

    def loop() -> None:  # pyftpdlib's IO loop is not thread-safe: stop it from inside
        while not stop.is_set():
            server.ioloop.loop(0.05, blocking=False)
        server.close_all()

    thread = threading.Thread(target=loop, name=f"ftp-server-{state.port}", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(timeout=10)
