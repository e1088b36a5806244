"""The search index port: write documents, ask a query-string query, make the mapping."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Document = dict[str, Any]


# A DOI as operators paste it (``10.1234/abc.7``, or as a doi.org URL): the slash would
# start a regular expression in the query-string syntax, so it is searched as a DOI.
_DOI = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)?(10\.\d{4,9}/\S+)$", re.IGNORECASE)


def operator_query(query: str) -> str:
    """The query as the index should read it: a bare DOI becomes ``doi:"..."``."""
    found = _DOI.match(query.strip())
    return f'doi:"{found.group(1)}"' if found else query


def document_id(kind: str, id: str) -> str:
    """The index's id of an entity's document: its type and its id (``Deposit:31``)."""
    return f"{kind}:{id}"


@dataclass(frozen=True)
class SearchResult:
    """What a query found: how many in all, and the documents of this page."""

    total: int
    documents: list[Document] = field(default_factory=list)


class SearchIndex(ABC):
    """One index of deposit and submission documents (adapters: ``elastic``)."""

    name: str

    @abstractmethod
    def prepare(self) -> None:
        """Create (or update) the index template and the index: idempotent, at start-up.
        ``SearchUnavailable`` if the index cannot be reached."""

    @abstractmethod
    def write(self, documents: Iterable[Document], refresh: bool = False) -> int:
        """Index (insert or replace) ``documents``, each with its ``_id`` key (bulk);
        returns how many. ``SearchUnavailable`` if the index is down, ``SearchError`` if
        it refused one of them."""

    @abstractmethod
    def search(self, query: str, *, size: int = 50, offset: int = 0,
               filters: Mapping[str, str] | None = None) -> SearchResult:
        """Documents matching ``query`` (query-string syntax; empty: all), best first,
        where each ``filters`` field equals its value."""

    @abstractmethod
    def refresh(self) -> None:
        """Make what was written searchable now (after a bulk rebuild)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
