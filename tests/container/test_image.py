"""The worker image built from docker/Dockerfile, run as an operator would run it.

The README's tour inside one container (embedded: SQLite in the image's data volume,
the local queue): ``submit`` and ``status`` through ``docker exec`` against the running
``listen``; the process is not root and owns its volume; repositories.json is mounted;
logs are JSON lines on stdout; the health check is ``config check`` and passes;
``docker stop`` (SIGTERM) ends it with exit 0. The data volume is a named one, as in
compose.yaml (a fresh named volume takes the image directory's owner). ``compose.yaml``
is validated with
Debian's docker-compose.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker import ROOT, Docker

DATA = "/var/lib/deposit-services"


@pytest.fixture
def container(docker: Docker, worker_image: str, tmp_path: Path) -> Iterator[str]:
    config = tmp_path / "config"
    config.mkdir(mode=0o755)
    shutil.copy(ROOT / "config" / "repositories.json", config / "repositories.json")
    shutil.copytree(ROOT / "examples", config / "examples")  # the graph and its files
    for path in (tmp_path, config, *config.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    name = f"deposit-tour-{uuid.uuid4().hex[:8]}"
    docker.run("run", "-d", "--name", name, "--network", "none", "--health-interval", "2s",
               "-v", f"{name}-data:{DATA}",  # a named volume, as compose.yaml mounts one
               "-v", f"{config}:/config:ro",
               "-e", "PASS_DEPOSIT_REPOSITORY_CONFIGURATION=/config/repositories.json",
               "-e", "DEPOSIT_LOG_FORMAT=json", worker_image)
    try:
        yield name
    finally:
        docker.run("rm", "-f", "-v", name, check=False)
        docker.run("volume", "rm", f"{name}-data", check=False)


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def health_status(docker: Docker, name: str) -> str:
    return docker.run("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()


def status(docker: Docker, name: str) -> list[dict[str, Any]]:
    out = docker.run("exec", name, "deposit-services", "status", "--json").stdout
    data: list[dict[str, Any]] = json.loads(out)
    return data


def test_readme_tour_in_the_container_and_docker_stop_exits_0(
        docker: Docker, container: str) -> None:
    name = container
    assert docker.run("exec", name, "id", "-u").stdout.strip() == "10001"
    assert docker.run("exec", name, "stat", "-c", "%U", DATA).stdout.strip() == "deposit"
    health = json.loads(docker.run("inspect", "--format", "{{json .Config.Healthcheck}}",
                                   name).stdout)
    assert health["Test"][-2:] == ["config", "check"]
    check = docker.run("exec", name, "deposit-services", "config", "check")
    assert "example-archive" in check.stdout + check.stderr
    wait_for(lambda: health_status(docker, name) == "healthy", 60, "the health check to pass")

    out = docker.run("exec", name, "deposit-services", "submit",
                     "/config/examples/submission.json")
    assert "example-1" in out.stdout

    def accepted() -> bool:
        rows = status(docker, name)
        return bool(rows) and rows[0].get("aggregatedDepositStatus") == "ACCEPTED"

    wait_for(accepted, 60, "the example submission ACCEPTED")
    [row] = status(docker, name)
    deposits = row["deposits"]
    assert [d["depositStatus"] for d in deposits] == ["ACCEPTED"]
    table = docker.run("exec", name, "deposit-services", "status").stdout
    assert "example-1" in table
    packages = docker.run("exec", name, "find", f"{DATA}/deposits", "-type", "f").stdout
    assert packages.count(".zip") == 1

    docker.run("stop", "-t", "60", name, timeout=120)
    state = docker.state(name)
    assert state["ExitCode"] == 0, state
    logs = docker.run("logs", name)
    lines = [json.loads(line) for line in logs.stdout.splitlines() + logs.stderr.splitlines()
             if line.startswith("{")]
    assert any(line.get("submission") == "example-1" for line in lines)
    assert lines[-1]["logger"] in ("deposit_services.entrypoints.jobs",
                                   "deposit_services.entrypoints.worker"), lines[-1]
    assert any("SIGTERM" in line["message"] for line in lines)


def test_compose_file_is_valid_and_keeps_the_production_shape() -> None:
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is missing (apt-get install -y docker-compose)"
    proc = subprocess.run([compose, "-f", str(ROOT / "docker" / "compose.yaml"), "config"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    import yaml  # docker-compose's own dependency (python3-yaml)

    config = yaml.safe_load(proc.stdout)
    assert set(config["services"]) >= {"worker", "postgres", "activemq"}
    worker = config["services"]["worker"]
    assert worker["environment"]["DEPOSIT_STORE_URL"].startswith("postgresql://")
    assert worker["environment"]["DEPOSIT_BROKER_URL"].startswith("stomp://")
    assert any(str(v).endswith(DATA) or DATA in str(v) for v in worker["volumes"])
