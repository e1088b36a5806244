"""``running_passcore``: the test pass-core on a free loopback port, and its test handle."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.passcore import graph
from tests.support.passcore.files import FileStore
from tests.support.passcore.http import App, Fault, OnMessage, PassCoreHTTPServer, Request
from tests.support.passcore.jsonapi import JsonApi
from tests.support.passcore.schema import entity_type, to_wire
from tests.support.passcore.store import Message, Record, Store


class PassCore:
    """A running test pass-core: where it is, what it received, what it holds, and the
    faults to inject. JSON:API under ``base_url + "/data"``, files under ``/file``."""

    def __init__(self, app: App, httpd: PassCoreHTTPServer) -> None:
        self._app = app
        self._httpd = httpd
        self.username = app.username
        self.password = app.password
        self.port = httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        app.set_base_url(self.base_url)
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> PassCore:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def on_message(self) -> OnMessage | None:
        """The message callback; may be replaced while the server runs."""
        return self._app.on_message

    @on_message.setter
    def on_message(self, callback: OnMessage | None) -> None:
        self._app.on_message = callback

    @property
    def data_url(self) -> str:
        return self.base_url + "/data"

    @property
    def auth(self) -> tuple[str, str]:
        return self.username, self.password

    # -- what it received --------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """Every request received so far (method, path, query, status, headers, body)."""
        with self._app.lock:
            return list(self._app.requests)

    def clear_requests(self) -> None:
        with self._app.lock:
            self._app.requests.clear()

    @property
    def messages(self) -> list[Message]:
        """Every message published so far, in order (also given to ``on_message``)."""
        with self._app.lock:
            return list(self._app.messages)

    # -- what it holds -----------------------------------------------------------------

    def load_graph(
        self, entities: list[dict[str, Any]], files_dir: Path | None = None, *,
        drop_unknown: bool = False, announce: bool = False,
    ) -> dict[tuple[str, str], str]:
        """Store a graph in OUR file format (a JSON list of entities, each with "@type" in
        PascalCase like "Submission", "id", camelCase attributes, references as id strings,
        e.g. tests/support/graphs.py make_graph) as pass-core would hold it, with new integer
        ids; returns {(@type, old id): new id}. Files with a local file: uri or a relative
        path (against ``files_dir``) are uploaded into the file service and their uri
        rewritten to pass-core's form. Seeding publishes nothing unless ``announce``: then
        each entity's create message goes out as if it had been POSTed."""
        mapping, created = graph.load(self._app.store, self._app.files, entities, files_dir,
                                      drop_unknown)
        if announce:
            for record in created:
                self._app.publish(Store.messages_for(record, created=True))
        return mapping

    def _record(self, type: str, id: str | int) -> Record:
        record = self._app.store.get(entity_type(type).name, int(id))
        if record is None:
            raise KeyError(f"pass-core holds no {type} {id}")
        return record

    def _view(self) -> JsonApi:
        return self._app.jsonapi

    def resource(self, type: str, id: str | int) -> dict[str, Any]:
        """The stored JSON:API resource object (as GET /data/{type}/{id} shows it)."""
        with self._app.store.lock:
            return self._view().render(self._record(type, id))

    def find(self, type: str, **fields: Any) -> list[dict[str, Any]]:
        """The stored resources of ``type`` whose fields equal ``fields``, by id. Values are
        compared in wire form: attributes as pass-core writes them (``"not-started"``,
        dates as ``...000Z``), relationships as an id string or a list of them."""
        etype = entity_type(type)
        unknown = [n for n in fields if n not in etype.attrs and n not in etype.rels]
        if unknown:
            raise KeyError(f"{etype.name} has no field {', '.join(unknown)}")
        found = []
        with self._app.store.lock:
            for record in self._app.store.all(etype.name):
                if all(self._wire(record, n) == _expected(record, n, v) for n, v in fields.items()):
                    found.append(self._view().render(record))
        return found

    @staticmethod
    def _wire(record: Record, name: str) -> Any:
        attr = record.type.attrs.get(name)
        if attr is not None:
            return to_wire(attr, record.attrs.get(name))
        ids = [str(i) for i in record.rel_ids(name)]
        return ids if record.type.rels[name].to_many else (ids[0] if ids else None)

    def update(self, type: str, id: str | int, attributes: dict[str, Any] | None = None,
               relationships: dict[str, Any] | None = None) -> dict[str, Any]:
        """Change an entity as another pass-core client would (the PASS UI, a second
        worker): same write path as a PATCH carrying the current version, so the version
        goes up and messages go out. ``relationships`` values: an id, a list of ids, None."""
        with self._app.store.lock:
            record = self._record(type, id)
            attrs = dict(attributes or {})
            if record.type.versioned:
                attrs.setdefault("version", record.attrs.get("version"))
            rels = {}
            for name, value in (relationships or {}).items():
                rel = record.type.rels.get(name)
                rels[name] = {"data": _identifiers(rel.target if rel else name, value)}
            record, messages = self._app.store.update(record, attrs, rels)
            rendered = self._view().render(record)
        self._app.publish(messages)
        return rendered

    def file_bytes(self, uri: str) -> bytes:
        """The bytes the file service holds for a File.uri (relative or absolute)."""
        stored = self._app.files.by_uri(uri)
        if stored is None:
            raise KeyError(f"the file service holds nothing at {uri}")
        return stored.path.read_bytes()

    # -- faults ------------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 500, path_prefix: str = "", *,
                  after_commit: bool = False) -> None:
        """The next ``count`` requests whose path starts with ``path_prefix`` answer
        ``status`` (5xx: Spring's error JSON, 4xx: a JSON:API error document). Before
        anything is done, unless ``after_commit``: then the request is carried out
        (stored, messages published) and only its answer is replaced, as when a proxy
        loses a response."""
        self._add(Fault("status", count, path_prefix, status=status, after_commit=after_commit))

    def delay_next(self, count: int, seconds: float, path_prefix: str = "") -> None:
        """The next ``count`` matching requests wait ``seconds`` before being handled."""
        self._add(Fault("delay", count, path_prefix, seconds=seconds))

    def drop_next(self, count: int, path_prefix: str = "", *, after_commit: bool = False) -> None:
        """The next ``count`` matching requests get no answer: the connection is closed
        (after carrying the request out, with ``after_commit``)."""
        self._add(Fault("drop", count, path_prefix, after_commit=after_commit))

    def clear_faults(self) -> None:
        with self._app.lock:
            self._app.faults.clear()

    def _add(self, fault: Fault) -> None:
        if fault.remaining > 0:
            with self._app.lock:
                self._app.faults.append(fault)


def _identifiers(target: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [{"type": target, "id": str(v)} for v in value]
    return {"type": target, "id": str(value)}


def _expected(record: Record, name: str, value: Any) -> Any:
    """A relationship's expected ids as strings (an int id is fine too)."""
    if name not in record.type.rels or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return str(value)


@contextmanager
def running_passcore(
    on_message: OnMessage | None = None, *, username: str = "backend",
    password: str = "backend-secret",  # noqa: S107 - a test server's throwaway user
    files_root: Path | None = None,
) -> Iterator[PassCore]:
    """Start a test pass-core on a free loopback port; stop it (and drop its files) on exit.

    ``on_message(kind, body, properties)`` is called after each committed change that
    pass-core announces: kind ``submission`` (SubmissionReady), ``deposit`` (DepositStatus)
    or ``submission-event`` (SubmissionEvent); body the JSON text; properties ``{"type"}``.
    """
    root = files_root or Path(tempfile.mkdtemp(prefix="passcore-files-"))
    app = App(Store(), FileStore(root), username, password, on_message)
    server = PassCore(app, PassCoreHTTPServer(app)).start()
    try:
        yield server
    finally:
        server.stop()
        if files_root is None:
            shutil.rmtree(root, ignore_errors=True)
