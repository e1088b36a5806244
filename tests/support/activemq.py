"""A real ActiveMQ Classic broker for tests and benches, started and killed at will.

With DEPOSIT_TEST_CONTAINERS=1 and a Docker engine the broker runs in a testcontainers container
(``apache/activemq-classic``); otherwise it is Debian's ``activemq`` package
(``apt-get install -y activemq``), started here as the *current* user with the
test's own configuration and data directory (the package's init script switches to
the ``activemq`` user and can fail silently on permissions). Only a STOMP connector is
opened, on 127.0.0.1 and a port picked free at start; ``kill()`` + ``start()`` bring
the broker back on the same port with the same KahaDB, so persistent messages survive
a restart. A broker that cannot be started FAILS the caller: never a skip.

Usage::

    with running_activemq(tmp_path / "amq") as amq:
        amq.url                # stomp://127.0.0.1:<port>
        amq.kill(); amq.start()
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ACTIVEMQ_HOME = Path(os.environ.get("DEPOSIT_TEST_ACTIVEMQ_HOME", "/usr/share/activemq"))
ACTIVEMQ_IMAGE = "apache/activemq-classic:5.18.3"
START_TIMEOUT = 90.0
INSTALL_HINT = "apt-get update && apt-get install -y activemq"

JAVA_OPENS = [
    "--add-reads=java.xml=java.logging",
    *(f"--add-opens=java.base/{pkg}=ALL-UNNAMED" for pkg in (
        "java.security", "java.net", "java.lang", "java.util", "java.util.concurrent",
        "java.util.concurrent.atomic")),
    "--add-opens=java.naming/javax.naming.spi=ALL-UNNAMED",
]

ACTIVEMQ_XML = """<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans
    http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
    http://activemq.apache.org/schema/core
    http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="deposit-test"
          useJmx="false" persistent="true" advisorySupport="false"
          dataDirectory="{data}">
    <persistenceAdapter><kahaDB directory="{data}/kahadb"/></persistenceAdapter>
    <systemUsage><systemUsage>
      <memoryUsage><memoryUsage limit="64 mb"/></memoryUsage>
      <storeUsage><storeUsage limit="1 gb"/></storeUsage>
      <tempUsage><tempUsage limit="256 mb"/></tempUsage>
    </systemUsage></systemUsage>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:{port}"/>
    </transportConnectors>
  </broker>
</beans>
"""

# Debian's ActiveMQ logs through log4j 1.2
LOG4J = """log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=${activemq.data}/activemq.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=%d | %-5p | %m | %c | %t%n
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def stomp_server_header(host: str, port: int, user: str, password: str) -> str:
    """The ``server`` header of the CONNECTED frame (e.g. ``RabbitMQ/3.10.8``)."""
    frame = (f"CONNECT\naccept-version:1.2\nhost:/\nlogin:{user}\npasscode:{password}\n\n\0"
             ).encode()
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(frame)
        data = b""
        while b"\0" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\n\n", 1)[0].decode(errors="replace").splitlines()
    if not head or head[0] != "CONNECTED":
        raise RuntimeError(f"STOMP CONNECT to {host}:{port} answered {head[:3]!r}")
    for line in head[1:]:
        key, _, value = line.partition(":")
        if key == "server":
            return value
    return ""


def docker_available() -> bool:
    """Brokers in testcontainers only when asked (DEPOSIT_TEST_CONTAINERS=1) and an engine answers.

    The local services are the default: an engine that is merely present (the container
    tests start one) must not switch the fixtures to images that cannot be pulled here.
    """
    if os.environ.get("DEPOSIT_TEST_CONTAINERS", "") not in {"1", "true", "yes"}:
        return False
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    try:
        # by name: the repository's own docker/ folder must not shadow the package
        docker: Any = importlib.import_module("docker")
        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


class ActiveMQ:
    """One ActiveMQ broker: a java process of our own, or a container."""

    def __init__(self, base: Path, port: int | None = None) -> None:
        self.base = base
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.process: subprocess.Popen[bytes] | None = None
        self.container: Any = None
        self.use_docker = docker_available()

    @property
    def url(self) -> str:
        return f"stomp://{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.base / "data" / "activemq.log"

    def _write_config(self) -> Path:
        conf = self.base / "conf"
        data = self.base / "data"
        conf.mkdir(parents=True, exist_ok=True)
        data.mkdir(parents=True, exist_ok=True)
        (conf / "activemq.xml").write_text(ACTIVEMQ_XML.format(data=data, port=self.port))
        (conf / "log4j.properties").write_text(LOG4J)
        return conf

    def command(self) -> list[str]:
        conf = self._write_config()
        java = shutil.which("java") or "java"
        return [
            java, "-Xms64m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true", *JAVA_OPENS,
            f"-Dactivemq.classpath={conf}", f"-Dactivemq.home={ACTIVEMQ_HOME}",
            f"-Dactivemq.base={self.base}", f"-Dactivemq.conf={conf}",
            f"-Dactivemq.data={self.base / 'data'}",
            f"-Dlog4j.configuration=file:{conf / 'log4j.properties'}",
            "-jar", str(ACTIVEMQ_HOME / "bin" / "activemq.jar"),
            "start", f"xbean:file:{conf / 'activemq.xml'}",
        ]

    def start(self) -> None:
        """Start (or restart) the broker and wait until its STOMP port accepts."""
        if self.use_docker:
            self._start_container()
        else:
            self._start_process()
        self._wait_ready()

    def _start_process(self) -> None:
        if not (ACTIVEMQ_HOME / "bin" / "activemq.jar").exists():
            raise RuntimeError(
                f"ActiveMQ is required by this test and is not installed at {ACTIVEMQ_HOME} "
                f"(install it: `{INSTALL_HINT}`)"
            )
        if port_open(self.host, self.port):
            raise RuntimeError(f"port {self.port} is already taken; cannot start ActiveMQ there")
        out = (self.base / "java.out").open("ab")
        self.process = subprocess.Popen(
            self.command(), cwd=self.base, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

    def _start_container(self) -> None:
        from testcontainers.core.container import DockerContainer

        if self.container is not None:
            self.container.get_wrapped_container().start()
            return
        container = DockerContainer(ACTIVEMQ_IMAGE)
        container.with_bind_ports(61613, self.port)
        self.container = container.start()
        self.host = "127.0.0.1"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"ActiveMQ exited with {self.process.returncode} at start:\n{self.output()}"
                )
            if port_open(self.host, self.port):
                try:  # a STOMP handshake, not just an open port (docker-proxy accepts early)
                    stomp_server_header(self.host, self.port, "admin", "admin")
                    return
                except (OSError, RuntimeError):
                    pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"ActiveMQ did not open port {self.port} in {START_TIMEOUT}s:\n"
                           f"{self.output()}")

    def output(self) -> str:
        texts = []
        for path in (self.base / "java.out", self.log_file):
            if path.exists():
                texts.append(path.read_text(errors="replace")[-4000:])
        return "\n".join(texts)

    def kill(self) -> None:
        """Stop the broker abruptly (SIGKILL): what a crash looks like to clients."""
        if self.container is not None:
            self.container.get_wrapped_container().kill()
            return
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None
        deadline = time.monotonic() + 10
        while port_open(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop for good (the end of a test)."""
        if self.container is not None:
            with contextlib.suppress(Exception):
                self.container.stop()
            self.container = None
            return
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None


@contextlib.contextmanager
def running_activemq(base: Path) -> Iterator[ActiveMQ]:
    base.mkdir(parents=True, exist_ok=True)
    broker = ActiveMQ(base)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
