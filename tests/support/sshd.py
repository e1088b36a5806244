"""OpenSSH's sshd for tests and benches: a throwaway config and host key on a loopback port.

``/usr/sbin/sshd -D -e`` (Debian ``openssh-server``) runs in the foreground as the
current user, with its own ``sshd_config``, an ed25519 host key made with ``ssh-keygen``
and an authorized client key, all under the given directory; its log (``-e``, with the
``internal-sftp`` request log) goes to ``sshd.log`` there. Sessions are forced to
``internal-sftp``. Key auth is for the current user.

Password auth needs a real system account (sshd checks passwords against the system;
root's own password is not ours to set): with ``password_user=True`` a throwaway account
``dstest-sftp`` (no home, shell nologin) is created with ``useradd`` if missing, given a
fresh random password with ``chpasswd`` and locked again (``usermod -L``) when the
server stops; its writable directory is ``Sshd.password_dir``. That needs root (CI and
this machine run as root). A missing binary or a server that does not come up FAILS
the caller with the reason: never a skip.

Usage::

    with running_sshd(tmp_path / "sshd") as sshd:
        sshd.port, sshd.user, sshd.client_key, sshd.known_hosts, sshd.fingerprint
        sshd.log_text()
"""

from __future__ import annotations

import contextlib
import getpass
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SSHD = Path(os.environ.get("DEPOSIT_TEST_SSHD", "/usr/sbin/sshd"))
INSTALL_HINT = "apt-get install -y openssh-server openssh-client"
PASSWORD_USER = "dstest-sftp"
START_TIMEOUT = 20.0


class SshdUnavailable(RuntimeError):
    """sshd (or a tool it needs) is missing or did not start; the message says why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise SshdUnavailable(
            f"{name} is required by the SFTP tests and is missing ({INSTALL_HINT})"
        )
    return path


def _run(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(args, input=stdin, capture_output=True, text=True, check=False,
                            timeout=60)
    if result.returncode != 0:
        raise SshdUnavailable(f"{' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def make_key(path: Path, passphrase: str = "", key_type: str = "ed25519") -> Path:
    """A new OpenSSH private key at ``path`` (public key at ``path.pub``)."""
    path.unlink(missing_ok=True)
    path.with_suffix(".pub").unlink(missing_ok=True)
    _run(_tool("ssh-keygen"), "-q", "-t", key_type, "-N", passphrase, "-C", "deposit-test",
         "-f", str(path))
    return path


def key_fingerprint(public_key: Path) -> str:
    """``SHA256:...`` of a public key, as ``ssh-keygen -l`` prints it."""
    return _run(_tool("ssh-keygen"), "-l", "-E", "sha256", "-f", str(public_key)).split()[1]


@dataclass
class PasswordAccount:
    name: str
    password: str
    directory: Path


@dataclass
class Sshd:
    root: Path
    port: int
    user: str
    client_key: Path
    host_key: Path
    config: Path
    log_path: Path
    password_account: PasswordAccount | None = None
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def known_hosts(self) -> Path:
        """A known_hosts file that knows this server's host key (``[127.0.0.1]:port``)."""
        path = self.root / "known_hosts"
        key = self.host_key.with_suffix(".pub").read_text().split()
        path.write_text(f"[{self.host}]:{self.port} {key[0]} {key[1]}\n")
        return path

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.host_key.with_suffix(".pub"))

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        offset = len(self.log_text())  # a restart appends: look only at what follows
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(self.config)], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SshdUnavailable(f"sshd exited with {self.process.returncode}:\n"
                                      f"{self.log_text()[-3000:]}")
            if "Server listening" in self.log_text()[offset:]:
                return
            time.sleep(0.05)
        self.stop()
        raise SshdUnavailable(f"sshd did not listen within {START_TIMEOUT}s:\n"
                              f"{self.log_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication {password_auth}
KbdInteractiveAuthentication no
AllowUsers {users}
AllowTcpForwarding no
X11Forwarding no
MaxStartups 50:30:100
LogLevel VERBOSE
Subsystem sftp internal-sftp
ForceCommand internal-sftp
"""


def _password_account() -> PasswordAccount:
    """The throwaway account, created if missing, with a fresh password and a writable dir."""
    if os.geteuid() != 0:
        raise SshdUnavailable(
            "the SFTP password test needs root: sshd checks passwords against system accounts, "
            f"and a throwaway account ({PASSWORD_USER}) must be created; run the tests as root "
            "(as CI does)"
        )
    exists = subprocess.run(["id", PASSWORD_USER], capture_output=True, check=False)
    if exists.returncode != 0:
        _run(_tool("useradd"), "--system", "-M", "-d", "/nonexistent", "-s",
             "/usr/sbin/nologin", PASSWORD_USER)
    password = secrets.token_urlsafe(18)
    _run(_tool("chpasswd"), stdin=f"{PASSWORD_USER}:{password}\n")
    _run(_tool("usermod"), "-U", PASSWORD_USER)
    # pytest's tmp dirs are 0700: the account gets its own directory under /tmp
    directory = Path(tempfile.mkdtemp(prefix="dstest-sftp-"))
    directory.chmod(0o755)
    inbox = directory / "inbox"
    inbox.mkdir()
    shutil.chown(inbox, PASSWORD_USER)
    return PasswordAccount(PASSWORD_USER, password, inbox)


@contextlib.contextmanager
def running_sshd(root: Path, password_user: bool = False) -> Iterator[Sshd]:
    """An sshd on a free loopback port, stopped (and the password account locked) on exit."""
    if not SSHD.exists():
        raise SshdUnavailable(f"{SSHD} is missing: the SFTP tests need OpenSSH's sshd "
                              f"({INSTALL_HINT}, or set DEPOSIT_TEST_SSHD)")
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
    host_key = make_key(root / "host_ed25519")
    client_key = make_key(root / "client_ed25519")
    (root / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    user = getpass.getuser()
    account = _password_account() if password_user else None
    port = free_port()
    config = root / "sshd_config"
    config.write_text(SSHD_CONFIG.format(
        port=port, host_key=host_key, root=root,
        password_auth="yes" if account else "no",
        users=" ".join([user] + ([account.name] if account else [])),
    ))
    server = Sshd(root=root, port=port, user=user, client_key=client_key, host_key=host_key,
                  config=config, log_path=root / "sshd.log", password_account=account)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if account is not None:
            subprocess.run(["usermod", "-L", account.name], capture_output=True, check=False)
            shutil.rmtree(account.directory.parent, ignore_errors=True)
