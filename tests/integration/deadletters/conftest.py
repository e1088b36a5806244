"""One dead-letter test body on every broker the suite runs: the local queue on SQLite
and PostgreSQL, ActiveMQ and RabbitMQ over STOMP, SQS on moto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.sqs.conftest import SqsKit, aws_test_env, moto
from tests.integration.stomp.conftest import _kit, activemq, rabbitmq_url

__all__ = ["activemq", "aws_test_env", "moto", "rabbitmq_url"]


@pytest.fixture(params=["local-sqlite", pytest.param("local-postgresql",
                                                     marks=pytest.mark.postgres),
                        "activemq", "rabbitmq", "sqs"])
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    made: Any
    if request.param == "sqs":
        made = SqsKit(request.getfixturevalue("moto"))
    elif request.param == "local-postgresql":
        made = _kit("local", request, tmp_path)
        made.url = request.getfixturevalue("fresh_postgres_url")
    else:
        made = _kit(request.param.removeprefix("local-sqlite") or "local", request, tmp_path)
    yield made
    made.close()
