"""The spool: where packages are built before they are sent, one directory per worker
process, so the packages of a worker that died (killed while packaging: gigabytes) are
found and removed, and those of a live one never are.

Each process takes ``work/<its id>/`` and holds an exclusive ``flock`` on the
``.lock`` file in it for as long as it lives; the kernel releases a dead process's lock.
At start-up every other directory whose lock can be taken belongs to a dead worker and
is removed. (On a volume several hosts share, flock reaches the other hosts only where
the filesystem carries locks, as NFSv4 and most cluster filesystems do.)
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import tempfile
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

LOCK = ".lock"
CLAIM = ".claim-"


class Spool:
    """This process's spool directory under ``base``, locked while it is open."""

    def __init__(self, base: Path, owner: str) -> None:
        self.base = base
        self.path = base / "".join(c if c.isalnum() or c in "-_." else "_" for c in owner)
        self._lock: IO[bytes] | None = None

    def open(self) -> Path:
        """Remove dead workers' directories, then take ours; returns it. Ours is made
        under a claim name and renamed once locked, so a sweeper never sees it unlocked."""
        self.base.mkdir(parents=True, exist_ok=True)
        sweep(self.base)
        claim = Path(tempfile.mkdtemp(prefix=CLAIM, dir=self.base))
        handle = (claim / LOCK).open("ab")
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        claim.rename(self.path)
        self._lock = handle
        return self.path

    def close(self) -> None:
        """Remove our directory (nothing in it is needed once we stop) and unlock."""
        if self._lock is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock.close()
        self._lock = None


def sweep(base: Path) -> list[Path]:
    """Remove the directories under ``base`` no live worker holds; returns them."""
    removed = []
    for directory in sorted(p for p in base.iterdir() if p.is_dir()):
        lock_file = directory / LOCK
        if directory.name.startswith(CLAIM) or not lock_file.is_file():
            continue  # being claimed, or not a worker's directory
        try:
            handle = lock_file.open("rb")
        except OSError:
            continue
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live worker's
            size = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
            shutil.rmtree(directory, ignore_errors=True)
        log.warning("removed %s: the spool of a worker that stopped without cleaning up "
                    "(%d bytes of partial packages)", directory, size)
        removed.append(directory)
    return removed

