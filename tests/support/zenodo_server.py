"""A Zenodo test server: the deposition API (developers.zenodo.org, "Depositions",
"Deposition files", "Deposition actions") with Zenodo's rules.

Every call needs the token (``Authorization: Bearer`` or ``?access_token=``; 401
without, 403 for a read-only token's writes). ``POST /deposit/depositions`` (JSON,
optionally ``{"metadata"}``, validated: 400 with ``errors`` naming each field) makes an
unsubmitted deposition with a bucket; files are ``PUT {bucket}/{key}`` (streamed;
answer with ``checksum: md5:<hex>``); ``PUT /deposit/depositions/{id}`` sets the
metadata; ``POST .../actions/publish`` (202) checks the required metadata and that
there is a file (``publication_date`` defaults to today, ``access_right`` to open),
then gives the DOI; ``POST .../actions/newversion`` makes a new
version's draft (files copied) and answers the original with ``links.latest_draft``;
``DELETE`` removes an unpublished deposition (a published one: 403).

The test drives faults as on the InvenioRDM server (``fail``, ``pause``/``release``,
see ``invenio_api.Faults``) and ``remove`` (an administrator deletes a record: 410).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
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

UPLOAD_TYPES = ("publication", "poster", "presentation", "dataset", "image", "video",
                "software", "lesson", "physicalobject", "other")
PUBLICATION_TYPES = ("annotationcollection", "book", "section", "conferencepaper",
                     "datamanagementplan", "article", "patent", "preprint", "deliverable",
                     "milestone", "proposal", "report", "softwaredocumentation",
                     "taxonomictreatment", "technicalnote", "thesis", "workingpaper", "other")
RELATIONS = ("isCitedBy", "cites", "isSupplementTo", "isSupplementedBy", "isNewVersionOf",
             "isPreviousVersionOf", "isPartOf", "hasPart", "isReferencedBy", "references",
             "isIdenticalTo", "isAlternateIdentifier", "isVariantFormOf", "isOriginalFormOf",
             "isDerivedFrom", "isSourceOf", "isDocumentedBy", "documents")
ACCESS_RIGHTS = ("open", "embargoed", "restricted", "closed")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class Deposition:
    id: int
    concept: int
    bucket: str
    metadata: dict[str, Any] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    file_ids: dict[str, str] = field(default_factory=dict)
    published: bool = False
    removed: bool = False
    latest_draft: int | None = None

    @property
    def doi(self) -> str:
        return f"10.5072/zenodo.{self.id}" if self.published else ""


def validate(metadata: Any, publishing: bool) -> list[dict[str, str]]:
    """Zenodo's checks of a deposition's metadata: (field, message) for each problem."""
    if not isinstance(metadata, dict):
        return [{"field": "metadata", "message": "Not a valid object."}]
    errors: list[dict[str, str]] = []

    def bad(name: str, message: str) -> None:
        errors.append({"field": f"metadata.{name}", "message": message})

    if "upload_type" in metadata and metadata["upload_type"] not in UPLOAD_TYPES:
        bad("upload_type", "Invalid upload type.")
    if metadata.get("upload_type") == "publication" and metadata.get(
            "publication_type") not in PUBLICATION_TYPES:
        bad("publication_type", "Invalid publication type.")
    for ident in metadata.get("related_identifiers") or []:
        if ident.get("relation") not in RELATIONS or not ident.get("identifier"):
            bad("related_identifiers", f"Invalid relation or identifier: {ident}")
    if "publication_date" in metadata and not DATE.fullmatch(
            str(metadata["publication_date"])):
        bad("publication_date", "Not a valid date.")
    if metadata.get("access_right", "open") not in ACCESS_RIGHTS:
        bad("access_right", "Invalid access right.")
    if metadata.get("access_right") == "embargoed" and not metadata.get("embargo_date"):
        bad("embargo_date", "Required when access right is embargoed.")
    for creator in metadata.get("creators") or []:
        if not isinstance(creator, dict) or not creator.get("name"):
            bad("creators", "Each creator needs a name.")
    if publishing:
        for name in ("upload_type", "title", "creators", "description"):
            if not metadata.get(name):
                bad(name, "Field is required.")
    return errors


class ZenodoApp(JsonApi):
    """The WSGI application; all state behind one lock."""

    def __init__(self, tokens: dict[str, str], directory: Path) -> None:
        super().__init__(tokens)
        self.directory = directory
        self.depositions: dict[int, Deposition] = {}
        self.buckets: dict[str, int] = {}
        self.ids = itertools.count(1001)

    def remove(self, ident: int) -> None:
        with self.lock:
            self.depositions[ident].removed = True

    def published(self) -> list[Deposition]:
        return [d for d in self.depositions.values() if d.published]

    ROUTES: tuple[tuple[str, str, str], ...] = (
        ("GET", r"/api/deposit/depositions", "list"),
        ("POST", r"/api/deposit/depositions", "create"),
        ("GET", r"/api/deposit/depositions/(?P<ident>\d+)", "get"),
        ("PUT", r"/api/deposit/depositions/(?P<ident>\d+)", "update"),
        ("DELETE", r"/api/deposit/depositions/(?P<ident>\d+)", "delete"),
        ("GET", r"/api/deposit/depositions/(?P<ident>\d+)/files", "files"),
        ("DELETE", r"/api/deposit/depositions/(?P<ident>\d+)/files/(?P<file_id>[^/]+)",
         "delete_file"),
        ("POST", r"/api/deposit/depositions/(?P<ident>\d+)/actions/publish", "publish"),
        ("POST", r"/api/deposit/depositions/(?P<ident>\d+)/actions/newversion",
         "newversion"),
        ("PUT", r"/api/files/(?P<bucket>[0-9a-f-]+)/(?P<key>[^/]+)", "upload"),
    )

    @staticmethod
    def _body(request: Request) -> Any:
        if request.mimetype != "application/json":
            raise Fail(415, "Unsupported media type: send application/json")
        try:
            return json.loads(request.get_data() or b"{}")
        except ValueError as exc:
            raise Fail(400, f"Unable to decode JSON: {exc}") from exc

    def _find(self, ident: str | int) -> Deposition:
        with self.lock:
            deposition = self.depositions.get(int(ident))
        if deposition is None:
            raise Fail(404, "PID does not exist.")
        if deposition.removed:
            raise Fail(410, "PID has been deleted.")
        return deposition

    def _json(self, d: Deposition) -> dict[str, Any]:
        html = self.base.removesuffix("/api")
        links = {"self": f"{self.base}/deposit/depositions/{d.id}",
                 "html": f"{html}/deposit/{d.id}",
                 "bucket": f"{self.base}/files/{d.bucket}",
                 "publish": f"{self.base}/deposit/depositions/{d.id}/actions/publish",
                 "newversion": f"{self.base}/deposit/depositions/{d.id}/actions/newversion"}
        if d.published:
            links["record_html"] = f"{html}/record/{d.id}"
            links["doi"] = f"https://doi.org/{d.doi}"
        if d.latest_draft is not None:
            links["latest_draft"] = f"{self.base}/deposit/depositions/{d.latest_draft}"
        return {
            "id": d.id, "record_id": d.id, "conceptrecid": str(d.concept),
            "doi": d.doi, "doi_url": f"https://doi.org/{d.doi}" if d.doi else "",
            "title": d.metadata.get("title", ""),
            "metadata": {**d.metadata, "prereserve_doi": {
                "doi": f"10.5072/zenodo.{d.id}", "recid": d.id}},
            "files": [self._file(d, f) for f in d.files.values()],
            "state": "done" if d.published else "unsubmitted",
            "submitted": d.published, "links": links,
        }

    def _file(self, d: Deposition, f: StoredFile) -> dict[str, Any]:
        return {"id": d.file_ids[f.key], "filename": f.key, "filesize": f.size,
                "checksum": f.md5}

    # -- handlers ---------------------------------------------------------------------

    def _list(self, request: Request) -> Response:
        size, page = int(request.args.get("size", "10")), int(request.args.get("page", "1"))
        with self.lock:
            found = sorted((d for d in self.depositions.values() if not d.removed),
                           key=lambda d: -d.id)
        chosen = found[(page - 1) * size: page * size]
        return json_response([self._json(d) for d in chosen])

    def _create(self, request: Request) -> Response:
        body = self._body(request)
        metadata = body.get("metadata", {}) if isinstance(body, dict) else None
        errors = validate(metadata, publishing=False)
        if errors:
            raise Fail(400, "Validation error.", errors=errors)
        ident = next(self.ids)
        deposition = Deposition(ident, ident, str(uuid.uuid4()), dict(metadata or {}))
        with self.lock:
            self.depositions[ident] = deposition
            self.buckets[deposition.bucket] = ident
        return json_response(self._json(deposition), 201)

    def _get(self, request: Request, ident: str) -> Response:
        return json_response(self._json(self._find(ident)))

    def _update(self, request: Request, ident: str) -> Response:
        deposition = self._find(ident)
        if deposition.published:
            raise Fail(403, "Deposition is published: use the edit action first.")
        body = self._body(request)
        metadata = body.get("metadata") if isinstance(body, dict) else None
        errors = validate(metadata, publishing=False)
        if errors:
            raise Fail(400, "Validation error.", errors=errors)
        deposition.metadata = dict(metadata or {})
        return json_response(self._json(deposition))

    def _delete(self, request: Request, ident: str) -> Response:
        deposition = self._find(ident)
        if deposition.published:
            raise Fail(403, "You cannot delete a published deposition.")
        with self.lock:
            del self.depositions[deposition.id]
            for d in self.depositions.values():
                if d.latest_draft == deposition.id:
                    d.latest_draft = None
        return Response(status=201)

    def _files(self, request: Request, ident: str) -> Response:
        d = self._find(ident)
        return json_response([self._file(d, f) for f in d.files.values()])

    def _delete_file(self, request: Request, ident: str, file_id: str) -> Response:
        d = self._find(ident)
        if d.published:
            raise Fail(403, "Files of a published deposition cannot be changed.")
        key = next((k for k, v in d.file_ids.items() if v == file_id), None)
        if key is None:
            raise Fail(404, "File does not exist.")
        with self.lock:
            del d.files[key], d.file_ids[key]
        return Response(status=204)

    def _upload(self, request: Request, bucket: str, key: str) -> Response:
        with self.lock:
            ident = self.buckets.get(bucket)
        if ident is None:
            raise Fail(404, "Bucket does not exist.")
        d = self._find(ident)
        if d.published:
            raise Fail(403, "The bucket is locked: the deposition is published.")
        path, size, md5 = store_body(request, self.directory, f"{ident}-{uuid.uuid4().hex}")
        with self.lock:
            d.files[key] = StoredFile(key, path, size, md5, committed=True)
            d.file_ids.setdefault(key, str(uuid.uuid4()))
        return json_response({"key": key, "size": size, "checksum": f"md5:{md5}",
                              "mimetype": "application/octet-stream",
                              "links": {"self": f"{self.base}/files/{bucket}/{key}"}}, 201)

    def _publish(self, request: Request, ident: str) -> Response:
        d = self._find(ident)
        if d.published:
            raise Fail(400, "Deposition is already published.")
        d.metadata.setdefault("publication_date", date.today().isoformat())  # Zenodo's default
        d.metadata.setdefault("access_right", "open")
        errors = validate(d.metadata, publishing=True)
        if not d.files:
            errors.append({"field": "files", "message": "Minimum one file must be provided."})
        if errors:
            raise Fail(400, "Validation error.", errors=errors)
        with self.lock:
            d.published = True
        return json_response(self._json(d), 202)

    def _newversion(self, request: Request, ident: str) -> Response:
        d = self._find(ident)
        if not d.published:
            raise Fail(400, "Only a published deposition can have a new version.")
        with self.lock:
            if d.latest_draft is None:
                new_id = next(self.ids)
                new = Deposition(new_id, d.concept, str(uuid.uuid4()),
                                 {k: v for k, v in d.metadata.items() if k != "doi"})
                for key, stored in d.files.items():
                    new.files[key] = StoredFile(key, stored.path, stored.size, stored.md5, True)
                    new.file_ids[key] = str(uuid.uuid4())
                self.depositions[new_id] = new
                self.buckets[new.bucket] = new_id
                d.latest_draft = new_id
        return json_response(self._json(d), 201)


@dataclass
class ZenodoServer:
    app: ZenodoApp
    api_url: str
    token: str
    read_token: str


@contextlib.contextmanager
def running_zenodo_server(directory: Path | None = None) -> Iterator[ZenodoServer]:
    """Start the server on a free loopback port (API under ``/api``)."""
    token, read_token = f"zenodo-{uuid.uuid4().hex}", f"zenodo-read-{uuid.uuid4().hex}"
    with contextlib.ExitStack() as stack:
        where = directory or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        app = ZenodoApp({token: "write", read_token: "read"}, where)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        port = server.socket.getsockname()[1]
        app.base = f"http://127.0.0.1:{port}/api"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield ZenodoServer(app, app.base, token, read_token)
        finally:
            app.release()
            server.shutdown()
            thread.join(5)
