"""The JSON Patch that fills a DSpace workspace item's submission sections.

The fields are those PASS's DSpace mapping writes (title, publisher, DOI, abstract,
citation, issued date, the authors, embargo lift and terms, license granted), in the
form-section of the collection's submission definition (``traditionalpageone`` by
default). We add a marker (``dc.identifier.other``: ``deposit-services:<submission>:
<package>``) so a restarted worker finds the item it made before instead of making a
second one, and, when a section for it is configured, the embargo as an access
condition. The fields come from the mapping shared with InvenioRDM and Zenodo
(``transports/metadata.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deposit_services.model.submission import DepositSubmission
from deposit_services.transports.metadata import (
    MARKER_PREFIX,
    authors,
    citation,
    marker,
    record_metadata,
)

__all__ = ["MARKER_FIELD", "MARKER_PREFIX", "Sections", "citation", "marker",
           "workspace_patch"]

MARKER_FIELD = "dc.identifier.other"


@dataclass(frozen=True)
class Sections:
    """Names of the submission sections and fields the patch writes to."""

    form: str = "traditionalpageone"
    license: str = "license"
    access: str | None = None
    embargo_lift_field: str = "local.embargo.lift"
    embargo_terms_field: str = "local.embargo.terms"


def _values(*values: str) -> list[dict[str, Any]]:
    return [{"value": v} for v in values]


def workspace_patch(submission: DepositSubmission, package_name: str,
                    sections: Sections = Sections()) -> list[dict[str, Any]]:
    """The JSON Patch operations (RFC 6902) for the workspace item."""
    meta = record_metadata(submission)
    form = f"/sections/{sections.form}"
    ops: list[dict[str, Any]] = []

    def add(field: str, *values: str | None) -> None:
        present = [v for v in values if v]
        if present:
            ops.append({"op": "add", "path": f"{form}/{field}", "value": _values(*present)})

    add("dc.title", meta.title)
    add("dc.publisher", meta.publisher)
    add("dc.identifier.doi", meta.doi)
    add("dc.description.abstract", meta.description)
    add("dc.identifier.citation", meta.citation)
    add("dc.date.issued", meta.publication_date)
    add("dc.contributor.author", *(p.name for p in authors(submission)))
    add(MARKER_FIELD, marker(submission.id, package_name))
    if meta.embargo_end_date is not None:
        lift = meta.embargo_end_date.isoformat()
        add(sections.embargo_lift_field, lift)
        add(sections.embargo_terms_field, lift)
        if sections.access:
            ops.append({"op": "add", "path": f"/sections/{sections.access}/accessConditions/-",
                        "value": {"name": "embargo", "startDate": lift}})
    ops.append({"op": "add", "path": f"/sections/{sections.license}/granted", "value": "true"})
    return ops
