"""The SQS adapter's plumbing: its URL, its boto3 client, its errors, its attributes.

Kept apart from sqs.py (the ``Broker`` itself) so that each stays short: nothing here
knows about deliveries, only how to reach SQS and how to read what it answers.

URL forms (``DEPOSIT_BROKER_URL``)::

    sqs://?region=us-east-1            Amazon SQS (region: ?region=, else AWS_DEFAULT_REGION
                                       or the AWS config file, else AWS_REGION)
    sqs+https://host:4566?region=...   an endpoint override (LocalStack, ElasticMQ, moto)
    sqs+http://127.0.0.1:5000          (plain HTTP: local fakes only)

Query parameters: ``region``; ``create=true`` (create missing queues: tests and local
fakes, never production); ``dlq=NAME`` (the dead-letter queue, ``{queue}`` replaced by
the source queue's name; default: the queue's own RedrivePolicy target, else
``{queue}-dlq``). Credentials never go in the URL: boto3's usual chain finds them
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, an instance or task role).
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from deposit_services.errors import BrokerUnavailable, ConfigurationError, MessagingError
from deposit_services.messaging.base import DeadLetter

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueOutputTypeDef,
        MessageAttributeValueTypeDef,
        MessageTypeDef,
    )

log = logging.getLogger(__name__)

# Long polling: SQS waits at most 20 s in one ReceiveMessage.
MAX_WAIT_S = 20
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = MAX_WAIT_S + 15.0  # must outlast the longest long poll
RETRY_ATTEMPTS = 3  # botocore's standard mode: throttling and 5xx retried with backoff
FAKE_REGION = "us-east-1"  # an endpoint override with no region (moto, ElasticMQ accept any)
DEFAULT_DEAD_LETTER_QUEUE = "{queue}-dlq"
MAX_ATTRIBUTES = 10  # SQS's limit of message attributes per message
_PARAMETERS = ("region", "create", "dlq")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
# SQS message attribute names: letters, digits, _ - . ; no "AWS."/"Amazon." prefix, no "..".
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_\-]([A-Za-z0-9_\-.]{0,254}[A-Za-z0-9_\-])?$")

_MISSING_QUEUE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
_RECEIPT_INVALID = frozenset({"ReceiptHandleIsInvalid", "InvalidReceiptHandle",
                              "AWS.SimpleQueueService.MessageNotInflight", "MessageNotInflight"})
_ACCESS = frozenset({
    "AccessDenied", "AccessDeniedException", "InvalidClientTokenId", "SignatureDoesNotMatch",
    "UnrecognizedClientException", "InvalidSecurity", "ExpiredToken", "ExpiredTokenException",
    "IncompleteSignature", "MissingAuthenticationToken", "KMS.AccessDeniedException",
    "KmsAccessDenied", "KMS.DisabledException", "KmsDisabled",
})
_TRANSIENT = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestThrottledException", "AWS.SimpleQueueService.RequestThrottled",
    "RequestLimitExceeded", "TooManyRequestsException", "SlowDown", "ServiceUnavailable",
    "InternalError", "InternalFailure", "RequestTimeout", "RequestTimeoutException",
    "PriorRequestNotComplete", "KmsThrottled", "KMS.ThrottlingException",
})


class MissingQueue(ConfigurationError):
    """The named queue does not exist (created on ``?create=true``, else a start-up error)."""


class LeaseLost(MessagingError):
    """The receipt handle no longer holds the message: deleted, or received again since."""


@dataclass(frozen=True)
class SqsEndpoint:
    """Where SQS is, parsed from the broker URL (which holds no credentials)."""

    endpoint_url: str | None  # None: Amazon SQS itself
    region: str | None
    create: bool = False
    dead_letter_queue: str | None = None  # a name, "{queue}" replaced; None: see above

    @classmethod
    def parse(cls, url: str) -> SqsEndpoint:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        shown = _shown(url)
        if scheme not in ("sqs", "sqs+http", "sqs+https"):
            raise ConfigurationError(f"DEPOSIT_BROKER_URL={shown!r} is not an SQS URL "
                                     "(sqs://, sqs+http://host:port or sqs+https://host:port)")
        if parts.username is not None or parts.password is not None:
            raise ConfigurationError(
                f"DEPOSIT_BROKER_URL={shown!r}: AWS credentials do not belong in the URL; set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or use a role)")
        problems: list[str] = []
        query: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key not in _PARAMETERS:
                problems.append(f"unknown parameter {key!r} (known: {', '.join(_PARAMETERS)})")
            query[key] = value
        create = _flag(query.get("create", "false"), "create", problems)
        endpoint_url: str | None = None
        if scheme == "sqs":
            if parts.netloc:
                problems.append("sqs:// takes no host (Amazon SQS is found from the region); "
                                "use sqs+https://host:port for another endpoint")
        elif not parts.hostname:
            problems.append(f"{scheme}:// needs a host (and port)")
        else:
            endpoint_url = f"{scheme.removeprefix('sqs+')}://{parts.netloc}{parts.path.rstrip('/')}"
        dead_letter_queue = query.get("dlq") or None
        if problems:
            raise ConfigurationError(f"DEPOSIT_BROKER_URL={shown!r}: " + "; ".join(problems),
                                     [f"DEPOSIT_BROKER_URL: {p}" for p in problems])
        return cls(endpoint_url, query.get("region") or None, create, dead_letter_queue)

    def __str__(self) -> str:
        return f"SQS at {self.endpoint_url}" if self.endpoint_url else "Amazon SQS"


def _shown(url: str) -> str:
    """The URL for messages, any userinfo (a misplaced secret) cut out."""
    parts = urlsplit(url.strip())
    if "@" not in parts.netloc:
        return url.strip()
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


def _flag(raw: str, name: str, problems: list[str]) -> bool:
    if raw.lower() in _TRUE:
        return True
    if raw.lower() not in _FALSE:
        problems.append(f"{name}={raw!r} is not true or false")
    return False


def make_client(endpoint: SqsEndpoint, *, max_connections: int,
                environ: Mapping[str, str]) -> tuple[SQSClient, str]:
    """A thread-safe SQS client and its region. The region: the URL's, else boto3's
    chain (AWS_DEFAULT_REGION, the config file), else AWS_REGION (the Java SDK's name,
    which PASS's documentation uses), else, for an endpoint override only, us-east-1."""
    _quiet_wire_logs()
    with sqs_errors("connect", str(endpoint)):
        session = boto3.session.Session()
        region = (endpoint.region or session.region_name or environ.get("AWS_REGION")
                  or (FAKE_REGION if endpoint.endpoint_url else None))
        if not region:
            raise ConfigurationError(
                "no AWS region for SQS: set AWS_REGION or AWS_DEFAULT_REGION, or add "
                "?region=... to DEPOSIT_BROKER_URL")
        config = Config(
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            retries={"max_attempts": RETRY_ATTEMPTS, "mode": "standard"},
            max_pool_connections=max(max_connections, 1),
        )
        client = session.client("sqs", region_name=region, endpoint_url=endpoint.endpoint_url,
                                config=config)
    return client, region


def _quiet_wire_logs() -> None:
    """botocore's DEBUG records carry every request's headers (the signature, the
    access key id, a session token) and response bodies: with DEPOSIT_LOG_LEVEL=DEBUG
    they would reach the logs. Its loggers stay at INFO unless someone set them."""
    for name in ("botocore", "boto3"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)


@contextmanager
def sqs_errors(action: str, where: str) -> Iterator[None]:
    """boto3's exceptions as ours: outages and throttling -> BrokerUnavailable, a
    missing queue -> MissingQueue, refused access or no credentials ->
    ConfigurationError, a stale receipt handle -> LeaseLost, the rest MessagingError.
    Messages name the action and queue; botocore's never hold credentials or
    signatures (and SQS uses no presigned URLs)."""
    try:
        yield
    except ClientError as exc:
        raise _client_error(exc, action, where) from exc
    except (NoCredentialsError, PartialCredentialsError, ProfileNotFound) as exc:
        raise ConfigurationError(
            f"no usable AWS credentials for SQS ({exc}): set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an instance or task role"
        ) from exc
    except NoRegionError as exc:
        raise ConfigurationError(f"no AWS region for SQS ({exc}): set AWS_REGION or add "
                                 "?region=... to DEPOSIT_BROKER_URL") from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        raise BrokerUnavailable(f"SQS {action} on {where} failed: {exc}") from exc
    except BotoCoreError as exc:
        raise MessagingError(f"SQS {action} on {where} failed: {exc}") from exc


def _client_error(exc: ClientError, action: str, where: str) -> MessagingError | ConfigurationError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    text = str(error.get("Message", "")) or str(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    what = f"SQS {action} on {where} failed: {code or status}: {text}"
    if code in _MISSING_QUEUE:
        return MissingQueue(f"SQS queue {where} does not exist ({code})")
    if code in _RECEIPT_INVALID or (code == "InvalidParameterValue"
                                    and "receipt" in text.lower()):
        return LeaseLost(what)
    if code in _TRANSIENT or status >= 500 or status == 429:
        return BrokerUnavailable(what)
    if code in _ACCESS or status in (401, 403):
        return ConfigurationError(
            f"SQS refused {action} on {where} ({code or status}: {text}): check the AWS "
            "credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE or the role) and the queue's "
            "access policy")
    return MessagingError(what)


# Message attributes <-> headers ------------------------------------------------------

def check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers SQS accepts as String message attributes; MessagingError says which not.
    Empty values are dropped (SQS refuses them)."""
    kept = {str(k): str(v) for k, v in headers.items() if str(v) != ""}
    bad = [name for name in kept if not valid_attribute_name(name)]
    if bad:
        raise MessagingError(f"header name(s) SQS cannot carry as message attributes: {bad} "
                             "(letters, digits, '_', '-', '.'; no 'AWS.'/'Amazon.' prefix)")
    if len(kept) > MAX_ATTRIBUTES:
        raise MessagingError(f"{len(kept)} headers: SQS carries at most {MAX_ATTRIBUTES} "
                             "message attributes")
    return kept


def valid_attribute_name(name: str) -> bool:
    lowered = name.lower()
    return (bool(_ATTRIBUTE_NAME.match(name)) and ".." not in name
            and not lowered.startswith(("aws.", "amazon.")))


def string_attributes(headers: Mapping[str, str]) -> dict[str, MessageAttributeValueTypeDef]:
    return {name: {"DataType": "String", "StringValue": value} for name, value in headers.items()}


def header_value(value: MessageAttributeValueOutputTypeDef | MessageAttributeValueTypeDef) -> str:
    """One attribute as header text: String and Number as they are, Binary in base64."""
    if "StringValue" in value:
        return value["StringValue"]
    binary = value.get("BinaryValue")
    if isinstance(binary, bytes | bytearray):
        return base64.b64encode(binary).decode("ascii")
    return ""


def carried_attribute(value: MessageAttributeValueOutputTypeDef) -> MessageAttributeValueTypeDef:
    """A received attribute as it is sent again (to the dead-letter queue), type kept."""
    carried: MessageAttributeValueTypeDef = {"DataType": value["DataType"]}
    if "StringValue" in value:
        carried["StringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        carried["BinaryValue"] = value["BinaryValue"]
    return carried


def clean_text(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters that SQS accepts in an attribute (its
    allowed Unicode: no control characters other than tab, newline, return)."""
    flat = " ".join(text.split())
    return "".join(c for c in flat if c >= " " and not 0xD800 <= ord(c) <= 0xDFFF
                   and c not in "\ufffe\uffff")[:limit]


# Dead letters ------------------------------------------------------------------------

REASON = "x-dead-letter-reason"
ORIGINAL_QUEUE = "x-original-queue"
ATTEMPTS = "x-attempts"
MESSAGE_ID = "x-message-id"
MORE_ATTRIBUTES = "x-original-attributes"  # JSON of the attributes that did not fit
REASON_MAX = 1000
_BOOKKEEPING = frozenset({REASON, ORIGINAL_QUEUE, ATTEMPTS, MESSAGE_ID, MORE_ATTRIBUTES})
_NO_REASON = "(no reason: moved by the queue's RedrivePolicy or sent by another producer)"


def default_dead_letter_queue(queue: str) -> str:
    """``<queue>-dlq``; ``<name>-dlq.fifo`` for a FIFO queue (whose DLQ must be FIFO)."""
    if queue.endswith(".fifo"):
        return DEFAULT_DEAD_LETTER_QUEUE.format(queue=queue.removesuffix(".fifo")) + ".fifo"
    return DEFAULT_DEAD_LETTER_QUEUE.format(queue=queue)


def dead_letter_attributes(
    original: Mapping[str, MessageAttributeValueOutputTypeDef], *, reason: str, queue: str,
    attempts: int, message_id: str,
) -> dict[str, MessageAttributeValueTypeDef]:
    """The original attributes (types kept) and ours, within SQS's 10: the originals
    that do not fit travel as JSON in ``x-original-attributes``."""
    ours = {
        REASON: clean_text(reason, REASON_MAX) or "(no reason given)",
        ORIGINAL_QUEUE: queue,
        ATTEMPTS: str(attempts),
        MESSAGE_ID: message_id or "(none)",
    }
    carried = {name: carried_attribute(value) for name, value in original.items()
               if name not in _BOOKKEEPING}
    room = MAX_ATTRIBUTES - len(ours)
    if len(carried) > room:
        names = list(carried)
        overflow = {name: header_value(carried.pop(name)) for name in names[room - 1:]}
        ours[MORE_ATTRIBUTES] = json.dumps(overflow, sort_keys=True)
    return {**carried, **string_attributes(ours)}


def dead_letter_from(message: MessageTypeDef) -> DeadLetter:
    """A message of a dead-letter queue as the port's ``DeadLetter``: our bookkeeping
    attributes become its fields, the rest its headers."""
    attributes = {name: header_value(value)
                  for name, value in message.get("MessageAttributes", {}).items()}
    headers = {name: value for name, value in attributes.items() if name not in _BOOKKEEPING}
    if MORE_ATTRIBUTES in attributes:
        try:
            headers.update({str(k): str(v)
                            for k, v in json.loads(attributes[MORE_ATTRIBUTES]).items()})
        except (ValueError, AttributeError):
            log.warning("unreadable %s on dead letter %s", MORE_ATTRIBUTES,
                        message.get("MessageId"))
    try:
        attempts = int(attributes.get(ATTEMPTS, "0"))
    except ValueError:
        attempts = 0
    return DeadLetter(
        queue=attributes.get(ORIGINAL_QUEUE, ""),
        body=message.get("Body", ""),
        reason=attributes.get(REASON, _NO_REASON),
        attempts=attempts,
        headers=headers,
    )
