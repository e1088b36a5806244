"""The Atom entry of a submission's metadata, for a PUT on a SWORDv2 Edit-IRI.

SWORDv2 (profile 6.5.2) replaces an item's metadata with the Atom entry PUT to its
Edit-IRI; servers crosswalk the DC terms in it (DSpace: ``swordv2-server.cfg``'s
``simpledc.*`` / ``atom.*`` mappings). The entry carries what PASS's METS/DC does:
title, abstract, authors, DOI, journal, publication date. Built with lxml, so every
value is escaped.
"""

from __future__ import annotations

from lxml import etree

from deposit_services.model.submission import DepositSubmission

ATOM = "http://www.w3.org/2005/Atom"
DCTERMS = "http://purl.org/dc/terms/"


def metadata_entry(submission: DepositSubmission) -> bytes:
    """The submission's metadata as an atom:entry with dcterms (UTF-8 bytes)."""
    root = etree.Element(f"{{{ATOM}}}entry", nsmap={None: ATOM, "dcterms": DCTERMS})
    article = submission.article
    title = article.title or submission.id

    def add(ns: str, name: str, value: str | None) -> None:
        if value:
            etree.SubElement(root, f"{{{ns}}}{name}").text = value

    add(ATOM, "title", title)
    add(ATOM, "id", f"urn:pass:submission:{submission.id}")
    add(DCTERMS, "title", title)
    add(DCTERMS, "abstract", article.abstract)
    for person in submission.authors:
        add(DCTERMS, "creator", person.name)
    doi = article.doi
    if doi:
        add(DCTERMS, "identifier", doi if "://" in doi else f"https://doi.org/{doi}")
    add(DCTERMS, "bibliographicCitation", submission.journal.title)
    add(DCTERMS, "issued", article.publication_date)
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return data
