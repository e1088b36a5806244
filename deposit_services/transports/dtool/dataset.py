"""A package written as a frozen dtool dataset with ``dtoolcore``, once per deposit.

The package's entries become the dataset's items (a zip or tar is unpacked entry by
entry through a temporary file, so memory stays flat; any other package is one item);
entry names are sanitised again, so an item can never land outside the dataset. The
dataset's UUID is ``uuid5`` of the base URI and the package name (which is fixed per
deposit), and its name is the package's, so a retry finds the same dataset:

- frozen, with our UUID: it is used as it is (never frozen twice);
- a proto dataset with our UUID (a worker died while writing it): resumed, items
  written again (put_item replaces), then frozen;
- a ``file:`` directory with no dtool metadata (a worker died inside ``create``):
  removed and created again;
- anything else under that name (another UUID): a PermanentTransferError, untouched.
"""

from __future__ import annotations

import logging
import re
import shutil
import tarfile
import tempfile
import uuid
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import dtoolcore
import dtoolcore.utils

from deposit_services.assemblers.archive import EntryNames
from deposit_services.assemblers.base import CHUNK_SIZE, Package
from deposit_services.errors import PermanentTransferError, TransientTransferError

log = logging.getLogger(__name__)

NAMESPACE = uuid.UUID("0b5c3d6e-6f1e-5a0e-9a57-6465706f7369")  # deposit-services datasets
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2")


@dataclass(frozen=True)
class DatasetMetadata:
    """What goes beside the items: the README (YAML text), annotations and tags."""

    readme: str
    annotations: Mapping[str, str]
    tags: Sequence[str]


def dataset_uuid(base_uri: str, package_name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{base_uri}\n{package_name}"))


def dataset_name(package_name: str) -> str:
    """The package name without its archive extension, in dtool's name alphabet."""
    stem = package_name
    for ext in _ARCHIVES:
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    name = _NAME_CHARS.sub("_", stem).strip("._") or "dataset"
    return name[:80]


def write_frozen(package: Package, base_uri: str, metadata: DatasetMetadata,
                 creator: str) -> dtoolcore.DataSet:
    """The frozen dataset of ``package`` at ``base_uri``, written unless it is there."""
    identifier = dataset_uuid(base_uri, package.name)
    admin = dtoolcore.generate_admin_metadata(dataset_name(package.name), creator)
    admin["uuid"] = identifier
    try:
        proto = dtoolcore.generate_proto_dataset(admin, base_uri)
        uri = proto.uri
        existing = _admin_metadata(uri)
        if existing is not None and existing.get("uuid") != identifier:
            raise PermanentTransferError(
                f"{uri} holds another dtool dataset (uuid {existing.get('uuid')}, not "
                f"{identifier}): move it away, then retry the deposit")
        if existing is not None and existing.get("type") == "dataset":
            log.info("dtool dataset %s (%s) is frozen already: not written again", uri,
                     identifier)
            return dtoolcore.DataSet.from_uri(uri)
        if existing is not None:
            log.warning("dtool dataset %s (%s) was left unfrozen by an earlier attempt: "
                        "resuming it", uri, identifier)
            proto = dtoolcore.ProtoDataSet.from_uri(uri)
        else:
            _remove_partial(uri)
            proto.create()
        proto.put_readme(metadata.readme)
        with tempfile.TemporaryDirectory(prefix=".dtool-", dir=package.path.parent) as staging:
            for relpath, path in _items(package, Path(staging)):
                proto.put_item(str(path), relpath)
        for name, value in metadata.annotations.items():
            proto.put_annotation(name, value)
        for tag in metadata.tags:
            proto.put_tag(tag)
        proto.freeze()
        return dtoolcore.DataSet.from_uri(uri)
    except (dtoolcore.DtoolCoreInvalidNameError, dtoolcore.DtoolCoreValueError,
            dtoolcore.DtoolCoreTypeError, KeyError) as exc:
        raise PermanentTransferError(f"dtool refused the dataset at {base_uri}: "
                                     f"{type(exc).__name__} {exc}") from exc
    except OSError as exc:  # storage full, unreachable, permissions: may be fixed
        raise TransientTransferError(f"writing the dtool dataset at {base_uri} failed: {exc}"
                                     ) from exc


def probe(base_uri: str) -> str:
    """Prove that datasets can be written at ``base_uri``: a proto dataset made (with a
    README) and removed again. Only ``file:`` base URIs are probed (a directory is
    removed the same way on every host); the answer says what was done."""
    if dtoolcore.utils.generous_parse_uri(base_uri).scheme != "file":
        return f"base URI {base_uri} not probed (only file: base URIs are)"
    name = f"deposit-services-check-{uuid.uuid4().hex[:8]}"
    admin = dtoolcore.generate_admin_metadata(name, "deposit-services")
    proto = dtoolcore.generate_proto_dataset(admin, base_uri)
    path = Path(dtoolcore.utils.generous_parse_uri(proto.uri).path)
    try:
        proto.create()
        proto.put_readme("probe: deposit-services check-target\n")
    except (OSError, dtoolcore.DtoolCoreTypeError, dtoolcore.DtoolCoreValueError) as exc:
        raise PermanentTransferError(
            f"base URI {base_uri} is not writable: {exc}; give the worker's user write "
            "permission on it (or correct base-uri)") from exc
    finally:
        shutil.rmtree(path, ignore_errors=True)
    return f"base URI {base_uri} is writable: probe dataset {name} written and removed"


def _admin_metadata(uri: str) -> dict[str, Any] | None:
    broker = dtoolcore._get_storage_broker(uri, None)
    if not broker.has_admin_metadata():
        return None
    metadata: dict[str, Any] = broker.get_admin_metadata()
    return metadata


def _remove_partial(uri: str) -> None:
    """A ``file:`` dataset directory without dtool metadata: a crash inside ``create``."""
    parsed = dtoolcore.utils.generous_parse_uri(uri)
    if parsed.scheme != "file":
        return
    path = Path(parsed.path)
    if path.is_dir():
        log.warning("removing %s: a dtool dataset directory with no metadata, left by a "
                    "worker that died while creating it", path)
        shutil.rmtree(path)


def _items(package: Package, staging: Path) -> Iterator[tuple[str, Path]]:
    """(item relpath, a file holding its bytes) for each entry of the package."""
    lower = package.name.lower()
    if lower.endswith(".zip"):
        with zipfile.ZipFile(package.path) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    with archive.open(info) as source, _staged(source, staging) as path:
                        yield _relpath(info.filename), path
    elif lower.endswith(_ARCHIVES[1:]):
        with tarfile.open(package.path, "r:*") as archive:
            for member in archive:
                extracted = archive.extractfile(member) if member.isfile() else None
                if extracted is not None:
                    with extracted, _staged(extracted, staging) as path:
                        yield _relpath(member.name), path
    else:
        yield _relpath(package.name), package.path


@contextmanager
def _staged(source: IO[bytes], staging: Path) -> Iterator[Path]:
    path = staging / "item"
    with path.open("wb") as out:
        shutil.copyfileobj(source, out, CHUNK_SIZE)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _relpath(name: str) -> str:
    return EntryNames.sanitise(name)
