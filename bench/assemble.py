"""Package assembly throughput and memory, next to the command-line tools, in one run.

Prints, for about 1 GB of input (half random bytes like images and PDFs, half
word-like text that deflates to about 45 %), the MB/s of our SimpleZip assembler
(``ZIP`` stored, ``ZIP`` deflate, ``TAR+GZIP``; each also hashes every entry with
sha256 for its manifest and the package with MD5 and SHA-256) next to ``zip -0``,
``zip`` (deflate level 6) and ``tar czf`` on the same files, page cache warm for both;
then the peak RSS (VmHWM) of a child process packaging one 2 GB file. CPU seconds are
printed beside each rate: ours does more work per byte than the tools (three hashes
besides the CRC), spread over threads, so it gains on an idle machine and loses some
of that on a loaded one; the load average is printed too.
The RO-Crate row is the ro-crate-1.1 assembler (the same deflated zip, plus sha256 of
every file and ro-crate-metadata.json) next to ``zip`` on the same files.
Targets: ours >= 0.8x the tool per format; peak RSS < 100 MB whatever the input size.

Usage: ``python bench/assemble.py [--size-mb 1024] [--big-mb 2048] [--dir /work] [--repeat 2]``
(from the repository root). Everything is written under a temporary folder in
``--dir`` and removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deposit_services.assemblers.base import Assembler, create_assembler
from deposit_services.model.entities import FileRole
from deposit_services.model.submission import DepositFile, DepositSubmission

MB = 1_000_000
CHUNK = 1 << 20
STAMP = datetime(2024, 5, 4, 14, 22, 25, tzinfo=UTC)
FORMATS: list[tuple[str, dict[str, str], list[str]]] = [
    ("ZIP stored", {"archive": "ZIP", "compression": "NONE"}, ["zip", "-q", "-0", "-r"]),
    ("ZIP deflate", {"archive": "ZIP", "compression": "GZIP"}, ["zip", "-q", "-r"]),
    ("TAR+GZIP", {"archive": "TAR", "compression": "GZIP"}, ["tar", "czf"]),
    # RO-Crate: the same zip plus a sha256 per file (for ro-crate-metadata.json), the
    # manifest and the metadata written last (issue 20)
    ("RO-Crate ZIP", {"format": "ro-crate-1.1", "archive": "ZIP", "compression": "GZIP",
                      "license": "https://spdx.org/licenses/CC-BY-4.0"}, ["zip", "-q", "-r"]),
]


def assembler_for(options: dict[str, str]) -> Assembler:
    """SimpleZip, or the assembler the bench's own ``format`` key names."""
    rest = {k: v for k, v in options.items() if k != "format"}
    return create_assembler(options.get("format", "simple"), rest)


def text_block(rng: random.Random) -> bytes:
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))
             for _ in range(8000)]
    return b" ".join(rng.choice(words) for _ in range(CHUNK // 5))[:CHUNK]


def make_inputs(folder: Path, total_mb: int) -> list[Path]:
    """8 files, alternately random and text-like, about ``total_mb`` MB in all."""
    folder.mkdir(parents=True)
    rng = random.Random(42)
    block = text_block(rng)
    per_file = total_mb * MB // 8
    paths = []
    for n in range(8):
        path = folder / (f"figure-{n}.tif" if n % 2 else f"chapter-{n}.txt")
        with path.open("wb") as out:
            left, i = per_file, 0
            while left > 0:
                size = min(CHUNK, left)
                if n % 2:
                    out.write(os.urandom(size))
                else:  # the same words shifted per chunk: compresses like prose, not like a repeat
                    shift = (i * 7919) % CHUNK
                    out.write((block[shift:] + block[:shift])[:size])
                left -= size
                i += 1
        paths.append(path)
    return paths


def warm(paths: list[Path]) -> None:
    for path in paths:
        with path.open("rb") as f:
            while f.read(CHUNK):
                pass


def submission(paths: list[Path]) -> DepositSubmission:
    return DepositSubmission(id="bench", files=tuple(
        DepositFile(id=str(n), name=p.name, location=str(p),
                    role=FileRole.MANUSCRIPT if n == 0 else FileRole.SUPPLEMENTAL)
        for n, p in enumerate(paths)))


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_ours(options: dict[str, str], paths: list[Path], out: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads)."""
    assembler = assembler_for(options)
    cpu, start = cpu_seconds(resource.RUSAGE_SELF), time.perf_counter()
    package = assembler.assemble(submission(paths), out, STAMP)
    elapsed = time.perf_counter() - start
    used = cpu_seconds(resource.RUSAGE_SELF) - cpu
    package.discard()
    return elapsed, used


def run_tool(command: list[str], inputs: Path, out: Path) -> tuple[float, float]:
    target = out / ("tool.tar.gz" if command[0] == "tar" else "tool.zip")
    argv = ([*command, str(target), "-C", str(inputs.parent), inputs.name]
            if command[0] == "tar" else [*command, str(target), inputs.name])
    cpu, start = cpu_seconds(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(argv, check=True, cwd=inputs.parent)
    elapsed = time.perf_counter() - start
    used = cpu_seconds(resource.RUSAGE_CHILDREN) - cpu
    target.unlink()
    return elapsed, used


def rss_child(path: str, options_json: str) -> None:
    """In a child process: package one file, print VmHWM before and after as JSON."""
    def hwm() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    before = hwm()
    big = Path(path)
    start = time.perf_counter()
    package = assembler_for(json.loads(options_json)).assemble(
        submission([big]), big.parent / "rss-out", STAMP)
    elapsed = time.perf_counter() - start
    size = package.size
    package.discard()
    print(json.dumps({"before": before, "peak": hwm(), "seconds": elapsed, "size": size}))


def measure_rss(big: Path, options: dict[str, str]) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--rss-child", str(big), json.dumps(options)],
        check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["children_maxrss"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--big-mb", type=int, default=2048)
    parser.add_argument("--dir", default="/work")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs per side and format, best kept (the machine is shared)")
    parser.add_argument("--rss-child", nargs=2, metavar=("FILE", "OPTIONS_JSON"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child)
        return
    for tool in ("zip", "tar", "gzip"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed; the comparison needs it")
    root = Path(tempfile.mkdtemp(prefix="bench-assemble-", dir=args.dir))
    try:
        inputs = root / "inputs"
        out = root / "out"
        out.mkdir()
        paths = make_inputs(inputs, args.size_mb)
        total = sum(p.stat().st_size for p in paths)
        warm(paths)
        print(f"best of {args.repeat} runs each; input: {len(paths)} files, {total / MB:.0f} MB "
              f"(half random, half text-like), in {root}; python {sys.version.split()[0]}, "
              f"{os.cpu_count()} CPUs")
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"{'format':<12} {'ours MB/s':>10} {'CPU s':>6} {'tool':<8} {'tool MB/s':>10} "
              f"{'CPU s':>6} {'ratio':>6}")
        for label, options, command in FORMATS:  # alternate tool and ours; best of each
            tool_s = ours_s = (float("inf"), 0.0)
            for _ in range(args.repeat):
                tool_s = min(tool_s, run_tool(command, inputs, out))
                ours_s = min(ours_s, run_ours(options, paths, out))
            ours_rate, tool_rate = total / MB / ours_s[0], total / MB / tool_s[0]
            shown = " ".join(c for c in command if c not in ("-q", "-r"))
            print(f"{label:<12} {ours_rate:>10.1f} {ours_s[1]:>6.1f} {shown:<8} "
                  f"{tool_rate:>10.1f} {tool_s[1]:>6.1f} {ours_rate / tool_rate:>5.2f}x",
                  flush=True)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
              "(2 cores shared with other work: figures move with the load)")
        shutil.rmtree(inputs)
        big = root / "big.bin"
        with big.open("wb") as f:
            for _ in range(args.big_mb * MB // CHUNK):
                f.write(os.urandom(CHUNK))
        for label, options, _ in (*FORMATS[0:3:2], FORMATS[3]):
            r = measure_rss(big, options)
            print(f"peak RSS packaging {big.stat().st_size / MB:.0f} MB ({label}): "
                  f"{r['peak'] / MB:.1f} MB (interpreter and imports before packaging: "
                  f"{r['before'] / MB:.1f} MB; {big.stat().st_size / MB / r['seconds']:.0f} "
                  f"MB/s)", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
