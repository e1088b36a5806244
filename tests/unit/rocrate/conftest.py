"""RO-Crate checks with roc-validator (RO-Crate 1.1 profile) and the ``rocrate`` reader.

The validator fetches the RO-Crate JSON-LD context from w3id.org; this machine has no
internet, so ``HttpRequester.get`` (the one place the validator fetches, for the context
check and for rdflib's JSON-LD loader) answers that one URL with the context bundled in
the ``rocrate`` package (RO-Crate 1.3's, which keeps every 1.1 term with the same IRI;
RO-Crate contexts only grow) and fails the test on any other URL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

CONTEXT_URL = "https://w3id.org/ro/crate/1.1/context"


def _context_response(url: str, *args: Any, **kwargs: Any) -> requests.Response:
    import rocrate

    if url != CONTEXT_URL:
        raise AssertionError(f"the RO-Crate validator fetched {url}: only {CONTEXT_URL} "
                             "is served offline")
    bundled = json.loads((Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld")
                         .read_text(encoding="utf-8"))
    response = requests.Response()
    response.status_code = 200
    response.url = url
    response.headers["Content-Type"] = "application/ld+json"
    response._content = json.dumps({"@context": bundled["@context"]}).encode()
    return response


@pytest.fixture
def offline_context(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from rocrate_validator.utils.http import HttpRequester

    # HttpRequester delegates get() to its session through __getattr__: a class attribute
    # takes precedence
    monkeypatch.setattr(HttpRequester, "get", lambda self, url, *a, **k: _context_response(url),
                        raising=False)
    yield


def validate(package: Path) -> list[tuple[str, str, str]]:
    """(severity, check id, message) of every required or recommended issue."""
    from rocrate_validator import services
    from rocrate_validator.models import Severity

    result = services.validate({"rocrate_uri": str(package), "profile_identifier": "ro-crate-1.1",
                                "requirement_severity": Severity.RECOMMENDED})
    return [(issue.severity.name, issue.check.identifier, issue.message)
            for issue in result.get_issues()]
