"""Upload time and peak memory of our SFTP, FTP, SWORDv2, DSpace, InvenioRDM and Zenodo
transports next to the CLI tools.

For one package of about 1 GB (1000 MiB of random bytes, written under ``--workdir`` and
removed at the end), on the same loopback servers in the same run:

* sftp:    ours (SftpTransport) vs ``sftp -b`` and ``scp``, to one OpenSSH sshd
  (tests/support/sshd.py);
* ftp:     ours (FtpTransport) vs ``curl -T``, to one pyftpdlib server
  (tests/support/ftp_server.py);
* swordv2: ours (SwordV2Transport) vs ``curl --data-binary @file`` with the same headers
  (and ``curl -T`` with ``-X POST``, which streams), to the SWORD test server
  (tests/support/sword_server.py, which hashes and discards what it receives);
* dspace / inveniordm / zenodo: ours (the whole deposit: look-ups, item or draft,
  upload, commit, workflow or publish) vs ``curl`` doing only the upload request
  (``-F`` multipart to a DSpace workspace item; ``-T`` PUT of a draft file's content;
  ``-T`` PUT to a Zenodo bucket), to the test servers of tests/support (which write
  what they receive to disk, md5 on the way; the DSpace one holds it in memory).

Every upload runs in a child process of its own; the figures are its wall time and its
peak RSS as GNU ``time -f %M`` reports it (the largest of the process and the children
it waited for, e.g. ``ssh`` under ``sftp``; measured through ``time`` because the
ru_maxrss of a direct child of this process would count this process's own memory,
inherited at fork, before the exec). For ours the time spent inside ``send()`` is shown
too (the rest is the interpreter starting and importing, ~0.2-0.4 s, which a running
worker does not pay), with its ratio. Each upload is checked at the
server (size, and sha256 or MD5 for ours), then removed. Targets: ours at most 1.25x
the tool's time, peak RSS under 100 MB.

Usage (from the repository root)::

    python bench/transfer.py [--size-mb 1000] [--workdir /work]
                             [--only sftp,ftp,swordv2,dspace,inveniordm,zenodo]
                             [--repeat 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deposit_services.assemblers.base import Package
from deposit_services.model.submission import (
    ArticleMetadata,
    DepositSubmission,
    Person,
    PersonType,
)
from deposit_services.transports.base import TransportContext, create_transport

SIMPLE_ZIP = "http://purl.org/net/sword/package/SimpleZip"
TIME_TARGET = 1.25
RSS_TARGET_MB = 100.0
TIME = "/usr/bin/time"  # GNU time (Debian package ``time``)


@dataclass
class Run:
    protocol: str
    client: str
    seconds: float
    rss_mb: float
    send_seconds: float | None = None
    ok: bool = True
    note: str = ""


# -- the child side: one upload with our transport -------------------------------------


def child(spec: dict[str, Any]) -> None:
    """Runs in a fresh interpreter: build the transport, send the package, print JSON."""
    transport = create_transport(spec["binding"], TransportContext(user_agent="bench/1.0"))
    package = Package(**{**spec["package"], "path": Path(spec["package"]["path"])})
    started = time.monotonic()
    receipt = transport.send(package, bench_submission())
    elapsed = time.monotonic() - started
    transport.close()
    print(json.dumps({"send_seconds": elapsed, "access_url": receipt.access_url}))


def bench_submission() -> DepositSubmission:
    """What the REST repositories require (title, date, an author); the file drops
    ignore it."""
    return DepositSubmission(
        id="bench", article=ArticleMetadata(title="Bench", publication_date="2026-01-01",
                                            abstract="A benchmark upload."),
        persons=(Person(PersonType.AUTHOR, first_name="Ada", last_name="Lovelace"),))


RSS_MARK = "bench-peak-rss-kb="


def run_child(command: list[str], stdin: str | None = None) -> tuple[float, float, str, int]:
    """(wall seconds, peak RSS MB, stdout, exit status) of one child process."""
    started = time.monotonic()
    result = subprocess.run([TIME, "-f", RSS_MARK + "%M", *command], input=stdin,
                            capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    rss_kb = 0.0
    other: list[str] = []
    for line in result.stderr.splitlines():
        if line.startswith(RSS_MARK):
            rss_kb = float(line[len(RSS_MARK):])
        else:
            other.append(line)
    out = result.stdout
    if result.returncode != 0:
        out += "\n" + "\n".join(other)
    return elapsed, rss_kb / 1024, out, result.returncode


def ours(protocol: str, binding: dict[str, Any], package: Package) -> Run:
    spec = {"binding": binding, "package": {**asdict(package), "path": str(package.path)}}
    seconds, rss, out, code = run_child(
        [sys.executable, __file__, "--child", json.dumps(spec)])
    if code != 0:
        return Run(protocol, "ours", seconds, rss, ok=False, note=out.strip()[-300:])
    result = json.loads(out.strip().splitlines()[-1])
    return Run(protocol, "ours", seconds, rss, send_seconds=result["send_seconds"])


def tool(protocol: str, name: str, command: list[str], stdin: str | None = None) -> Run:
    seconds, rss, out, code = run_child(command, stdin)
    return Run(protocol, name, seconds, rss, ok=code == 0,
               note="" if code == 0 else out.strip()[-300:])


# -- the package ----------------------------------------------------------------------


def make_package(workdir: Path, size_mb: int) -> Package:
    path = workdir / "bench-package.zip"
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    block = 4 * 1024 * 1024
    with path.open("wb") as out:
        for _ in range(size_mb // 4 or 1):
            data = os.urandom(block)
            out.write(data)
            md5.update(data)
            sha256.update(data)
    return Package(path=path, name=path.name, size=path.stat().st_size, md5=md5.hexdigest(),
                   sha256=sha256.hexdigest(), mime_type="application/zip",
                   specification=SIMPLE_ZIP)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while chunk := src.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(run: Run, path: Path, package: Package, full: bool) -> None:
    """Mark ``run`` failed unless ``path`` holds the package; then remove it."""
    if not path.exists():
        run.ok, run.note = False, f"nothing at {path}"
        return
    size = path.stat().st_size
    if size != package.size:
        run.ok, run.note = False, f"{size} bytes at the server, expected {package.size}"
    elif full and file_sha256(path) != package.sha256:
        run.ok, run.note = False, "sha256 differs at the server"
    else:
        run.note = run.note or ("sha256 verified at the server" if full else "size verified")
    path.unlink()


# -- the three protocols --------------------------------------------------------------


def bench_sftp(workdir: Path, package: Package, repeat: int) -> list[Run]:
    from tests.support.sshd import running_sshd

    runs: list[Run] = []
    with running_sshd(workdir / "sshd") as sshd:
        inbox = workdir / "sftp-inbox"
        inbox.mkdir()
        binding = {
            "protocol": "sftp", "server-fqdn": "127.0.0.1", "server-port": sshd.port,
            "username": sshd.user, "private-key": str(sshd.client_key),
            "known-hosts": str(sshd.known_hosts), "default-directory": str(inbox),
        }
        options = ["-i", str(sshd.client_key), "-o", f"UserKnownHostsFile={sshd.known_hosts}",
                   "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]
        target = inbox / "by-tool.zip"

        def mine() -> Run:
            run = ours("sftp", binding, package)
            check_file(run, inbox / package.name, package, full=run.ok)
            return run

        def sftp_b() -> Run:
            run = tool("sftp", "sftp -b", ["sftp", "-q", "-b", "-", *options, "-P",
                                           str(sshd.port), f"{sshd.user}@127.0.0.1"],
                       stdin=f"put {package.path} {target}\n")
            check_file(run, target, package, full=False)
            return run

        def scp() -> Run:
            run = tool("sftp", "scp", ["scp", "-q", *options, "-P", str(sshd.port),
                                       str(package.path), f"{sshd.user}@127.0.0.1:{target}"])
            check_file(run, target, package, full=False)
            return run

        runs = rounds([mine, sftp_b, scp], repeat)
    return runs


def bench_ftp(workdir: Path, package: Package, repeat: int) -> list[Run]:
    from tests.support.ftp_server import running_ftp_server

    runs: list[Run] = []
    with running_ftp_server(workdir / "ftp") as server:
        binding = {
            "protocol": "ftp", "server-fqdn": "127.0.0.1", "server-port": server.port,
            "username": server.username, "password": server.password,
            "data-type": "binary", "transfer-mode": "stream", "use-pasv": True,
            "default-directory": "/upload",
        }
        url = (f"ftp://{server.username}:{server.password}@127.0.0.1:{server.port}"
               "/upload/by-tool.zip")

        def mine() -> Run:
            run = ours("ftp", binding, package)
            check_file(run, server.root / "upload" / package.name, package, full=run.ok)
            return run

        def curl() -> Run:
            run = tool("ftp", "curl -T", ["curl", "-sS", "--ftp-create-dirs", "-T",
                                          str(package.path), url])
            check_file(run, server.root / "upload" / "by-tool.zip", package, full=False)
            return run

        runs = rounds([mine, curl], repeat)
    return runs


def bench_sword(workdir: Path, package: Package, repeat: int) -> list[Run]:
    from tests.support.sword_server import running_sword_server

    runs: list[Run] = []
    with running_sword_server() as server:
        collection = server.collection_url("default")
        binding = {
            "protocol": "SWORDv2", "username": server.username, "password": server.password,
            "server-fqdn": "127.0.0.1", "server-port": str(server.port),
            "service-doc": server.service_document_url, "default-collection": collection,
            "deposit-receipt": True, "connect-timeout": 10, "read-timeout": 300,
        }

        def check(run: Run, before: set[str], full: bool) -> None:
            new = [d for key, d in server.deposits.items() if key not in before]
            if not new:
                run.ok, run.note = False, run.note or "no deposit at the server"
            elif new[0].size != package.size or (full and new[0].md5 != package.md5):
                run.ok, run.note = False, f"server got {new[0].size} bytes, md5 {new[0].md5}"
            else:
                run.note = run.note or ("MD5 verified at the server" if full else "size verified")

        def mine() -> Run:
            before = set(server.deposits)
            run = ours("swordv2", binding, package)
            check(run, before, full=True)
            return run

        headers = [
            "-H", f"Content-Type: {package.mime_type}",
            "-H", f'Content-Disposition: attachment; filename="{package.name}"',
            "-H", f"Content-MD5: {package.md5}",
            "-H", f"Packaging: {package.specification}",
            "-H", "In-Progress: false",
            "-H", "Slug: bench-by-tool",
            "-H", "Expect:",  # the test server does not send 100-continue
        ]
        base = ["curl", "-sS", "-o", os.devnull, "-w", "%{http_code}", "-u",
                f"{server.username}:{server.password}", *headers]

        def curl(name: str, body: list[str]) -> Callable[[], Run]:
            def job() -> Run:
                before = set(server.deposits)
                run = tool("swordv2", name, [*base, *body, collection])
                check(run, before, full=True)
                return run
            return job

        runs = rounds([
            mine,
            curl("curl --data-binary @file", ["--data-binary", f"@{package.path}"]),
            curl("curl -T -X POST (streamed)", ["-T", str(package.path), "-X", "POST"]),
        ], repeat)
    return runs


def _sized(run: Run, found: list[tuple[int, str]], package: Package, full: bool) -> None:
    """Mark ``run`` failed unless the server holds exactly the package ((size, md5))."""
    if len(found) != 1:
        run.ok, run.note = False, run.note or f"{len(found)} files at the server, expected 1"
    elif found[0][0] != package.size or (full and found[0][1] != package.md5):
        run.ok, run.note = False, f"server got {found[0][0]} bytes, md5 {found[0][1]}"
    else:
        run.note = run.note or ("MD5 verified at the server" if full else "size verified")


def _curl(token_header: str, *args: str) -> list[str]:
    return ["curl", "-sS", "-f", "-o", os.devnull, "-H", token_header, "-H", "Expect:", *args]


def bench_dspace(workdir: Path, package: Package, repeat: int) -> list[Run]:
    import requests

    from tests.support.dspace_server import running_dspace_server

    handle, collection = "123456789/2", "c0ffee00-0000-4000-8000-000000000002"
    with running_dspace_server(collections={handle: collection}) as server:
        binding = {"protocol": "DSpace", "DSPACE_API_URL": server.api_url,
                   "DSPACE_WEBSITE_URL": server.website_url, "DSPACE_USER": server.user,
                   "DSPACE_PASSWORD": server.password, "DSPACE_COLLECTION_HANDLE": handle}

        def check(run: Run, full: bool) -> None:
            found = [(len(f.data), hashlib.md5(f.data, usedforsecurity=False).hexdigest())
                     for item in server.app.items.values() for f in item.files]
            _sized(run, found, package, full)
            for item_uuid in list(server.app.items):
                server.app.delete(item_uuid)

        def mine() -> Run:
            run = ours("DSpace", binding, package)
            check(run, full=run.ok)
            return run

        def curl() -> Run:
            session = requests.Session()
            csrf = session.get(f"{server.api_url}/security/csrf").headers["DSPACE-XSRF-TOKEN"]
            login = session.post(f"{server.api_url}/authn/login",
                                 data={"user": server.user, "password": server.password},
                                 headers={"X-XSRF-TOKEN": csrf,
                                          "Cookie": f"DSPACE-XSRF-COOKIE={csrf}"})
            csrf = login.headers["DSPACE-XSRF-TOKEN"]
            command = _curl(f"Authorization: {login.headers['Authorization']}",
                            "-H", f"X-XSRF-TOKEN: {csrf}",
                            "-H", f"Cookie: DSPACE-XSRF-COOKIE={csrf}",
                            "-F", f"file=@{package.path};type=application/zip",
                            f"{server.api_url}/submission/workspaceitems"
                            f"?owningCollection={collection}")
            run = tool("DSpace", "curl -F (multipart)", command)
            check(run, full=False)
            return run

        return rounds([mine, curl], repeat)


def bench_invenio(workdir: Path, package: Package, repeat: int) -> list[Run]:
    import requests

    from tests.support.invenio_server import running_invenio_server

    store = workdir / "invenio-store"
    store.mkdir()
    with running_invenio_server(directory=store) as server:
        binding = {"protocol": "invenioRdm", "INVENIORDM_API_BASE_URL": server.api_url,
                   "INVENIORDM_API_TOKEN": server.token}
        auth = f"Authorization: Bearer {server.token}"

        def check(run: Run, full: bool) -> None:
            found = [(f.size, f.md5 or "") for r in server.app.records.values()
                     for f in r.files.values() if f.path]
            _sized(run, found, package, full)
            for record in server.app.records.values():
                for f in record.files.values():
                    if f.path:
                        f.path.unlink(missing_ok=True)
            server.app.records.clear()

        def mine() -> Run:
            run = ours("invenioRdm", binding, package)
            check(run, full=run.ok)
            return run

        def curl() -> Run:  # the draft and the file's init made first, as our run makes them
            headers = {"Authorization": f"Bearer {server.token}"}
            body = {"metadata": {"title": "by curl"}, "files": {"enabled": True}}
            draft = requests.post(f"{server.api_url}/records", json=body, headers=headers,
                                  timeout=30).json()
            files = f"{server.api_url}/records/{draft['id']}/draft/files"
            requests.post(files, json=[{"key": "by-tool.bin"}], headers=headers, timeout=30)
            run = tool("invenioRdm", "curl -T (PUT content)", _curl(
                auth, "-H", "Content-Type: application/octet-stream", "-T", str(package.path),
                f"{files}/by-tool.bin/content"))
            check(run, full=False)
            return run

        return rounds([mine, curl], repeat)


def bench_zenodo(workdir: Path, package: Package, repeat: int) -> list[Run]:
    import requests

    from tests.support.zenodo_server import running_zenodo_server

    store = workdir / "zenodo-store"
    store.mkdir()
    with running_zenodo_server(store) as server:
        binding = {"protocol": "zenodo", "api-url": server.api_url,
                   "access-token": server.token}
        auth = f"Authorization: Bearer {server.token}"

        def check(run: Run, full: bool) -> None:
            found = [(f.size, f.md5 or "") for d in server.app.depositions.values()
                     for f in d.files.values()]
            _sized(run, found, package, full)
            for d in server.app.depositions.values():
                for f in d.files.values():
                    if f.path:
                        f.path.unlink(missing_ok=True)
            server.app.depositions.clear()

        def mine() -> Run:
            run = ours("zenodo", binding, package)
            check(run, full=run.ok)
            return run

        def curl() -> Run:  # the deposition made first, as our run makes it
            made = requests.post(f"{server.api_url}/deposit/depositions", json={},
                                 headers={"Authorization": f"Bearer {server.token}"},
                                 timeout=30).json()
            run = tool("zenodo", "curl -T (PUT to bucket)", _curl(
                auth, "-T", str(package.path), f"{made['links']['bucket']}/by-tool.bin"))
            check(run, full=False)
            return run

        return rounds([mine, curl], repeat)


def rounds(jobs: list[Callable[[], Run]], repeat: int) -> list[Run]:
    """Each job ``repeat`` times, the order reversed every other round (so that no client
    always goes first); dirty pages flushed before each. One Run per client: its best
    time, its largest peak RSS, failed if any attempt failed."""
    done: dict[str, list[Run]] = {}
    for round_number in range(repeat):
        for job in jobs if round_number % 2 == 0 else list(reversed(jobs)):
            os.sync()
            run = job()
            done.setdefault(run.client, []).append(run)
    best: list[Run] = []
    for attempts in done.values():
        failed = [r for r in attempts if not r.ok]
        pick = failed[0] if failed else min(attempts, key=lambda r: r.seconds)
        pick.rss_mb = max(r.rss_mb for r in attempts)
        if len(attempts) > 1 and not failed:
            pick.note += " (best of " + ", ".join(f"{r.seconds:.2f}" for r in attempts) + " s)"
        best.append(pick)
    return best


BENCHES: dict[str, Callable[[Path, Package, int], list[Run]]] = {
    "sftp": bench_sftp, "ftp": bench_ftp, "swordv2": bench_sword,
    "dspace": bench_dspace, "inveniordm": bench_invenio, "zenodo": bench_zenodo,
}


def report(runs: list[Run], size: int) -> None:
    print(f"\npackage: {size / 1e6:.0f} MB ({size} bytes)")
    print(f"{'protocol':9} {'client':28} {'seconds':>8} {'MB/s':>7} {'peak RSS MB':>12} "
          f"{'send() s':>9}  check")
    for run in runs:
        send = f"{run.send_seconds:9.2f}" if run.send_seconds is not None else " " * 9
        status = run.note if run.ok else f"FAILED: {run.note}"
        print(f"{run.protocol:9} {run.client:28} {run.seconds:8.2f} {size / run.seconds / 1e6:7.0f}"
              f" {run.rss_mb:12.1f} {send}  {status}")
    print()
    for protocol in dict.fromkeys(r.protocol for r in runs):
        mine = next((r for r in runs if r.protocol == protocol and r.client == "ours"), None)
        others = [r for r in runs if r.protocol == protocol and r.client != "ours" and r.ok]
        if mine is None or not mine.ok or not others:
            print(f"{protocol}: no comparison (a run failed)")
            continue
        for other in others:
            ratio = mine.seconds / other.seconds
            in_send = (mine.send_seconds or mine.seconds) / other.seconds
            print(f"{protocol}: ours / {other.client}: {ratio:.2f}x time "
                  f"({'meets' if ratio <= TIME_TARGET else 'MISSES'} <= {TIME_TARGET}x; "
                  f"send() alone {in_send:.2f}x); ours peak RSS {mine.rss_mb:.0f} MB "
                  f"({'meets' if mine.rss_mb < RSS_TARGET_MB else 'MISSES'} < "
                  f"{RSS_TARGET_MB:.0f} MB), {other.client} {other.rss_mb:.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # 1000 MiB: curl --data-binary @file reads the file into memory and refuses more than
    # 1 GiB ("out of memory"), so a package of exactly 1 GiB would leave it out
    parser.add_argument("--size-mb", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, default=Path(__file__).resolve().parents[2])
    parser.add_argument("--only", default="sftp,ftp,swordv2,dspace,inveniordm,zenodo")
    parser.add_argument("--repeat", type=int, default=2,
                        help="uploads per client, alternating the order (best time shown)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return 0
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    for needed in ("sftp", "scp", "curl", TIME):
        if shutil.which(needed) is None:
            print(f"{needed} is required (apt-get install -y openssh-client curl time)")
            return 2
    workdir = Path(tempfile.mkdtemp(prefix="bench-transfer-", dir=args.workdir))
    workdir.chmod(0o755)
    try:
        started = time.monotonic()
        package = make_package(workdir, args.size_mb)
        print(f"built {package.size} bytes in {time.monotonic() - started:.1f}s under {workdir}")
        runs: list[Run] = []
        for name in [n.strip() for n in args.only.split(",") if n.strip()]:
            print(f"running {name} ...", flush=True)
            runs += BENCHES[name](workdir, package, args.repeat)
        report(runs, package.size)
        return 0 if all(r.ok for r in runs) else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
