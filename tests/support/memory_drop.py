"""An in-memory file-drop server and a transport for it: the drop algorithm's rules
(and the service layer's) tested without a network."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from deposit_services.assemblers.base import Package
from deposit_services.errors import TransientTransferError
from deposit_services.transports.base import TransportContext
from deposit_services.transports.drop import (
    DropBinding,
    DropSession,
    DropTransport,
    drop_url,
    remote_path,
)


class MemoryServer:
    """Directories of files (name -> bytes), and a fault to inject into one primitive."""

    def __init__(self) -> None:
        self.dirs: dict[str, dict[str, bytes]] = {}
        self.fail: dict[str, BaseException] = {}  # primitive -> fault raised (once)
        self.short_upload = False
        self.calls: list[str] = []

    def call(self, primitive: str) -> None:
        self.calls.append(primitive)
        fault = self.fail.pop(primitive, None)
        if fault is not None:
            raise fault


class MemorySession(DropSession):
    faults: ClassVar[tuple[type[BaseException], ...]] = (OSError,)

    def __init__(self, server: MemoryServer) -> None:
        self.server = server

    def _dir(self, directory: str) -> dict[str, bytes]:
        if directory not in self.server.dirs:
            raise FileNotFoundError(directory)
        return self.server.dirs[directory]

    def make_directories(self, directory: str) -> None:
        self.server.call("make_directories")
        self.server.dirs.setdefault(directory, {})

    def is_directory(self, directory: str) -> bool:
        self.server.call("is_directory")
        return directory in self.server.dirs

    def size(self, directory: str, name: str) -> int | None:
        self.server.call("size")
        data = self.server.dirs.get(directory, {}).get(name)
        return None if data is None else len(data)

    def upload(self, directory: str, name: str, package: Package) -> None:
        self.server.call("upload")
        data = package.path.read_bytes()
        self._dir(directory)[name] = data[:-1] if self.server.short_upload else data

    def rename(self, directory: str, old: str, new: str) -> None:
        self.server.call("rename")
        files = self._dir(directory)
        files[new] = files.pop(old)

    def remove(self, directory: str, name: str) -> None:
        self.server.call("remove")
        self._dir(directory).pop(name, None)

    def names(self, directory: str) -> list[str]:
        self.server.call("names")
        return list(self._dir(directory))

    def url(self, directory: str, name: str) -> str:
        return drop_url("mem", "host", 1, "/" + remote_path(directory, name))


# server-fqdn -> the server a MemoryTransport of that binding talks to
SERVERS: dict[str, MemoryServer] = {}


class MemoryTransport(DropTransport):
    """The drop algorithm on a ``MemoryServer`` (protocol ``memory``: a test registers
    it in ``transports.base.TRANSPORTS`` to use it from repositories.json)."""

    protocol = "memory"
    binding_model = DropBinding

    def __init__(self, binding: Mapping[str, Any], context: TransportContext | None = None
                 ) -> None:
        super().__init__(binding, context)
        self.server = SERVERS.setdefault(self.binding.server_fqdn, MemoryServer())

    @contextlib.contextmanager
    def connect(self, directory: str) -> Iterator[DropSession]:
        try:
            yield MemorySession(self.server)
        except OSError as exc:  # as FTP and SFTP map a lost connection
            raise TransientTransferError(f"memory drop: {exc}") from exc


def memory_transport(server: MemoryServer, directory: str = "up/%s",
                     context: TransportContext | None = None) -> MemoryTransport:
    host = f"memory-{id(server)}"
    SERVERS[host] = server
    return MemoryTransport({"protocol": "memory", "server-fqdn": host, "username": "u",
                            "default-directory": directory}, context)
