"""The records' own search (no index): the query-string subset it understands."""

from __future__ import annotations

import pytest

from deposit_services.errors import SearchError
from deposit_services.search.base import operator_query
from deposit_services.search.records import match, parse

DOCUMENT = {"@type": "Deposit", "@id": "31", "depositStatus": "FAILED",
            "doi": "10.1234/abc.7", "statusMessage": "Connection refused by sftp.example.org",
            "errors": ["timeout", "connection refused"], "attempts": 3}


@pytest.mark.parametrize(("query", "found"), [
    ("depositStatus:FAILED", True),
    ("depositStatus:ACCEPTED", False),
    ('doi:"10.1234/abc.7"', True),
    ('doi:"10.1234/abc"', False),  # a DOI field matches whole, not by prefix
    ("doi:10.1234/abc*", True),
    ("refused", True),
    ("refused AND depositStatus:FAILED", True),
    ("refused depositStatus:ACCEPTED", False),
    ('"connection refused"', True),
    ("timeout", True),
    ("@type:Submission", False),
])
def test_match(query: str, found: bool) -> None:
    assert match(DOCUMENT, parse(query)) is found


@pytest.mark.parametrize("query", ["10.1234/abc.7", "https://doi.org/10.1234/abc.7",
                                   "doi:10.1234/abc.7", "  10.1234/ABC.7 "])
def test_a_bare_doi_is_searched_as_a_doi(query: str) -> None:
    assert operator_query(query).lower() == 'doi:"10.1234/abc.7"'
    assert match(DOCUMENT, parse(operator_query(query).lower()))
    assert operator_query("refused 10.1234/abc.7") == "refused 10.1234/abc.7"


def test_an_unclosed_quote_is_a_search_error() -> None:
    with pytest.raises(SearchError, match="cannot read the query"):
        parse('title:"unclosed')
