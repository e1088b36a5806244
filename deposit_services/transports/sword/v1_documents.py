"""SWORD 1.3 documents: the service document (packaging with q-values, upload limit in
kB, mediation, No-Op and Verbose support) and the deposit response (an Atom entry).

Parsed with the v2 module's safe, namespace-tolerant helpers (``documents.parse_xml``
and friends): servers put SWORD elements in the wrong namespace, so elements are
matched by local name. Error documents are the same in 1.3 and v2
(``documents.parse_error_document``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deposit_services.transports.sword.documents import (
    IANA_REL_PREFIX,
    XmlError,
    attribute,
    children,
    descendants,
    local_name,
    parse_xml,
    text_of,
)

# SWORD 1.3 names packaging formats under sword-types; the v2 profile under sword/package.
V1_TYPES = "http://purl.org/net/sword-types/"
V2_TYPES = "http://purl.org/net/sword/package/"


def packaging_aliases(packaging: str) -> tuple[str, ...]:
    """``packaging`` and its spelling in the other SWORD version (METSDSpaceSIP etc.)."""
    for ours, theirs in ((V2_TYPES, V1_TYPES), (V1_TYPES, V2_TYPES)):
        if packaging.startswith(ours):
            return packaging, theirs + packaging[len(ours):]
    return (packaging,)


@dataclass(frozen=True)
class Collection1:
    """One deposit target of a 1.3 service document."""

    href: str
    title: str | None = None
    # packaging URI -> q-value (1.0 when the server gives none); q=0 means "not accepted"
    accept_packaging: dict[str, float] = field(default_factory=dict)
    mediation: bool | None = None
    treatment: str | None = None

    def accepted_packaging(self, packaging: str) -> str | None:
        """The spelling of ``packaging`` this collection accepts (q > 0), or None.
        A collection that lists no packaging accepts any."""
        if not self.accept_packaging:
            return packaging
        for name in packaging_aliases(packaging):
            if self.accept_packaging.get(name, 0.0) > 0:
                return name
        return None


@dataclass(frozen=True)
class ServiceDocument1:
    version: str | None = None
    max_upload_size_kb: int | None = None
    verbose: bool | None = None
    no_op: bool | None = None
    collections: dict[str, Collection1] = field(default_factory=dict)

    def collection(self, href: str) -> Collection1 | None:
        wanted = href.rstrip("/")
        return next((c for h, c in self.collections.items() if h.rstrip("/") == wanted), None)


def _flag(text: str | None) -> bool | None:
    return None if text is None else text.strip().lower() == "true"


def _q(value: str | None) -> float:
    try:
        return float(value) if value is not None else 1.0
    except ValueError:
        return 1.0


def parse_service_document_1(data: bytes) -> ServiceDocument1:
    """Read a SWORD 1.3 service document. Raises XmlError when it is not one."""
    root = parse_xml(data)
    if local_name(root) != "service":
        raise XmlError(f"root element is <{local_name(root)}>, not <service>")
    max_kb: int | None = None
    raw = next((("".join(e.itertext())).strip() for e in children(root, "maxUploadSize")), None)
    if raw:
        try:
            max_kb = int(raw)
        except ValueError:
            max_kb = None
    collections: dict[str, Collection1] = {}
    for coll in descendants(root, "collection"):
        href = attribute(coll, "href")
        if not href:
            continue
        packaging = {
            "".join(p.itertext()).strip(): _q(attribute(p, "q"))
            for p in children(coll, "acceptPackaging")
            if "".join(p.itertext()).strip()
        }
        collections[href] = Collection1(
            href=href,
            title=text_of(coll, "title"),
            accept_packaging=packaging,
            mediation=_flag(text_of(coll, "mediation")),
            treatment=text_of(coll, "treatment"),
        )
    top = {local_name(e): "".join(e.itertext()).strip() for e in root}
    return ServiceDocument1(
        version=top.get("version"),
        max_upload_size_kb=max_kb,
        verbose=_flag(top.get("verbose")),
        no_op=_flag(top.get("noOp")),
        collections=collections,
    )


@dataclass(frozen=True)
class DepositResponse1:
    """What a 1.3 deposit response (an atom:entry) says about the deposit."""

    entry_id: str | None = None
    treatment: str | None = None
    verbose_description: str | None = None
    no_op: bool | None = None
    packaging: str | None = None
    content_src: str | None = None
    alternate: str | None = None
    edit: str | None = None
    edit_media: str | None = None


def parse_deposit_response(data: bytes) -> DepositResponse1:
    """Read the Atom entry of a 201/202 deposit response. Raises XmlError."""
    root = parse_xml(data)
    if local_name(root) != "entry":
        raise XmlError(f"root element is <{local_name(root)}>, not <entry>")
    links: dict[str, str] = {}
    for link in children(root, "link"):
        rel = (attribute(link, "rel") or "").strip()
        if rel.startswith(IANA_REL_PREFIX):
            rel = rel[len(IANA_REL_PREFIX):]
        href = (attribute(link, "href") or "").strip()
        if href:
            links.setdefault(rel, href)
    content = next(children(root, "content"), None)
    return DepositResponse1(
        entry_id=text_of(root, "id"),
        treatment=text_of(root, "treatment"),
        verbose_description=text_of(root, "verboseDescription"),
        no_op=_flag(text_of(root, "noOp")),
        packaging=text_of(root, "packaging"),
        content_src=attribute(content, "src") if content is not None else None,
        alternate=links.get("alternate"),
        edit=links.get("edit"),
        edit_media=links.get("edit-media"),
    )
