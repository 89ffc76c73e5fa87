"""The OpenID Provider (issue 17) driven by a real client: Authlib's OAuth 2.0 client (code + PKCE, refresh,
revoke) against the app served over HTTP, a browser-like cookie jar filling the hosted forms, and the ID token
verified with PyJWT through the discovery document's jwks_uri."""
import secrets

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from browser_helpers import server  # noqa: F401
from oauth_helpers import CALLBACK, PORTAL_PASSWORD, Browser, code_of, make_app, registered_portal_user
from staff_helpers import PASSWORD, staff_member

SCOPE = "openid email profile offline_access"


def discovery(base):
    return requests.get(base + "/.well-known/openid-configuration", timeout=10).json()


def authorize_url(base, client_id, **extra):
    client = OAuth2Session(client_id, redirect_uri=CALLBACK, scope=SCOPE, code_challenge_method="S256")
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(discovery(base)["authorization_endpoint"], code_verifier=verifier,
                                                 nonce=nonce, **extra)
    return client, url, state, verifier, nonce


def sign_in_portal(browser, url, email, password=PORTAL_PASSWORD):
    page = browser.follow(browser.get(url))
    assert page.status_code == 200 and "Sign in to continue to" in page.text, page.text[:300]
    return browser.follow(browser.submit(page, {"email": email, "password": password}))


def verify_id_token(base, id_token, client_id):
    meta = discovery(base)
    key = jwt.PyJWKClient(meta["jwks_uri"]).get_signing_key_from_jwt(id_token)
    return jwt.decode(id_token, key.key, algorithms=meta["id_token_signing_alg_values_supported"], audience=client_id,
                      issuer=meta["issuer"])


@pytest.fixture
def portal(app, http, tenant):
    made = make_app(tenant.id, name="Harper Portal")
    return {"client_id": made.client_id, "email": registered_portal_user(app, http, tenant)}


def test_discovery_names_the_endpoints_and_the_issuer_is_the_public_base_url(server):  # noqa: F811
    meta = discovery(server)
    assert meta["issuer"] == server
    assert meta["authorization_endpoint"] == server + "/oauth2/authorize"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert requests.get(meta["jwks_uri"], timeout=10).json()["keys"]
    # an SPA's OpenID Connect library reads both from its own origin
    for url in (server + "/.well-known/openid-configuration", meta["jwks_uri"]):
        assert requests.get(url, timeout=10).headers["Access-Control-Allow-Origin"] == "*"


def test_the_token_endpoint_answers_the_apps_own_origins_only(server, portal):  # noqa: F811
    data = {"grant_type": "authorization_code", "code": "x" * 48, "client_id": portal["client_id"],
            "redirect_uri": CALLBACK}
    ours = requests.post(server + "/oauth2/token", data=data, headers={"Origin": "http://127.0.0.1:8999"}, timeout=10)
    assert ours.status_code == 400 and ours.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8999"
    theirs = requests.post(server + "/oauth2/token", data=data, headers={"Origin": "https://evil.example"},
                           timeout=10)
    assert "Access-Control-Allow-Origin" not in theirs.headers


def test_a_portal_user_signs_in_to_an_app_with_code_and_pkce(server, http, tenant, portal):  # noqa: F811
    client, url, state, verifier, nonce = authorize_url(server, portal["client_id"])
    browser = Browser(server)
    back = sign_in_portal(browser, url, portal["email"])
    answer = code_of(back)
    assert answer["state"] == state and back.headers["Location"].startswith(CALLBACK)
    token = client.fetch_token(discovery(server)["token_endpoint"], code=answer["code"], code_verifier=verifier)
    claims = verify_id_token(server, token["id_token"], portal["client_id"])
    assert claims["nonce"] == nonce and claims["email"] == portal["email"] and claims["tenant_id"] == tenant.id
    assert claims["grants"] and claims["email_verified"] is True
    # the access token is the product's own: the API takes it, live
    status, me = http.get("/v1/portal/me", token=token["access_token"])
    assert status == 200, me
    info = requests.get(server + "/oauth2/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"},
                        timeout=10)
    assert info.status_code == 200 and info.json()["sub"] == claims["sub"]
    # refresh rotates; the old refresh token presented again ends the app's session
    fresh = client.refresh_token(discovery(server)["token_endpoint"], refresh_token=token["refresh_token"])
    assert fresh["refresh_token"] != token["refresh_token"]
    again = requests.post(server + "/oauth2/token", data={"grant_type": "refresh_token", "client_id": portal["client_id"],
                                                          "refresh_token": token["refresh_token"]}, timeout=10)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert http.get("/v1/portal/me", token=fresh["access_token"])[0] == 401


def test_a_second_app_signs_in_without_the_form_and_prompt_none_needs_a_hosted_session(server, tenant, portal):  # noqa: F811
    other = make_app(tenant.id, name="Second App")
    browser = Browser(server)
    _, url, _, _, _ = authorize_url(server, other.client_id, prompt="none")
    refused = code_of(browser.get(url))
    assert refused["error"] == "login_required"
    _, url, _, _, _ = authorize_url(server, portal["client_id"])
    code_of(sign_in_portal(browser, url, portal["email"]))
    client, url, state, verifier, _ = authorize_url(server, other.client_id, prompt="none")
    answer = code_of(browser.get(url))
    assert answer["state"] == state and "code" in answer
    assert client.fetch_token(discovery(server)["token_endpoint"], code=answer["code"], code_verifier=verifier)


def test_codes_are_single_use_and_a_reused_code_ends_what_it_gave(server, http, portal):  # noqa: F811
    client, url, _, verifier, _ = authorize_url(server, portal["client_id"])
    answer = code_of(sign_in_portal(Browser(server), url, portal["email"]))
    token = client.fetch_token(discovery(server)["token_endpoint"], code=answer["code"], code_verifier=verifier)
    again = requests.post(server + "/oauth2/token", timeout=10, data={
        "grant_type": "authorization_code", "code": answer["code"], "redirect_uri": CALLBACK,
        "client_id": portal["client_id"], "code_verifier": verifier})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert http.get("/v1/portal/me", token=token["access_token"])[0] == 401


def test_a_wrong_verifier_and_a_missing_challenge_are_refused(server, portal):  # noqa: F811
    client, url, _, verifier, _ = authorize_url(server, portal["client_id"])
    answer = code_of(sign_in_portal(Browser(server), url, portal["email"]))
    wrong = requests.post(server + "/oauth2/token", timeout=10, data={
        "grant_type": "authorization_code", "code": answer["code"], "redirect_uri": CALLBACK,
        "client_id": portal["client_id"], "code_verifier": secrets.token_urlsafe(48)})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    plain = OAuth2Session(portal["client_id"], redirect_uri=CALLBACK, scope=SCOPE)
    url, state = plain.create_authorization_url(server + "/oauth2/authorize")
    refused = code_of(Browser(server).get(url))
    assert refused["error"] == "invalid_request" and refused["state"] == state


def test_a_redirect_uri_not_registered_gets_a_page_never_a_redirect(server, portal):  # noqa: F811
    _, url, _, _, _ = authorize_url(server, portal["client_id"])
    bad = url.replace("127.0.0.1%3A8999%2Fcallback", "evil.example%2Fcallback")
    answer = Browser(server).get(bad)
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert "wrong place" in answer.text
    unknown = Browser(server).get(url.replace(portal["client_id"], "app_unknown"))
    assert unknown.status_code == 400 and "not known" in unknown.text


def test_one_businesss_app_never_signs_in_another_businesss_people(server, app, http, tenant, other_tenant, portal):  # noqa: F811
    theirs = make_app(other_tenant.id, name="Other App")
    client, url, _, _, _ = authorize_url(server, theirs.client_id)
    browser = Browser(server)
    page = browser.follow(browser.get(url))
    assert other_tenant.id in page.url or "Other Heating" in page.text
    wrong = browser.follow(browser.submit(page, {"email": portal["email"], "password": PORTAL_PASSWORD}))
    assert wrong.status_code == 401 or "not right" in wrong.text
    # a hosted session of this business is not one of the other's
    _, url, _, _, _ = authorize_url(server, portal["client_id"])
    code_of(sign_in_portal(browser, url, portal["email"]))
    _, url, _, _, _ = authorize_url(server, theirs.client_id, prompt="none")
    assert code_of(browser.get(url))["error"] == "login_required"


def test_logout_ends_the_hosted_session_and_returns_only_to_a_registered_uri(server, tenant, portal):  # noqa: F811
    from chalicelib.flows import apps
    apps.patch(tenant.id, portal["client_id"], apps.AppPatch(post_logout_redirect_uris=["http://127.0.0.1:9/bye"]),
               actor="test", ip=None)
    browser = Browser(server)
    _, url, _, _, _ = authorize_url(server, portal["client_id"])
    code_of(sign_in_portal(browser, url, portal["email"]))
    gone = browser.get(f"/oauth2/logout?client_id={portal['client_id']}&post_logout_redirect_uri="
                       "http%3A%2F%2F127.0.0.1%3A9%2Fbye&state=s1")
    assert gone.status_code == 302 and gone.headers["Location"] == "http://127.0.0.1:9/bye?state=s1"
    _, url, _, _, _ = authorize_url(server, portal["client_id"], prompt="none")
    assert code_of(browser.get(url))["error"] == "login_required"
    elsewhere = browser.get(f"/oauth2/logout?client_id={portal['client_id']}&post_logout_redirect_uri="
                            "https%3A%2F%2Fevil.example%2F")
    assert elsewhere.status_code == 200 and "signed out" in elsewhere.text


def test_a_disabled_users_refresh_is_refused(server, http, tenant, portal):  # noqa: F811
    client, url, _, verifier, _ = authorize_url(server, portal["client_id"])
    answer = code_of(sign_in_portal(Browser(server), url, portal["email"]))
    token = client.fetch_token(discovery(server)["token_endpoint"], code=answer["code"], code_verifier=verifier)
    admin = tenant.admin_token
    user_id = http.get("/v1/portal/users?q=" + portal["email"], token=admin)[1]["items"][0]["user_id"]
    assert http.patch(f"/v1/portal/users/{user_id}", {"status": "disabled"}, token=admin)[0] == 200
    refused = requests.post(server + "/oauth2/token", timeout=10, data={
        "grant_type": "refresh_token", "client_id": portal["client_id"], "refresh_token": token["refresh_token"]})
    assert refused.status_code == 400 and refused.json()["error"] in ("invalid_grant", "invalid_request")


def test_revoke_ends_the_apps_session(server, http, portal):  # noqa: F811
    client, url, _, verifier, _ = authorize_url(server, portal["client_id"])
    answer = code_of(sign_in_portal(Browser(server), url, portal["email"]))
    token = client.fetch_token(discovery(server)["token_endpoint"], code=answer["code"], code_verifier=verifier)
    revoked = client.revoke_token(discovery(server)["revocation_endpoint"], token=token["refresh_token"],
                                  token_type_hint="refresh_token")
    assert revoked.status_code == 200
    assert http.get("/v1/portal/me", token=token["access_token"])[0] == 401


def test_a_technician_signs_in_to_the_staff_app_on_the_staff_sign_in(server, http, tenant):  # noqa: F811
    made = make_app(tenant.id, audience="staff", name="Technician App")
    person, _ = staff_member(tenant)
    client, url, state, verifier, _ = authorize_url(server, made.client_id)
    browser = Browser(server)
    page = browser.follow(browser.get(url))
    assert "/staff/sign-in" in page.url and "Technician App" in page.text
    answer = code_of(browser.follow(browser.submit(page, {"username": person.username, "password": PASSWORD})))
    assert answer["state"] == state
    token = client.fetch_token(discovery(server)["token_endpoint"], code=answer["code"], code_verifier=verifier)
    assert verify_id_token(server, token["id_token"], made.client_id)["sub"] == person.person_id
    assert http.get("/v1/staff/me", token=token["access_token"])[0] == 200


def test_an_apps_refresh_token_is_refused_by_the_apis_refresh_route(server, http, portal):  # noqa: F811
    client, url, _, verifier, _ = authorize_url(server, portal["client_id"])
    answer = code_of(sign_in_portal(Browser(server), url, portal["email"]))
    token = client.fetch_token(discovery(server)["token_endpoint"], code=answer["code"], code_verifier=verifier)
    status, body = http.post("/v1/portal/token/refresh", {"refresh_token": token["refresh_token"]})
    assert status == 401 and body["error"]["code"] == "invalid_refresh_token"


def test_a_code_dies_after_60_seconds(server, portal, monkeypatch):  # noqa: F811
    from chalicelib.flows.oauth import provider
    client, url, _, verifier, _ = authorize_url(server, portal["client_id"])
    answer = code_of(sign_in_portal(Browser(server), url, portal["email"]))
    later = provider.now() + provider.CODE_SECONDS + 1
    monkeypatch.setattr(provider, "now", lambda: later)
    late = requests.post(server + "/oauth2/token", timeout=10, data={
        "grant_type": "authorization_code", "code": answer["code"], "redirect_uri": CALLBACK,
        "client_id": portal["client_id"], "code_verifier": verifier})
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


def test_a_confidential_app_authenticates_with_its_secret(server, tenant, portal):  # noqa: F811
    made = make_app(tenant.id, name="Back Office", client_type="confidential")
    app = OAuth2Session(made.client_id, made.client_secret, redirect_uri=CALLBACK, scope=SCOPE)
    url, state = app.create_authorization_url(server + "/oauth2/authorize")  # PKCE is optional for it
    answer = code_of(sign_in_portal(Browser(server), url, portal["email"]))
    wrong = requests.post(server + "/oauth2/token", timeout=10, auth=(made.client_id, "not-the-secret"), data={
        "grant_type": "authorization_code", "code": answer["code"], "redirect_uri": CALLBACK})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    as_public = requests.post(server + "/oauth2/token", timeout=10, data={
        "grant_type": "authorization_code", "code": answer["code"], "redirect_uri": CALLBACK,
        "client_id": made.client_id})
    assert as_public.status_code == 401 and as_public.json()["error"] == "invalid_client"
    url, state = app.create_authorization_url(server + "/oauth2/authorize")
    answer = code_of(sign_in_portal(Browser(server), url, portal["email"]))
    token = app.fetch_token(server + "/oauth2/token", code=answer["code"])
    assert token["id_token"] and token["refresh_token"]


def test_a_redirect_uri_that_only_looks_like_the_registered_one_is_refused(server, portal):  # noqa: F811
    _, url, _, _, _ = authorize_url(server, portal["client_id"])
    for near in ("callback%2F", "callback%3Fx%3D1", "Callback"):
        answer = Browser(server).get(url.replace("callback", near, 1))
        assert answer.status_code == 400 and "Location" not in answer.headers, near
