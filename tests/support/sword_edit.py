"""The SWORDv2 test server's container operations (profile sections 6.2-6.10).

Called by ``SwordApp``'s router: the collection listing (GET on the Col-IRI, an Atom feed of
the user's items as DSpace gives it), metadata-only and multipart deposits to the
Col-IRI, and on an item: GET/PUT/POST/DELETE of its Edit-IRI (receipt, replace
metadata [and content], add metadata [and content] or complete an In-Progress deposit
with an empty POST, delete the container) and of its EM-IRI (content, replace content,
add a file, delete content), with the profile's status codes: 200 + receipt, 201 +
Location, 204 No Content.

Multipart bodies (multipart/related, an ``atom`` part and a ``payload`` part, as the
profile's 6.3.2 shows) are parsed with the standard library's email parser and held
in memory: they are small in tests; binary bodies stream as deposits do.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from email import message_from_bytes, policy
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from tests.support.sword_documents import ATOM_NS, BINARY, ReceivedDeposit, Response, _now

if TYPE_CHECKING:
    from tests.support.sword_app import RequestRecord, SwordApp

_FILENAME = re.compile(r'filename="?([^";]+)"?')


# -- Col-IRI -------------------------------------------------------------------------


def col_iri(app: SwordApp, environ: dict[str, Any], record: RequestRecord,
                collection: str) -> Response:
    method = record.method
    if method == "GET":
        if not app.listing:
            return app._error(405, "MethodNotAllowed", "this server lists no collection")
        return app._xml(200, listing(app, collection), "application/atom+xml;type=feed")
    if method != "POST":
        return Response(405, [("Allow", "GET, POST")])
    kind = _media_type(record.headers.get("Content-Type", ""))
    if kind == "multipart/related" or kind.startswith("application/atom+xml"):
        parts = read_parts(app, environ, record)
        if isinstance(parts, Response):
            return parts
        atom, payload = parts
        deposit = new_deposit(app, collection, record, atom)
        if payload is not None:
            set_content(app, deposit, payload)
        with app._lock:
            app.deposits[deposit.id] = deposit
        edit = app._url(f"/swordv2/edit/{deposit.id}")
        return app._xml(201, app._receipt(deposit), extra=[("Location", edit)])
    return app._deposit(environ, record, collection)


def listing(app: SwordApp, collection: str) -> str:
    with app._lock:
        items = [d for d in app.deposits.values()
                 if d is not None and d.collection == collection and not d.hidden]
    entries = "".join(
        f"<entry><id>{escape(app._url('/swordv2/edit/' + d.id))}</id>"
        f"<title>{escape(d.title or d.filename or 'Untitled')}</title>"
        f"<updated>{_now()}</updated>"
        f"<link rel=\"edit-media\" href={quoteattr(app._url('/swordv2/edit-media/' + d.id))}/>"
        "</entry>"
        for d in items
    )
    return (f'<feed xmlns="{ATOM_NS}"><id>{escape(app._url("/swordv2/collection/"))}'
            f"{escape(collection)}</id><title>{escape(collection)}</title>"
            f"<updated>{_now()}</updated>{entries}</feed>")


# -- Edit-IRI ------------------------------------------------------------------------


def edit_iri(app: SwordApp, environ: dict[str, Any], record: RequestRecord,
             ident: str) -> Response:
    deposit = app.deposits.get(ident)
    if deposit is None:
        return Response(404, [("Content-Type", "text/plain")], b"not found")
    method = record.method
    if method == "GET":
        return app._xml(200, app._receipt(deposit))
    if method == "DELETE":
        with app._lock:
            del app.deposits[ident]
        if deposit.path is not None:
            deposit.path.unlink(missing_ok=True)
        return Response(204)
    if method not in ("PUT", "POST"):
        return Response(405, [("Allow", "GET, PUT, POST, DELETE")])
    in_progress = record.headers.get("In-Progress", "false").strip().lower() == "true"
    if method == "POST" and int(record.headers.get("Content-Length") or 0) == 0:
        deposit.in_progress = in_progress  # completing an In-Progress deposit
        return app._xml(200, app._receipt(deposit))
    parts = read_parts(app, environ, record)
    if isinstance(parts, Response):
        return parts
    atom, payload = parts
    if method == "PUT":
        deposit.metadata = [atom] if atom else []
    elif atom:
        deposit.metadata.append(atom)
    deposit.title = _title(atom) or deposit.title
    if payload is not None:
        set_content(app, deposit, payload)
    deposit.in_progress = in_progress
    deposit.updates += 1
    return app._xml(200, app._receipt(deposit))


# -- EM-IRI --------------------------------------------------------------------------


def em_iri(app: SwordApp, environ: dict[str, Any], record: RequestRecord,
                rest: str) -> Response:
    ident, _, filename = rest.partition("/")
    deposit = app.deposits.get(ident)
    if deposit is None:
        return Response(404, [("Content-Type", "text/plain")], b"not found")
    method, h = record.method, record.headers
    if method == "GET":
        if deposit.path is None or not deposit.path.exists():
            return Response(404, [("Content-Type", "text/plain")], b"no content kept")
        return Response(200, [("Content-Type", deposit.content_type or BINARY)],
                         deposit.path.read_bytes())
    if method == "DELETE":
        if deposit.path is not None:
            deposit.path.unlink(missing_ok=True)
        deposit.filename, deposit.md5, deposit.size = None, "", 0
        deposit.files.clear()
        return Response(204)
    if method not in ("PUT", "POST") or filename:
        return Response(405, [("Allow", "GET, PUT, POST, DELETE")])
    match = _FILENAME.search(h.get("Content-Disposition", ""))
    if not match or "Content-Length" not in h:
        return app._error(400, "ErrorBadRequest",
                           "Content-Disposition with a filename and Content-Length needed")
    length = int(h["Content-Length"])
    name = match.group(1)
    if method == "POST":  # add a file to the media resource
        md5, size, _ = app._receive(environ, length, f"{ident}-{uuid.uuid4().hex}")
        if _md5_mismatch(h.get("Content-Md5"), md5):
            return app._error(412, "ErrorChecksumMismatch", "Content-MD5 does not match")
        deposit.files.append(name)
        location = app._url(f"/swordv2/edit-media/{ident}/{name}")
        return app._xml(201, app._receipt(deposit), extra=[("Location", location)])
    md5, size, path = app._receive(environ, length, ident)
    if size != length or _md5_mismatch(h.get("Content-Md5"), md5):
        return app._error(412, "ErrorChecksumMismatch",
                           f"Content-MD5 {h.get('Content-Md5')} does not match {md5}")
    deposit.filename, deposit.md5, deposit.size, deposit.path = name, md5, size, path
    deposit.packaging = h.get("Packaging", BINARY)
    deposit.content_type = h.get("Content-Type", "")
    deposit.updates += 1
    return Response(204)


# -- bodies --------------------------------------------------------------------------


def read_parts(app: SwordApp, environ: dict[str, Any], record: RequestRecord
           ) -> tuple[bytes | None, tuple[str, bytes, str, str] | None] | Response:
    """(atom entry, payload (filename, bytes, content type, packaging)) of an Atom
    entry or a multipart/related body; an error response when they are malformed."""
    length = int(record.headers.get("Content-Length") or 0)
    body = environ["wsgi.input"].read(length)
    environ["sword.consumed"] = True
    content_type = record.headers.get("Content-Type", "")
    if _media_type(content_type).startswith("application/atom+xml"):
        if not body.strip():
            return app._error(400, "ErrorBadRequest", "empty Atom entry")
        return body, None
    if _media_type(content_type) != "multipart/related":
        return app._error(415, "ErrorContent", f"unexpected Content-Type {content_type}")
    message = message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=policy.HTTP)
    atom: bytes | None = None
    payload = None
    for part in message.iter_parts():
        disposition = str(part.get("Content-Disposition", ""))
        name = re.search(r'name="?([^";]+)"?', disposition.replace("filename", "_"))
        decoded = part.get_payload(decode=True)
        data = decoded if isinstance(decoded, bytes) else b""
        if name and name.group(1) == "atom":
            atom = data
        elif name and name.group(1) == "payload":
            file = _FILENAME.search(disposition)
            if file is None:
                return app._error(400, "ErrorBadRequest", "payload part has no filename")
            expected = part.get("Content-MD5")
            if _md5_mismatch(expected, hashlib.md5(data, usedforsecurity=False).hexdigest()):
                return app._error(412, "ErrorChecksumMismatch",
                                   f"Content-MD5 {expected} of the payload does not match")
            payload = (file.group(1), data, part.get_content_type(),
                       str(part.get("Packaging", BINARY)))
    if atom is None or payload is None:
        return app._error(400, "ErrorBadRequest",
                           "multipart/related needs an 'atom' part and a 'payload' part")
    return atom, payload


def new_deposit(app: SwordApp, collection: str, record: RequestRecord,
                 atom: bytes | None) -> ReceivedDeposit:
    h = record.headers
    slug = h.get("Slug")
    ident = slug if slug and re.fullmatch(r"[A-Za-z0-9._-]+", slug) and \
        slug not in app.deposits else uuid.uuid4().hex
    return ReceivedDeposit(
        id=ident, collection=collection, filename=None, packaging=BINARY,
        content_type="", md5="", size=0, slug=slug, on_behalf_of=h.get("On-Behalf-Of"),
        in_progress=h.get("In-Progress", "false").strip().lower() == "true",
        headers=dict(h), metadata=[atom] if atom else [], title=_title(atom),
    )


def set_content(app: SwordApp, deposit: ReceivedDeposit,
                 payload: tuple[str, bytes, str, str]) -> None:
    name, data, content_type, packaging = payload
    deposit.filename, deposit.size = name, len(data)
    deposit.md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    deposit.content_type, deposit.packaging = content_type, packaging
    store = app.store_dir
    if store is not None:
        deposit.path = store / deposit.id
        deposit.path.write_bytes(data)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _md5_mismatch(expected: str | None, actual: str) -> bool:
    if expected is None:
        return False
    value = expected.strip()
    if re.fullmatch(r"[0-9a-fA-F]{32}", value):
        return value.lower() != actual
    try:  # RFC 1864 base64, as some clients send it
        return base64.b64decode(value).hex() != actual
    except ValueError:
        return True


def _title(atom: bytes | None) -> str | None:
    if not atom:
        return None
    try:
        root = etree.fromstring(atom, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return None
    title = root.find(f"{{{ATOM_NS}}}title")
    return title.text if title is not None and title.text else None
