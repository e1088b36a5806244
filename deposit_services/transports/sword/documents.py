"""SWORD documents read by local name: service document, deposit receipt, error
document and (SWORDv2) Atom / ORE statement.

Real servers get namespaces wrong (DSpace has used the SWORD 1.3 namespace) and declare
ISO-8859-1, so elements are matched by local name and documents are parsed from bytes
(lxml honours the XML declaration). The parser never touches the network, never
expands entities and never loads a DTD. These functions say what a document holds;
what it means for a deposit (which state wins, which are errors) is decided by the
transport and the statement resolver.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

STATEMENT_REL = "http://purl.org/net/sword/terms/statement"
SE_IRI_REL = "http://purl.org/net/sword/terms/add"
ORIGINAL_DEPOSIT_REL = "http://purl.org/net/sword/terms/originalDeposit"
ATOM_FEED_TYPE = "application/atom+xml;type=feed"
IANA_REL_PREFIX = "http://www.iana.org/assignments/relation/"
ORE_TYPE = "application/rdf+xml"
STATE_SCHEME = "http://purl.org/net/sword/terms/state"


class XmlError(ValueError):
    """A document is not well-formed XML (or is empty)."""


def parse_xml(data: bytes) -> Any:
    """Parse ``data`` safely; returns the root element. Raises XmlError."""
    if not data or not data.strip():
        raise XmlError("empty document")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        return etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise XmlError(f"not well-formed XML: {exc}") from exc


def local_name(element: Any) -> str:
    tag = element.tag
    if not isinstance(tag, str):  # comments, entities
        return ""
    return str(etree.QName(tag).localname)


def children(element: Any, name: str) -> Iterator[Any]:
    """Direct children with local name ``name``."""
    for child in element:
        if local_name(child) == name:
            yield child


def descendants(element: Any, name: str) -> Iterator[Any]:
    for node in element.iter():
        if node is not element and local_name(node) == name:
            yield node


def attribute(element: Any, name: str) -> str | None:
    """An attribute by local name, whatever its namespace (``href``, ``rdf:resource``)."""
    value = element.get(name)
    if value is not None:
        return str(value)
    for key, val in element.attrib.items():
        if etree.QName(key).localname == name:
            return str(val)
    return None


def text_of(element: Any, name: str) -> str | None:
    for child in descendants(element, name):
        text = "".join(child.itertext()).strip()
        if text:
            return text
    return None


@dataclass(frozen=True)
class CollectionInfo:
    href: str
    title: str | None = None
    accept_packaging: tuple[str, ...] = ()
    mediation: bool | None = None


@dataclass(frozen=True)
class ServiceDocument:
    collections: dict[str, CollectionInfo] = field(default_factory=dict)
    max_upload_size_kb: int | None = None
    version: str | None = None

    def collection(self, href: str) -> CollectionInfo | None:
        """The collection at ``href``; a trailing slash on either side does not matter."""
        found = self.collections.get(href)
        if found is None:
            wanted = href.rstrip("/")
            found = next(
                (c for h, c in self.collections.items() if h.rstrip("/") == wanted), None
            )
        return found


def parse_service_document(data: bytes) -> ServiceDocument:
    root = parse_xml(data)
    if local_name(root) != "service":
        raise XmlError(f"root element is <{local_name(root)}>, not <service>")
    max_kb: int | None = None
    raw_max = text_of(root, "maxUploadSize")
    if raw_max is not None:
        try:
            max_kb = int(raw_max)
        except ValueError:
            max_kb = None
    collections: dict[str, CollectionInfo] = {}
    for coll in descendants(root, "collection"):
        href = attribute(coll, "href")
        if not href:
            continue
        packaging = tuple(
            "".join(p.itertext()).strip()
            for p in children(coll, "acceptPackaging")
            if "".join(p.itertext()).strip()
        )
        mediation_text = text_of(coll, "mediation")
        collections[href] = CollectionInfo(
            href=href,
            title=text_of(coll, "title"),
            accept_packaging=packaging,
            mediation=None if mediation_text is None else mediation_text.lower() == "true",
        )
    return ServiceDocument(
        collections=collections, max_upload_size_kb=max_kb, version=text_of(root, "version")
    )


@dataclass(frozen=True)
class DepositReceipt:
    """The links of a SWORDv2 deposit receipt (an atom:entry)."""

    edit_iri: str | None = None
    em_iri: str | None = None
    se_iri: str | None = None
    atom_statement: str | None = None
    ore_statement: str | None = None
    splash: str | None = None
    original_deposit: str | None = None
    entry_id: str | None = None
    treatment: str | None = None


def parse_receipt(data: bytes) -> DepositReceipt:
    root = parse_xml(data)
    if local_name(root) != "entry":
        raise XmlError(f"root element is <{local_name(root)}>, not <entry>")
    return receipt_of(root)


@dataclass(frozen=True)
class ListedEntry:
    """One atom:entry of a collection listing (GET on the Col-IRI): its links and title."""

    links: DepositReceipt
    title: str | None


def parse_collection_listing(data: bytes) -> list[ListedEntry]:
    """The entries of the Atom feed a SWORDv2 server may answer a GET on the Col-IRI
    with (profile section 6.2; DSpace lists the user's items: id = Edit-IRI, title,
    edit-media link)."""
    root = parse_xml(data)
    if local_name(root) != "feed":
        raise XmlError(f"root element is <{local_name(root)}>, not <feed>")
    return [ListedEntry(receipt_of(entry), text_of(entry, "title"))
            for entry in children(root, "entry")]


def receipt_of(root: Any) -> DepositReceipt:
    """The links of one atom:entry (a deposit receipt or a listing's entry)."""
    found: dict[str, str] = {}
    for link in children(root, "link"):
        rel = (attribute(link, "rel") or "").strip()
        if rel.startswith(IANA_REL_PREFIX):  # rel="edit" may be spelled as its IANA IRI
            rel = rel[len(IANA_REL_PREFIX) :]
        href = (attribute(link, "href") or "").strip()
        mime = (attribute(link, "type") or "").replace(" ", "").lower()
        if not href:
            continue
        if rel == "edit":
            found.setdefault("edit", href)
        elif rel == "edit-media":
            found.setdefault("em", href)
        elif rel == SE_IRI_REL:
            found.setdefault("se", href)
        elif rel == "alternate":
            found.setdefault("splash", href)
        elif rel == ORIGINAL_DEPOSIT_REL:
            found.setdefault("original", href)
        elif rel == STATEMENT_REL:
            if mime.startswith("application/atom+xml"):
                found.setdefault("atom", href)
            elif mime.startswith(ORE_TYPE):
                found.setdefault("ore", href)
            elif href.endswith(".atom"):
                found.setdefault("atom", href)
            else:
                found.setdefault("ore", href)
    return DepositReceipt(
        edit_iri=found.get("edit"),
        em_iri=found.get("em"),
        se_iri=found.get("se"),
        atom_statement=found.get("atom"),
        ore_statement=found.get("ore"),
        splash=found.get("splash"),
        original_deposit=found.get("original"),
        entry_id=text_of(root, "id"),
        treatment=text_of(root, "treatment"),
    )


@dataclass(frozen=True)
class ErrorDocument:
    """A ``sword:error`` document: the error URI and the server's words."""

    href: str | None
    summary: str | None
    verbose: str | None = None

    @property
    def name(self) -> str | None:
        """The short error name (``ErrorChecksumMismatch``) from the href."""
        if not self.href:
            return None
        return self.href.rstrip("/").rsplit("/", 1)[-1]


def parse_error_document(data: bytes) -> ErrorDocument | None:
    """The error document in ``data``, or None if it is not one (HTML, empty...)."""
    try:
        root = parse_xml(data)
    except XmlError:
        return None
    if local_name(root) != "error":
        return None
    return ErrorDocument(
        href=attribute(root, "href"),
        summary=text_of(root, "summary") or text_of(root, "title"),
        verbose=text_of(root, "verboseDescription"),
    )


@dataclass(frozen=True)
class StatementState:
    """One state a statement declares: its term (a URI) and the server's words, if any."""

    term: str
    description: str | None = None


@dataclass(frozen=True)
class Statement:
    """What a SWORDv2 statement declares.

    ``format`` is ``atom`` (a feed; states are feed-level ``atom:category`` elements with
    scheme STATE_SCHEME), ``ore`` (RDF; states are ``sword:state rdf:resource``) or None
    when the document is neither (``root`` names its root element). ``states`` are in
    document order, repeats and empty terms included, so the reader can judge them.
    """

    format: str | None
    root: str
    states: tuple[StatementState, ...] = ()


def parse_statement(data: bytes) -> Statement:
    """Read an Atom or ORE statement. Raises XmlError when it is not well-formed."""
    root = parse_xml(data)
    kind = local_name(root)
    found: list[StatementState] = []
    if kind == "feed":
        for category in children(root, "category"):
            if (attribute(category, "scheme") or "").strip() != STATE_SCHEME:
                continue
            term = (attribute(category, "term") or "").strip()
            text = "".join(category.itertext()).strip() or attribute(category, "label")
            found.append(StatementState(term, text))
        return Statement("atom", kind, tuple(found))
    if kind == "RDF":
        about = {
            attribute(desc, "about"): desc for desc in children(root, "Description")
        }
        for state in descendants(root, "state"):
            term = (attribute(state, "resource") or "".join(state.itertext())).strip()
            description = None
            # the profile describes the state in its own rdf:Description; some servers
            # put sword:stateDescription beside sword:state
            for holder in (about.get(term), state.getparent()):
                if holder is not None and description is None:
                    for desc in children(holder, "stateDescription"):
                        description = "".join(desc.itertext()).strip() or None
            found.append(StatementState(term, description))
        return Statement("ore", kind, tuple(found))
    return Statement(None, kind)
