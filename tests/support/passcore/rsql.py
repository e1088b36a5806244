"""An RSQL parser with the grammar of rsql-parser (cz.jirutka), the one Elide uses.

``;`` or `` and `` is AND, ``,`` or `` or `` is OR (AND binds tighter), parentheses group,
a comparison is ``selector operator argument`` where the argument is an unquoted word,
a ``'single'`` or ``"double"`` quoted string (backslash escapes the next character) or a
parenthesised list. Operators are FIQL ``=name=`` forms plus ``==``, ``!=``, ``<``, ``<=``,
``>``, ``>=``; the known set is rsql-parser's defaults plus those Elide's RSQLFilterDialect
adds. Any syntax error, unknown operator, or a list given to a single-value operator is an
``RsqlSyntaxError``, which Elide reports as "Filter expression is not in expected format".
"""

from __future__ import annotations

from dataclasses import dataclass

# operator -> takes a list of values (rsql-parser's ComparisonOperator.isMultiValue)
OPERATORS: dict[str, bool] = {
    "==": False, "!=": False,
    "=lt=": False, "<": False, "=le=": False, "<=": False,
    "=gt=": False, ">": False, "=ge=": False, ">=": False,
    "=in=": True, "=out=": True,
    # added by Elide's RSQLFilterDialect
    "=ini=": True, "=outi=": True, "=isnull=": False, "=isempty=": False,
    "=hasmember=": False, "=hasnomember=": False, "=between=": True, "=notbetween=": True,
    "=subsetof=": True, "=notsubsetof=": True, "=supersetof=": True, "=notsupersetof=": True,
}

# the symbolic spellings, as rsql-parser maps them
ALIASES = {"<": "=lt=", "<=": "=le=", ">": "=gt=", ">=": "=ge="}

_RESERVED = frozenset("\"'();,=<>!~ ")


class RsqlSyntaxError(Exception):
    """The expression does not parse."""


@dataclass(frozen=True)
class Comparison:
    selector: str
    operator: str  # canonical FIQL spelling
    arguments: tuple[str, ...]


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Comparison | And | Or


def parse(text: str) -> Node:
    """Parse ``text``; raises RsqlSyntaxError."""
    parser = _Parser(text)
    node = parser.parse_or()
    parser.skip_space()
    if parser.pos != len(text):
        raise RsqlSyntaxError(f"unexpected {text[parser.pos:]!r}")
    return node


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def _keyword(self, symbol: str, word: str) -> bool:
        """A logical operator: the symbol, or the word with one space either side
        (rsql-parser's tokens; other blanks are skipped). Nothing consumed if absent."""
        start = self.pos
        while True:
            if self.text.startswith(f" {word} ", self.pos):
                self.pos += len(word) + 2
                return True
            if self.pos < len(self.text) and self.text[self.pos] in " \t":
                self.pos += 1
                continue
            break
        if self.text.startswith(symbol, self.pos):
            self.pos += 1
            return True
        self.pos = start
        return False

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while self._keyword(",", "or"):
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def parse_and(self) -> Node:
        children = [self.parse_constraint()]
        while self._keyword(";", "and"):
            children.append(self.parse_constraint())
        return children[0] if len(children) == 1 else And(tuple(children))

    def parse_constraint(self) -> Node:
        self.skip_space()
        if self.text.startswith("(", self.pos):
            self.pos += 1
            node = self.parse_or()
            self.skip_space()
            if not self.text.startswith(")", self.pos):
                raise RsqlSyntaxError(f"missing ')' at {self.pos}")
            self.pos += 1
            return node
        return self.parse_comparison()

    def _unreserved(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _RESERVED:
            self.pos += 1
        return self.text[start:self.pos]

    def _operator(self) -> str:
        text, pos = self.text, self.pos
        if text.startswith("!=", pos):
            self.pos += 2
            return "!="
        for symbol in ("<=", ">=", "<", ">"):
            if text.startswith(symbol, pos):
                self.pos += len(symbol)
                return ALIASES[symbol]
        if text.startswith("=", pos):
            end = pos + 1
            while end < len(text) and text[end].isascii() and text[end].isalpha():
                end += 1
            if end < len(text) and text[end] == "=":
                self.pos = end + 1
                return text[pos:end + 1]
        raise RsqlSyntaxError(f"expected an operator at {pos}")

    def _value(self) -> str:
        self.skip_space()
        if self.pos < len(self.text) and self.text[self.pos] in "'\"":
            quote = self.text[self.pos]
            self.pos += 1
            chars: list[str] = []
            while self.pos < len(self.text):
                char = self.text[self.pos]
                if char == "\\" and self.pos + 1 < len(self.text):
                    chars.append(self.text[self.pos + 1])
                    self.pos += 2
                    continue
                if char == quote:
                    self.pos += 1
                    return "".join(chars)
                chars.append(char)
                self.pos += 1
            raise RsqlSyntaxError("unterminated quoted value")
        value = self._unreserved()
        if not value:
            raise RsqlSyntaxError(f"expected a value at {self.pos}")
        return value

    def parse_comparison(self) -> Comparison:
        selector = self._unreserved()
        if not selector:
            raise RsqlSyntaxError(f"expected a selector at {self.pos}")
        self.skip_space()
        operator = self._operator()
        if operator not in OPERATORS:
            raise RsqlSyntaxError(f"unknown operator {operator}")
        self.skip_space()
        if self.text.startswith("(", self.pos):
            self.pos += 1
            values = [self._value()]
            while True:
                self.skip_space()
                if self.text.startswith(",", self.pos):
                    self.pos += 1
                    values.append(self._value())
                    continue
                if self.text.startswith(")", self.pos):
                    self.pos += 1
                    break
                raise RsqlSyntaxError(f"expected ',' or ')' at {self.pos}")
        else:
            values = [self._value()]
        if len(values) > 1 and not OPERATORS[operator]:
            raise RsqlSyntaxError(f"operator {operator} expects a single argument")
        return Comparison(selector, operator, tuple(values))
