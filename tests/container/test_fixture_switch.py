"""The broker fixtures use the local services while an engine merely answers; only
DEPOSIT_TEST_CONTAINERS=1 sends them to testcontainers (and turns Ryuk off)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.activemq import ActiveMQ, docker_available
from tests.support.docker import Docker


def test_an_engine_that_answers_does_not_switch_the_fixtures(
        docker: Docker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert docker.answers()
    if docker.host:
        monkeypatch.setenv("DOCKER_HOST", docker.host)
    monkeypatch.delenv("DEPOSIT_TEST_CONTAINERS", raising=False)
    monkeypatch.delenv("TESTCONTAINERS_RYUK_DISABLED", raising=False)
    assert not docker_available()
    assert not ActiveMQ(tmp_path).use_docker
    monkeypatch.setenv("DEPOSIT_TEST_CONTAINERS", "1")
    assert docker_available()
    assert os.environ["TESTCONTAINERS_RYUK_DISABLED"] == "true"
