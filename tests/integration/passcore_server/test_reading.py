"""Reading: documents, include, RSQL filters, paging, sorting, sparse fieldsets, errors."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.support.passcore import MAX_PAGE_SIZE, PassCore


@pytest.fixture
def world(passcore: PassCore) -> dict[str, str]:
    """Five submissions over two repositories, with deposits, a grant and copies."""
    entities: list[dict[str, Any]] = [
        {"@type": "User", "id": "u1", "firstName": "Ada", "email": "ada@example.org",
         "locatorIds": ["jhed:ada", "orcid:1"]},
        {"@type": "User", "id": "u2", "firstName": "Bob"},
        {"@type": "Funder", "id": "f1", "name": "NIH"},
        {"@type": "Grant", "id": "g1", "awardNumber": "R01", "primaryFunder": "f1", "pi": "u1",
         "coPis": ["u2"]},
        {"@type": "Journal", "id": "j1", "journalName": "J Tests", "issns": ["1234-5678"]},
        {"@type": "Publication", "id": "p1", "title": "Paper", "journal": "j1"},
        {"@type": "Repository", "id": "ra", "name": "Archive A", "repositoryKey": "a",
         "integrationType": "ONE_WAY"},
        {"@type": "Repository", "id": "rb", "name": "Web B", "repositoryKey": "b",
         "integrationType": "WEB_LINK"},
    ]
    specs = [  # id, submitted, status, date, repositories, submitterName
        ("s1", True, "NOT_STARTED", "2026-01-01T00:00:00Z", ["ra"], "Ada O'Hara"),
        ("s2", True, "IN_PROGRESS", "2026-02-01T00:00:00Z", ["ra", "rb"], None),
        ("s3", False, None, None, [], "Bob"),
        ("s4", True, "ACCEPTED", "2026-03-01T00:00:00Z", ["rb"], "Bobby Tables"),
        ("s5", True, "FAILED", "2026-04-01T12:30:00Z", ["ra"], "ada lovelace"),
    ]
    for sid, submitted, status, date, repos, name in specs:
        entities.append({"@type": "Submission", "id": sid, "submitted": submitted,
                         "aggregatedDepositStatus": status, "submittedDate": date,
                         "repositories": repos, "submitterName": name, "publication": "p1",
                         "submitter": "u1", "grants": ["g1"] if sid == "s1" else []})
    entities += [
        {"@type": "RepositoryCopy", "id": "c1", "externalIds": ["PMC1", "NIHMS2"],
         "copyStatus": "COMPLETE", "repository": "ra", "publication": "p1"},
        {"@type": "Deposit", "id": "d1", "depositStatus": "ACCEPTED", "submission": "s1",
         "repository": "ra", "repositoryCopy": "c1"},
        {"@type": "Deposit", "id": "d2", "depositStatus": "FAILED", "submission": "s2",
         "repository": "rb"},
    ]
    mapping = passcore.load_graph(entities)
    return {old: new for (_, old), new in mapping.items()}


def _ids(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["data"]]


def _find(client: requests.Session, server: PassCore, type: str, rsql: str,
          **params: str) -> requests.Response:
    return client.get(f"{server.data_url}/{type}", params={"filter": rsql, **params})


def test_single_resource_document(client: requests.Session, passcore: PassCore,
                                  world: dict[str, str]) -> None:
    response = client.get(f"{passcore.data_url}/deposit/{world['d1']}")
    assert response.headers["Content-Type"] == "application/vnd.api+json"
    data = response.json()["data"]
    assert data["type"] == "deposit" and data["id"] == world["d1"]
    assert data["attributes"] == {"version": 0, "depositStatusRef": None, "statusMessage": None,
                                  "depositStatus": "accepted"}
    rel = data["relationships"]["submission"]
    assert rel["data"] == {"type": "submission", "id": world["s1"]}
    assert rel["links"]["related"] == f"{passcore.data_url}/deposit/{world['d1']}/submission"
    assert data["links"]["self"] == f"{passcore.data_url}/deposit/{world['d1']}"
    dates = client.get(f"{passcore.data_url}/submission/{world['s5']}").json()
    assert dates["data"]["attributes"]["submittedDate"] == "2026-04-01T12:30:00.000Z"
    assert "included" not in response.json() and "meta" not in response.json()


def test_include_with_nested_paths(client: requests.Session, passcore: PassCore,
                                   world: dict[str, str]) -> None:
    response = client.get(
        f"{passcore.data_url}/submission/{world['s1']}",
        params={"include": "repositories,publication.journal,grants.primaryFunder,grants.pi"},
    )
    included = {(r["type"], r["id"]): r for r in response.json()["included"]}
    assert set(included) == {
        ("repository", world["ra"]), ("publication", world["p1"]), ("journal", world["j1"]),
        ("grant", world["g1"]), ("funder", world["f1"]), ("user", world["u1"]),
    }
    journal = included[("journal", world["j1"])]
    assert journal["attributes"]["issns"] == ["1234-5678"]
    assert journal["links"]["self"].endswith(
        f"/submission/{world['s1']}/publication/{world['p1']}/journal/{world['j1']}"
    )
    # a collection with include: each resource once
    many = client.get(f"{passcore.data_url}/deposit", params={"include": "submission.repositories"})
    kinds = [(r["type"], r["id"]) for r in many.json()["included"]]
    assert len(kinds) == len(set(kinds))
    assert ("repository", world["rb"]) in kinds
    bad = client.get(f"{passcore.data_url}/submission", params={"include": "nothing"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["detail"] == (
        "Invalid value: submission does not contain the field nothing"
    )


@pytest.mark.parametrize(("rsql", "expected"), [
    ("aggregatedDepositStatus==not-started", ["s1"]),
    ("aggregatedDepositStatus=in=(not-started,in-progress)", ["s1", "s2"]),
    ("aggregatedDepositStatus=out=(not-started,in-progress)", ["s4", "s5"]),  # NULL: unknown
    ("aggregatedDepositStatus!=accepted", ["s1", "s2", "s5"]),
    ("aggregatedDepositStatus=isnull=true", ["s3"]),
    ("aggregatedDepositStatus=isnull=false;submitted==true", ["s1", "s2", "s4", "s5"]),
    ("submitted==true;aggregatedDepositStatus==failed,aggregatedDepositStatus==accepted",
     ["s4", "s5"]),
    ("(submitterName==Bob,submitterName==Bobby*);submitted==false", ["s3"]),
    ("submitterName==Bob*", ["s3", "s4"]),
    ("submitterName==*Tables", ["s4"]),
    ("submitterName==*o*", ["s3", "s4", "s5"]),  # case-sensitive LIKE: not "Ada O..."
    ("submitterName=ini=(ADA*)", ["s1", "s5"]),
    ("submitterName=='Ada O\\'Hara'", ["s1"]),
    ('submitterName=="Bobby Tables"', ["s4"]),
    ("submitterName==bob", []),
    ("submittedDate=ge=2026-02-01T00:00:00.000Z;submittedDate=lt=2026-04-01T00:00:00.000Z",
     ["s2", "s4"]),
    ("submittedDate>2026-03-01T00:00:00.000+0100", ["s4", "s5"]),
    ("repositories.id==RA", ["s1", "s2", "s5"]),
    ("repositories.id!=RA", ["s2", "s4"]),  # LEFT JOIN rows: s2 also has rb
    ("repositories.repositoryKey==a;repositories.repositoryKey==b", []),  # one joined row
    ("repositories.repositoryKey==a,repositories.repositoryKey==b", ["s1", "s2", "s4", "s5"]),
    ("repositories=isempty=true", ["s3"]),
    ("grants.pi.firstName==Ada", ["s1"]),
    ("grants.coPis.firstName==Bob", ["s1"]),
    ("publication.journal.journalName=='J Tests' and submitted==false", ["s3"]),
    ("id=in=(S1,S3)", ["s1", "s3"]),
    ("submitterName==A* or submitterName==a*", ["s1", "s5"]),
])
def test_filters(client: requests.Session, passcore: PassCore, world: dict[str, str],
                 rsql: str, expected: list[str]) -> None:
    for old in sorted(world, key=len, reverse=True):  # "RA" -> ra's id, "S1" -> s1's
        rsql = rsql.replace(old.upper(), world[old])
    assert _ids(_find(client, passcore, "submission", rsql)) == [world[s] for s in expected]
    typed = client.get(f"{passcore.data_url}/submission", params={"filter[submission]": rsql})
    assert _ids(typed) == [world[s] for s in expected]


def test_filters_on_relationship_ids_and_collections(client: requests.Session,
                                                     passcore: PassCore,
                                                     world: dict[str, str]) -> None:
    deposits = _find(client, passcore, "deposit", f"submission.id=={world['s1']}")
    assert _ids(deposits) == [world["d1"]]
    both = _find(client, passcore, "deposit",
                 f"submission.id=in=({world['s1']},{world['s2']});depositStatus==failed")
    assert _ids(both) == [world["d2"]]
    copies = _find(client, passcore, "repositoryCopy", "externalIds=hasmember=PMC1")
    assert _ids(copies) == [world["c1"]]
    assert _ids(_find(client, passcore, "repositoryCopy", "externalIds=hasnomember=PMC1")) == []
    users = _find(client, passcore, "user", "locatorIds=hasmember='jhed:ada'")
    assert _ids(users) == [world["u1"]]
    nested = _find(client, passcore, "deposit",
                   "submission.submittedDate=le=2026-01-15T00:00:00.000Z")
    assert _ids(nested) == [world["d1"]]
    # pass-core compares a relationship's id, not the relationship itself
    assert _find(client, passcore, "deposit", f"submission=={world['s1']}").status_code == 500


@pytest.mark.parametrize(("params", "status", "detail"), [
    ({"filter": "nothing==1"},
     400, "No such association nothing for type submission\nInvalid query parameter: filter"),
    ({"filter[submission]": "nothing==1"},
     400, "Invalid query parameter: filter[submission]\n"
          "No such association nothing for type submission"),
    ({"filter": "submitted=="}, 400, None),
    ({"filter": "submitted=foo=true"}, 400, None),
    ({"filter": "aggregatedDepositStatus==NOT_STARTED"}, 400, "Invalid value: NOT_STARTED"),
    ({"filter": "aggregatedDepositStatus==not*"}, 400, "Invalid value: not*"),
    ({"filter": "id==abc"}, 400, "Invalid value: abc"),
    ({"filter": "submittedDate=ge=2026-01-01"}, 500, None),  # Elide lets the parse error out
    ({"filter": "a==1", "filter[submission]": "submitted==true"}, 400, None),
    ({"filter[nothing]": "a==1"}, 400, None),
    ({"sort": "nothing"}, 400, "Invalid value: submission does not contain the field nothing"),
    ({"sort": "repositories.name"}, 400,
     "Invalid value: Cannot sort across a to-many relationship: repositories.name"),
    ({"other": "1"}, 400, "Found undefined keys in request: other"),
    ({"page[limit]": str(MAX_PAGE_SIZE + 1)}, 400,
     "Invalid value: Pagination limit must be less than or equal to 10000"),
    ({"page[limit]": "0"}, 400, None),
    ({"page[limit]": "x"}, 400, "Invalid value: page values must be integers"),
    ({"page[size]": "1", "page[offset]": "1"}, 400, None),
    ({"page[nothing]": "1"}, 400, None),
])
def test_bad_queries_answer_json_api_errors(client: requests.Session, passcore: PassCore,
                                            world: dict[str, str], params: dict[str, str],
                                            status: int, detail: str | None) -> None:
    response = client.get(f"{passcore.data_url}/submission", params=params)
    assert response.status_code == status, response.text
    if status == 400:
        errors = response.json()["errors"]
        assert len(errors) == 1 and errors[0]["detail"]
        if detail is not None:
            assert errors[0]["detail"] == detail.replace("'", "&#39;")


def test_paging_with_totals(client: requests.Session, passcore: PassCore,
                            world: dict[str, str]) -> None:
    url = f"{passcore.data_url}/submission"
    page = client.get(url, params={"page[offset]": "1", "page[limit]": "2", "page[totals]": ""})
    assert _ids(page) == [world["s2"], world["s3"]]
    assert page.json()["meta"] == {
        "page": {"number": 1, "limit": 2, "totalPages": 3, "totalRecords": 5}
    }
    # pass-support's selectObjects sends a valueless page[totals]
    raw = client.get(url + "?filter=submitted%3D%3Dtrue&page[offset]=0&page[limit]=3&page[totals]")
    assert raw.json()["meta"]["page"]["totalRecords"] == 4 and len(_ids(raw)) == 3
    numbered = client.get(url, params={"page[number]": "3", "page[size]": "2"})
    assert _ids(numbered) == [world["s5"]]
    assert numbered.json()["meta"] == {"page": {"number": 3, "limit": 2}}
    assert "meta" not in client.get(url).json()
    past = client.get(url, params={"page[offset]": "10", "page[totals]": ""})
    assert _ids(past) == [] and past.json()["meta"]["page"]["totalRecords"] == 5


def test_default_page_size_is_500(client: requests.Session, passcore: PassCore) -> None:
    passcore.load_graph([{"@type": "Funder", "id": str(i)} for i in range(520)])
    assert len(_ids(client.get(f"{passcore.data_url}/funder"))) == 500
    everything = client.get(f"{passcore.data_url}/funder", params={"page[limit]": "1000"})
    assert len(_ids(everything)) == 520


def test_sorting_and_sparse_fieldsets(client: requests.Session, passcore: PassCore,
                                      world: dict[str, str]) -> None:
    url = f"{passcore.data_url}/submission"
    by_date = client.get(url, params={"sort": "-submittedDate"})
    assert _ids(by_date) == [world[s] for s in ("s3", "s5", "s4", "s2", "s1")]  # NULLS FIRST
    by_name = client.get(url, params={"sort": "submitterName,id"})
    assert _ids(by_name)[-1] == world["s2"]  # NULLS LAST ascending
    sparse = client.get(url, params={"fields[submission]": "submitted,repositories"})
    first = sparse.json()["data"][0]
    assert first["attributes"] == {"submitted": True}
    assert list(first["relationships"]) == ["repositories"]


def test_related_resources_and_relationship_linkage(client: requests.Session,
                                                    passcore: PassCore,
                                                    world: dict[str, str]) -> None:
    base = f"{passcore.data_url}/submission/{world['s2']}"
    related = client.get(f"{base}/repositories")
    assert _ids(related) == [world["ra"], world["rb"]]
    assert related.json()["data"][0]["links"]["self"] == f"{base}/repositories/{world['ra']}"
    linkage = client.get(f"{base}/relationships/repositories").json()
    assert linkage == {"data": [{"type": "repository", "id": world["ra"]},
                                {"type": "repository", "id": world["rb"]}]}
    to_one = client.get(f"{passcore.data_url}/deposit/{world['d2']}/repositoryCopy").json()
    assert to_one == {"data": None}


def test_missing_things_are_404(client: requests.Session, passcore: PassCore,
                                world: dict[str, str]) -> None:
    missing = client.get(f"{passcore.data_url}/submission/999999")
    assert missing.status_code == 404
    assert missing.json() == {"errors": [{"detail": "Unknown identifier 999999 for submission"}]}
    assert client.get(f"{passcore.data_url}/nothing").json()["errors"][0]["detail"] == (
        "Unknown collection nothing"
    )
    assert client.get(f"{passcore.data_url}/submission/abc").status_code == 400
