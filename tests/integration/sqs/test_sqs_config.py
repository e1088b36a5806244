"""The SQS adapter's set-up and failures: URL forms, region, queues resolved at
start-up (missing ones, dead-letter queue names, a RedrivePolicy), and SQS's error
answers mapped to our errors (an SQS that is down, throttles, or refuses access)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deposit_services.bootstrap import build_broker
from deposit_services.errors import (
    BrokerUnavailable,
    ConfigurationError,
    MessagingError,
    Transient,
)
from deposit_services.messaging.base import broker_class
from deposit_services.messaging.sqs import SqsBroker
from deposit_services.messaging.sqs_client import SqsEndpoint
from deposit_services.settings import Settings, load_settings
from tests.integration.sqs.conftest import SqsKit
from tests.support.moto_server import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, MotoServer

# URL forms ---------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "endpoint"), [
    ("sqs://", SqsEndpoint(None, None)),
    ("sqs://?region=eu-west-1", SqsEndpoint(None, "eu-west-1")),
    ("sqs+https://localstack:4566?region=us-east-2&create=true",
     SqsEndpoint("https://localstack:4566", "us-east-2", create=True)),
    ("sqs+http://127.0.0.1:9324?dlq=ops-dead-letters",
     SqsEndpoint("http://127.0.0.1:9324", None, dead_letter_queue="ops-dead-letters")),
    ("SQS+HTTP://elasticmq:9324/", SqsEndpoint("http://elasticmq:9324", None)),
])
def test_url_forms(url: str, endpoint: SqsEndpoint) -> None:
    assert SqsEndpoint.parse(url) == endpoint
    assert broker_class(url) is SqsBroker


@pytest.mark.parametrize(("url", "problem"), [
    ("sqs://sqs.us-east-1.amazonaws.com", "takes no host"),
    ("sqs+http://?region=x", "needs a host"),
    ("sqs://?regoin=eu-west-1", "unknown parameter 'regoin'"),
    ("sqs://?create=maybe", "not true or false"),
    (f"sqs+http://{DUMMY_ACCESS_KEY}:{DUMMY_SECRET_KEY}@127.0.0.1:9324",
     "credentials do not belong in the URL"),
])
def test_bad_urls_say_what_is_wrong(url: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem) as caught:
        SqsEndpoint.parse(url)
    assert DUMMY_SECRET_KEY not in str(caught.value)


def test_region_from_the_url_then_boto3_then_aws_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No network at construction without queues: only the client is made."""
    with pytest.raises(ConfigurationError, match="no AWS region"):
        SqsBroker("sqs://", environ={})
    broker = SqsBroker("sqs://", environ={"AWS_REGION": "eu-central-1"})  # PASS's name
    assert broker.region == "eu-central-1"
    assert "sqs.eu-central-1.amazonaws.com" in broker._client.meta.endpoint_url
    broker.close()
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")  # boto3's own
    broker = SqsBroker("sqs://", environ={"AWS_REGION": "eu-central-1"})
    assert broker.region == "ap-southeast-2"
    broker.close()
    broker = SqsBroker("sqs://?region=us-west-2", environ={"AWS_REGION": "eu-central-1"})
    assert broker.region == "us-west-2"
    broker.close()
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    broker = SqsBroker("sqs+http://127.0.0.1:1", environ={})  # a fake: any region
    assert (broker.region, broker._client.meta.endpoint_url) == ("us-east-1",
                                                                 "http://127.0.0.1:1")
    broker.close()


# Queues at start-up ------------------------------------------------------------------


def _settings(tmp_path: Path, url: str, submission: str, deposit: str) -> Settings:
    return load_settings({
        "DEPOSIT_DATA_DIR": str(tmp_path),
        "DEPOSIT_BROKER_URL": url,
        "PASS_DEPOSIT_QUEUE_SUBMISSION_NAME": submission,
        "PASS_DEPOSIT_QUEUE_DEPOSIT_NAME": deposit,
        "DEPOSIT_MAX_DELIVERIES": "4",
        "DEPOSIT_LEASE_SECONDS": "90",
    })


def test_a_missing_queue_stops_start_up(sqs_kit: SqsKit, moto: MotoServer,
                                        tmp_path: Path) -> None:
    submission, deposit = sqs_kit.queue("submission"), sqs_kit.queue("deposit")
    url = moto.broker_url(create=False)
    settings = load_settings({"DEPOSIT_DATA_DIR": str(tmp_path), "DEPOSIT_BROKER_URL": url,
                              "PASS_CORE_SUBMISSION_QUEUE": submission,
                              "PASS_CORE_DEPOSIT_QUEUE": deposit})
    with pytest.raises(ConfigurationError, match=f"'{submission}' does not exist") as caught:
        build_broker(settings)
    assert "PASS_DEPOSIT_QUEUE_SUBMISSION_NAME" in str(caught.value)
    client = sqs_kit.client()
    for name in (submission, deposit):
        client.create_queue(QueueName=name)
    with pytest.raises(ConfigurationError, match=f"dead-letter queue .*'{submission}-dlq'"):
        build_broker(settings)
    for name in (submission, deposit):
        client.create_queue(QueueName=f"{name}-dlq")
    broker = build_broker(settings)
    assert isinstance(broker, SqsBroker)
    assert (broker.max_deliveries, broker.visibility) == (settings.max_deliveries,
                                                          int(settings.lease_seconds))
    assert broker.queues.dead_letter_queue_for(deposit) == f"{deposit}-dlq"
    broker.close()


def test_create_true_makes_the_queues(sqs_kit: SqsKit, tmp_path: Path) -> None:
    submission, deposit = sqs_kit.queue("submission"), sqs_kit.queue("deposit")
    settings = _settings(tmp_path, sqs_kit.url, submission, deposit)
    broker = build_broker(settings)
    urls = sqs_kit.client().list_queues(QueueNamePrefix="test-")["QueueUrls"]
    for name in (submission, deposit, f"{submission}-dlq", f"{deposit}-dlq"):
        assert any(url.endswith("/" + name) for url in urls), name
    broker.close()


def test_the_queues_redrive_policy_names_the_dead_letter_queue(
    sqs_kit: SqsKit, moto: MotoServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A queue the operator gave a RedrivePolicy dead-letters where SQS would; a
    maxReceiveCount that lets SQS act before us is reported at start-up."""
    queue, target = sqs_kit.queue("source"), sqs_kit.queue("ops-dead")
    client = sqs_kit.client()
    target_url = client.create_queue(QueueName=target)["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=target_url,
                                      AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})
    client.create_queue(QueueName=queue, Attributes={"RedrivePolicy": policy})
    with caplog.at_level(logging.WARNING, logger="deposit_services.messaging.sqs"):
        broker = SqsBroker(moto.broker_url(create=False), queues=[queue], max_deliveries=5)
    assert "after 3 receives" in caplog.text and "DEPOSIT_MAX_DELIVERIES=5" in caplog.text
    assert broker.queues.dead_letter_queue_for(queue) == target
    broker.publish(queue, "m", {"type": "SubmissionReady"})
    delivery = broker.receive([queue], timeout=5)
    assert delivery is not None
    broker.dead_letter(delivery, "unknown id: m")
    [letter] = sqs_kit.dead_letters(broker, queue, expected=1)
    assert (letter.queue, letter.reason) == (queue, "unknown id: m")
    broker.close()


def test_one_dead_letter_queue_for_every_queue(sqs_kit: SqsKit, moto: MotoServer) -> None:
    first, second, shared = sqs_kit.queue("a"), sqs_kit.queue("b"), sqs_kit.queue("dead")
    broker = SqsBroker(moto.broker_url(create=True, dlq=shared), queues=[first, second])
    queues = broker.queues
    assert queues.dead_letter_queue_for(first) == queues.dead_letter_queue_for(second) == shared
    for queue in (first, second):
        broker.publish(queue, f"from {queue}")
        delivery = broker.receive([queue], timeout=5)
        assert delivery is not None
        broker.dead_letter(delivery, "malformed")
    letters = {letter.queue: letter.body for letter in broker.dead_letters()}
    assert letters == {first: f"from {first}", second: f"from {second}"}
    templated = SqsBroker(moto.broker_url(create=True, dlq="{queue}_dead"), queues=[first])
    assert templated.queues.dead_letter_queue_for(first) == f"{first}_dead"
    broker.close()
    templated.close()


# SQS unreachable or refusing ----------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_sqs_is_transient(caplog: pytest.LogCaptureFixture) -> None:
    """Start-up does not fail on it (the queues are looked up on first use); publish
    and receive raise BrokerUnavailable, which the worker retries."""
    url = f"sqs+http://127.0.0.1:{_closed_port()}?region=us-east-1"
    with caplog.at_level(logging.WARNING, logger="deposit_services.messaging.sqs"):
        broker = SqsBroker(url, queues=["submission"])
    assert "cannot be reached" in caplog.text
    with pytest.raises(BrokerUnavailable, match="Could not connect") as caught:
        broker.receive(["submission"], timeout=1)
    assert isinstance(caught.value, Transient)
    with pytest.raises(BrokerUnavailable):
        broker.publish("submission", "m")
    broker.close()


class _ErrorAnswers(BaseHTTPRequestHandler):
    """Answers every SQS call with the error the test chose, as SQS's JSON protocol
    does (``__type`` and the query-compatible ``x-amzn-query-error`` header)."""

    answer: tuple[int, str] = (500, "InternalError")
    seen: list[dict[str, str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).seen.append(dict(self.headers))
        status, code = self.answer
        body = json.dumps({"__type": f"com.amazonaws.sqs#{code}",
                           "message": f"{code} (test answer)"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-query-error", f"{code};Sender")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def error_server() -> Iterator[tuple[str, type[_ErrorAnswers]]]:
    handler = type("Answers", (_ErrorAnswers,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"sqs+http://127.0.0.1:{server.server_address[1]}?region=us-east-1", handler
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.mark.parametrize(("status", "code", "error"), [
    (503, "ServiceUnavailable", BrokerUnavailable),
    (500, "InternalError", BrokerUnavailable),
    (400, "ThrottlingException", BrokerUnavailable),
    (400, "AWS.SimpleQueueService.RequestThrottled", BrokerUnavailable),
    (403, "AccessDenied", ConfigurationError),
    (403, "InvalidClientTokenId", ConfigurationError),
    (400, "SignatureDoesNotMatch", ConfigurationError),
    (400, "AWS.SimpleQueueService.NonExistentQueue", ConfigurationError),
    (400, "InvalidParameterValue", MessagingError),
])
def test_sqs_error_answers(error_server: tuple[str, type[_ErrorAnswers]], status: int,
                           code: str, error: type[Exception],
                           caplog: pytest.LogCaptureFixture) -> None:
    url, handler = error_server
    handler.answer = (status, code)
    caplog.set_level(logging.DEBUG, logger="deposit_services")
    started = time.monotonic()
    with pytest.raises(error) as caught:
        SqsBroker(url, queues=["submission"])  # start-up: the queue is looked up
        broker = SqsBroker(url)  # (transient ones only get here)
        try:
            broker.publish("submission", "m")
        finally:
            broker.close()
    assert time.monotonic() - started < 30
    assert isinstance(caught.value, Transient) == (error is BrokerUnavailable)
    if error is MessagingError:
        assert not isinstance(caught.value, ConfigurationError | BrokerUnavailable)
    message = str(caught.value)
    assert "submission" in message or "credentials" in message
    if code in ("AccessDenied", "InvalidClientTokenId"):
        assert "check the AWS credentials" in message
    assert handler.seen and "Authorization" in handler.seen[0]  # the requests were signed
    for text in (message, caplog.text):  # ... and nothing secret reached our messages
        assert DUMMY_SECRET_KEY not in text
        assert "Signature=" not in text and "X-Amz-Signature" not in text
