"""A loopback TCP relay to a server, with the faults tests need on the way.

* ``cut()`` / ``restore()``: stop listening and reset every relayed connection, then
  listen again on the same port: to its clients, the server going away and coming back,
  without touching a shared server;
* ``freeze()`` / ``thaw()``: relay nothing more while every connection stays open (a
  server or network gone silent: only heart-beats can tell);
* ``cut_after=N``: a connection is reset (RST) once more than N bytes have gone from the
  client to the server, as a server or a firewall that drops an upload (``cuts`` counts
  them);
* ``tls``: a server-side context terminates TLS in front of a plain-text server.

Usage::

    with TcpProxy("127.0.0.1", server_port, cut_after=1_000_000) as proxy:
        ...connect to 127.0.0.1:proxy.port...
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from types import TracebackType


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, tls: ssl.SSLContext | None = None,
                 cut_after: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.tls = tls
        self.cut_after = cut_after
        self.cuts = 0
        self.port = 0  # chosen by the first start(), kept by restore()
        self._server: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()

    def __enter__(self) -> TcpProxy:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self.port = server.getsockname()[1]
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
        threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, counted: bool) -> None:
        sent = 0
        try:
            while True:
                self._flowing.wait()
                chunk = src.recv(65536)
                if not chunk:
                    break
                if counted and self.cut_after is not None:
                    sent += len(chunk)
                    if sent > self.cut_after:
                        self._reset(src, dst)
                        return
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

    def _reset(self, *socks: socket.socket) -> None:
        """Close with RST (linger 0), as a dropped connection looks to both ends."""
        with self._lock:
            self.cuts += 1
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()

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
