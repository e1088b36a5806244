"""pass-core's file service (PassFileServiceController, FileStorageService).

- ``POST /file``, multipart form with the part ``file``: an empty or missing file is a 400
  with no body; otherwise 201, ``Location: <uuid>`` (relative) and the StorageFile JSON
  ``{"id": "<uuid>/<name>", "uuid", "fileName", "mimeType", "storageType": "FILE_SYSTEM",
  "size", "extension"}``. The name is cleaned as Jsoup's ``Safelist.basic()`` does (HTML
  escaped), the mimeType guessed from the name (null when unknown).
- ``GET /file/<uuid>/<name>``: the bytes, ``Content-Type`` probed from the name
  (``application/octet-stream`` when unknown), ``Content-Length`` and
  ``Content-Disposition: attachment; filename="<name>"``; 404 with no body when absent.
- ``DELETE /file/<uuid>/<name>``: 200 ``Deleted`` (text), 404 when absent.

The PASS UI stores ``/file/<uuid>/<encodeURIComponent(fileName)>`` as the File's uri
(pass-ui workflow-files); the Java client (pass-support JsonApiPassClient.uploadBinary)
an absolute URL with the same path. Bytes live on disk under ``root``.
"""

from __future__ import annotations

import mimetypes
import re
import shutil
import threading
import uuid as uuid_module
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

STORAGE_TYPE = "FILE_SYSTEM"
MAX_FILE_SIZE = 100 * 1024 * 1024  # spring.servlet.multipart.max-file-size in pass-core


@dataclass(frozen=True)
class StoredFile:
    uuid: str
    name: str
    size: int
    path: Path

    @property
    def id(self) -> str:
        return f"{self.uuid}/{self.name}"

    @property
    def uri(self) -> str:
        """The File.uri the PASS UI would record for it."""
        return f"/file/{self.uuid}/{quote(self.name, safe=_URI_COMPONENT_SAFE)}"


# characters encodeURIComponent leaves alone (besides letters, digits, "-_.~")
_URI_COMPONENT_SAFE = "!*'()"


def clean_name(name: str) -> str:
    """What ``Jsoup.clean(name, Safelist.basic())`` makes of a plain file name."""
    name = re.sub(r"\s+", " ", name).strip()
    return name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def guess_type(name: str) -> str | None:
    return mimetypes.guess_type(name, strict=False)[0]


class FileStore:
    """The uploaded bytes, one file per uuid under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, StoredFile] = {}
        self._lock = threading.Lock()

    def put(self, name: str, source: BinaryIO | bytes) -> StoredFile:
        """Store bytes (or a stream) under a new uuid; ``name`` is cleaned first."""
        file_uuid = str(uuid_module.uuid4())
        path = self.root / file_uuid
        with path.open("wb") as out:
            if isinstance(source, bytes):
                out.write(source)
            else:
                shutil.copyfileobj(source, out, 1024 * 1024)
        stored = StoredFile(file_uuid, clean_name(name), path.stat().st_size, path)
        with self._lock:
            self._files[stored.id] = stored
        return stored

    def get(self, file_uuid: str, name: str) -> StoredFile | None:
        with self._lock:
            return self._files.get(f"{file_uuid}/{name}")

    def delete(self, file_uuid: str, name: str) -> bool:
        with self._lock:
            stored = self._files.pop(f"{file_uuid}/{name}", None)
        if stored is None:
            return False
        stored.path.unlink(missing_ok=True)
        return True

    def by_uri(self, uri: str) -> StoredFile | None:
        """The stored file a File.uri (relative or absolute, encoded or not) names."""
        match = re.search(r"/file/([^/]+)/(.+)$", uri)
        if match is None:
            return None
        from urllib.parse import unquote

        return self.get(match.group(1), unquote(match.group(2)))

    def describe(self, stored: StoredFile) -> dict[str, object]:
        """The StorageFile JSON pass-core answers an upload with."""
        extension = stored.name.rsplit(".", 1)[1] if "." in stored.name else ""
        return {
            "id": stored.id, "uuid": stored.uuid, "fileName": stored.name,
            "mimeType": guess_type(stored.name), "storageType": STORAGE_TYPE,
            "size": stored.size, "extension": extension,
        }


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def parse_multipart(content_type: str, body: bytes) -> list[Part]:
    """The parts of a ``multipart/form-data`` body; ValueError when it is not one."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.lower().startswith("multipart/") or match is None:
        raise ValueError("Current request is not a multipart request")
    delimiter = b"--" + match.group(1).encode()
    parts: list[Part] = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n")
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("malformed multipart part")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = re.search(r'(?:^|;)\s*name="([^"]*)"', disposition)
        filename = re.search(r'filename="([^"]*)"', disposition)
        parts.append(Part(
            name.group(1) if name else "",
            filename.group(1) if filename else None,
            headers.get("content-type"),
            data.removesuffix(b"\r\n"),
        ))
    return parts
