"""The RSQL grammar the server parses (rsql-parser's, as Elide uses it)."""

from __future__ import annotations

import pytest

from tests.support.passcore.rsql import And, Comparison, Or, RsqlSyntaxError, parse


def test_precedence_groups_and_keywords() -> None:
    assert parse("a==1;b==2,c==3") == Or((And((Comparison("a", "==", ("1",)),
                                               Comparison("b", "==", ("2",)))),
                                          Comparison("c", "==", ("3",))))
    assert parse("a==1;(b==2,c==3)") == And((Comparison("a", "==", ("1",)),
                                             Or((Comparison("b", "==", ("2",)),
                                                 Comparison("c", "==", ("3",))))))
    assert parse("a==1 and b==2 or c==3") == parse("a==1;b==2,c==3")
    assert parse("a==1  or b==2") == parse("a==1,b==2")


def test_values_operators_and_quotes() -> None:
    assert parse("a=in=('x y',\"z\\\"\",w)") == Comparison("a", "=in=", ("x y", 'z"', "w"))
    assert parse(r"a=='it\'s'") == Comparison("a", "==", ("it's",))
    assert parse("a>=5") == Comparison("a", "=ge=", ("5",))
    assert parse("a<5") == Comparison("a", "=lt=", ("5",))
    assert parse("a=isnull=true") == Comparison("a", "=isnull=", ("true",))
    assert parse("a.b.id==*x*") == Comparison("a.b.id", "==", ("*x*",))
    assert parse("a==2026-01-01T00:00:00.000Z") == Comparison(
        "a", "==", ("2026-01-01T00:00:00.000Z",)
    )


@pytest.mark.parametrize("text", [
    "", "a", "a==", "a=foo=1", "a==(1,2)", "(a==1", "a==1)", "a==1;", "a=='x", "a==1 b==2",
    "a=isnull=(true,false)",
])
def test_syntax_errors(text: str) -> None:
    with pytest.raises(RsqlSyntaxError):
        parse(text)
