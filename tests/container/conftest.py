"""The container tests' engine and images: built once per session (see tests/support/docker.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.docker import Docker, build_worker_image, engine, ensure_base_image


@pytest.fixture(scope="session")
def docker() -> Iterator[Docker]:
    try:
        with engine() as found:
            yield found
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def worker_image(docker: Docker) -> str:
    """``docker/Dockerfile`` built from this tree on the debootstrap'd base, offline."""
    try:
        return build_worker_image(docker, ensure_base_image(docker))
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
