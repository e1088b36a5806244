"""moto in server mode on a loopback port: a real SQS endpoint (HTTP, boto3's wire
protocol) for the SQS adapter's tests.

``running_moto()`` starts ``moto.server.ThreadedMotoServer`` on 127.0.0.1 and a port the
kernel picks (never a fixed one). moto is a test extra (``pip install -e '.[test]'``, as
scripts/test.sh does); without it the caller gets a RuntimeError saying so, which the
fixtures turn into a FAILED test, never a skip. The server keeps every queue in this
process's memory: tests use unique queue names.

``AWS_TEST_ENVIRONMENT`` is the environment a test runs boto3 under (the fixtures set it
with monkeypatch, for that test only): dummy credentials, and none of the developer's own
AWS configuration (profile, config files, endpoint or region variables) leaking in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlencode

INSTALL_HINT = ".venv/bin/pip install -e '.[test]'  (moto[server] is a test extra)"
REGION = "us-east-1"

# Dummy credentials: moto accepts any; the secret is recognisable so tests can check it
# never reaches a log line or an error message.
DUMMY_ACCESS_KEY = "AKIATESTDEPOSITSVCS0"
DUMMY_SECRET_KEY = "test-secret-must-never-be-logged"
AWS_TEST_ENVIRONMENT: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_KEY,
    "AWS_CONFIG_FILE": "/nonexistent/deposit-services-tests/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/deposit-services-tests/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}
AWS_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
             "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS",
             "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
             "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")


@dataclass(frozen=True)
class MotoServer:
    host: str
    port: int

    @property
    def endpoint(self) -> str:
        """The endpoint URL boto3 takes (``endpoint_url=``)."""
        return f"http://{self.host}:{self.port}"

    def broker_url(self, *, create: bool = True, region: str = REGION, **extra: str) -> str:
        """``DEPOSIT_BROKER_URL`` for this server: ``sqs+http://host:port?region=...``."""
        query = {"region": region, **({"create": "true"} if create else {}), **extra}
        return f"sqs+http://{self.host}:{self.port}?{urlencode(query)}"


@contextmanager
def running_moto() -> Iterator[MotoServer]:
    """A moto server for the duration of the block; RuntimeError if moto is missing."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise RuntimeError(f"moto[server] is required by the SQS tests and is not "
                           f"installed ({exc}); install it: `{INSTALL_HINT}`") from exc
    # werkzeug logs every request at INFO: keep the test output about the tests.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield MotoServer(host, port)
    finally:
        server.stop()
