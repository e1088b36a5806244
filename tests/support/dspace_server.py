"""A DSpace 7 REST API test server: the parts a depositor uses, with DSpace's rules.

Follows the REST contract (DSpace/RestContract): ``GET /security/csrf`` issues the
``DSPACE-XSRF-TOKEN``; every changing request must send it as the ``X-XSRF-TOKEN``
header *and* the ``DSPACE-XSRF-COOKIE`` cookie, else 403 with a new token; login
(``POST /authn/login``, form ``user``/``password``) answers the JWT in
``Authorization`` and rotates the CSRF token; other endpoints need the JWT (401
otherwise, or once it has expired). Workspace items are made by a multipart upload to
a collection (answered as a page, ``_embedded.workspaceitems``), patched with JSON
Patch on their sections (422 for a section the submission definition lacks), and
submitted by ``POST /workflow/workflowitems`` with their URI (``text/uri-list``; 422
naming a missing required field or an ungranted license). Answers are HAL JSON; the
lists (findBySubmitter, discover search) are pages honouring ``page``/``size`` (default
20) with ``_links.next`` while more follow. Cross-checked with the independent
dspace-rest-client (tests/integration/dspace/test_dspace_independent_client.py).

The test drives the repository side: ``archive``, ``withdraw``, ``reject``, ``delete``,
``expire_tokens``, ``rotate_csrf``, and ``fail(step, status, after=False)`` to answer
one step with an error (``after``: do the step, then lose the answer, as a crash
would). Everything received is kept: ``items``, ``files`` (bytes, md5), ``calls``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

REQUIRED_FIELDS = ("dc.title", "dc.date.issued")
SECTIONS = ("traditionalpageone", "traditionalpagetwo", "upload", "license",
            "itemAccessConditions")
FORM_SECTIONS = ("traditionalpageone", "traditionalpagetwo")


@dataclass
class StoredFile:
    name: str
    data: bytes
    mime_type: str
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    @functools.cached_property
    def md5(self) -> str:  # once, as DSpace stores a bitstream's checksum at upload
        return hashlib.md5(self.data).hexdigest()


@dataclass
class Item:
    uuid: str
    collection: str
    submitter: str
    metadata: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: list[StoredFile] = field(default_factory=list)
    license_granted: bool = False
    access_conditions: list[dict[str, Any]] = field(default_factory=list)
    in_archive: bool = False
    withdrawn: bool = False
    handle: str | None = None
    workspace_id: int | None = None
    workflow_id: int | None = None


class Fail(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class DSpaceApp:
    """The WSGI application; all state behind one lock."""

    def __init__(self, users: dict[str, str], collections: dict[str, str]) -> None:
        self.users = users
        self.epersons = {u: str(uuid.uuid4()) for u in users}
        self.collections = collections  # handle -> uuid
        self.base = ""
        self.lock = threading.RLock()
        self.csrf_tokens: set[str] = set()
        self.jwts: dict[str, str] = {}  # jwt -> user
        self.items: dict[str, Item] = {}
        self.next_id = 1
        self.calls: list[tuple[str, str]] = []
        self.logins = 0
        self.failures: dict[str, tuple[int, bool, dict[str, str]]] = {}
        self.handles = 0

    # -- test controls ------------------------------------------------------------------

    def fail(self, step: str, status: int, *, after: bool = False,
             headers: dict[str, str] | None = None) -> None:
        """Answer the next ``step`` (csrf, login, create, patch, submit, item, search)
        with ``status``; with ``after`` the step is done first and its answer lost."""
        self.failures[step] = (status, after, headers or {})

    def expire_tokens(self) -> None:
        with self.lock:
            self.jwts.clear()

    def rotate_csrf(self) -> None:
        with self.lock:
            self.csrf_tokens.clear()

    def archive(self, item_uuid: str) -> str:
        with self.lock:
            item = self.items[item_uuid]
            assert item.workflow_id is not None, "only an item in review can be archived"
            self.handles += 1
            item.workflow_id, item.in_archive = None, True
            item.handle = f"123456789/{1000 + self.handles}"
            return item.handle

    def withdraw(self, item_uuid: str) -> None:
        with self.lock:
            item = self.items[item_uuid]
            assert item.in_archive
            item.withdrawn, item.in_archive = True, False

    def reject(self, item_uuid: str) -> None:
        """A reviewer sends the item back to the submitter's workspace."""
        with self.lock:
            item = self.items[item_uuid]
            item.workflow_id, item.workspace_id = None, self._id()

    def delete(self, item_uuid: str) -> None:
        with self.lock:
            del self.items[item_uuid]

    def workspace_items(self) -> list[Item]:
        return [i for i in self.items.values() if i.workspace_id is not None]

    def workflow_items(self) -> list[Item]:
        return [i for i in self.items.values() if i.workflow_id is not None]

    # -- plumbing -----------------------------------------------------------------------

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def _new_csrf(self, response: Response) -> None:
        token = str(uuid.uuid4())
        self.csrf_tokens.add(token)
        response.headers["DSPACE-XSRF-TOKEN"] = token
        response.set_cookie("DSPACE-XSRF-COOKIE", token, path="/", httponly=True)

    def _check_failure(self, step: str, before: bool) -> None:
        failure = self.failures.get(step)
        if failure and failure[1] != before:
            del self.failures[step]
            status, _, headers = failure
            raise Fail(status, f"injected failure of {step}", headers)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            self.calls.append((request.method, request.path))
            try:
                response = self.dispatch(request)
            except Fail as exc:
                response = self._error(exc.status, exc.message)
                response.headers.update(exc.headers)
                if exc.status == 403 and "CSRF" in exc.message:
                    self._new_csrf(response)
        return response(environ, start_response)

    @staticmethod
    def _error(status: int, message: str) -> Response:
        body = {"timestamp": "2026-01-01T00:00:00.000+00:00", "status": status,
                "error": {401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                          422: "Unprocessable Entity"}.get(status, "Error"),
                "message": message, "path": ""}
        return Response(json.dumps(body), status=status, mimetype="application/json")

    @staticmethod
    def _json(body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, mimetype="application/hal+json")

    def _step(self, step: str) -> None:
        self._check_failure(step, before=True)

    def dispatch(self, request: Request) -> Response:
        path = request.path.removeprefix("/server/api")
        method = request.method
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            header = request.headers.get("X-XSRF-TOKEN")
            cookie = request.cookies.get("DSPACE-XSRF-COOKIE")
            if not header or header != cookie or header not in self.csrf_tokens:
                raise Fail(403, "Access is denied. Invalid CSRF token.")
        if path == "/security/csrf" and method == "GET":
            self._step("csrf")
            response = Response(status=204)
            self._new_csrf(response)
            return response
        if path == "/authn/login" and method == "POST":
            return self.login(request)
        user = self._user(request)
        if path == "/authn/status":
            return self._json({"okay": True, "authenticated": True, "type": "status",
                               "_links": {"eperson": {"href":
                                   f"{self.base}/eperson/epersons/{self.epersons[user]}"}}})
        return self.route(request, path, user)

    def login(self, request: Request) -> Response:
        self._step("login")
        user, password = request.form.get("user"), request.form.get("password")
        if user not in self.users or self.users[user] != password:
            raise Fail(401, "Authentication failed for user " + str(user))
        jwt = "Bearer " + uuid.uuid4().hex
        self.jwts[jwt] = user
        self.logins += 1
        response = Response(status=200)
        response.headers["Authorization"] = jwt
        self._new_csrf(response)  # DSpace issues a new CSRF token on login
        return response

    def _user(self, request: Request) -> str:
        jwt = request.headers.get("Authorization", "")
        if jwt not in self.jwts:
            raise Fail(401, "Authentication is required")
        return self.jwts[jwt]

    # -- endpoints ----------------------------------------------------------------------

    def route(self, request: Request, path: str, user: str) -> Response:
        method, args = request.method, request.args
        if path == "/discover/search/objects" and method == "GET":
            self._step("search")
            return self._json(self.search(request, args.get("query", ""), args.get("dsoType")))
        if path == "/submission/workspaceitems" and method == "POST":
            return self.create(request, user)
        if path == "/submission/workspaceitems/search/findBySubmitter":
            mine = [self._workspace(i) for i in self.workspace_items()
                    if self.epersons[i.submitter] == args.get("uuid")]
            return self._json(self._paged("workspaceitems", mine, request))
        if path == "/workflow/workflowitems/search/findBySubmitter":
            mine = [self._workflow(i) for i in self.workflow_items()
                    if self.epersons[i.submitter] == args.get("uuid")]
            return self._json(self._paged("workflowitems", mine, request))
        if path == "/submission/workspaceitems/search/item":
            item = self.items.get(args.get("uuid", ""))
            if item is None or item.workspace_id is None:
                return Response(status=204)
            return self._json(self._workspace(item))
        if path == "/workflow/workflowitems/search/item":
            item = self.items.get(args.get("uuid", ""))
            if item is None or item.workflow_id is None:
                return Response(status=204)
            return self._json(self._workflow(item))
        if path.startswith("/submission/workspaceitems/") and method == "PATCH":
            return self.patch(request, self._by_workspace(path.rsplit("/", 1)[-1]))
        if path.startswith("/submission/workspaceitems/") and method == "GET":
            return self._json(self._workspace(self._by_workspace(path.rsplit("/", 1)[-1])))
        if path == "/workflow/workflowitems" and method == "POST":
            return self.submit(request)
        if path.startswith("/core/items/") and method == "GET":
            self._step("item")
            item = self.items.get(path.rsplit("/", 1)[-1])
            if item is None:
                raise Fail(404, "item not found")
            return self._json(self._item(item))
        raise Fail(404, f"no endpoint {method} {path}")

    def create(self, request: Request, user: str) -> Response:
        self._step("create")
        owning = request.args.get("owningCollection")
        if owning not in self.collections.values():
            raise Fail(422, f"owningCollection {owning} is not a collection")
        files = [StoredFile(f.filename or "", f.read(), f.mimetype)
                 for f in request.files.getlist("file")]
        if not files:
            raise Fail(422, "no file in the upload")
        item = Item(str(uuid.uuid4()), str(owning), user, files=files, workspace_id=self._id())
        self.items[item.uuid] = item
        self._check_failure("create", before=False)
        return self._json(self._page("workspaceitems", [self._workspace(item)]), 201)

    def patch(self, request: Request, item: Item) -> Response:
        self._step("patch")
        if request.mimetype not in ("application/json", "application/json-patch+json"):
            raise Fail(415, f"PATCH needs JSON Patch, not {request.mimetype}")
        operations = request.get_json(force=True)
        if not isinstance(operations, list):
            raise Fail(422, "a JSON Patch is a list of operations")
        for op in operations:
            parts = str(op.get("path", "")).strip("/").split("/")
            if op.get("op") != "add" or len(parts) < 3 or parts[0] != "sections":
                raise Fail(422, f"unsupported operation {op!r}")
            section, target = parts[1], parts[2]
            if section not in SECTIONS:
                raise Fail(422, f"section {section} is not in the submission definition")
            if section in FORM_SECTIONS:
                values = op.get("value")
                if not isinstance(values, list) or not all(
                        isinstance(v, dict) and "value" in v for v in values):
                    raise Fail(422, f"{target}: the value must be a list of {{value: ...}}")
                item.metadata.setdefault(target, []).extend(
                    {"value": v["value"], "language": None, "authority": None,
                     "confidence": -1, "place": n} for n, v in enumerate(values))
            elif section == "license" and target == "granted":
                item.license_granted = str(op.get("value")).lower() == "true"
            elif target == "accessConditions":
                item.access_conditions.append(dict(op.get("value") or {}))
            else:
                raise Fail(422, f"/sections/{section}/{target} cannot be patched")
        self._check_failure("patch", before=False)
        return self._json(self._workspace(item))

    def submit(self, request: Request) -> Response:
        self._step("submit")
        if request.mimetype != "text/uri-list":
            raise Fail(415, "a workflow item is made from a text/uri-list")
        uri = request.get_data(as_text=True).strip()
        item = self._by_workspace(uri.rstrip("/").rsplit("/", 1)[-1])
        for required in REQUIRED_FIELDS:
            if not item.metadata.get(required):
                raise Fail(422, f"error.validation.required: {required} is required "
                                f"(/sections/traditionalpageone/{required})")
        if not item.license_granted:
            raise Fail(422, "error.validation.license.notgranted (/sections/license)")
        item.workspace_id, item.workflow_id = None, self._id()
        self._check_failure("submit", before=False)
        return self._json(self._workflow(item), 201)

    def search(self, request: Request, query: str, dso_type: str | None) -> dict[str, Any]:
        found: list[dict[str, Any]] = []
        if query.startswith("handle:"):
            handle = query.removeprefix("handle:")
            if dso_type in (None, "COLLECTION") and handle in self.collections:
                found.append({"uuid": self.collections[handle], "handle": handle,
                              "type": "collection", "name": f"Collection {handle}"})
            found += [self._item(i) for i in self.items.values() if i.handle == handle]
        elif query.startswith("dc.identifier.other:"):
            pattern = query.split(":", 1)[1].strip('"')
            suffix = pattern.removeprefix("*")
            found += [self._item(i) for i in self.items.values() if i.in_archive and any(
                str(v["value"]).endswith(suffix)
                for v in i.metadata.get("dc.identifier.other", []))]
        objects = [{"type": "discover", "_embedded": {"indexableObject": o}} for o in found]
        return {"type": "discover",
                "_embedded": {"searchResult": self._paged("objects", objects, request)}}

    # -- shapes -------------------------------------------------------------------------

    def _by_workspace(self, ident: str) -> Item:
        for item in self.items.values():
            if item.workspace_id is not None and str(item.workspace_id) == ident:
                return item
        raise Fail(404, f"workspace item {ident} not found")

    @staticmethod
    def _page(name: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
        """Every object in one page (the answer to a multipart upload)."""
        return {"_embedded": {name: objects},
                "page": {"number": 0, "size": max(len(objects), 1),
                         "totalElements": len(objects), "totalPages": 1}}

    @staticmethod
    def _paged(name: str, objects: list[dict[str, Any]], request: Request) -> dict[str, Any]:
        """A HAL page of ``objects``: the ``page``/``size`` the request asks for (DSpace's
        default size is 20), with ``_links.next`` while more follow."""
        try:
            number = int(request.args.get("page", 0))
            size = int(request.args.get("size", 20))
        except ValueError as exc:
            raise Fail(400, f"page and size must be numbers: {exc}") from exc
        if number < 0 or size < 1:
            raise Fail(400, "page must be >= 0 and size >= 1")
        total = len(objects)
        links = {"self": {"href": request.url}}
        if (number + 1) * size < total:
            query = {**request.args.to_dict(), "page": str(number + 1)}
            links["next"] = {"href": f"{request.base_url}?{urlencode(query)}"}
        return {"_embedded": {name: objects[number * size:(number + 1) * size]},
                "page": {"number": number, "size": size, "totalElements": total,
                         "totalPages": -(-total // size)},
                "_links": links}

    def _item(self, item: Item) -> dict[str, Any]:
        title = item.metadata.get("dc.title", [{}])[0].get("value")
        return {"id": item.uuid, "uuid": item.uuid, "name": title, "handle": item.handle,
                "metadata": item.metadata, "inArchive": item.in_archive,
                "discoverable": True, "withdrawn": item.withdrawn, "type": "item",
                "_links": {"self": {"href": f"{self.base}/core/items/{item.uuid}"}}}

    def _workspace(self, item: Item) -> dict[str, Any]:
        files = [{"uuid": f.uuid, "sizeBytes": len(f.data),
                  "metadata": {"dc.title": [{"value": f.name}]},
                  "checkSum": {"checkSumAlgorithm": "MD5", "value": f.md5},
                  "format": {"mimetype": f.mime_type}} for f in item.files]
        form = {k: v for k, v in item.metadata.items()}
        return {"id": item.workspace_id, "type": "workspaceitem",
                "sections": {"traditionalpageone": form, "upload": {"files": files},
                             "license": {"granted": item.license_granted}},
                "_embedded": {"item": self._item(item)},
                "_links": {"self": {"href":
                    f"{self.base}/submission/workspaceitems/{item.workspace_id}"}}}

    def _workflow(self, item: Item) -> dict[str, Any]:
        return {"id": item.workflow_id, "type": "workflowitem",
                "_embedded": {"item": self._item(item)},
                "_links": {"self": {"href":
                    f"{self.base}/workflow/workflowitems/{item.workflow_id}"}}}


@dataclass
class DSpaceServer:
    app: DSpaceApp
    api_url: str
    website_url: str
    user: str
    password: str


@contextlib.contextmanager
def running_dspace_server(*, user: str = "submitter@example.org",
                          password: str = "s3cret-dspace",  # noqa: S107 - throwaway
                          collections: dict[str, str] | None = None) -> Iterator[DSpaceServer]:
    """Start the server on a free loopback port (API under ``/server/api``)."""
    app = DSpaceApp({user: password},
                    collections or {"123456789/2": str(uuid.uuid4())})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    port = server.socket.getsockname()[1]
    app.base = f"http://127.0.0.1:{port}/server/api"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield DSpaceServer(app, app.base, f"http://127.0.0.1:{port}", user, password)
    finally:
        server.shutdown()
        thread.join(5)
