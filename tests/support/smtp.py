"""An SMTP server for tests: aiosmtpd (PyPI) on a free loopback port, STARTTLS with a
certificate from a throwaway CA (required before MAIL and AUTH), AUTH LOGIN/PLAIN
with one account; every message it takes is kept, parsed, in ``messages``.

Usage::

    with running_smtp_server() as smtp:
        smtp.port, smtp.ca_file, smtp.username, smtp.password
        smtp.messages                     # [email.message.EmailMessage, ...]
        smtp.refuse_next(1)               # the next DATA is answered 451
"""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.ftp_server import make_certificates


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        with self.server.lock:
            if self.server.refusals > 0:
                self.server.refusals -= 1
                return "451 4.3.0 the test server refuses this message; try again later"
            raw = envelope.original_content or b""
            message = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            self.server.messages.append(message)
            self.server.recipients.append(list(envelope.rcpt_tos))
            self.server.tls_used.append(session.ssl is not None)
        return "250 OK"


class SmtpServer:
    def __init__(self, directory: Path) -> None:
        self.username, self.password = "notices", "s3cret-smtp"
        self.ca_file, certfile = make_certificates(directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certfile)
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self.tls_used: list[bool] = []
        self.refusals = 0
        self.lock = threading.Lock()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, tls_context=context,
            require_starttls=True, authenticator=self._authenticate, auth_required=True,
            auth_require_tls=True)

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == self.username
              and auth_data.password.decode() == self.password)
        return AuthResult(success=ok)

    def refuse_next(self, count: int = 1) -> None:
        with self.lock:
            self.refusals = count


@contextmanager
def running_smtp_server() -> Iterator[SmtpServer]:
    directory = Path(tempfile.mkdtemp(prefix="smtp-test-"))
    server = SmtpServer(directory)
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()
        shutil.rmtree(directory, ignore_errors=True)
