"""Filesystem transport: the package is copied into ``baseDir`` (PASS's binding keys).

The copy goes to a temporary name in the same directory, is flushed to disk, then
renamed, so a crash never leaves a partial file under the final name. A file already
there under the final name with the same size is the same package sent before (package
names and bytes are deterministic), so it is not written again. The repository takes
custody at once: the deposit is ACCEPTED and the copy's accessUrl is the file: URL.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from pathlib import Path

from pydantic import Field

from deposit_services.assemblers.base import CHUNK_SIZE, Package
from deposit_services.errors import PermanentTransferError, TransientTransferError
from deposit_services.model.submission import DepositSubmission
from deposit_services.transports.base import Binding, Receipt, Transport


class FilesystemBinding(Binding):
    base_dir: Path = Field(alias="baseDir")
    create_if_missing: bool = Field(default=True, alias="createIfMissing")
    overwrite: bool = False


class FilesystemTransport(Transport):
    protocol = "filesystem"
    binding_model = FilesystemBinding
    binding: FilesystemBinding

    def send(self, package: Package, submission: DepositSubmission) -> Receipt:
        base = self.binding.base_dir
        if not base.is_dir():
            if not self.binding.create_if_missing:
                raise PermanentTransferError(
                    f"baseDir {base} does not exist and createIfMissing is false"
                )
            try:
                base.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise PermanentTransferError(f"cannot create baseDir {base}: {exc}") from exc
        final = base / package.name
        if final.exists() and not self.binding.overwrite:
            size = final.stat().st_size
            if size != package.size:
                raise PermanentTransferError(
                    f"{final} exists with {size} bytes, the package has {package.size}; "
                    "remove it or set overwrite=true"
                )
            _remove_leftovers(base, package.name)
            return self._receipt(final, "already present with the same size, not written again")
        temp = base / f".{package.name}.{os.getpid()}.{os.urandom(4).hex()}.part"
        try:
            with package.open() as src, temp.open("wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK_SIZE)
                dst.flush()
                os.fsync(dst.fileno())
            if temp.stat().st_size != package.size:
                raise TransientTransferError(f"short write to {temp}")
            os.replace(temp, final)
        except OSError as exc:
            raise TransientTransferError(f"writing {final} failed: {exc}") from exc
        finally:
            temp.unlink(missing_ok=True)
        _remove_leftovers(base, package.name)
        return self._receipt(final, None)

    @staticmethod
    def _receipt(final: Path, message: str | None) -> Receipt:
        url = final.resolve().as_uri()
        return Receipt(accepted=True, access_url=url, external_ids=(url,), message=message)


def _remove_leftovers(base: Path, final_name: str) -> None:
    """Temporary files of this package left by a worker that died mid-copy (the deposit's
    lease means no other worker is copying it now; other packages' never match)."""
    shape = re.compile(rf"\.{re.escape(final_name)}\.\d+\.[0-9a-f]{{8}}\.part")
    for leftover in base.glob(f".{glob.escape(final_name)}.*.part"):
        if shape.fullmatch(leftover.name):
            leftover.unlink(missing_ok=True)
