"""The XML documents of the SWORDv2 test server (tests.support.sword_server).

Service document, deposit receipt, Atom and ORE statements and ``sword:error`` bodies,
written as the SWORDv2 profile shows them (checked by the PyPI ``sword2`` client in
tests/integration/sword/test_sword_server_profile.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

ALL = "*"
STATE_PREFIX = "http://dspace.org/state/"
STATE_SCHEME = "http://purl.org/net/sword/terms/state"
ERROR_PREFIX = "http://purl.org/net/sword/error/"
METS_DSPACE = "http://purl.org/net/sword/package/METSDSpaceSIP"
SIMPLE_ZIP = "http://purl.org/net/sword/package/SimpleZip"
BINARY = "http://purl.org/net/sword/package/Binary"
ATOM_NS = "http://www.w3.org/2005/Atom"
SWORD_NS = "http://purl.org/net/sword/terms/"
CHUNK = 1024 * 1024
STATE_TEXT = {
    "inprogress": "The item is in progress",
    "inreview": "The item is in review",
    "archived": "The item has been archived",
    "withdrawn": "The item has been withdrawn",
}


@dataclass
class ReceivedDeposit:
    """One deposit the server accepted."""

    id: str
    collection: str
    filename: str | None
    packaging: str
    content_type: str
    md5: str
    size: int
    slug: str | None
    on_behalf_of: str | None
    in_progress: bool
    headers: dict[str, str]
    path: Path | None = None
    state: str = STATE_PREFIX + "inprogress"
    title: str | None = None
    metadata: list[bytes] = field(default_factory=list)  # Atom entries PUT/POSTed
    files: list[str] = field(default_factory=list)  # added to the media resource
    updates: int = 0  # content or metadata replaced or added since the deposit
    hidden: bool = False  # still being ingested: not in the collection's listing


@dataclass
class Response:
    """What the test server answers."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""



def _state_text(state: str) -> str:
    return STATE_TEXT.get(state.rsplit("/", 1)[-1], "The item is in state " + state)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def error_document(name: str, summary: str) -> str:
    """A ``sword:error`` with the profile's error IRI for ``name`` and our ``summary``."""
    return (
        f'<sword:error xmlns="{ATOM_NS}" xmlns:sword="{SWORD_NS}" '
        f'href="{ERROR_PREFIX}{name}"><title>ERROR</title>'
        f"<updated>{_now()}</updated><generator uri=\"urn:test:sword\" version=\"1\"/>"
        f"<summary>{escape(summary)}</summary><sword:treatment>processing failed"
        f"</sword:treatment><sword:verboseDescription>{escape(name)}: {escape(summary)}"
        "</sword:verboseDescription></sword:error>"
    )


class SwordDocuments:
    """Renders the server's documents from its settings and a ReceivedDeposit."""

    base_url: str
    collections: dict[str, tuple[str, ...]]
    max_upload_size: int | None
    advertise_limits: bool
    mediation: bool

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _service_document(self) -> str:
        limit = ""
        if self.max_upload_size is not None and self.advertise_limits:
            limit = f"<sword:maxUploadSize>{self.max_upload_size // 1024}</sword:maxUploadSize>"
        cols = []
        for name, packagings in sorted(self.collections.items()):
            accepted = "".join(
                f"<sword:acceptPackaging>{escape(p)}</sword:acceptPackaging>"
                for p in (packagings if self.advertise_limits else ())
            )
            cols.append(
                f"<collection href={quoteattr(self._url('/swordv2/collection/' + name))}>"
                f"<atom:title>{escape(name)}</atom:title><accept>*/*</accept>"
                f'<accept alternate="multipart-related">*/*</accept>'
                f"<sword:mediation>{str(self.mediation).lower()}</sword:mediation>"
                f"{accepted}</collection>"
            )
        return (
            '<service xmlns="http://www.w3.org/2007/app" '
            f'xmlns:atom="{ATOM_NS}" xmlns:sword="{SWORD_NS}">'
            f"<sword:version>2.0</sword:version>{limit}<workspace>"
            f"<atom:title>Test repository</atom:title>{''.join(cols)}</workspace></service>"
        )

    def _receipt(self, d: ReceivedDeposit) -> str:
        edit = self._url(f"/swordv2/edit/{d.id}")
        media = self._url(f"/swordv2/edit-media/{d.id}")
        statement = self._url(f"/swordv2/statement/{d.id}")
        return (
            f'<entry xmlns="{ATOM_NS}" xmlns:sword="{SWORD_NS}">'
            f"<id>{escape(edit)}</id><title>{escape(d.title or d.filename or d.id)}</title>"
            f"<updated>{_now()}</updated><author><name>test</name></author>"
            f'<summary type="text">deposit {escape(d.id)}</summary>'
            f"<content type={quoteattr(d.content_type)} src={quoteattr(media)}/>"
            f"<link rel=\"edit\" href={quoteattr(edit)}/>"
            f"<link rel=\"edit-media\" href={quoteattr(media)}/>"
            f"<link rel=\"{SWORD_NS}add\" href={quoteattr(edit)}/>"
            f"<link rel=\"alternate\" href={quoteattr(self._url('/items/' + d.id))}/>"
            f"<link rel=\"{SWORD_NS}originalDeposit\" type={quoteattr(d.content_type)} "
            f"href={quoteattr(media + '/' + (d.filename or 'package'))}/>"
            f"<link rel=\"{SWORD_NS}statement\" type=\"application/atom+xml;type=feed\" "
            f"href={quoteattr(statement + '.atom')}/>"
            f"<link rel=\"{SWORD_NS}statement\" type=\"application/rdf+xml\" "
            f"href={quoteattr(statement + '.rdf')}/>"
            f"<sword:packaging>{escape(d.packaging)}</sword:packaging>"
            f"<sword:treatment>Deposited into the review workflow</sword:treatment>"
            "</entry>"
        )

    def _atom_statement(self, d: ReceivedDeposit) -> str:
        url = self._url(f"/swordv2/statement/{d.id}.atom")
        original = self._url(f"/swordv2/edit-media/{d.id}/{d.filename}")
        return (
            f'<feed xmlns="{ATOM_NS}"><id>{escape(url)}</id>'
            f'<link href={quoteattr(url)} rel="self"/><title type="text">{escape(d.id)}</title>'
            f"<author><name>test</name></author><updated>{_now()}</updated>"
            f"<category term={quoteattr(d.state)} scheme=\"{STATE_SCHEME}\" label=\"State\">"
            f"{escape(_state_text(d.state))}</category>"
            f"<entry><id>{escape(original)}</id><title type=\"text\">Original Deposit</title>"
            f"<summary type=\"text\">Original Deposit</summary><updated>{_now()}</updated>"
            f"<content type={quoteattr(d.content_type)} src={quoteattr(original)}/>"
            f"<category term=\"{SWORD_NS}originalDeposit\" scheme=\"{SWORD_NS}\" "
            'label="Original Deposit"/></entry></feed>'
        )

    def _ore_statement(self, d: ReceivedDeposit) -> str:
        edit = self._url(f"/swordv2/edit/{d.id}")
        url = self._url(f"/swordv2/statement/{d.id}.rdf")
        original = self._url(f"/swordv2/edit-media/{d.id}/{d.filename}")
        return (
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            f'xmlns:ore="http://www.openarchives.org/ore/terms/" xmlns:sword="{SWORD_NS}">'
            f"<rdf:Description rdf:about={quoteattr(url)}>"
            f"<ore:describes rdf:resource={quoteattr(edit)}/></rdf:Description>"
            f"<rdf:Description rdf:about={quoteattr(edit)}>"
            f"<ore:isDescribedBy rdf:resource={quoteattr(url)}/>"
            f"<ore:aggregates rdf:resource={quoteattr(original)}/>"
            f"<sword:originalDeposit rdf:resource={quoteattr(original)}/>"
            f"<sword:state rdf:resource={quoteattr(d.state)}/></rdf:Description>"
            f"<rdf:Description rdf:about={quoteattr(d.state)}>"
            f"<sword:stateDescription>{escape(_state_text(d.state))}</sword:stateDescription>"
            f"</rdf:Description><rdf:Description rdf:about={quoteattr(original)}>"
            f"<sword:packaging rdf:resource={quoteattr(d.packaging)}/>"
            f"<sword:depositedOn>{_now()}</sword:depositedOn></rdf:Description></rdf:RDF>"
        )
