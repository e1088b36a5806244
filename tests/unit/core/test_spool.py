"""The spool: each worker process builds its packages in a directory of its own, locked
while it lives; a dead worker's partial packages are removed at the next start-up, a
live worker's never."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from deposit_services.spool import Spool, sweep

HOLD = """
import sys, time
from pathlib import Path
from deposit_services.spool import Spool
spool = Spool(Path(sys.argv[1]), sys.argv[2])
path = spool.open()
(path / "partial.zip.part").write_bytes(b"x" * 4096)
print(path, flush=True)
sys.stdin.read()  # until the test lets go (or the process is killed)
"""


def _worker(base: Path, owner: str) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(base), owner],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_a_killed_workers_spool_goes_and_a_live_ones_stays(tmp_path: Path) -> None:
    base = tmp_path / "work"
    dead, dead_dir = _worker(base, "host:101:dead")
    live, live_dir = _worker(base, "host:102:live")
    dead.kill()
    dead.wait(10)
    assert (dead_dir / "partial.zip.part").exists()
    mine = Spool(base, "host:103:me")
    path = mine.open()
    assert not dead_dir.exists(), "the killed worker's partial package was removed"
    assert (live_dir / "partial.zip.part").exists(), "the live worker's was kept"
    assert path.is_dir() and path != live_dir
    assert sweep(base) == []  # nothing more to remove while both live
    mine.close()
    assert not path.exists()
    live.stdin.close()  # type: ignore[union-attr]
    live.wait(10)


def test_other_directories_in_the_work_dir_are_left_alone(tmp_path: Path) -> None:
    base = tmp_path / "work"
    (base / "not-a-spool").mkdir(parents=True)
    (base / "not-a-spool" / "keep.txt").write_text("keep")
    assert sweep(base) == []
    assert (base / "not-a-spool" / "keep.txt").exists()
