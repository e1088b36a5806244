"""DSpace 7+ REST transport (protocol ``DSpace``): workspace item, metadata, workflow.

The sequence is PASS's: the collection's uuid from its handle (discover search), a
workspace item made in it with a multipart upload (streamed) of the submission's files,
each its own bitstream as PASS uploads them (the files of a zip package, read out of it
one by one, its checksum manifests left out; any other package as itself), a JSON
Patch of its sections with the submission's metadata (``metadata.workspace_patch``),
then a workflow item from the workspace item's URI (``text/uri-list``). DSpace decides
later, so the Receipt is SUBMITTED: ``status_ref`` is the item's API URL, followed by
``status.DSpaceItemResolver``; ``access_url`` is ``{website}/items/{uuid}``.

Settings are binding keys named as PASS names them (``DSPACE_API_URL`` or Spring's
``dspace.api.url``...), so ``"DSPACE_API_URL": "${DSPACE_API_URL}"`` carries PASS's
environment over unchanged.

Crash safety: the patch writes a marker (submission id and package name) into
``dc.identifier.other``. ``send`` first looks through the account's own workspace and
workflow items for that marker, or for an unpatched workspace item holding exactly the
package's files (names and MD5s: the zip's ``manifest-md5.txt`` where it has one, so no
file is read again), and carries that one on; ``reconcile`` finds a
workflow item or archived item so made and returns its Receipt. A restart therefore
never makes a second item. The upload that makes the workspace item and the request
that submits it to the workflow, sent whole and left unanswered, are
``OutcomeUnknown``: the attempt stays open and the next one (on any replica) runs
``reconcile`` first.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import threading
import uuid
import zipfile
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

from pydantic import AliasChoices, Field

from deposit_services.assemblers.base import Package
from deposit_services.errors import PermanentTransferError, TransientTransferError
from deposit_services.model.submission import DepositSubmission
from deposit_services.transports.base import Receipt, Transport, TransportContext
from deposit_services.transports.dspace.client import DSpaceAccount, DSpaceClient, MultipartBody
from deposit_services.transports.dspace.metadata import (
    MARKER_FIELD,
    Sections,
    marker,
    workspace_patch,
)
from deposit_services.transports.files import RecordFile, open_file, record_files
from deposit_services.transports.pass_environment import PassEnvironmentBinding

logger = logging.getLogger(__name__)

MAX_MANIFEST_BYTES = 16 * 1024 * 1024


def _key(*names: str) -> Any:
    return AliasChoices(*names)


class DSpaceBinding(PassEnvironmentBinding):
    """The DSpace protocol-binding: PASS's setting names, plus ours (sections, timeouts)."""

    pass_environment = ("DSPACE_API_URL", "DSPACE_WEBSITE_URL", "DSPACE_USER",
                        "DSPACE_PASSWORD", "DSPACE_COLLECTION_HANDLE", "DSPACE_SERVER",
                        "DSPACE_FIELD_EMBARGO_LIFT", "DSPACE_FIELD_EMBARGO_TERMS")

    api_url: str = Field(validation_alias=_key("DSPACE_API_URL", "dspace.api.url", "api-url"))
    website_url: str = Field(
        validation_alias=_key("DSPACE_WEBSITE_URL", "dspace.website.url", "website-url"))
    user: str = Field(validation_alias=_key("DSPACE_USER", "dspace.user", "user"))
    password: str = Field(repr=False,
                          validation_alias=_key("DSPACE_PASSWORD", "dspace.password", "password"))
    collection_handle: str = Field(validation_alias=_key(
        "DSPACE_COLLECTION_HANDLE", "dspace.collection.handle", "collection-handle"))
    server: str | None = Field(default=None,
                               validation_alias=_key("DSPACE_SERVER", "dspace.server"))
    embargo_lift_field: str = Field(default="local.embargo.lift", validation_alias=_key(
        "DSPACE_FIELD_EMBARGO_LIFT", "dspace.field.embargo.lift"))
    embargo_terms_field: str = Field(default="local.embargo.terms", validation_alias=_key(
        "DSPACE_FIELD_EMBARGO_TERMS", "dspace.field.embargo.terms"))
    form_section: str = Field(default="traditionalpageone",
                              validation_alias=_key("form-section"))
    license_section: str = Field(default="license", validation_alias=_key("license-section"))
    access_section: str | None = Field(default=None, validation_alias=_key("access-section"))
    connect_timeout: float = Field(default=10.0, gt=0, validation_alias=_key("connect-timeout"))
    read_timeout: float = Field(default=600.0, gt=0, validation_alias=_key("read-timeout"))
    verify_tls: bool = Field(default=True, validation_alias=_key("verify-tls"))
    # for the status resolver (status.py), kept here so the binding validates
    status_mapping: dict[str, str] = Field(default_factory=dict,
                                           validation_alias=_key("status-mapping"))


def account_for(binding: DSpaceBinding, user_agent: str) -> DSpaceAccount:
    return DSpaceAccount(binding.api_url, binding.user, binding.password, user_agent,
                         binding.connect_timeout, binding.read_timeout, binding.verify_tls)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PermanentTransferError(f"{what}: unexpected answer from DSpace: {value!r:.200}")
    return value


def _embedded_list(page: Any, name: str, what: str) -> list[dict[str, Any]]:
    """``page._embedded[name]`` (a HAL page's objects); [] when the page is empty."""
    if page is None:
        return []
    embedded = _object(page, what).get("_embedded") or {}
    items = _object(embedded, what).get(name, [])
    if not isinstance(items, list):
        raise PermanentTransferError(f"{what}: _embedded.{name} is not a list")
    return [_object(i, what) for i in items]


def _item_of(wrapper: dict[str, Any], what: str) -> dict[str, Any]:
    item = _object(wrapper.get("_embedded") or {}, what).get("item")
    if not isinstance(item, dict) or not item.get("uuid"):
        raise PermanentTransferError(f"{what}: the answer names no item (_embedded.item.uuid)")
    return item


def _metadata_values(item: dict[str, Any], field: str) -> list[str]:
    values = (item.get("metadata") or {}).get(field) or []
    return [str(v.get("value")) for v in values if isinstance(v, dict)]


def _upload_files(wrapper: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, md5) of each file in a workspace item's upload section."""
    found: list[tuple[str, str]] = []
    for name, section in (wrapper.get("sections") or {}).items():
        if not isinstance(section, dict) or "files" not in section or "upload" not in name:
            continue
        for f in section.get("files") or []:
            titles = ((f.get("metadata") or {}).get("dc.title") or [{}])
            found.append((str(titles[0].get("value")),
                          str((f.get("checkSum") or {}).get("value", "")).lower()))
    return found


def _mime_type(package: Package, file: RecordFile) -> str:
    if file.member is None:
        return package.mime_type or "application/octet-stream"
    return mimetypes.guess_type(file.key)[0] or "application/octet-stream"


def _md5s(package: Package, files: list[RecordFile]) -> list[tuple[str, str]]:
    """(name, md5) of each file, for matching an unpatched workspace item (only after a
    crash): the md5 known without reading the file where there is one (the package's
    own, or the zip's ``manifest-md5.txt`` as SimpleZip writes it), else read for it."""
    listed = _manifest_md5s(package) if any(f.member for f in files) else {}
    found: list[tuple[str, str]] = []
    for file in files:
        md5 = file.md5 or listed.get(file.member or "")
        if md5 is None:
            digest = hashlib.md5(usedforsecurity=False)
            with open_file(package, file) as stream:
                while chunk := stream.read(1024 * 1024):
                    digest.update(chunk)
            md5 = digest.hexdigest()
        found.append((file.key, md5.lower()))
    return found


def _manifest_md5s(package: Package) -> dict[str, str]:
    """entry -> md5 from the zip's ``manifest-md5.txt`` (``<hex>  <name>`` lines); {}
    when it has none, or one too large to be a manifest."""
    try:
        with zipfile.ZipFile(package.path) as archive:
            info = archive.getinfo("manifest-md5.txt")
            if info.file_size > MAX_MANIFEST_BYTES:
                return {}
            text = archive.read(info).decode("utf-8", errors="replace")
    except (KeyError, zipfile.BadZipFile, OSError):
        return {}
    listed: dict[str, str] = {}
    for line in text.splitlines():
        md5, _, name = line.partition(" ")
        name = name.lstrip(" ").removeprefix("*")
        if len(md5) == 32 and name:
            listed[name] = md5
    return listed


class DSpaceTransport(Transport):
    """Deposits packages into a DSpace 7+ collection through its REST API."""

    protocol = "DSpace"
    binding_model = DSpaceBinding
    binding: DSpaceBinding

    def __init__(self, binding: Any, context: TransportContext | None = None) -> None:
        super().__init__(binding, context)
        b = self.binding
        self.client = DSpaceClient(account_for(b, self.context.user_agent))
        self.sections = Sections(b.form_section, b.license_section, b.access_section,
                                 b.embargo_lift_field, b.embargo_terms_field)
        self._lock = threading.Lock()
        self._collection: str | None = None
        self._eperson: str | None = None

    def close(self) -> None:
        self.client.close()

    # -- look-ups -----------------------------------------------------------------------

    def collection_uuid(self) -> str:
        """The uuid of DSPACE_COLLECTION_HANDLE (cached)."""
        with self._lock:
            if self._collection:
                return self._collection
        handle = self.binding.collection_handle
        what = f"DSpace collection {handle}"
        page = self.client.call("GET", "discover/search/objects", what,
                                params={"query": f"handle:{handle}", "dsoType": "COLLECTION"})
        result = _object(_object(page, what).get("_embedded") or {}, what).get("searchResult")
        found = [_object(o.get("_embedded", {}).get("indexableObject"), what)
                 for o in _embedded_list(result, "objects", what)]
        matches = [o["uuid"] for o in found if o.get("handle") == handle and o.get("uuid")]
        if len(matches) != 1:
            raise PermanentTransferError(
                f"{what}: {len(matches)} collections have this handle; correct "
                "DSPACE_COLLECTION_HANDLE")
        with self._lock:
            self._collection = str(matches[0])
        return str(matches[0])

    def eperson_uuid(self) -> str:
        """The uuid of the account we log in as (for findBySubmitter)."""
        with self._lock:
            if self._eperson:
                return self._eperson
        what = "DSpace authentication status"
        status = _object(self.client.call("GET", "authn/status", what), what)
        href = str(((status.get("_links") or {}).get("eperson") or {}).get("href") or "")
        if not status.get("authenticated") or not href:
            raise PermanentTransferError(f"{what}: not logged in after login")
        with self._lock:
            self._eperson = href.rstrip("/").rsplit("/", 1)[-1]
        return self._eperson

    def _own(self, kind: str) -> list[dict[str, Any]]:
        path = ("submission/workspaceitems" if kind == "workspaceitems"
                else "workflow/workflowitems")
        page = self.client.call("GET", f"{path}/search/findBySubmitter", f"DSpace {kind}",
                                params={"uuid": self.eperson_uuid(), "size": "1000",
                                        "embed": "item"}, missing_ok=True)
        return _embedded_list(page, kind, f"DSpace {kind}")

    def _find(self, package: Package, mark: str, kind: str) -> dict[str, Any] | None:
        files = record_files(package)
        uploads: list[tuple[str, str]] | None = None  # (name, md5) of ours, when needed
        for wrapper in self._own(kind):
            item = _item_of(wrapper, f"DSpace {kind} {wrapper.get('id')}")
            if mark in _metadata_values(item, MARKER_FIELD):
                return wrapper
            if kind != "workspaceitems" or _metadata_values(item, MARKER_FIELD):
                continue
            found = _upload_files(wrapper)
            if [name for name, _ in found] != [f.key for f in files]:
                continue
            if uploads is None:
                uploads = _md5s(package, files)
            if found == uploads:
                return wrapper  # made, not yet patched: the crash came before the PATCH
        return None

    # -- deposit ------------------------------------------------------------------------

    def send(self, package: Package, submission: DepositSubmission) -> Receipt:
        mark = marker(submission.id, package.name)
        submitted = self._find(package, mark, "workflowitems")
        if submitted is not None:
            logger.info("DSpace already holds %s in workflow item %s", mark, submitted.get("id"))
            return self._receipt(submitted, "workflow item")
        workspace = self._find(package, mark, "workspaceitems")
        if workspace is None:
            workspace = self._create(package)
        else:
            logger.info("carrying on with DSpace workspace item %s of an earlier attempt",
                        workspace.get("id"))
        ws_id = workspace.get("id")
        item = _item_of(workspace, "DSpace workspace item")
        if mark not in _metadata_values(item, MARKER_FIELD):
            operations = workspace_patch(submission, package.name, self.sections)
            self.client.call(
                "PATCH", f"submission/workspaceitems/{ws_id}",
                f"DSpace metadata of workspace item {ws_id}",
                body=lambda: {"json": operations,
                              "headers": {"Content-Type": "application/json-patch+json"}})
        ws_uri = self.client.url(f"submission/workspaceitems/{ws_id}")
        workflow = _object(self.client.call(
            "POST", "workflow/workflowitems", f"DSpace submission of workspace item {ws_id}",
            body=lambda: {"data": ws_uri.encode(),
                          "headers": {"Content-Type": "text/uri-list"}}, changes=True),
            "DSpace workflow item")
        if "_embedded" not in workflow or "item" not in (workflow.get("_embedded") or {}):
            workflow = {**workflow, "_embedded": {"item": item}}
        return self._receipt(workflow, "workflow item")

    def _create(self, package: Package) -> dict[str, Any]:
        collection = self.collection_uuid()
        files = record_files(package)
        what = (f"DSpace upload of {package.name} ({len(files)} file(s), {package.size} "
                f"bytes) to collection {self.binding.collection_handle}")
        logger.info("%s", what)
        streams = ExitStack()

        def body() -> dict[str, Any]:
            streams.close()  # a repeated request (after a new login) reads them afresh
            parts = [("file", f.key, _mime_type(package, f),
                      streams.enter_context(open_file(package, f)), f.size) for f in files]
            multipart = MultipartBody(parts, boundary=uuid.uuid4().hex)
            return {"data": multipart, "headers": {"Content-Type": multipart.content_type}}

        try:
            answer = self.client.call("POST", "submission/workspaceitems", what, body=body,
                                      params={"owningCollection": collection}, changes=True)
        except OSError as exc:
            raise TransientTransferError(f"{what}: cannot read the package: {exc}") from exc
        finally:
            streams.close()
        answer = _object(answer, what)
        if "_embedded" in answer and "workspaceitems" in (answer.get("_embedded") or {}):
            made = _embedded_list(answer, "workspaceitems", what)
            if len(made) != 1:
                raise PermanentTransferError(f"{what}: DSpace made {len(made)} workspace items")
            answer = made[0]
        if answer.get("id") is None:
            raise PermanentTransferError(f"{what}: the answer has no workspace item id")
        return answer

    def _receipt(self, wrapper: dict[str, Any], kind: str) -> Receipt:
        item = _item_of(wrapper, f"DSpace {kind}")
        item_uuid = str(item["uuid"])
        handle = item.get("handle")
        website = self.binding.website_url.rstrip("/")
        details = {"item_uuid": item_uuid, "item": self.client.url(f"core/items/{item_uuid}")}
        if wrapper.get("id") is not None:
            details["workflow_item" if kind == "workflow item" else "workspace_item"] = str(
                wrapper["id"])
        return Receipt(
            accepted=False,
            status_ref=details["item"],
            access_url=f"{website}/items/{item_uuid}",
            external_ids=(str(handle),) if handle else (item_uuid,),
            details=details,
        )

    def reconcile(self, package: Package, evidence: Mapping[str, str]) -> Receipt | None:
        """The Receipt of a workflow or archived item an earlier attempt made; None when
        there is none (``send`` then carries on with that attempt's workspace item, if
        one was made, rather than making a second)."""
        mark = evidence.get("marker")
        ref = evidence.get("status_ref")
        if ref:
            item = self.client.call("GET", ref, "DSpace item", missing_ok=True)
            if item is not None:
                return self._receipt({"_embedded": {"item": _object(item, "DSpace item")}},
                                     "item")
        candidates = [mark] if mark else []
        for wrapper in self._own("workflowitems"):
            item = _item_of(wrapper, "DSpace workflow item")
            values = _metadata_values(item, MARKER_FIELD)
            if any(m in values for m in candidates) or any(
                    v.endswith(f":{package.name}") for v in values):
                return self._receipt(wrapper, "workflow item")
        return self._archived(package)

    def _archived(self, package: Package) -> Receipt | None:
        what = f"DSpace search for {package.name}"
        page = self.client.call("GET", "discover/search/objects", what, params={
            "query": f'{MARKER_FIELD}:"*:{package.name}"', "dsoType": "ITEM"})
        result = _object(_object(page, what).get("_embedded") or {}, what).get("searchResult")
        for found in _embedded_list(result, "objects", what):
            item = _object((found.get("_embedded") or {}).get("indexableObject"), what)
            if any(v.endswith(f":{package.name}") for v in _metadata_values(item, MARKER_FIELD)):
                return self._receipt({"_embedded": {"item": item}}, "item")
        return None
