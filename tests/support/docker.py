"""A Docker engine, a base image and the worker image, for the container tests.

No image registry can be reached here, so everything is built from Debian's packages:

- the engine: an engine that already answers (``DOCKER_HOST`` or the default socket) is
  reused; otherwise Debian's ``dockerd`` (package ``docker.io``) is started in the
  background with its own data-root, exec-root, pidfile and socket, and stopped at the end;
- the base image ``deposit-base:bookworm``: ``debootstrap --variant=minbase bookworm``
  with python3 from Debian, imported with ``docker import``; built once and kept in the
  engine's data-root (skipped when the image exists);
- the worker image: ``docker/Dockerfile`` with ``BASE_IMAGE`` set to that base, and the
  project installed from a wheelhouse built here on the host (``pip wheel``), so the
  build needs no network at all (as an air-gapped site builds).

A missing tool or an engine that does not start FAILS the caller: never a skip.
``python -m tests.support.docker`` builds the base and the worker image ahead of a run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "deposit-base:bookworm"
WORKER_IMAGE = "deposit-services:test"
DATA_ROOT = Path(os.environ.get("DEPOSIT_TEST_DOCKER_ROOT", "/var/lib/deposit-test-docker"))
EXEC_ROOT = Path("/run/deposit-test-docker")  # short: unix socket paths are limited
SOCKET = EXEC_ROOT / "docker.sock"
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
INSTALL_HINT = "apt-get install -y docker.io debootstrap docker-compose"
START_TIMEOUT = 60.0


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (a proxy or mirror URL where there is one)."""
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = line.split()
            if line.startswith("URIs:") and len(words) > 1 and words[1].rstrip("/").endswith(
                    "/debian"):
                return words[1]
            if line.startswith("deb ") and len(words) > 1 and words[1].rstrip("/").endswith(
                    "/debian"):
                return words[1]
    return "http://deb.debian.org/debian"


class Docker:
    """The ``docker`` CLI against one engine; ``run`` raises with the output on failure."""

    def __init__(self, host: str | None) -> None:
        self.env = dict(os.environ)
        if host:
            self.env["DOCKER_HOST"] = host
        self.host = host

    def run(self, *args: str, check: bool = True, timeout: float = 600,
            input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["docker", *args], env=self.env, capture_output=True,
                              timeout=timeout, input=input.decode() if input else None,
                              text=True)
        if check and proc.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} exited {proc.returncode}:\n"
                               f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def answers(self) -> bool:
        try:
            return self.run("version", "--format", "{{.Server.Version}}", check=False,
                            timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def image_exists(self, name: str) -> bool:
        return self.run("image", "inspect", name, check=False).returncode == 0

    def state(self, container: str) -> dict[str, object]:
        out = self.run("inspect", "--format", "{{json .State}}", container).stdout
        state: dict[str, object] = json.loads(out)
        return state


@contextlib.contextmanager
def engine() -> Iterator[Docker]:
    """An engine that answers: the one already running, else a dockerd of our own."""
    if shutil.which("docker") is None or shutil.which("dockerd") is None:
        raise RuntimeError(f"the container tests need Docker (install it: `{INSTALL_HINT}`)")
    existing = Docker(os.environ.get("DOCKER_HOST"))
    if existing.answers():
        yield existing
        return
    ours = Docker(f"unix://{SOCKET}")
    if ours.answers():  # left running by an earlier session
        yield ours
        return
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    EXEC_ROOT.mkdir(parents=True, exist_ok=True)
    log = (DATA_ROOT / "dockerd.log").open("ab")
    proc = subprocess.Popen(
        ["dockerd", "--data-root", str(DATA_ROOT / "data"), "--exec-root", str(EXEC_ROOT),
         "--pidfile", str(EXEC_ROOT / "dockerd.pid"), "-H", f"unix://{SOCKET}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ours.answers():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (DATA_ROOT / "dockerd.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"dockerd did not start (exit {proc.poll()}):\n{tail}")
            time.sleep(0.3)
        yield ours
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def ensure_base_image(docker: Docker) -> str:
    """``deposit-base:bookworm`` from debootstrap (minbase + python3), built once."""
    if docker.image_exists(BASE_IMAGE):
        return BASE_IMAGE
    if shutil.which("debootstrap") is None:
        raise RuntimeError(f"building the base image needs debootstrap (`{INSTALL_HINT}`)")
    with tempfile.TemporaryDirectory(prefix="debootstrap-", dir=DATA_ROOT) as tmp:
        target = Path(tmp) / "rootfs"
        proc = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm",
             str(target), debian_mirror()],
            capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"debootstrap failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        tar = subprocess.Popen(["tar", "-C", str(target), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(["docker", "import", "-", BASE_IMAGE], stdin=tar.stdout,
                                  env=docker.env, capture_output=True, text=True, timeout=600)
        assert tar.stdout is not None
        tar.stdout.close()
        tar.wait()
        if imported.returncode != 0:
            raise RuntimeError(f"docker import failed: {imported.stderr[-2000:]}")
    return BASE_IMAGE


def build_context(dest: Path) -> Path:
    """The project's sources and a wheelhouse of it and its dependencies, for an offline build."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("deposit_services", "config", "docker"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore, dirs_exist_ok=True)
    wheels = dest / "docker" / "wheelhouse"
    wheels.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    for args in (["wheel", "--wheel-dir", str(wheels), str(dest)],
                 ["wheel", "--wheel-dir", str(wheels), "setuptools>=68", "wheel"]):
        proc = subprocess.run([*pip, *args], capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"pip {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    shutil.rmtree(dest / "build", ignore_errors=True)
    return dest


def build_worker_image(docker: Docker, base: str, tag: str = WORKER_IMAGE) -> str:
    """``docker/Dockerfile`` on ``base``, installed from the wheelhouse, no network."""
    with tempfile.TemporaryDirectory(prefix="deposit-image-") as tmp:
        ctx = build_context(Path(tmp))
        env = dict(docker.env, DOCKER_BUILDKIT="0")
        proc = subprocess.run(
            ["docker", "build", "--network", "none", "-f", str(ctx / "docker" / "Dockerfile"),
             "--build-arg", f"BASE_IMAGE={base}", "--build-arg", "PIP_OFFLINE=--no-index",
             "-t", tag, str(ctx)],
            env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(
                f"docker build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-3000:]}")
    return tag


if __name__ == "__main__":
    with engine() as d:
        print(build_worker_image(d, ensure_base_image(d)))
        if d.host == f"unix://{SOCKET}":
            print(f"engine at {d.host}")
