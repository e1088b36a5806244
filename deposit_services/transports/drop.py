"""What the file-drop transports (SFTP, FTP) share: PASS's binding keys, the dated
directory, temporary names, the "already sent" rule and the receipt.

A drop is complete when the whole package stands under its final name: it is first
written to a hidden ``.<name>.<random>.part`` name in the same directory, its size is
checked, then it is renamed. Package names and bytes are deterministic, so a final name
that already holds the package's size is the same package sent before (not sent
again); a different size is something an operator must look at.

With a dated ``default-directory`` (``%s``), a worker that died after sending and is
restarted on a later day would look for the package in a new directory and send it
again: ``earlier_directories`` names the directories of the attempt's own day (and the
day after, for an attempt begun just before midnight), which ``reconcile`` checks first.
"""

from __future__ import annotations

import os
import posixpath
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from pydantic import Field, SecretStr

from deposit_services.errors import PermanentTransferError
from deposit_services.transports.base import Binding, Receipt

PART_SUFFIX = ".part"


class DropBinding(Binding):
    """PASS's keys for a server that receives files (``server-fqdn`` ... ``default-directory``)."""

    server_fqdn: str = Field(alias="server-fqdn", min_length=1)
    server_port: int | None = Field(default=None, alias="server-port", ge=1, le=65535)
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    default_directory: str = Field(default="", alias="default-directory")
    connect_timeout: float = Field(default=30.0, alias="connect-timeout", gt=0)
    read_timeout: float = Field(default=120.0, alias="read-timeout", gt=0)


def dated_directory(template: str, now: datetime | None = None) -> str:
    """``default-directory`` with each ``%s`` replaced by the UTC date (yyyy-MM-dd)."""
    day = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d")
    directory = template.replace("%s", day).strip()
    return directory.rstrip("/") or ("/" if directory.startswith("/") else "")


def earlier_directories(template: str, started_at: str | None,
                        now: datetime | None = None) -> list[str]:
    """The dated directories an attempt begun at ``started_at`` (ISO 8601, from the
    attempt log) may have written to, other than today's (``send`` checks that one);
    empty when ``template`` has no ``%s`` or the start is unknown."""
    if "%s" not in template or not started_at:
        return []
    try:
        start = datetime.fromisoformat(started_at)
    except ValueError:
        return []
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    today = dated_directory(template, now)
    found: list[str] = []
    for day in (start, start + timedelta(days=1)):
        if day > (now or datetime.now(UTC)):
            break
        directory = dated_directory(template, day)
        if directory != today and directory not in found:
            found.append(directory)
    return found


def directory_prefixes(directory: str) -> list[str]:
    """``a/b/c`` -> ``[a, a/b, a/b/c]`` (absolute paths keep their leading slash)."""
    parts = [p for p in directory.split("/") if p and p != "."]
    prefix = "/" if directory.startswith("/") else ""
    out: list[str] = []
    for part in parts:
        prefix = posixpath.join(prefix, part) if prefix else part
        out.append(prefix)
    return out


def temp_name(final_name: str) -> str:
    """A hidden name, unique per attempt, for the upload in progress."""
    return f".{final_name}.{os.urandom(6).hex()}{PART_SUFFIX}"


def is_leftover_part(name: str, final_name: str) -> bool:
    """True for a temporary name this package's earlier (failed) attempts could have left
    (exactly ``temp_name``'s shape: another package's temporary files never match)."""
    return re.fullmatch(rf"\.{re.escape(final_name)}\.[0-9a-f]{{12}}{re.escape(PART_SUFFIX)}", name
                        ) is not None


def check_existing(location: str, remote_size: int, package_size: int) -> None:
    """Raise unless the file already under the final name is this package (same size)."""
    if remote_size != package_size:
        raise PermanentTransferError(
            f"{location} already exists with {remote_size} bytes but this package has "
            f"{package_size}; it is not ours or a damaged earlier upload: remove it from the "
            "server (or tell the repository), then retry the deposit"
        )


def drop_url(scheme: str, host: str, port: int, path: str) -> str:
    """``scheme://host:port/path`` for the package's final location."""
    if not path.startswith("/"):
        path = "/" + path
    return f"{scheme}://{host}:{port}{quote(path)}"


def drop_receipt(url: str, size: int, already_present: bool) -> Receipt:
    """Accepted at once: the complete package stands under its final name (see module docs)."""
    message = (
        f"{url} already held this package ({size} bytes); not sent again"
        if already_present
        else f"delivered to {url} ({size} bytes, size verified)"
    )
    return Receipt(accepted=True, access_url=url, external_ids=(url,), message=message)
