"""Elide's reading side: RSQL filters, sorting, paging and include paths.

Filters follow Elide's RSQLFilterDialect (the only dialect pass-core configures): a path
is ``field`` or ``relationship.field`` (``id`` is the id), ``==``/``=in=`` are exact and
case-sensitive unless the first argument starts or ends with ``*`` (then one LIKE on that
argument), ``=ini=``/``=outi=`` ignore case, arguments are coerced to the field's type first
(so ``*`` on an enum is a 400, ``*`` on a number is dropped). The query runs as SQL with
LEFT JOINs over to-many relationships, so comparisons with NULL are unknown (``!=`` does
not match NULL) and an entity matches when any combination of its joined rows does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.support.passcore import rsql
from tests.support.passcore.errors import ApiError, ServerFault
from tests.support.passcore.schema import (
    COLLECTION_KINDS,
    TYPES,
    Attr,
    EntityType,
    Kind,
    coerce_scalar,
)
from tests.support.passcore.store import Record, Store

_COLLECTION_OPS = frozenset({
    "=hasmember=", "=hasnomember=", "=subsetof=", "=notsubsetof=", "=supersetof=",
    "=notsupersetof=", "=isempty=",
})


class FilterParseError(Exception):
    """Elide's ParseException: reported as a 400 with its message."""


@dataclass(frozen=True)
class Step:
    """One element of a path: a relationship, an attribute or the id."""

    owner: EntityType
    name: str
    rel_target: str | None = None
    to_many: bool = False
    attr: Attr | None = None


@dataclass(frozen=True)
class Predicate:
    steps: tuple[Step, ...]
    op: str  # in, ini, prefix, postfix, infix (+ _ci), lt, le, gt, ge, between, isnull...
    values: tuple[Any, ...] = ()

    @property
    def aliases(self) -> list[tuple[str, ...]]:
        """The to-many joins this predicate's path goes through (collection operators
        look at the whole collection instead)."""
        if self.op in _COLLECTION_OPS:
            return []
        names = [s.name for s in self.steps]
        return [tuple(names[: i + 1]) for i, s in enumerate(self.steps) if s.to_many]


@dataclass(frozen=True)
class Not:
    child: Expr


@dataclass(frozen=True)
class Junction:
    conjunction: bool
    children: tuple[Expr, ...]


Expr = Predicate | Not | Junction


# -- parsing --------------------------------------------------------------------------------


def parse_filters(
    params: dict[str, list[str]], path_tail: str
) -> tuple[Expr | None, dict[str, Expr]]:
    """The global ``filter`` and the typed ``filter[type]`` expressions, with Elide's
    error reporting (JsonApiRequestScope): a global expression needs a collection path."""
    filters = {k: v for k, v in params.items() if k.startswith("filter")}
    if not filters:
        return None, {}
    error = ""
    global_expr: Expr | None = None
    try:
        global_expr = _parse_global(filters, path_tail)
    except FilterParseError as exc:
        error = str(exc)
    try:
        return global_expr, _parse_typed(filters)
    except FilterParseError as exc:
        if global_expr is not None:
            return global_expr, {}
        if not error:
            error = str(exc)
        elif error != str(exc):
            error = f"{error}\n{exc}"
        raise ApiError(400, error) from exc


def _parse_global(filters: dict[str, list[str]], path_tail: str) -> Expr:
    if len(filters) != 1:
        raise FilterParseError("There can only be a single filter query parameter")
    name, values = next(iter(filters.items()))
    if name != "filter":
        raise FilterParseError(f"Invalid query parameter: {name}")
    if len(values) != 1:
        raise FilterParseError("There can only be a single filter query parameter")
    etype = TYPES.get(path_tail)
    if etype is None:
        raise FilterParseError(f"No such collection: {path_tail}")
    return parse_expression(values[0], etype)


def _parse_typed(filters: dict[str, list[str]]) -> dict[str, Expr]:
    found: dict[str, Expr] = {}
    for name, values in filters.items():
        match = re.search(r"filter\[([^\]]+)\]", name)
        if match is None:
            raise FilterParseError(f"Invalid query parameter: {name}")
        type_name = match.group(1)
        if len(values) != 1:
            raise FilterParseError(
                f"Exactly one RSQL expression must be defined for type : {type_name}"
            )
        etype = TYPES.get(type_name)
        if etype is None:
            raise FilterParseError(f"Invalid query parameter: {name}")
        found[type_name] = parse_expression(values[0], etype)
    return found


def parse_expression(text: str, etype: EntityType) -> Expr:
    try:
        node = rsql.parse(text)
    except rsql.RsqlSyntaxError as exc:
        raise FilterParseError(f"Filter expression is not in expected format at: {text}") from exc
    return _compile(node, etype)


def _compile(node: rsql.Node, etype: EntityType) -> Expr:
    if isinstance(node, rsql.And):
        return Junction(True, tuple(_compile(c, etype) for c in node.children))
    if isinstance(node, rsql.Or):
        return Junction(False, tuple(_compile(c, etype) for c in node.children))
    return _comparison(node, etype)


def resolve_path(etype: EntityType, selector: str) -> tuple[Step, ...]:
    """A dotted path as Elide's RSQL visitor builds it (buildPath)."""
    steps: list[Step] = []
    current: EntityType | None = etype
    previous = etype.name
    for name in selector.split("."):
        if not re.fullmatch(r"\w+", name):
            raise FilterParseError(f"Filter expression is not in expected format at: {name}")
        if current is None:
            raise FilterParseError(f"No such association {name} for type {previous}")
        if name == "id":
            steps.append(Step(current, "id"))
            current, previous = None, name
        elif name in current.rels:
            rel = current.rels[name]
            steps.append(Step(current, name, rel.target, rel.to_many))
            current, previous = TYPES[rel.target], rel.target
        elif name in current.attrs:
            steps.append(Step(current, name, attr=current.attrs[name]))
            current, previous = None, name
        else:
            raise FilterParseError(f"No such association {name} for type {current.name}")
    return tuple(steps)


def _coerce_argument(step: Step, argument: str) -> Any:
    if step.name == "id" and step.attr is None:
        return coerce_scalar(Kind.LONG, argument.replace("*", ""))
    if step.rel_target is not None:
        raise ServerFault(
            f"Argument [{argument}] did not match the entity type of {step.name}: "
            f"compare {step.name}.id instead"
        )
    assert step.attr is not None
    kind = step.attr.element if step.attr.kind in COLLECTION_KINDS else step.attr.kind
    if kind is Kind.LONG:
        argument = argument.replace("*", "")
    return coerce_scalar(kind, argument, step.attr.values)


def _comparison(node: rsql.Comparison, etype: EntityType) -> Expr:
    steps = resolve_path(etype, node.selector)
    last, op, args = steps[-1], node.operator, node.arguments
    to_many_before_last = any(s.to_many for s in steps[:-1])
    last_is_collection = last.to_many or (
        last.attr is not None and last.attr.kind in COLLECTION_KINDS
    )
    if last.attr is not None and last.attr.kind is Kind.CONVERTED_LIST:
        raise ServerFault(f"{last.name} is one converted column: Hibernate cannot filter it")
    if op == "=isempty=":
        if to_many_before_last:
            raise FilterParseError(
                f"Invalid association {node.selector}. toMany association has to be the "
                "target collection."
            )
        if not last_is_collection:
            raise FilterParseError("Invalid Path: Last Path Element has to be a collection type")
        return Predicate(steps, "isempty", (_boolean(op, args[0]),))
    if op in _COLLECTION_OPS:
        if any(s.to_many for s in steps):
            if last_is_collection:
                raise FilterParseError(
                    "Invalid Path: Last Path Element cannot be a collection type"
                )
        elif not last_is_collection:
            raise FilterParseError("Invalid Path: Last Path Element has to be a collection type")
        values = tuple(_coerce_argument(last, a) for a in args)
        return Predicate(steps, op.strip("="), values)
    if op == "=isnull=":
        return Predicate(steps, "isnull", (_boolean(op, args[0]),))
    if last.attr is not None and last.attr.kind is Kind.ELEMENT_LIST:
        raise ServerFault(f"{last.name} is a collection: Hibernate cannot compare it with {op}")
    values = tuple(_coerce_argument(last, a) for a in args)
    if op in ("==", "=in="):
        return _equality(args[0], steps, values, case_sensitive=True)
    if op == "=ini=":
        return _equality(args[0], steps, values, case_sensitive=False)
    if op in ("!=", "=out="):
        return Not(_equality(args[0], steps, values, case_sensitive=True))
    if op == "=outi=":
        return Not(_equality(args[0], steps, values, case_sensitive=False))
    if op in ("=between=", "=notbetween="):
        if len(values) != 2:
            raise ApiError(400, f"Invalid value: {op} needs two values")
        return Predicate(steps, op.strip("="), values)
    return Predicate(steps, op.strip("="), values)


def _boolean(op: str, argument: str) -> bool:
    try:
        return bool(coerce_scalar(Kind.BOOLEAN, argument))
    except ApiError as exc:
        raise FilterParseError(f"Invalid value for operator {op} '{argument}'") from exc


def _equality(
    argument: str, steps: tuple[Step, ...], values: tuple[Any, ...], case_sensitive: bool
) -> Predicate:
    """Elide's equalityExpression: the first argument's ``*`` makes one LIKE."""
    suffix = "" if case_sensitive else "_ci"
    starts, ends = argument.startswith("*"), argument.endswith("*")
    if starts and ends and len(argument) > 2:
        return Predicate(steps, "infix" + suffix, (argument[1:-1],))
    if starts and len(argument) > 1:
        return Predicate(steps, "postfix" + suffix, (argument[1:],))
    if ends and len(argument) > 1:
        return Predicate(steps, "prefix" + suffix, (argument[:-1],))
    return Predicate(steps, "in" + suffix, values)


# -- evaluation -----------------------------------------------------------------------------


def _predicates(expr: Expr) -> Iterator[Predicate]:
    if isinstance(expr, Predicate):
        yield expr
    elif isinstance(expr, Not):
        yield from _predicates(expr.child)
    else:
        for child in expr.children:
            yield from _predicates(child)


def matches(record: Record, expr: Expr, store: Store) -> bool:
    """True when some combination of the record's joined rows satisfies ``expr``."""
    aliases = sorted({a for p in _predicates(expr) for a in p.aliases}, key=len)
    for binding in _bindings(record, aliases, {}, store):
        if _evaluate(expr, record, binding, store) is True:
            return True
    return False


Binding = dict[tuple[str, ...], Record | None]


def _bindings(record: Record, aliases: list[tuple[str, ...]], binding: Binding,
            store: Store) -> Iterator[Binding]:
    if not aliases:
        yield binding
        return
    for extended in _bindings_for(record, aliases[0], binding, store):
        yield from _bindings(record, aliases[1:], extended, store)


def _bindings_for(record: Record, alias: tuple[str, ...], binding: Binding,
                  store: Store) -> Iterator[Binding]:
    """Every row the LEFT JOIN for ``alias`` gives (one None row for an empty set)."""
    parents = [a for a in binding if len(a) < len(alias) and alias[: len(a)] == a]
    parent = max(parents, key=len) if parents else ()
    current: Record | None = binding[parent] if parent else record
    for name in alias[len(parent):-1]:
        current = _follow_one(current, name, store)
    candidates: list[Record | None] = (
        list(store.related(current, alias[-1])) if current is not None else []
    )
    for candidate in candidates or [None]:
        yield {**binding, alias: candidate}


def _follow_one(current: Record | None, name: str, store: Store) -> Record | None:
    if current is None:
        return None
    found = store.related(current, name)
    return found[0] if found else None


def _value(pred: Predicate, record: Record, binding: Binding, store: Store) -> Any:
    current: Record | None = record
    for i, step in enumerate(pred.steps):
        if current is None:
            return None
        if step.rel_target is not None:
            alias = tuple(s.name for s in pred.steps[: i + 1])
            current = binding[alias] if alias in binding else _follow_one(current, step.name, store)
        elif step.attr is None:
            return current.id
        else:
            return current.attrs.get(step.name)
    return current


def _collection(pred: Predicate, record: Record, store: Store) -> list[Any]:
    """Every value at the end of the path, across to-many steps (collection operators)."""
    currents: list[Record] = [record]
    for step in pred.steps:
        if step.rel_target is not None:
            currents = [r for c in currents for r in store.related(c, step.name)]
            continue
        values: list[Any] = []
        for current in currents:
            value = current.id if step.attr is None else current.attrs.get(step.name)
            values.extend(value if isinstance(value, list) else [value])
        return values
    return currents


def _evaluate(expr: Expr, record: Record, binding: Binding, store: Store) -> bool | None:
    if isinstance(expr, Not):
        result = _evaluate(expr.child, record, binding, store)
        return None if result is None else not result
    if isinstance(expr, Junction):
        results = [_evaluate(c, record, binding, store) for c in expr.children]
        decisive = not expr.conjunction  # AND: a False decides; OR: a True decides
        if any(r is decisive for r in results):
            return decisive
        return None if any(r is None for r in results) else not decisive
    return _compare(expr, record, binding, store)


def _compare(pred: Predicate, record: Record, binding: Binding, store: Store) -> bool | None:
    op, values = pred.op, pred.values
    if op in ("isempty", "hasmember", "hasnomember", "subsetof", "notsubsetof", "supersetof",
              "notsupersetof"):
        items = _collection(pred, record, store)
        keys = [i.id if isinstance(i, Record) else i for i in items]
        result: bool = {
            "isempty": lambda: (len(keys) == 0) == values[0],
            "hasmember": lambda: values[0] in keys,
            "hasnomember": lambda: values[0] not in keys,
            "subsetof": lambda: set(keys) <= set(values),
            "notsubsetof": lambda: not set(keys) <= set(values),
            "supersetof": lambda: set(keys) >= set(values),
            "notsupersetof": lambda: not set(keys) >= set(values),
        }[op]()
        return result
    value = _value(pred, record, binding, store)
    if op == "isnull":
        return bool((value is None) == values[0])
    if value is None:
        return None
    if op.endswith("_ci"):
        value, values = str(value).lower(), tuple(str(v).lower() for v in values)
        op = op[:-3]
    if op in ("prefix", "postfix", "infix"):
        text, pattern = str(value), str(values[0])
        return {"prefix": text.startswith, "postfix": text.endswith,
                "infix": text.__contains__}[op](pattern)
    if op == "in":
        return value in values
    if op in ("between", "notbetween"):
        inside = bool(values[0] <= value <= values[1])
        return inside if op == "between" else not inside
    bound = values[0]
    if op == "lt":
        return bool(value < bound)
    if op == "le":
        return bool(value <= bound)
    if op == "gt":
        return bool(value > bound)
    return bool(value >= bound)


def value_of(pred: Predicate, record: Record, store: Store) -> Any:
    """The value at the end of a path with no to-many joins (for sorting)."""
    return _value(pred, record, {}, store)
