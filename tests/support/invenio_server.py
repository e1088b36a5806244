"""An InvenioRDM test server: the records API a depositor uses, with InvenioRDM's rules.

Written from the InvenioRDM REST API reference (inveniordm.docs.cern.ch, "REST API":
drafts and records, draft files, requests/reviews) and PASS's InvenioRDM transport:
every call needs ``Authorization: Bearer <token>`` (401 without, 403 for a read-only
token's writes); ``POST /records`` makes a draft (201); a file is initialised (``POST
/records/{id}/draft/files``, a list of ``{"key"}``), its content ``PUT`` as
``application/octet-stream`` (415 otherwise, 404 before the init), then committed
(checksum ``md5:<hex>``); publishing (202) checks the required fields (400, the
``errors`` list naming each field) and that every file is committed; a draft can be
submitted to a community's review (``PUT .../draft/review``, ``POST
.../draft/actions/submit-review``) that a curator accepts (published) or declines;
``POST /records/{id}/versions`` makes a new version's draft (no files, no publication
date). ``GET /user/records`` searches the account's records and drafts (``q``:
``field:"value"`` or ``field:*suffix``).

The test drives the repository side (``accept``, ``decline``, ``remove``) and the
faults: ``fail(step, status, after=False)`` answers one step with an error (``after``:
do the step, then lose the answer, as a crash would), ``pause(step)`` does the step and
holds the answer until ``release()`` (a worker can be killed meanwhile). Uploaded bytes
are written to disk as they arrive (md5 computed on the way); ``calls`` lists requests.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import string
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.support.invenio_api import (
    Fail,
    JsonApi,
    StoredFile,
    json_response,
    store_body,
)

REQUIRED = ("metadata.title", "metadata.publication_date", "metadata.resource_type",
            "metadata.creators")


def _get(value: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _pid() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "-".join("".join(random.choices(alphabet, k=5)) for _ in range(2))


@dataclass
class Review:
    id: str
    community: str
    status: str = "created"


@dataclass
class Record:
    id: str
    parent: str
    body: dict[str, Any]
    files: dict[str, StoredFile] = field(default_factory=dict)
    published: bool = False
    removed: bool = False
    review: Review | None = None
    version: int = 1
    doi: str | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.body.get("metadata") or {})


class InvenioApp(JsonApi):
    """The WSGI application; all state behind one lock."""

    def __init__(self, tokens: dict[str, str], communities: dict[str, str],
                 directory: Path) -> None:
        super().__init__(tokens)
        self.communities = communities  # slug -> uuid
        self.directory = directory
        self.records: dict[str, Record] = {}

    # -- the repository side -----------------------------------------------------------

    def accept(self, record_id: str) -> None:
        """The community's curator accepts the review: the record is published."""
        with self.lock:
            record = self.records[record_id]
            assert record.review and record.review.status == "submitted"
            record.review.status = "accepted"
            self._mark_published(record)

    def decline(self, record_id: str) -> None:
        with self.lock:
            record = self.records[record_id]
            assert record.review and record.review.status == "submitted"
            record.review.status = "declined"

    def remove(self, record_id: str) -> None:
        """An administrator deletes the published record (a tombstone: 410)."""
        with self.lock:
            self.records[record_id].removed = True

    def published(self) -> list[Record]:
        return [r for r in self.records.values() if r.published]

    ROUTES: tuple[tuple[str, str, str], ...] = (
        ("GET", r"/api/user/records", "search"),
        ("POST", r"/api/records", "create"),
        ("GET", r"/api/records/(?P<rid>[^/]+)", "record"),
        ("GET", r"/api/records/(?P<rid>[^/]+)/draft", "draft"),
        ("PUT", r"/api/records/(?P<rid>[^/]+)/draft", "update"),
        ("DELETE", r"/api/records/(?P<rid>[^/]+)/draft", "delete"),
        ("GET", r"/api/records/(?P<rid>[^/]+)/draft/files", "list_files"),
        ("POST", r"/api/records/(?P<rid>[^/]+)/draft/files", "init"),
        ("PUT", r"/api/records/(?P<rid>[^/]+)/draft/files/(?P<key>[^/]+)/content", "content"),
        ("POST", r"/api/records/(?P<rid>[^/]+)/draft/files/(?P<key>[^/]+)/commit", "commit"),
        ("DELETE", r"/api/records/(?P<rid>[^/]+)/draft/files/(?P<key>[^/]+)", "delete_file"),
        ("POST", r"/api/records/(?P<rid>[^/]+)/draft/actions/publish", "publish"),
        ("GET", r"/api/records/(?P<rid>[^/]+)/draft/review", "get_review"),
        ("PUT", r"/api/records/(?P<rid>[^/]+)/draft/review", "review"),
        ("POST", r"/api/records/(?P<rid>[^/]+)/draft/actions/submit-review", "submit_review"),
        ("POST", r"/api/records/(?P<rid>[^/]+)/versions", "versions"),
        ("GET", r"/api/communities/(?P<cid>[^/]+)", "community"),
    )

    @staticmethod
    def _json_body(request: Request) -> Any:
        if request.mimetype != "application/json":
            raise Fail(415, f"expected application/json, got {request.mimetype!r}")
        try:
            return json.loads(request.get_data())
        except ValueError as exc:
            raise Fail(400, f"Unable to decode JSON data in request body: {exc}") from exc

    def _find(self, rid: str, draft: bool) -> Record:
        with self.lock:
            record = self.records.get(rid)
        if record is None or (draft and record.published) or (not draft and not record.published):
            raise Fail(404, f"The persistent identifier does not exist: {rid}")
        return record

    # -- shapes ---------------------------------------------------------------------------

    def _files(self, record: Record) -> dict[str, Any]:
        return {"enabled": bool(_get(record.body, "files.enabled")),
                "entries": [self._file(record, f) for f in record.files.values()]}

    def _file(self, record: Record, f: StoredFile) -> dict[str, Any]:
        return {"key": f.key, "status": "completed" if f.committed else "pending",
                "size": f.size if f.path else None,
                "checksum": f"md5:{f.md5}" if f.committed else None,
                "links": {"self": f"{self.base}/records/{record.id}/draft/files/{f.key}"}}

    def _json(self, record: Record) -> dict[str, Any]:
        html = self.base.removesuffix("/api")
        body = {
            "id": record.id, "is_published": record.published, "is_draft": not record.published,
            "metadata": record.metadata, "access": record.body.get("access") or {},
            "files": self._files(record), "versions": {"index": record.version},
            "parent": {"id": record.parent, **({"review": {
                "id": record.review.id, "type": "community-submission"}} if record.review
                else {})},
            "pids": {"doi": {"identifier": record.doi, "provider": "datacite"}}
            if record.doi else {},
            "links": {
                "self": f"{self.base}/records/{record.id}" + ("" if record.published
                                                               else "/draft"),
                "self_html": f"{html}/records/{record.id}" if record.published
                else f"{html}/uploads/{record.id}",
                "record_html": f"{html}/records/{record.id}",
                "files": f"{self.base}/records/{record.id}/draft/files"},
        }
        missing = [{"field": f, "messages": ["Missing data for required field."]}
                   for f in REQUIRED if not _get(body, f)]
        if missing and not record.published:
            body["errors"] = missing
        return body

    # -- handlers -------------------------------------------------------------------------

    def _search(self, request: Request) -> Response:
        query = request.args.get("q", "")
        match = re.fullmatch(r'([\w.]+):(?:"(.*)"|\*(.+))', query) if query else None
        if query and not match:
            raise Fail(400, f"Invalid query string syntax: {query}")
        with self.lock:
            hits = [r for r in self.records.values() if not r.removed]
        if match:
            field_path, exact, suffix = match.groups()
            suffix = re.sub(r"\\(.)", r"\1", suffix) if suffix else None

            def values(record: Record) -> list[str]:
                head, _, leaf = field_path.rpartition(".")
                found = _get({"metadata": record.metadata}, head)
                items = found if isinstance(found, list) else [found]
                if head == "metadata":
                    items = [record.metadata]
                return [str(i.get(leaf)) for i in items if isinstance(i, dict) and i.get(leaf)]

            hits = [r for r in hits if any(
                v == exact if exact is not None else v.endswith(suffix or "")
                for v in values(r))]
        size = int(request.args.get("size", "10"))
        return json_response({"hits": {"hits": [self._json(r) for r in hits[:size]],
                                       "total": len(hits)}, "sortBy": "bestmatch"})

    def _create(self, request: Request) -> Response:
        body = self._json_body(request)
        if not isinstance(body, dict):
            raise Fail(400, "A validation error occurred.",
                       errors=[{"field": "(body)", "messages": ["Not a JSON object."]}])
        record = Record(id=_pid(), parent=_pid(), body=body)
        with self.lock:
            self.records[record.id] = record
        return json_response(self._json(record), 201)

    def _record(self, request: Request, rid: str) -> Response:
        with self.lock:
            record = self.records.get(rid)
        if record is not None and record.removed:
            raise Fail(410, "The record has been deleted.")
        return json_response(self._json(self._find(rid, draft=False)))

    def _community(self, request: Request, cid: str) -> Response:
        """A community by slug or id (invenio-communities resolves either), or 404."""
        found = [(slug, ident) for slug, ident in self.communities.items() if cid in (slug, ident)]
        if not found:
            raise Fail(404, f"The persistent identifier does not exist: {cid}")
        slug, ident = found[0]
        return json_response({"id": ident, "slug": slug, "metadata": {"title": slug},
                              "links": {"self": f"{self.base}/communities/{ident}"}})

    def _draft(self, request: Request, rid: str) -> Response:
        return json_response(self._json(self._find(rid, draft=True)))

    def _update(self, request: Request, rid: str) -> Response:
        record = self._find(rid, draft=True)
        body = self._json_body(request)
        with self.lock:
            record.body = {**body, "files": body.get("files") or record.body.get("files")}
        return json_response(self._json(record))

    def _delete(self, request: Request, rid: str) -> Response:
        record = self._find(rid, draft=True)
        with self.lock:
            if record.review and record.review.status == "submitted":
                raise Fail(400, "Cannot delete a draft under review; cancel the request.")
            del self.records[rid]
        return Response(status=204)

    def _list_files(self, request: Request, rid: str) -> Response:
        return json_response(self._files(self._find(rid, draft=True)))

    def _init(self, request: Request, rid: str) -> Response:
        record = self._find(rid, draft=True)
        entries = self._json_body(request)
        if not isinstance(entries, list) or not all(
                isinstance(e, dict) and e.get("key") for e in entries):
            raise Fail(400, "A validation error occurred.",
                       errors=[{"field": "key", "messages": ["Missing data for required field."]}])
        if not _get(record.body, "files.enabled"):
            raise Fail(400, "Files support is disabled for this record.")
        with self.lock:
            for entry in entries:
                if entry["key"] in record.files:
                    raise Fail(400, f"File with key {entry['key']} already exists.")
            for entry in entries:
                record.files[entry["key"]] = StoredFile(entry["key"])
        return json_response(self._files(record), 201)

    def _content(self, request: Request, rid: str, key: str) -> Response:
        record = self._find(rid, draft=True)
        stored = record.files.get(key)
        if stored is None:
            raise Fail(404, f"File with key {key} not found.")
        if request.mimetype != "application/octet-stream":
            raise Fail(415, "Content-Type must be application/octet-stream")
        stored.path, stored.size, stored.md5 = store_body(
            request, self.directory, f"{rid}-{len(self.calls)}.bin")
        return json_response(self._file(record, stored))

    def _commit(self, request: Request, rid: str, key: str) -> Response:
        record = self._find(rid, draft=True)
        stored = record.files.get(key)
        if stored is None or stored.path is None:
            raise Fail(400, f"File {key} has no content to commit.")
        stored.committed = True
        return json_response(self._file(record, stored))

    def _delete_file(self, request: Request, rid: str, key: str) -> Response:
        record = self._find(rid, draft=True)
        with self.lock:
            if record.files.pop(key, None) is None:
                raise Fail(404, f"File with key {key} not found.")
        return Response(status=204)

    def _mark_published(self, record: Record) -> None:
        record.published = True
        record.doi = f"10.5281/inveniordm.{record.id}"

    def _publish(self, request: Request, rid: str) -> Response:
        record = self._find(rid, draft=True)
        if record.review is not None:
            raise Fail(403, "The draft is submitted to a community: the curator publishes it.")
        self._check_publishable(record)
        with self.lock:
            self._mark_published(record)
        return json_response(self._json(record), 202)

    def _check_publishable(self, record: Record) -> None:
        body = self._json(record)
        errors = list(body.get("errors") or [])
        if _get(record.body, "files.enabled"):
            if not record.files:
                errors.append({"field": "files.enabled",
                               "messages": ["Missing uploaded files. To disable files for "
                                            "this record please mark it as metadata-only."]})
            errors += [{"field": f"files.entries.{f.key}", "messages": ["not committed"]}
                       for f in record.files.values() if not f.committed]
        if errors:
            raise Fail(400, "A validation error occurred.", errors=errors)

    def _review(self, request: Request, rid: str) -> Response:
        record = self._find(rid, draft=True)
        body = self._json_body(request)
        community = _get(body, "receiver.community")
        if body.get("type") != "community-submission" or not community:
            raise Fail(400, "A validation error occurred.",
                       errors=[{"field": "receiver", "messages": ["Invalid request."]}])
        if community not in self.communities and community not in self.communities.values():
            raise Fail(400, "A validation error occurred.", errors=[
                {"field": "receiver.community", "messages": [f"No community {community}."]}])
        record.review = Review(_pid(), community)
        return json_response(self._request_json(record))

    def _request_json(self, record: Record) -> dict[str, Any]:
        review = record.review
        assert review is not None
        return {"id": review.id, "type": "community-submission", "status": review.status,
                "is_open": review.status == "submitted",
                "receiver": {"community": review.community}, "topic": {"record": record.id}}

    def _get_review(self, request: Request, rid: str) -> Response:
        with self.lock:
            record = self.records.get(rid)
        if record is None or record.review is None or record.published:
            raise Fail(404, "No review request (or no draft).")
        return json_response(self._request_json(record))

    def _submit_review(self, request: Request, rid: str) -> Response:
        record = self._find(rid, draft=True)
        if record.review is None:
            raise Fail(400, "The draft has no review request; create one first.")
        self._check_publishable(record)
        record.review.status = "submitted"
        return json_response(self._request_json(record), 202)

    def _versions(self, request: Request, rid: str) -> Response:
        previous = self._find(rid, draft=False)
        with self.lock:
            for record in self.records.values():
                if record.parent == previous.parent and not record.published:
                    return json_response(self._json(record), 201)
            metadata = {k: v for k, v in previous.metadata.items() if k != "publication_date"}
            record = Record(id=_pid(), parent=previous.parent,
                            body={**previous.body, "metadata": metadata},
                            version=previous.version + 1)
            self.records[record.id] = record
        return json_response(self._json(record), 201)


@dataclass
class InvenioServer:
    app: InvenioApp
    api_url: str
    token: str
    read_token: str


@contextlib.contextmanager
def running_invenio_server(*, communities: dict[str, str] | None = None,
                           directory: Path | None = None) -> Iterator[InvenioServer]:
    """Start the server on a free loopback port (API under ``/api``)."""
    token, read_token = "rdm-token-" + _pid(), "rdm-read-" + _pid()
    with contextlib.ExitStack() as stack:
        where = directory or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        app = InvenioApp({token: "write", read_token: "read"},
                         communities or {"pass-community": "c0ffee00-aaaa-4000-8000-000000000001"},
                         where)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        port = server.socket.getsockname()[1]
        app.base = f"http://127.0.0.1:{port}/api"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield InvenioServer(app, app.base, token, read_token)
        finally:
            app.release()
            server.shutdown()
            thread.join(5)
