"""Dovecot (Debian's dovecot-imapd) as the IMAPS server of the NIHMS mail tests.

``running_dovecot(root)`` starts ``dovecot -F`` as a normal child process with a
throwaway configuration under ``root``: its own base_dir and state_dir (nothing of the
system's dovecot service is used or needed), IMAPS only, on a free loopback port, with
a server certificate signed by a test CA made with ``cryptography``; accounts in
passwd-files, one per account (LOGIN with the password; XOAUTH2 with the password as
the bearer token, which Dovecot's oauth2 mechanism checks against the passdb); one
Maildir per account. Tests deliver mails by writing them into the Maildir (``deliver``) and
read the \\Seen flags back from the file names (``seen``/``unseen``), as Dovecot keeps
them. A missing ``dovecot`` binary FAILS the tests, never skips them.

As root, Dovecot's login processes must run as an unprivileged user: Debian's
``dovenull`` and ``dovecot`` users (made by the package) are used, and the Maildir
belongs to ``dovecot``. As another user everything runs as that user.
"""

from __future__ import annotations

import contextlib
import datetime
import getpass
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DOVECOT = Path(os.environ.get("DEPOSIT_TEST_DOVECOT", "/usr/sbin/dovecot"))
INSTALL_HINT = "apt-get install -y dovecot-imapd"
START_TIMEOUT = 20.0
NIHMS_SENDER = "nihms-help@ncbi.nlm.nih.gov"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = deposit-test-{tag}
protocols = imap
listen = 127.0.0.1
log_path = {root}/dovecot.log
ssl = required
ssl_cert = <{root}/server.pem
ssl_key = <{root}/server.key
ssl_min_protocol = TLSv1.2
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 1
auth_failure_delay = 0
auth_mechanisms = plain login xoauth2
disable_plaintext_auth = yes
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
mail_location = maildir:{root}/mail/%u/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # no growing delay after a failed login (the tests refuse logins on purpose)
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


class DovecotUnavailable(RuntimeError):
    """Dovecot is missing or did not start; the message says why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class TestCA:
    """A CA certificate file and the server certificate and key it signed."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_ca(directory: Path, name: str = "deposit-services test CA") -> TestCA:
    """A new CA and a server certificate for 127.0.0.1 / localhost, as PEM files."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} {uuid.uuid4().hex[:8]}")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file = directory / "server.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = directory / "server.key"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return TestCA(ca_file, cert_file, key_file)


def nihms_mail(html: str, *, sender: str = NIHMS_SENDER, to: str = "pass@example.edu",
               subject: str = "Bulk submission (errors encountered)",
               message_id: str | None = None) -> bytes:
    """A mail as NIHMS sends it: multipart/alternative, plain text and the HTML table."""
    message = EmailMessage()
    message["From"] = f"NIHMS <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.datetime.now(datetime.UTC))
    message["Message-ID"] = message_id or make_msgid(domain="nihms.test")
    message.set_content("This message is in HTML; view it with an HTML mail reader.\n")
    message.add_alternative(html, subtype="html")
    return message.as_bytes()


@dataclass
class Dovecot:
    """A running test Dovecot: ``port``, ``ca_file`` for clients, accounts, Maildirs."""

    root: Path
    port: int
    ca_file: Path
    accounts: dict[str, str] = field(default_factory=dict)
    uid: int = 0
    gid: int = 0
    process: subprocess.Popen[bytes] | None = None
    host: str = "127.0.0.1"

    @property
    def log_text(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def maildir(self, user: str) -> Path:
        return self.root / "mail" / user / "Maildir"

    def add_account(self, user: str, password: str) -> None:
        self.accounts[user] = password
        # one passwd-file per account (the path has %u): a file Dovecot has not read yet
        (self.root / "users").mkdir(exist_ok=True)
        (self.root / "users" / user).write_text(f"{user}:{{PLAIN}}{password}::::::\n")
        self._own(user)

    def _own(self, user: str) -> None:
        """The account's Maildir, owned by the mail user."""
        home = self.root / "mail" / user
        for path in (home, self.maildir(user), *(self.maildir(user) / sub
                                                  for sub in ("new", "cur", "tmp"))):
            path.mkdir(exist_ok=True)
            os.chown(path, self.uid, self.gid)

    def deliver(self, user: str, raw: bytes) -> str:
        """Put a mail into the account's Maildir (new/, unseen) as an MDA would: written
        under tmp/ then renamed. Returns its file name."""
        name = f"{time.time_ns()}.{uuid.uuid4().hex}.deposit-test"
        tmp = self.maildir(user) / "tmp" / name
        tmp.write_bytes(raw)
        os.chown(tmp, self.uid, self.gid)
        tmp.rename(self.maildir(user) / "new" / name)
        return name

    def _flags(self, user: str) -> dict[str, str]:
        """Mail file (base name) -> its Maildir flags ('' when new)."""
        found: dict[str, str] = {}
        for sub in ("new", "cur"):
            for path in (self.maildir(user) / sub).iterdir():
                base, _, info = path.name.partition(":2,")
                found[base] = info
        return found

    def seen(self, user: str) -> list[str]:
        return sorted(n for n, flags in self._flags(user).items() if "S" in flags)

    def unseen(self, user: str) -> list[str]:
        return sorted(n for n, flags in self._flags(user).items() if "S" not in flags)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL, stderr=(self.root / "stderr.log").open("ab"),
            start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DovecotUnavailable(
                    f"dovecot exited with {self.process.returncode}: "
                    f"{(self.root / 'stderr.log').read_text(errors='replace')[-2000:]}"
                    f"{self.log_text[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(
                    (self.host, self.port), 0.5):
                return
            time.sleep(0.05)
        self.stop()
        raise DovecotUnavailable(f"dovecot did not listen on {self.port} within "
                                 f"{START_TIMEOUT:.0f} s: {self.log_text[-2000:]}")

    def stop(self) -> None:
        """Stop it and wait until its port is free (a restart may reuse the port)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _users() -> tuple[str, str, str, int, int]:
    """(internal user, its group, login user, mail uid, mail gid)."""
    if os.geteuid() != 0:
        me = getpass.getuser()
        return me, pwd.getpwnam(me).pw_name, me, os.getuid(), os.getgid()
    try:
        dovecot = pwd.getpwnam("dovecot")
        pwd.getpwnam("dovenull")
    except KeyError as exc:
        raise DovecotUnavailable(f"the dovecot/dovenull users are missing ({INSTALL_HINT} "
                                 "makes them)") from exc
    return "dovecot", "dovecot", "dovenull", dovecot.pw_uid, dovecot.pw_gid


@contextlib.contextmanager
def running_dovecot(accounts: dict[str, str] | None = None) -> Iterator[Dovecot]:
    """A Dovecot with the ``accounts`` (user -> password) on a free loopback port, in a
    directory of its own under the system's temporary directory (pytest's tmp_path is
    private to its user, and Dovecot's mail processes run as another), removed after."""
    if not DOVECOT.exists():
        raise DovecotUnavailable(f"{DOVECOT} is missing: the NIHMS mail tests need Dovecot "
                                 f"({INSTALL_HINT}, or set DEPOSIT_TEST_DOVECOT)")
    root = Path(tempfile.mkdtemp(prefix="deposit-dovecot-"))
    root.chmod(0o711)
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir(exist_ok=True)
    internal, group, login, uid, gid = _users()
    ca = make_ca(root / "tls")
    shutil.copy(ca.cert_file, root / "server.pem")
    shutil.copy(ca.key_file, root / "server.key")
    port = free_port()
    (root / "dovecot.conf").write_text(CONFIG.format(
        root=root, tag=uuid.uuid4().hex[:8], port=port, internal_user=internal,
        internal_group=group, login_user=login, uid=uid, gid=gid))
    server = Dovecot(root=root, port=port, ca_file=ca.ca_file, uid=uid, gid=gid)
    os.chown(root / "mail", uid, gid)
    for user, password in (accounts or {}).items():
        server.add_account(user, password)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
