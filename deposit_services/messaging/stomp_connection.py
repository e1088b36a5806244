"""The STOMP connection under the broker adapter: connect, heart-beats, TLS, reconnect.

``StompLink`` is one logical connection that outlives the physical ones: a supervisor
thread connects (STOMP 1.2, heart-beats, TLS verified for ``stomp+ssl://``), notices a
lost connection (DISCONNECTED, a missed heart-beat, a dead socket) and connects again
with capped exponential backoff, logging every attempt, until ``close``. Each physical
connection has a ``generation`` number; what was received on one can only be settled
on it, so callers compare generations. Sends that need the broker's word wait for a
RECEIPT (or an ERROR naming the receipt).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import stomp
from stomp.exception import ConnectFailedException, StompException

from deposit_services.errors import BrokerUnavailable, ConfigurationError, MessagingError
from deposit_services.settings import mask_url

log = logging.getLogger(__name__)

DEFAULT_PORT = 61613
HEARTBEATS_MS = (10_000, 10_000)
CONNECT_TIMEOUT = 10.0
RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 30.0
RECEIPT_POLL_S = 0.5

# (generation, headers, raw body) of a MESSAGE frame
MessageCallback = Callable[[int, dict[str, str], bytes], None]


@dataclass(frozen=True)
class Endpoint:
    """Where the broker is, from ``stomp[+ssl]://[user:password@]host[:port][?ca=&vhost=]``."""

    host: str
    port: int
    tls: bool
    user: str | None = None
    password: str | None = None
    ca_file: str | None = None
    vhost: str = "/"

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("stomp", "stomp+ssl", "stomp+tls"):
            raise ConfigurationError(f"DEPOSIT_BROKER_URL={mask_url(url)!r}: not a stomp:// URL")
        if not parts.hostname:
            raise ConfigurationError(f"DEPOSIT_BROKER_URL={mask_url(url)!r}: no host")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError as exc:
            raise ConfigurationError(f"DEPOSIT_BROKER_URL={mask_url(url)!r}: {exc}") from exc
        query = parse_qs(parts.query)
        return cls(
            host=parts.hostname,
            port=port,
            tls=scheme != "stomp",
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            ca_file=query.get("ca", [None])[0],
            # The STOMP ``host`` header: RabbitMQ takes it as the vhost (default "/"),
            # ActiveMQ ignores it.
            vhost=query.get("vhost", ["/"])[0],
        )

    def __str__(self) -> str:
        return f"{'stomp+ssl' if self.tls else 'stomp'}://{self.host}:{self.port}"


def _no_delay(conn: Any) -> None:
    """TCP_NODELAY: frames go out at once. With Nagle's algorithm a small frame (an ACK)
    sent while another (a SEND) awaits its TCP acknowledgement waits for it, up to the
    peer's delayed-ACK timer: with two worker threads or more that halved the end-to-end
    rate (bench/messaging.py)."""
    sock = getattr(conn.transport, "socket", None)
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:
        log.debug("TCP_NODELAY not set: %s", exc)


def _text(body: Any) -> str:
    if isinstance(body, bytes):
        return body.decode("utf-8", errors="replace")
    return str(body or "")


class _Listener(stomp.ConnectionListener):  # type: ignore[misc]
    """Frames of one physical connection (one ``generation``) handed to the link."""

    def __init__(self, link: StompLink, generation: int) -> None:
        self.link = link
        self.generation = generation
        self.error: str | None = None

    def on_message(self, frame: Any) -> None:
        body = frame.body if isinstance(frame.body, bytes) else _text(frame.body).encode()
        self.link.on_message(self.generation, dict(frame.headers), body)

    def on_receipt(self, frame: Any) -> None:
        self.link._on_receipt(frame.headers.get("receipt-id", ""), None)

    def on_error(self, frame: Any) -> None:
        summary = frame.headers.get("message", "")
        detail = " ".join(_text(frame.body).split())[:300]
        text = f"{summary}: {detail}" if summary and detail else summary or detail
        self.error = text
        log.error("broker error frame: %s", text)
        receipt = frame.headers.get("receipt-id")
        if receipt:
            self.link._on_receipt(receipt, text)

    def on_heartbeat_timeout(self) -> None:
        log.warning("no heart-beat from broker %s in time; dropping the connection",
                    self.link.endpoint)

    def on_disconnected(self) -> None:
        self.link._on_lost(self.generation)


class StompLink:
    """A self-healing STOMP 1.2 connection shared by threads.

    ``on_connected(conn)`` runs under the link's lock after every (re)connection, once
    the link counts as connected (the broker adapter subscribes there; whatever else
    needs the connection waits for the lock); ``on_lost()``
    runs after a connection is lost (it drops what was buffered from it)."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        user: str | None,
        password: str | None,
        on_message: MessageCallback,
        on_connected: Callable[[Any], None],
        on_lost: Callable[[], None],
        heartbeats: tuple[int, int] = HEARTBEATS_MS,
        reconnect_first: float = RECONNECT_FIRST_S,
        reconnect_max: float = RECONNECT_MAX_S,
    ) -> None:
        self.endpoint = endpoint
        self.user = user
        self.password = password
        self.on_message = on_message
        self.on_connected = on_connected
        self.on_lost = on_lost
        self.heartbeats = heartbeats
        self.reconnect_first = reconnect_first
        self.reconnect_max = reconnect_max
        self.lock = threading.RLock()
        self._conn: Any = None
        self._generation = 0
        self._connected = threading.Event()
        self._lost = threading.Event()
        self._closing = threading.Event()
        self._receipts: dict[str, tuple[threading.Event, list[str]]] = {}
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"stomp-{endpoint.host}", daemon=True
        )

    def start(self) -> None:
        self._supervisor.start()

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def holds(self, generation: int) -> bool:
        """True while the connection of ``generation`` is the live one."""
        return generation == self._generation and self._connected.is_set()

    def current(self) -> tuple[Any, int]:
        with self.lock:
            if self._conn is None or not self._connected.is_set():
                raise BrokerUnavailable(f"not connected to broker {self.endpoint}")
            return self._conn, self._generation

    # Connecting -------------------------------------------------------------------

    def _supervise(self) -> None:
        attempt = 0
        while not self._closing.is_set():
            if self._connected.is_set():
                if not self._lost.wait(1.0):
                    self._check_alive()
                continue
            attempt += 1
            try:
                self._connect()
            except BrokerUnavailable as exc:
                delay = min(self.reconnect_first * 2 ** min(attempt - 1, 20), self.reconnect_max)
                log.warning("broker %s unreachable (attempt %d): %s; next attempt in %.1f s",
                            self.endpoint, attempt, exc, delay)
                self._closing.wait(delay)
                continue
            if attempt > 1:
                log.info("reconnected to broker %s after %d attempt(s)", self.endpoint, attempt)
            attempt = 0

    def _connect(self) -> None:
        ep = self.endpoint
        conn = stomp.Connection12(
            [(ep.host, ep.port)], heartbeats=self.heartbeats, reconnect_attempts_max=1,
            timeout=CONNECT_TIMEOUT, vhost=ep.vhost, auto_content_length=False,
            auto_decode=False,
        )
        if ep.tls:
            # verify=True: the certificate chain (system store, SSL_CERT_FILE or ?ca=) and
            # the host name are both checked
            conn.set_ssl(for_hosts=[(ep.host, ep.port)], ca_certs=ep.ca_file, verify=True,
                         ssl_version=ssl.PROTOCOL_TLS_CLIENT)
        generation = self._generation + 1
        listener = _Listener(self, generation)
        conn.set_listener("deposit-services", listener)
        try:
            conn.connect(self.user, self.password, wait=False)
            conn.transport.wait_for_connection(CONNECT_TIMEOUT)
        except (StompException, OSError, ssl.SSLError) as exc:
            self.drop(conn)
            detail = listener.error or str(exc) or (
                "no connection (refused, timed out or TLS handshake failed)"
                if isinstance(exc, ConnectFailedException) else type(exc).__name__)
            raise BrokerUnavailable(f"cannot connect to {ep}: {detail}") from exc
        _no_delay(conn)
        with self.lock:
            if self._closing.is_set():
                self.drop(conn)
                return
            self._conn = conn
            self._generation = generation
            self._lost.clear()
            # live before on_connected subscribes: a message those subscriptions bring
            # may be handled and settled (which needs a live link) before it returns
            self._connected.set()
            self.on_connected(conn)
        log.info("connected to broker %s as %s (STOMP 1.2, heart-beats %s ms)", ep,
                 self.user or "anonymous", self.heartbeats)

    def _check_alive(self) -> None:
        """A socket that died without a DISCONNECTED notification (it can happen right
        after connecting) counts as lost."""
        with self.lock:
            conn, generation = self._conn, self._generation
        if conn is not None and not conn.is_connected():
            self._on_lost(generation)

    def _on_lost(self, generation: int) -> None:
        with self.lock:
            if generation != self._generation or not self._connected.is_set():
                return
            self._connected.clear()
            conn, self._conn = self._conn, None
            self._lost.set()
        self.on_lost()
        for event, errors in list(self._receipts.values()):
            errors.append("connection lost before the broker confirmed")
            event.set()
        if conn is not None:
            threading.Thread(target=self.drop, args=(conn,), daemon=True).start()

    @staticmethod
    def drop(conn: Any) -> None:
        try:
            conn.transport.disconnect_socket()
        except (StompException, OSError, AttributeError) as exc:  # already gone
            log.debug("closing a dead connection: %s", exc)

    # Talking ----------------------------------------------------------------------

    def send_confirmed(self, destination: str, body: str | bytes, headers: dict[str, str],
                       deadline: float) -> None:
        """SEND on the live connection and wait for the broker's RECEIPT.

        BrokerUnavailable: not connected, or the connection was lost before the
        receipt (the message may or may not have been taken); MessagingError: the
        broker refused it (an ERROR frame for this receipt)."""
        conn, generation = self.current()
        self._confirmed(generation, destination, deadline, lambda receipt: conn.send(
            destination=destination, body=body, headers={**headers, "receipt": receipt}))

    def move(self, ack_id: str, generation: int, destination: str, body: str | bytes,
             headers: dict[str, str], deadline: float) -> None:
        """SEND a message to ``destination`` and ACK ``ack_id`` in one STOMP transaction,
        committed with a receipt: both happen or neither (a crash or a lost connection
        before the COMMIT leaves only the original, which the broker redelivers)."""
        conn, current = self.current()
        if current != generation:
            raise BrokerUnavailable("the connection the message came on was replaced")
        tx = uuid.uuid4().hex
        try:
            conn.begin(transaction=tx)
            conn.send(destination=destination, body=body, headers={**headers, "transaction": tx})
            conn.ack(ack_id, transaction=tx)
        except (StompException, OSError) as exc:
            raise BrokerUnavailable(f"moving a message to {destination} failed: {exc}") from exc
        self._confirmed(generation, destination, deadline, lambda receipt: conn.commit(
            transaction=tx, headers={"receipt": receipt}))

    def _confirmed(self, generation: int, destination: str, deadline: float,
                   frame: Callable[[str], object]) -> None:
        """Send ``frame(receipt_id)`` and wait for that receipt (or an ERROR naming it)."""
        receipt = uuid.uuid4().hex
        event, errors = threading.Event(), list[str]()
        self._receipts[receipt] = (event, errors)
        try:
            try:
                frame(receipt)
            except (StompException, OSError) as exc:
                raise BrokerUnavailable(f"send failed: {exc}") from exc
            while not event.wait(RECEIPT_POLL_S):
                if time.monotonic() > deadline:
                    raise BrokerUnavailable("no receipt from the broker in time")
                if generation != self._generation:
                    raise BrokerUnavailable("connection lost before the broker confirmed")
        finally:
            self._receipts.pop(receipt, None)
        if errors:
            if generation != self._generation or "connection lost" in errors[0]:
                raise BrokerUnavailable(errors[0])
            raise MessagingError(f"the broker refused a message to {destination}: {errors[0]}")

    def _on_receipt(self, receipt: str, error: str | None) -> None:
        waiting = self._receipts.get(receipt)
        if waiting is not None:
            if error is not None:
                waiting[1].append(error)
            waiting[0].set()

    def ack(self, ack_id: str, generation: int) -> None:
        """ACK on the connection the message came from (BrokerUnavailable if it is gone:
        the broker then redelivers the message)."""
        conn, current = self.current()
        if current != generation:
            raise BrokerUnavailable("the connection the message came on was replaced")
        try:
            conn.ack(ack_id)
        except (StompException, OSError) as exc:
            raise BrokerUnavailable(f"ack failed: {exc}") from exc

    # Closing ----------------------------------------------------------------------

    def close(self) -> None:
        """DISCONNECT with a receipt (the ACKs sent before it count), then stop."""
        self._closing.set()
        self._lost.set()  # wakes the supervisor at once
        with self.lock:
            conn, self._conn = self._conn, None
            self._connected.clear()
        if conn is not None:
            closer = threading.Thread(target=self._disconnect, args=(conn,), daemon=True)
            closer.start()
            closer.join(CONNECT_TIMEOUT)
        if self._supervisor.is_alive():
            self._supervisor.join(CONNECT_TIMEOUT)

    @staticmethod
    def _disconnect(conn: Any) -> None:
        try:
            conn.disconnect(receipt=uuid.uuid4().hex)
        except (StompException, OSError) as exc:
            log.debug("disconnect: %s", exc)
            StompLink.drop(conn)
