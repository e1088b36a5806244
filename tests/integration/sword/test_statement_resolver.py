"""SwordStatementResolver on DSpace's reference statements and on live test deposits."""

from __future__ import annotations

import pytest

from deposit_services.errors import RepositoryConfigError, TransientTransferError
from deposit_services.model.entities import DepositStatus
from deposit_services.status.base import StatusDocumentError, StatusUnavailable
from deposit_services.transports.sword.statement import SwordStatementResolver, rewrite_url
from tests.support.sword_server import running_sword_server

# PASS's JScholarship mapping (repositories-jhu-3.4.json)
MAPPING = {
    "http://dspace.org/state/archived": "accepted",
    "http://dspace.org/state/withdrawn": "rejected",
    "default-mapping": "submitted",
}
REALM_USER = ("realm-user", "realm-pass")


@pytest.fixture
def served(sword_server, statement_bytes):
    """Every DSpace reference statement served under /dspace/ with realm credentials."""
    urls = {}
    for state in ("archived", "inprogress", "inreview", "withdrawn", "missing", "multiple",
                  "unknown"):
        urls[state] = sword_server.add_document(
            f"/dspace/swordv2/statement/{state}.atom", statement_bytes(state), auth=REALM_USER
        )
    return urls


@pytest.fixture
def realms(sword_server):
    base = sword_server.base_url
    return [
        # the shorter prefix has the wrong password: the longest prefix must win
        {"mech": "basic", "url": f"{base}/", "username": "realm-user", "password": "nope"},
        {"mech": "basic", "url": f"{base}/dspace/swordv2", "username": REALM_USER[0],
         "password": REALM_USER[1]},
        {"mech": "basic", "url": "https://jscholarship.library.jhu.edu/", "username": "u",
         "password": "p"},
    ]


@pytest.fixture
def resolver(realms):
    resolver = SwordStatementResolver(MAPPING, realms, user_agent="resolver-test")
    yield resolver
    resolver.close()


@pytest.mark.parametrize(
    ("state", "remote", "expected", "via_default"),
    [
        ("archived", "http://dspace.org/state/archived", DepositStatus.ACCEPTED, False),
        ("withdrawn", "http://dspace.org/state/withdrawn", DepositStatus.REJECTED, False),
        ("inprogress", "http://dspace.org/state/inprogress", DepositStatus.SUBMITTED, True),
        ("inreview", "http://dspace.org/state/inreview", DepositStatus.SUBMITTED, True),
        # an unknown term is still a state: default-mapping applies (as in PASS)
        ("unknown", "http://dspace.org/state/moo", DepositStatus.SUBMITTED, True),
        # a category in another scheme is ignored: the state is archived (as in PASS)
        ("multiple", "http://dspace.org/state/archived", DepositStatus.ACCEPTED, False),
    ],
)
def test_dspace_reference_statements(served, resolver, state, remote, expected, via_default):
    resolved = resolver.resolve(served[state])
    assert resolved.state == remote
    assert resolved.deposit_status is expected
    assert resolved.via_default is via_default
    assert resolved.is_terminal is expected.is_terminal
    assert resolved.status_ref == served[state]


def test_missing_state_is_a_clear_error(served, resolver):
    with pytest.raises(StatusDocumentError, match="has no state") as caught:
        resolver.resolve(served["missing"])
    assert served["missing"] in str(caught.value)
    assert not isinstance(caught.value, TransientTransferError)  # not retried


def test_contradictory_states_are_refused(sword_server, resolver, statement_bytes):
    body = statement_bytes("archived").replace(
        b"</feed>",
        b'<category term="http://dspace.org/state/withdrawn" '
        b'scheme="http://purl.org/net/sword/terms/state"/></feed>',
    )
    url = sword_server.add_document("/dspace/swordv2/statement/two.atom", body, auth=REALM_USER)
    with pytest.raises(StatusDocumentError, match="contradictory"):
        resolver.resolve(url)


def test_latin1_and_wrong_namespace(sword_server, resolver):
    # DSpace declares ISO-8859-1; some servers put the feed in the SWORD 1.3 namespace
    body = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        '<feed xmlns="http://purl.org/net/sword/"><title>Caf\xe9 r\xe9sum\xe9</title>'
        '<category term="http://dspace.org/state/withdrawn" '
        'scheme="http://purl.org/net/sword/terms/state">Retir\xe9</category></feed>'
    ).encode("iso-8859-1")
    url = sword_server.add_document("/dspace/swordv2/statement/latin1.atom", body, auth=REALM_USER)
    resolved = resolver.resolve(url)
    assert resolved.deposit_status is DepositStatus.REJECTED
    assert resolved.description == "Retir\xe9"


def test_malformed_xml(sword_server, resolver):
    url = sword_server.add_document("/dspace/swordv2/statement/bad.atom", b"<feed><category",
                                    auth=REALM_USER)
    with pytest.raises(StatusDocumentError, match="unreadable"):
        resolver.resolve(url)


def test_html_instead_of_statement(sword_server, resolver):
    url = sword_server.add_document("/dspace/swordv2/statement/login.atom",
                                    b"<html><body>login</body></html>", "text/html",
                                    auth=REALM_USER)
    with pytest.raises(StatusDocumentError, match="neither an Atom feed"):
        resolver.resolve(url)


def test_entities_are_not_expanded(sword_server, resolver):
    body = (
        b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<feed xmlns="http://www.w3.org/2005/Atom"><category '
        b'term="http://dspace.org/state/archived" '
        b'scheme="http://purl.org/net/sword/terms/state">&xxe;</category></feed>'
    )
    url = sword_server.add_document("/dspace/swordv2/statement/xxe.atom", body, auth=REALM_USER)
    resolved = resolver.resolve(url)
    assert resolved.deposit_status is DepositStatus.ACCEPTED
    assert "root:" not in (resolved.description or "")


def test_realm_credentials_are_required(served):
    resolver = SwordStatementResolver(MAPPING, [])  # no realm: no credentials sent
    with pytest.raises(StatusDocumentError, match="401"):
        resolver.resolve(served["archived"])
    resolver.close()


def test_wrong_realm_password(served, sword_server):
    realms = [{"mech": "basic", "url": sword_server.base_url, "username": REALM_USER[0],
               "password": "wrong"}]
    with pytest.raises(StatusDocumentError, match="401") as caught:
        SwordStatementResolver(MAPPING, realms).resolve(served["archived"])
    assert "wrong" not in str(caught.value)


def test_redirects_only_when_configured(sword_server, served, realms):
    moved = sword_server.add_redirect("/dspace/swordv2/statement/old.atom",
                                      "/dspace/swordv2/statement/archived.atom")
    strict = SwordStatementResolver(MAPPING, realms)
    with pytest.raises(StatusDocumentError, match="redirects"):
        strict.resolve(moved)
    following = SwordStatementResolver(MAPPING, realms, follow_redirects=True)
    resolved = following.resolve(moved)
    assert resolved.deposit_status is DepositStatus.ACCEPTED
    assert resolved.status_ref == moved


def test_url_rewrite(served, realms, sword_server):
    internal = "http://dspace-internal.example:8080/swordv2/statement/"
    rewrite = {internal: f"{sword_server.base_url}/dspace/swordv2/statement/"}
    resolver = SwordStatementResolver(MAPPING, realms, rewrite=rewrite)
    resolved = resolver.resolve(internal + "withdrawn.atom")
    assert resolved.deposit_status is DepositStatus.REJECTED
    assert resolved.status_ref == internal + "withdrawn.atom"
    assert rewrite_url("http://other/x", rewrite) == "http://other/x"


def test_server_errors_are_transient(served, resolver, sword_server):
    sword_server.fail_next(1, status=503)
    with pytest.raises(StatusUnavailable, match="503") as caught:
        resolver.resolve(served["archived"])
    assert isinstance(caught.value, TransientTransferError)  # retried
    assert resolver.resolve(served["archived"]).deposit_status is DepositStatus.ACCEPTED


def test_connection_refused_is_transient(closed_port):
    resolver = SwordStatementResolver(MAPPING)
    with pytest.raises(StatusUnavailable):
        resolver.resolve(f"http://127.0.0.1:{closed_port}/statement.atom")


def test_not_found_is_permanent(sword_server, resolver):
    with pytest.raises(StatusDocumentError, match="404"):
        resolver.resolve(sword_server.base_url + "/dspace/swordv2/statement/gone.atom")


def test_bad_mapping_value_fails_at_construction():
    with pytest.raises(RepositoryConfigError, match="acepted"):
        SwordStatementResolver({"http://dspace.org/state/archived": "acepted"})


def test_unmapped_state_without_default_leaves_deposit_alone(served, realms):
    resolver = SwordStatementResolver({"http://dspace.org/state/archived": "accepted"}, realms)
    resolved = resolver.resolve(served["inreview"])
    assert resolved.deposit_status is None and resolved.mapped_term is None


@pytest.mark.parametrize("kind", ["atom", "ore"])
def test_live_deposit_moves_through_states(sword_server, binding, make_transport, package,
                                           submission, kind):
    receipt = make_transport(binding).send(package, submission)
    statement = receipt.details[f"{kind}_statement"]
    realms = [{"mech": "basic", "url": sword_server.base_url + "/swordv2/",
               "username": sword_server.username, "password": sword_server.password}]
    resolver = SwordStatementResolver(MAPPING, realms)
    first = resolver.resolve(statement)
    assert first.state == "http://dspace.org/state/inprogress"
    assert first.deposit_status is DepositStatus.SUBMITTED
    assert first.description == "The item is in progress"
    [deposit_id] = sword_server.deposits
    sword_server.set_state(deposit_id, "archived")
    assert resolver.resolve(statement).deposit_status is DepositStatus.ACCEPTED
    sword_server.set_state(deposit_id, "withdrawn")
    assert resolver.resolve(statement).deposit_status is DepositStatus.REJECTED
    resolver.close()


def test_from_binding_applies_status_keys(sword_server, served, realms):
    """The SWORDv2 protocol-binding's status-* keys configure the resolver."""
    internal = "http://dspace-internal.example:8080/swordv2/statement/"
    moved = sword_server.add_redirect("/dspace/swordv2/statement/moved.atom",
                                      "/dspace/swordv2/statement/withdrawn.atom")
    binding = {
        "protocol": "SWORDv2", "username": "u", "password": "p",
        "service-doc": sword_server.service_document_url,
        "default-collection": sword_server.collection_url("default"),
        "status-follow-redirects": True,
        "status-url-rewrite": {internal: f"{sword_server.base_url}/dspace/swordv2/statement/"},
        "user-agent": "pass-deposit/3.4",
    }
    resolver = SwordStatementResolver.from_binding(MAPPING, realms, binding, "fallback-agent")
    assert resolver.resolve(internal + "archived.atom").deposit_status is DepositStatus.ACCEPTED
    assert resolver.resolve(moved).deposit_status is DepositStatus.REJECTED
    assert sword_server.requests[-1].headers["User-Agent"] == "pass-deposit/3.4"
    resolver.close()
    with pytest.raises(RepositoryConfigError, match="status-folow-redirects"):
        SwordStatementResolver.from_binding(MAPPING, realms,
                                            {**binding, "status-folow-redirects": True})


def test_statement_over_tls_is_verified(statement_bytes):
    with running_sword_server(tls=True) as server:
        url = server.add_document("/statement/a.atom", statement_bytes("archived"))
        with pytest.raises(StatusDocumentError, match="certificate verify failed"):
            SwordStatementResolver(MAPPING).resolve(url)
        trusting = SwordStatementResolver(MAPPING, verify=str(server.ca_file))
        assert trusting.resolve(url).deposit_status is DepositStatus.ACCEPTED
        trusting.close()


def test_ore_statement_without_state_is_a_clear_error(sword_server, resolver):
    body = (
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        b'xmlns:ore="http://www.openarchives.org/ore/terms/">'
        b'<rdf:Description rdf:about="http://x/edit/1"><ore:aggregates '
        b'rdf:resource="http://x/file"/></rdf:Description></rdf:RDF>'
    )
    url = sword_server.add_document("/dspace/swordv2/statement/nostate.rdf", body,
                                    "application/rdf+xml", auth=REALM_USER)
    with pytest.raises(StatusDocumentError, match="has no state") as caught:
        resolver.resolve(url)
    assert url in str(caught.value)


def test_oversized_statement_is_refused(served, realms):
    resolver = SwordStatementResolver(MAPPING, realms, max_document_bytes=200)
    with pytest.raises(StatusDocumentError, match="larger than 200 bytes"):
        resolver.resolve(served["archived"])
    resolver.close()


def test_statements_on_the_service_documents_host_use_the_bindings_login(
    sword_server, binding, make_transport, package, submission,
):
    """PASS needs the SWORD login repeated as an auth realm; without one, the binding's
    own credentials serve the statements on the service document's origin."""
    receipt = make_transport(binding).send(package, submission)
    statement = receipt.details["atom_statement"]
    resolver = SwordStatementResolver.from_binding(MAPPING, [], binding)  # no auth-realms
    assert resolver.resolve(statement).deposit_status is DepositStatus.SUBMITTED
    resolver.close()
    elsewhere = dict(binding, **{"service-doc": "https://other.example.org/sword/sd"})
    resolver = SwordStatementResolver.from_binding(MAPPING, [], elsewhere)
    with pytest.raises(StatusDocumentError, match="401 Unauthorized"):  # not another host
        resolver.resolve(statement)
    resolver.close()

def test_an_empty_reason_phrase_is_named_by_its_standard_phrase() -> None:
    from deposit_services.http_status import http_status

    assert http_status(401, "") == "HTTP 401 Unauthorized"
    assert http_status(503, None) == "HTTP 503 Service Unavailable"
    assert http_status(404, "Gone Fishing") == "HTTP 404 Gone Fishing"
    assert http_status(799, "") == "HTTP 799"
