"""A loopback TCP proxy that cuts connections after N bytes: a server that drops mid-upload.

Each accepted connection is forwarded to ``target``; once more than ``cut_after`` bytes
have gone from the client to the server, both sides are closed abruptly (RST), as when
a server or a firewall drops the connection. ``cut_after=None`` forwards everything.

Usage::

    with CuttingProxy(("127.0.0.1", server_port), cut_after=1_000_000) as proxy:
        ...connect to 127.0.0.1:proxy.port...
        proxy.cuts   # connections cut so far
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType


class CuttingProxy:
    def __init__(self, target: tuple[str, int], cut_after: int | None) -> None:
        self.target = target
        self.cut_after = cut_after
        self.cuts = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)  # accept() wakes up to see stop()
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="cutting-proxy", daemon=True)

    def __enter__(self) -> CuttingProxy:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            sent = [0]
            threading.Thread(target=self._pump, args=(client, upstream, sent), daemon=True
                             ).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True
                             ).start()

    def _pump(self, src: socket.socket, dst: socket.socket, counted: list[int] | None) -> None:
        try:
            while data := src.recv(65536):
                if counted is not None and self.cut_after is not None:
                    counted[0] += len(data)
                    if counted[0] > self.cut_after:
                        self._cut(src, dst)
                        return
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _cut(self, *socks: socket.socket) -> None:
        with self._lock:
            self.cuts += 1
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
