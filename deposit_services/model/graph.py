"""A pass-core JSON graph: the entities of one submission, loaded and checked.

The file is a JSON list of entities, each with ``@type`` and ``id`` (pass-core's form,
as in PASS's test resources). Graphs of the 2020 OA-PASS line (Fedora JSON-LD) are read
too: ``@id`` is the id, ``@type`` may carry a prefix (``pass:Submission``, a namespace
URI), ``@context`` is dropped, a reference may be ``{"@id": ...}`` or a URI whose last
segment is the id, ``submitterEmail`` may be a ``mailto:`` URI; their lower-case enum
spellings (``not-started``, ``web-link``) are read by the entity model.

Unknown fields are kept; a wrong field type, an unknown ``@type`` or a reference to an
entity that is not in the graph is a ``GraphError`` that names the entity and the field.
``Graph`` answers ``get`` and ``find`` like the store, so the DepositSubmission builder
works on either.

Documents from outside (this graph, repositories.json, message bodies) are read with
``load_json`` and ``tree_problem``: whatever their bytes, the outcome is a value or one
error of our tree that says which rule the document breaks, never a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError

from deposit_services.errors import DepositServicesError, GraphError, NotFound
from deposit_services.model.entities import ENTITY_TYPES, Entity, File, Submission

E = TypeVar("E", bound=Entity)

# PASS documents are a few levels deep; a limit keeps every later walk (ours, pydantic's,
# json.dumps into the store) far from Python's recursion limit.
MAX_JSON_DEPTH = 64
# The store keeps ids, and lease keys such as ``deposit:<id>``, in 255-character columns.
MAX_ID_LENGTH = 200
# A graph references its files by uri; one this large is not a submission graph.
MAX_GRAPH_BYTES = 64 * 1024 * 1024
MAX_INT_DIGITS = 4300  # Python's own limit for int(str)
_UTF8_BOM = b"\xef\xbb\xbf"
# Neither PostgreSQL text nor UTF-8 can hold a NUL or a lone UTF-16 surrogate.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')

KeyPath = list[str | int]


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages about input."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"


def json_kind(value: Any) -> str:
    """The JSON name of a parsed value's type: object, array, string, number, ..."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


def format_path(path: Iterable[str | int]) -> str:
    """``["a", 0, "b"]`` -> ``a[0].b``: a key path as the error messages spell it (a key
    that is long or not printable is quoted and cut)."""
    text = ""
    for key in path:
        if isinstance(key, int):
            text += f"[{key}]"
            continue
        name = key if key and key.isprintable() and len(key) <= 60 else short(key)
        text += f".{name}" if text else name
    return text


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object hook: a key twice in one object is an error (the last would win silently)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the key {short(key)} appears twice in one object "
                                 f"(the one starting {short(dict(pairs[:3]))})")
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _integer(digits: str) -> int:
    if len(digits) > MAX_INT_DIGITS:  # int() refuses them, with advice for programmers
        raise ValueError(f"a number of {len(digits)} digits (at most {MAX_INT_DIGITS})")
    return int(digits)


def _too_deep_at(text: str, limit: int) -> int:
    """The char offset where arrays/objects in ``text`` first nest deeper than ``limit``."""
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > limit:
                return token.start()
        elif bracket in "]}":
            depth -= 1
    return -1


def _decode(raw: bytes, what: str, error: type[DepositServicesError]) -> str:
    skip = len(_UTF8_BOM) if raw.startswith(_UTF8_BOM) else 0
    try:
        return str(memoryview(raw)[skip:], "utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + skip
        raise error(f"{what} is not UTF-8: byte 0x{raw[offset]:02x} at offset {offset} "
                    f"({exc.reason})") from None


def load_json(raw: bytes | str, what: str, error: type[DepositServicesError], *,
              invalid: str = "is not JSON", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON document from outside, or raise ``error`` naming ``what`` and the rule
    it breaks: not UTF-8 (with the byte offset), empty, not JSON (``invalid``), NaN or
    Infinity, a key twice in one object, nested too deep for the parser (reported as
    deeper than ``max_depth``, the limit ``tree_problem`` then applies).

    A UTF-8 byte order mark is skipped, as Jackson (PASS) does. Values are not checked
    here: ``tree_problem`` does that on the parsed document.
    """
    text = _decode(raw, what, error) if isinstance(raw, bytes) else raw.removeprefix("\ufeff")
    del raw  # a large document is held once, as text, while it is parsed
    if not text or text.isspace():
        raise error(f"{what} is empty")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant,
                          parse_int=_integer)
    except RecursionError:
        raise error(f"{what}: arrays and objects are nested more than {max_depth} levels "
                    f"deep (from char {_too_deep_at(text, max_depth)})") from None
    except json.JSONDecodeError as exc:
        raise error(f"{what} {invalid}: {exc}") from None
    except ValueError as exc:  # our hooks
        raise error(f"{what} {invalid}: {exc}") from None


def unstorable(text: str) -> str | None:
    """Why ``text`` cannot be kept (a NUL, a lone surrogate), or None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    what = "a NUL character" if char == "\x00" else f"a lone UTF-16 surrogate {char!a}"
    return f"contains {what} at position {found.start()} (not valid in stored text)"


def tree_problem(data: Any, max_depth: int = MAX_JSON_DEPTH) -> tuple[KeyPath, str] | None:
    """The first place in parsed JSON that cannot be kept, and why: arrays and objects
    nested more than ``max_depth`` deep, or a key or string that ``unstorable`` refuses.

    Iterative, so a deep document costs no stack; memory is one iterator per level.
    """
    frames: list[Iterator[tuple[str | int, Any]]] = [iter((("", data),))]
    path: KeyPath = [""]
    while frames:
        step = next(frames[-1], None)
        if step is None:
            frames.pop()
            path.pop()
            continue
        key, value = step
        path[-1] = key
        if isinstance(key, str) and (why := unstorable(key)) is not None:
            return path[1:], f"the key {why}"
        if isinstance(value, dict | list):
            if len(frames) > max_depth:
                return path[1:], (f"arrays and objects are nested more than {max_depth} "
                                  "levels deep")
            frames.append(iter(value.items()) if isinstance(value, dict)
                          else enumerate(value))
            path.append("")
        elif isinstance(value, str) and (why := unstorable(value)) is not None:
            return path[1:], why
    return None


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"field {'.'.join(str(p) for p in err['loc']) or '(entity)'}: {err['msg']}"
        + ("" if err["type"] == "missing" else f" (it is {json_kind(err['input'])})")
        for err in exc.errors()
    )


def _entity_at(entries: list[Any], path: KeyPath) -> str:
    """Where a key path into the entity list points: ``File '16' (graph entry 1) field uri``."""
    if not path or not isinstance(path[0], int):
        return f"at {format_path(path) or 'the top level'}"
    entry = entries[path[0]]
    who = f"graph entry {path[0]}"
    if isinstance(entry, dict):
        kind = entity_type(entry.get("@type"))
        label = kind if isinstance(kind, str) and kind in ENTITY_TYPES else "entity"
        who = f"{label} {short(entry_id(entry))} ({who})"
    rest = format_path(path[1:])
    return f"{who} field {rest}" if rest else who


def _check_text(where: str, field: str, value: str | None, limit: int | None = None) -> None:
    """Ids, file names and uris are printable text (they become keys, paths, URLs)."""
    if value is None:
        return
    if limit is not None and len(value) > limit:
        raise GraphError(f"{where} field {field}: {len(value)} characters long; at most "
                         f"{limit} (the store keeps ids in 255-character columns)")
    control = _CONTROL.search(value)
    if control is not None:
        raise GraphError(f"{where} field {field}: contains the control character "
                         f"{control.group()!a} at position {control.start()}")


def entity_type(kind: Any) -> Any:
    """``@type`` as an ENTITY_TYPES name where it is one with a prefix (``pass:File``,
    ``http://oapass.org/ns/pass#File``); anything else (a list included) is returned as
    it is, for the error."""
    if isinstance(kind, str) and kind not in ENTITY_TYPES:
        local = re.split(r"[#/:]", kind.strip())[-1]
        return local if local in ENTITY_TYPES else kind
    return kind


def _jsonld_ref(value: Any) -> Any:
    """A JSON-LD reference ``{"@id": x}`` as ``x``; lists element by element."""
    if isinstance(value, dict) and set(value) == {"@id"}:
        return value["@id"]
    if isinstance(value, list):
        return [_jsonld_ref(v) for v in value]
    return value


def entry_id(data: dict[str, Any]) -> Any:
    """An entry's id: ``id`` (pass-core), else ``@id`` (the 2020 JSON-LD graphs)."""
    return data["id"] if data.get("id") not in (None, "") else data.get("@id")


def _current_form(data: dict[str, Any], kind: str, entity_id: Any) -> dict[str, Any]:
    """The entry's fields as pass-core spells them (see the module docstring)."""
    body = {k: _jsonld_ref(v) for k, v in data.items() if not k.startswith("@")}
    body["id"] = entity_id
    email = body.get("submitterEmail")
    if kind == "Submission" and isinstance(email, str) and email[:7].lower() == "mailto:":
        body["submitterEmail"] = email[7:]
    return body


def parse_entity(data: Any, position: int) -> Entity:
    """One graph entry as its entity class; GraphError names what is wrong."""
    if not isinstance(data, dict):
        raise GraphError(f"graph entry {position} is {json_kind(data)}, not a JSON object "
                         "with @type and id")
    kind = entity_type(data.get("@type"))
    entity_id = entry_id(data)
    known = ", ".join(ENTITY_TYPES)
    if not isinstance(kind, str):
        where = f"entity {short(entity_id)} (graph entry {position})"
        if kind is None:
            raise GraphError(f"{where}: no @type (one of: {known})")
        raise GraphError(f"{where} field @type: must be a string (one of: {known}), not "
                         f"{json_kind(kind)}: {short(kind)}")
    where = (f"{kind if kind in ENTITY_TYPES else 'entity'} {short(entity_id)} "
             f"(graph entry {position})")
    if kind not in ENTITY_TYPES:
        raise GraphError(f"{where}: unknown @type {short(kind)} (known: {known})")
    if entity_id is None or entity_id == "":
        raise GraphError(f"{kind} (graph entry {position}): no id (an entity has id, or "
                         "@id in the 2020 JSON-LD graphs)")
    body = _current_form(data, kind, entity_id)
    try:
        entity = ENTITY_TYPES[kind].model_validate(body)
    except ValidationError as exc:
        raise GraphError(f"{where}: {_describe(exc)}") from exc
    _check_text(where, "id", entity.id, MAX_ID_LENGTH)
    if isinstance(entity, File):
        _check_text(where, "uri", entity.uri)
        _check_text(where, "name", entity.name)
    return entity


def _last_segment(uri: str) -> str:
    return re.split(r"[/#]", uri.rstrip("/"))[-1]


def link_by_last_segment(entities: list[Entity]) -> tuple[Entity, ...]:
    """The entities, each reference that names no entity by its whole value replaced by
    the one entity of its type whose id has the same last URI segment (a 2020 graph may
    give ``@id`` as a Fedora URI and refer by a shorter form, or the other way round).
    A reference that still names none is left for ``Graph.check`` to report."""
    ids: dict[str, set[str]] = {}
    for entity in entities:
        ids.setdefault(entity.TYPE, set()).add(entity.id)
    by_segment: dict[tuple[str, str], list[str]] = {}
    for kind, known in ids.items():
        for entity_id in known:
            by_segment.setdefault((kind, _last_segment(entity_id)), []).append(entity_id)

    def link(target: str, ref: Any) -> Any:
        if not isinstance(ref, str) or ref in ids.get(target, ()):
            return ref
        found = by_segment.get((target, _last_segment(ref)), [])
        return found[0] if len(found) == 1 else ref

    linked: list[Entity] = []
    for entity in entities:
        update: dict[str, Any] = {}
        for field_name, target in entity.REFS.items():
            value = getattr(entity, field_name)
            new = [link(target, v) for v in value] if isinstance(value, list) \
                else link(target, value)
            if new != value:
                update[field_name] = new
        linked.append(entity.model_copy(update=update) if update else entity)
    return tuple(linked)


@dataclass(frozen=True)
class Graph:
    """The entities of a graph, in file order, indexed by (type, id)."""

    entities: tuple[Entity, ...]

    @classmethod
    def parse(cls, data: Any) -> Graph:
        """Entities from parsed JSON (a list, or pass-core's ``{"@graph": [...]}``)."""
        if isinstance(data, dict) and isinstance(data.get("@graph"), list):
            data = data["@graph"]
        if not isinstance(data, list):
            raise GraphError("a graph is a JSON list of entities, each with @type and id; "
                             f"this is {json_kind(data)}")
        problem = tree_problem(data)
        if problem is not None:
            raise GraphError(f"{_entity_at(data, problem[0])}: {problem[1]}")
        graph = cls(link_by_last_segment(
            [parse_entity(item, n) for n, item in enumerate(data)]))
        graph.check()
        return graph

    @classmethod
    def load(cls, path: Path) -> Graph:
        """The graph in the file at ``path``; GraphError names the file and the rule."""
        try:
            size = path.stat().st_size
            if size > MAX_GRAPH_BYTES:
                raise GraphError(f"graph {path} is {size} bytes; a graph over "
                                 f"{MAX_GRAPH_BYTES} bytes is not a submission graph "
                                 "(files are referenced by uri, not embedded)")
            raw = path.read_bytes()
        except OSError as exc:
            raise GraphError(f"cannot read graph {path}: {exc.strerror or exc}") from exc
        data = load_json(raw, f"graph {path}", GraphError)
        try:
            return cls.parse(data)
        except GraphError as exc:
            raise GraphError(f"graph {path}: {exc}") from exc

    @cached_property
    def _index(self) -> dict[tuple[str, str], Entity]:
        return {(e.TYPE, e.id): e for e in self.entities}

    def check(self) -> None:
        """Duplicate ids and dangling or mistyped references are errors."""
        seen: set[tuple[str, str]] = set()
        for entity in self.entities:
            key = (entity.TYPE, entity.id)
            if key in seen:
                raise GraphError(f"{entity.TYPE} {entity.id!r} appears twice in the graph")
            seen.add(key)
        for entity in self.entities:
            for field_name, target_type in entity.REFS.items():
                value = getattr(entity, field_name)
                refs: Iterable[str] = value if isinstance(value, list) else [value]
                for ref in refs:
                    if ref is not None and (target_type, ref) not in seen:
                        alias = type(entity).model_fields[field_name].alias or field_name
                        raise GraphError(
                            f"{entity.TYPE} {entity.id!r} field {alias}: refers to "
                            f"{target_type} {short(ref)}, which is not in the graph"
                        )
        self.submission  # noqa: B018 - exactly one Submission is part of the contract

    @property
    def submission(self) -> Submission:
        found = [e for e in self.entities if isinstance(e, Submission)]
        if len(found) != 1:
            raise GraphError(f"a graph holds exactly one Submission; this one has {len(found)}")
        return found[0]

    def get(self, cls: type[E], id: str) -> E:
        entity = self._index.get((cls.TYPE, id))
        if entity is None:
            raise NotFound(f"{cls.TYPE} {id!r} is not in the graph")
        assert isinstance(entity, cls)
        return entity

    def find(self, cls: type[E], **criteria: Any) -> list[E]:
        found = [
            e for e in self.entities
            if isinstance(e, cls) and all(getattr(e, k) == v for k, v in criteria.items())
        ]
        return sorted(found, key=lambda e: e.id)


def resolve_file_uri(uri: str, base: Path) -> str:
    """A File's uri as an absolute ``file:`` URI or an http(s) URL.

    Relative paths and PASS's ``classpath:`` / ``encodedclasspath:`` (percent-encoded)
    forms resolve against ``base``; absolute paths become file: URIs.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https", "file"):
        return uri
    if scheme == "classpath":
        path = uri.split(":", 1)[1].lstrip("/")
    elif scheme == "encodedclasspath":
        path = unquote(uri.split(":", 1)[1]).lstrip("/")
    elif scheme and len(scheme) > 1:
        raise GraphError(f"file uri {uri!r}: unsupported scheme {scheme!r}")
    else:
        path = uri
    resolved = Path(path) if Path(path).is_absolute() else base / path
    return resolved.resolve().as_uri()


def resolve_file_uris(graph: Graph, base: Path) -> Graph:
    """The graph with every File's uri resolved against ``base``."""
    entities: list[Entity] = []
    for entity in graph.entities:
        if isinstance(entity, File) and entity.uri:
            try:
                uri = resolve_file_uri(entity.uri, base)
            except GraphError as exc:
                raise GraphError(f"File {entity.id!r} field uri: {exc}") from exc
            entity = entity.model_copy(update={"uri": uri})
        entities.append(entity)
    return Graph(tuple(entities))
