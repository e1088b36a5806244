"""Spring Security in front of pass-core: CSRF (double submit) before HTTP Basic, 401
without a challenge, the XSRF-TOKEN cookie handed out to requests that have none."""

from __future__ import annotations

import requests

from tests.integration.passcore_server.conftest import TOKEN, Ids, client_for, document
from tests.support.passcore import JSON_API, PassCore


def _post(server: PassCore, **kwargs: object) -> requests.Response:
    return requests.post(f"{server.data_url}/submission", json=document("submission"),
                         headers={"Content-Type": JSON_API, **kwargs.pop("headers", {})},  # type: ignore[dict-item]
                         timeout=10, **kwargs)  # type: ignore[arg-type]


def test_write_without_csrf_token_is_refused_before_authentication(passcore: PassCore) -> None:
    for auth in (None, ("backend", "wrong"), passcore.auth):
        response = _post(passcore, auth=auth)
        assert response.status_code == 403, auth
        assert response.json()["status"] == 403  # Spring's error JSON, not Elide's
    assert passcore.find("submission") == []


def test_token_in_header_must_equal_the_cookie(passcore: PassCore) -> None:
    cases = [
        ({"X-XSRF-TOKEN": TOKEN}, {}),  # no cookie
        ({}, {"XSRF-TOKEN": TOKEN}),  # no header
        ({"X-XSRF-TOKEN": "other"}, {"XSRF-TOKEN": TOKEN}),  # mismatch
        ({"X-XSRF-TOKEN": ""}, {"XSRF-TOKEN": ""}),  # empty
    ]
    for headers, cookies in cases:
        response = _post(passcore, auth=passcore.auth, headers=headers, cookies=cookies)
        assert response.status_code == 403, (headers, cookies)
    response = _post(passcore, auth=passcore.auth, headers={"X-XSRF-TOKEN": "x"},
                     cookies={"XSRF-TOKEN": "x"})
    assert response.status_code == 201


def test_every_unsafe_method_needs_the_token(passcore: PassCore, ids: Ids) -> None:
    sub = ids[("Submission", "s1")]
    with client_for(passcore, csrf=False) as bare:
        url = f"{passcore.data_url}/submission/{sub}"
        patch = bare.patch(url, json=document("submission", id=sub),
                           headers={"Content-Type": JSON_API})
        assert patch.status_code == 403
        assert bare.delete(url).status_code == 403
        upload = bare.post(f"{passcore.base_url}/file", files={"file": ("a.txt", b"abc")})
        assert upload.status_code == 403
        assert bare.get(url).status_code == 200  # GET needs no token


def test_authentication_failures_are_401_without_a_challenge(passcore: PassCore) -> None:
    for auth in (None, ("backend", "wrong"), ("someone", passcore.password)):
        response = requests.get(f"{passcore.data_url}/submission", auth=auth, timeout=10)
        assert response.status_code == 401, auth
        assert "WWW-Authenticate" not in response.headers
        assert response.json()["error"] == "Unauthorized"
    bearer = requests.get(f"{passcore.data_url}/submission", timeout=10,
                          headers={"Authorization": "Bearer abc"})
    assert bearer.status_code == 401
    with client_for(passcore) as good:
        good.auth = ("backend", "wrong")
        assert good.post(f"{passcore.data_url}/submission", json=document("submission"),
                         headers={"Content-Type": JSON_API}).status_code == 401


def test_a_request_without_the_cookie_gets_one(passcore: PassCore) -> None:
    first = requests.get(f"{passcore.data_url}/grant", auth=passcore.auth, timeout=10)
    assert first.status_code == 200
    token = first.cookies.get("XSRF-TOKEN")
    assert token
    assert "Path=/" in first.headers["Set-Cookie"]
    assert "HttpOnly" not in first.headers["Set-Cookie"]  # the UI's script reads it
    refused = requests.get(f"{passcore.data_url}/grant", timeout=10)
    assert refused.status_code == 401 and refused.cookies.get("XSRF-TOKEN")
    again = requests.get(f"{passcore.data_url}/grant", auth=passcore.auth, timeout=10,
                         cookies={"XSRF-TOKEN": token})
    assert "Set-Cookie" not in again.headers
    # the handed-out token works as the double-submit value (IntegrationTestBase does this)
    created = _post(passcore, auth=passcore.auth, headers={"X-XSRF-TOKEN": token},
                    cookies={"XSRF-TOKEN": token})
    assert created.status_code == 201


def test_unknown_paths_and_media_types(client: requests.Session, passcore: PassCore) -> None:
    assert client.get(f"{passcore.base_url}/nothing").status_code == 404
    assert client.get(f"{passcore.data_url}/submission",
                      headers={"Accept": "application/json"}).status_code == 406
    wrong_type = client.post(f"{passcore.data_url}/submission",
                             data=b'{"data": {"type": "submission"}}',
                             headers={"Content-Type": "application/json"})
    assert wrong_type.status_code == 415
    charset = client.post(f"{passcore.data_url}/submission",
                          data=b'{"data": {"type": "submission"}}',
                          headers={"Content-Type": "application/vnd.api+json; charset=utf-8"})
    assert charset.status_code == 201  # the Java client's Content-Type
    assert client.put(f"{passcore.data_url}/submission/1", json={}).status_code == 405
