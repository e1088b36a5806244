"""RabbitMQ with its STOMP plugin, for tests and benches.

With DEPOSIT_TEST_CONTAINERS=1 and a Docker engine: a testcontainers RabbitMQ with
``rabbitmq_stomp`` enabled, on a free port. Otherwise the locally running server
(``rabbitmq-server -detached``, as on
the development machines): its STOMP plugin is enabled here if its port does not answer
(``rabbitmq-plugins enable rabbitmq_stomp``, works offline) and the port is checked to
really be RabbitMQ's (ActiveMQ defaults to the same 61613). ``DEPOSIT_TEST_RABBITMQ_URL``
(``stomp://user:password@host:port``) points elsewhere. A broker that cannot be reached
FAILS the caller: never a skip. The server is shared: tests use unique queue names.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

from tests.support.activemq import docker_available, free_port, port_open, stomp_server_header

DEFAULT_URL = "stomp://guest:guest@127.0.0.1:61613"
RABBITMQ_IMAGE = "rabbitmq:3.13"
START_TIMEOUT = 60.0
INSTALL_HINT = ("apt-get install -y rabbitmq-server && rabbitmq-server -detached && "
                "rabbitmq-plugins enable rabbitmq_stomp")


def _check(url: str) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 61613
    server = stomp_server_header(host, port, parts.username or "guest", parts.password or "guest")
    if not server.startswith("RabbitMQ"):
        raise RuntimeError(f"{host}:{port} is not RabbitMQ's STOMP port (server {server!r})")


def _enable_local_plugin(port: int) -> None:
    try:
        result = subprocess.run(["rabbitmq-plugins", "enable", "rabbitmq_stomp"],
                                capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"RabbitMQ is required and rabbitmq-plugins failed ({exc}); "
                           f"install and start it: `{INSTALL_HINT}`") from exc
    if result.returncode != 0:
        raise RuntimeError(f"`rabbitmq-plugins enable rabbitmq_stomp` failed: "
                           f"{result.stderr or result.stdout}; is RabbitMQ running? "
                           f"(`{INSTALL_HINT}`)")
    deadline = time.monotonic() + START_TIMEOUT
    while not port_open("127.0.0.1", port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"RabbitMQ's STOMP plugin did not open port {port}")
        time.sleep(0.3)


def delete_local_queues(names: list[str]) -> None:
    """Best effort: delete ``names`` (durable queues the tests made, and their messages)
    from the locally running server in one ``rabbitmqctl eval``, so that a shared
    development server does not collect test queues. Never fails the caller."""
    names = [n for n in names if re.fullmatch(r"[A-Za-z0-9._-]+", n)]
    if not names:
        return
    listed = ", ".join(f'<<"{name}">>' for name in names)
    expression = (
        f"[case rabbit_amqqueue:lookup(rabbit_misc:r(<<\"/\">>, queue, N)) of "
        f"{{ok, Q}} -> rabbit_amqqueue:delete(Q, false, false, <<\"tests\">>); _ -> missing "
        f"end || N <- [{listed}]]."
    )
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(["rabbitmqctl", "eval", expression], capture_output=True, timeout=60,
                       check=False)


@contextlib.contextmanager
def running_rabbitmq() -> Iterator[str]:
    """The STOMP URL (with credentials) of a RabbitMQ ready to use."""
    url = os.environ.get("DEPOSIT_TEST_RABBITMQ_URL")
    if url:
        _check(url)
        yield url
        return
    if docker_available():
        with _container() as container_url:
            yield container_url
        return
    if not port_open("127.0.0.1", 61613):
        _enable_local_plugin(61613)
    _check(DEFAULT_URL)
    yield DEFAULT_URL


@contextlib.contextmanager
def _container() -> Iterator[str]:
    from testcontainers.core.container import DockerContainer

    port = free_port()
    container = (DockerContainer(RABBITMQ_IMAGE)
                 .with_bind_ports(61613, port)
                 .with_command("sh -c 'rabbitmq-plugins enable --offline rabbitmq_stomp && "
                               "exec rabbitmq-server'"))
    with container:
        url = f"stomp://guest:guest@127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                _check(url)
                break
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield url
