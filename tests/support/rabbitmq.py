"""RabbitMQ with its STOMP plugin, for tests and benches.

With a Docker engine: a testcontainers RabbitMQ with ``rabbitmq_stomp`` enabled, on a
free port. Otherwise the locally running server (``rabbitmq-server -detached``, as on
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
import socket
import ssl
import subprocess
import threading
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


class TcpProxy:
    """A loopback TCP relay to a broker that can be cut: to its clients, cutting it
    looks like the broker going away (connections reset, new ones refused) without
    touching the shared server. ``cut()`` then ``restore()`` on the same port.
    ``freeze()`` / ``thaw()`` stop and resume relaying while every connection stays
    open (a broker or network gone silent: only heart-beats can tell). With a
    server-side ``tls`` context it terminates TLS in front of a plain-text broker."""

    def __init__(self, target_host: str, target_port: int,
                 tls: ssl.SSLContext | None = None) -> None:
        self.target = (target_host, target_port)
        self.tls = tls
        self.port = free_port()
        self._server: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()

    def start(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        if self.tls is not None:
            try:
                client = self.tls.wrap_socket(client, server_side=True)
            except (OSError, ssl.SSLError):
                client.close()  # the client refused our certificate (or spoke plain text)
                return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            self._sockets.update((client, upstream))
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                self._flowing.wait()
                chunk = src.recv(65536)
                if not chunk:
                    break
                self._flowing.wait()
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
                with self._lock:
                    self._sockets.discard(sock)

    def cut(self) -> None:
        """Stop listening and reset every relayed connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        self.start()

    def freeze(self) -> None:
        """Relay nothing more, in either direction, but keep every connection open."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self.thaw()
        self.cut()
