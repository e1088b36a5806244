"""Search without an index: the same documents, built from the records and matched here.

For the embedded set-up (no ``DEPOSIT_SEARCH_URL``) the dashboard's search box and the
``search`` command still work: every document is built from the records (one read
transaction) and matched against a small part of the query-string syntax: words
(every one must occur in some field, case-insensitive), ``field:value`` (the field
holds the value; ``*`` at the end of a value matches any ending) and quoted phrases.
Fine for thousands of deposits; beyond that, configure the index.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from deposit_services.errors import SearchError
from deposit_services.model.entities import Deposit, Submission
from deposit_services.search.base import Document, SearchIndex, SearchResult, operator_query
from deposit_services.search.documents import build
from deposit_services.store.uow import Database, UnitOfWork, run_unit


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif value is not None:
        yield str(value).lower()


def _matches(wanted: str, value: Any, loose: bool) -> bool:
    """``wanted`` is the value, one of its words, a phrase in it, a prefix (``x*``); or,
    ``loose`` (a word with no field), any part of it of four characters or more."""
    if wanted.endswith("*"):
        return any(text.startswith(wanted[:-1]) for text in _texts(value))
    return any(wanted == text or wanted in text.split() or (" " in wanted and wanted in text)
               or (loose and len(wanted) > 3 and wanted in text) for text in _texts(value))


def parse(query: str) -> list[tuple[str | None, str]]:
    """``(field or None, lowercased value)`` terms of ``query``; SearchError if it
    cannot be read (an unclosed quote)."""
    try:
        words = shlex.split(query)
    except ValueError as exc:
        raise SearchError(f"cannot read the query {query!r}: {exc}") from exc
    terms: list[tuple[str | None, str]] = []
    for word in words:
        if word.upper() == "AND":
            continue
        field, sep, value = word.partition(":")
        if sep and field and value and "/" not in field:
            terms.append((field, value.strip('"').lower()))
        else:
            terms.append((None, word.lower()))
    return terms


def match(document: Document, terms: list[tuple[str | None, str]]) -> bool:
    for field, wanted in terms:
        values = [document.get(field)] if field else list(document.values())
        if not any(_matches(wanted, v, loose=field is None) for v in values):
            return False
    return True


class RecordSearch(SearchIndex):
    """``SearchIndex.search`` over the records themselves (read-only: nothing written)."""

    name = "records"

    def __init__(self, database: Database) -> None:
        self.database = database

    def _documents(self, uow: UnitOfWork) -> list[Document]:
        submissions = [s.id for s in uow.records.find(Submission)]
        deposits = [d.id for d in uow.records.find(Deposit)]
        return build(uow, submissions, deposits)[0]

    def search(self, query: str, *, size: int = 50, offset: int = 0,
               filters: Mapping[str, str] | None = None) -> SearchResult:
        terms = parse(operator_query(query)) + [(f, v.lower()) for f, v in (filters or {}).items()]
        documents = run_unit(self.database, self._documents, read_only=True,
                             what="search the records")
        found = [d for d in documents if match(d, terms)]
        found.sort(key=lambda d: (d.get("@type", ""), _number(d.get("@id", ""))))
        return SearchResult(len(found), [{k: v for k, v in d.items() if k != "_id"}
                                         for d in found[offset:offset + size]])

    def prepare(self) -> None:
        """Nothing to prepare."""

    def write(self, documents: Iterable[Document], refresh: bool = False) -> int:
        raise SearchError("the records' own search is read-only")

    def refresh(self) -> None:
        """Nothing to refresh."""

    def close(self) -> None:
        """Nothing to release."""


def _number(id: str) -> tuple[int, str]:
    return (int(id), "") if id.isdigit() else (0, id)
