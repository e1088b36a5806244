"""Elide's collection options: ``sort``, ``page[...]`` and ``include`` paths.

Paging is Elide's PaginationImpl: ``page[offset]``/``page[limit]`` or ``page[number]``/
``page[size]`` (not mixed), default size 500, at most 10000, ``page[totals]`` (valueless)
adds ``totalRecords``/``totalPages`` to ``meta.page``. Sorting takes attribute paths across
to-one relationships; PostgreSQL puts NULLs last ascending and first descending (with no
``sort`` pass-core's order is the database's; this server answers in id order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.passcore.errors import ApiError, ServerFault
from tests.support.passcore.query import FilterParseError, Predicate, Step, resolve_path, value_of
from tests.support.passcore.schema import TYPES, EntityType
from tests.support.passcore.store import Record, Store

DEFAULT_PAGE_SIZE = 500  # Elide's Pagination.DEFAULT_PAGE_SIZE
MAX_PAGE_SIZE = 10000  # Elide's Pagination.MAX_PAGE_SIZE


def sort_records(records: list[Record], sort: str, etype: EntityType, store: Store) -> list[Record]:
    """``sort=a,-b.c``: ascending puts NULLs last, descending first (PostgreSQL)."""
    keys: list[tuple[tuple[Step, ...], bool]] = []
    for item in sort.split(","):
        descending = item.startswith("-")
        name = item.lstrip("+-")
        try:
            steps = resolve_path(etype, name)
        except FilterParseError as exc:
            field = name.split(".")[-1]
            raise ApiError.invalid_value(
                f"{etype.name} does not contain the field {field}"
            ) from exc
        if any(s.to_many for s in steps):
            raise ApiError.invalid_value(f"Cannot sort across a to-many relationship: {name}")
        if steps[-1].rel_target is not None:
            raise ApiError.invalid_value(
                f"{steps[-1].rel_target} does not contain the field {name}"
            )
        keys.append((steps, descending))
    ordered = list(records)
    for steps, descending in reversed(keys):
        pred = Predicate(steps, "sort")
        values = {id(r): value_of(pred, r, store) for r in ordered}
        present = [r for r in ordered if values[id(r)] is not None]
        missing = [r for r in ordered if values[id(r)] is None]
        present.sort(key=lambda r: values[id(r)], reverse=descending)
        ordered = missing + present if descending else present + missing
    return ordered


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int
    totals: bool
    requested: bool  # any page[...] parameter: Elide then adds meta.page


def parse_page(params: dict[str, list[str]]) -> Page:
    """Elide's PaginationImpl.parseQueryParams (offset/limit or number/size)."""
    known = {"page[number]", "page[size]", "page[offset]", "page[limit]", "page[totals]",
             "page[first]", "page[after]", "page[last]", "page[before]"}
    data: dict[str, int] = {}
    for key, values in params.items():
        if key in known:
            if key == "page[totals]":
                data[key] = 0
            elif key in ("page[first]", "page[after]", "page[last]", "page[before]"):
                raise ApiError(400, "Invalid value: cursor pagination is not supported here")
            else:
                try:
                    data[key] = int(values[0], 10)
                except ValueError as exc:
                    raise ApiError.invalid_value("page values must be integers") from exc
        elif key.startswith("page["):
            raise ApiError.invalid_value(
                "Invalid Pagination Parameter. Accepted values are " + ", ".join(sorted(known))
            )
    by_pages = "page[size]" in data or "page[number]" in data
    if by_pages and ("page[limit]" in data or "page[offset]" in data):
        raise ApiError.invalid_value("Invalid usage of pagination parameters.")
    requested = bool(data)
    limit = data.get("page[size]" if by_pages else "page[limit]", DEFAULT_PAGE_SIZE)
    label = "size" if by_pages else "limit"
    if limit > MAX_PAGE_SIZE and requested:
        raise ApiError.invalid_value(
            f"Pagination {label} must be less than or equal to {MAX_PAGE_SIZE}"
        )
    if limit < 1:
        raise ApiError.invalid_value(f"Pagination {label} must contain a positive, non-zero value.")
    if by_pages:
        number = data.get("page[number]", 1)
        if number < 1:
            raise ApiError.invalid_value("Pagination number must be a positive, non-zero value.")
        offset = (number - 1) * limit
    else:
        offset = data.get("page[offset]", 0)
        if offset < 0:
            raise ApiError.invalid_value("Pagination offset must contain a positive value.")
    return Page(offset, limit, "page[totals]" in data, requested)


def page_meta(page: Page, total: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"number": page.offset // page.limit + 1, "limit": page.limit}
    if page.totals:
        meta["totalPages"] = total // page.limit + (1 if total % page.limit else 0)
        meta["totalRecords"] = total
    return {"page": meta}


def parse_includes(values: list[str], etype: EntityType) -> list[list[str]]:
    """``include=a.b,c`` as relationship paths, each checked against the model."""
    paths: list[list[str]] = []
    for value in values:
        for text in value.split(","):
            current: EntityType | None = etype
            segments = text.split(".")
            for segment in segments:
                if current is None:
                    raise ServerFault(f"include path {text} goes through an attribute")
                if segment in current.rels:
                    current = TYPES[current.rels[segment].target]
                elif segment in current.attrs or segment == "id":
                    current = None
                else:
                    raise ApiError.invalid_value(
                        f"{current.name} does not contain the field {segment}"
                    )
            if current is None:
                raise ServerFault(f"include path {text} ends at an attribute")
            paths.append(segments)
    return paths
