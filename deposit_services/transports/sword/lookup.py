"""Is an earlier deposit of this package already in the collection? (SWORDv2)

Asked before a package is sent again whose earlier upload went out whole but got no
answer (a read timeout while the server ingested), and by crash reconciliation when no
Edit-IRI was recorded. SWORDv2 has no search by Slug; what a server may offer is the
collection's listing (profile 6.2: an Atom feed on GET of the Col-IRI). An entry is
ours when it names the package: the Slug or the package's file name as the last path
segment of its id, Edit-IRI or EM-IRI, as its title, or as its original deposit's name.

The answer is one of: ``Found`` (the entry's links), ``NotThere`` (the listing was read
and holds nothing of ours: sending again is safe), or a PermanentTransferError from
``cannot_tell`` when the server offers no listing, or when an entry could be ours but
does not say (DSpace lists items by title only): the deposit is then FAILED with the
package's name and checksum for the operator to look for, never sent twice blindly.
``cannot_tell`` is the one wording of that rule, also for crash reconciliation.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from deposit_services.assemblers.base import Package
from deposit_services.errors import PermanentTransferError
from deposit_services.transports.sword.client import SwordClient
from deposit_services.transports.sword.documents import (
    DepositReceipt,
    ListedEntry,
    XmlError,
    parse_collection_listing,
)

logger = logging.getLogger(__name__)

_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

#: answers to a GET on a Col-IRI that mean "this server lists nothing"
NO_LISTING = frozenset({404, 405, 406, 501})


@dataclass(frozen=True)
class Found:
    """The entry of the earlier deposit."""

    links: DepositReceipt


@dataclass(frozen=True)
class NotThere:
    """The listing was read and holds no entry of ours."""


def cannot_tell(package: Package, collection: str, why: str) -> PermanentTransferError:
    """The error for "the outcome of an upload cannot be told": names what to look for."""
    return PermanentTransferError(
        f"cannot tell whether {package.name} (md5 {package.md5}, Slug {slug_for(package)}) "
        f"reached {collection}: {why}. Look for an item with that file in the collection; "
        "if there is none, retry the deposit (deposit-services retry)"
    )


def slug_for(package: Package) -> str:
    """A deterministic Slug from the package name (extension dropped, unsafe chars -> '-')."""
    stem = package.name
    for ext in (".tar.gz", ".tar.bz2", ".tgz", ".zip", ".tar", ".gz"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    return _SLUG_UNSAFE.sub("-", stem).strip("-.") or "package"


def look_for(client: SwordClient, collection: str, package: Package,
             title: str | None = None) -> Found | NotThere:
    """Look for an earlier deposit of ``package`` in ``collection``'s listing.

    ``title``: the submission's title; an entry with that title that does not name the
    package could be ours (a server that keeps neither Slug nor file name), so the
    answer is ``cannot_tell`` rather than NotThere. Transient faults raise
    TransientTransferError (look again later).
    """
    what = f"SWORD collection listing {collection}"
    with client.request("GET", collection, what, stream=True,
                        headers={"Accept": "application/atom+xml"}) as response:
        if response.status_code in NO_LISTING:
            raise cannot_tell(package, collection, (
                f"the server offers no collection listing (GET answered "
                f"{response.status_code}) and no Edit-IRI came back"))
        try:
            client.raise_for_status(response, what)
            body = client.read_body(response, what)
        except PermanentTransferError as exc:  # 401/403/4xx: still, say what to look for
            raise cannot_tell(package, collection,
                              f"its listing cannot be read ({exc})") from exc
    try:
        entries = parse_collection_listing(body)
    except XmlError as exc:
        raise cannot_tell(package, collection,
                          f"the collection listing is unreadable ({exc})") from exc
    names = {package.name.casefold(), slug_for(package).casefold()}
    for entry in entries:
        if names & _names_of(entry):
            logger.info("%s: %s is already there as %s", what, package.name,
                        entry.links.edit_iri or entry.links.entry_id)
            return Found(entry.links)
    wanted = (title or "").strip().casefold()
    if wanted and any((e.title or "").strip().casefold() == wanted for e in entries):
        raise cannot_tell(package, collection, (
            f"the collection lists an item titled {title!r} that does not say which "
            "package it came from"))
    logger.info("%s: %d entries, none is %s", what, len(entries), package.name)
    return NotThere()


def _names_of(entry: ListedEntry) -> set[str]:
    links = entry.links
    names = {(entry.title or "").strip().casefold()}
    for url in (links.entry_id, links.edit_iri, links.em_iri, links.original_deposit):
        if url:
            segment = unquote(urlsplit(url).path.rstrip("/").rpartition("/")[2])
            names.add(segment.casefold())
    names.discard("")
    return names
