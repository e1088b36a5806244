"""The files a package hands to a record (InvenioRDM and Zenodo files, DSpace
bitstreams): each file of a zip package (as PASS uploads a submission's custodial files
one by one; SimpleZip's checksum manifests left out), or the package itself when it is
not a zip. Each is read as a stream straight out of the
package, so memory does not grow with its size.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from deposit_services.assemblers.base import Package
from deposit_services.errors import PermanentTransferError

MANIFEST = re.compile(r"manifest-(md5|sha1|sha256|sha512)\.txt")


@dataclass(frozen=True)
class RecordFile:
    """One file to upload: its key (name) in the record and its size."""

    key: str
    size: int
    member: str | None = None  # the zip entry it is read from; None: the package itself
    md5: str | None = None  # known for the package itself


def record_files(package: Package) -> list[RecordFile]:
    """The files ``package`` gives a record, in order, keys unique."""
    if not zipfile.is_zipfile(package.path):
        return [RecordFile(package.name, package.size, md5=package.md5.lower())]
    try:
        with zipfile.ZipFile(package.path) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise PermanentTransferError(f"package {package.name} cannot be read: {exc}") from exc
    files = [RecordFile(i.filename.rsplit("/", 1)[-1], i.file_size, i.filename) for i in infos
             if not MANIFEST.fullmatch(i.filename)]
    keys = [f.key for f in files]
    if len(set(keys)) != len(keys) or not files:
        raise PermanentTransferError(
            f"package {package.name}: its files cannot be record files (none, or two with "
            f"one name: {keys}); use an assembler that writes each file once (simple)")
    return files


@contextmanager
def open_file(package: Package, file: RecordFile) -> Iterator[BinaryIO]:
    """A stream of ``file``'s bytes out of ``package``."""
    if file.member is None:
        with package.open() as stream:
            yield stream
        return
    with zipfile.ZipFile(package.path) as archive, archive.open(file.member) as stream:
        yield stream  # type: ignore[misc]
