"""Google / Microsoft sign-in against a real OpenID provider on loopback (tests/oidc_provider.py): code flow
with PKCE, state and nonce, ID token verified against the provider's JWKS."""
import urllib.parse
import urllib.request

import pytest
from oidc_provider import Provider, install


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture
def provider():
    p = Provider()
    install(p)
    yield p
    p.stop()


@pytest.fixture
def shop(http, tenant):
    t = tenant.admin_token
    email = f"g.user@{tenant.id}.example"
    c = http.post("/v1/customers", {"name": "Google Home", "emails": [email]}, token=t)[1]
    http.call("PUT", "/v1/portal/settings", {"self_signup": False, "third_party_signin": ["google"]}, token=t)
    return {"email": email, "customer_id": c["customer_id"], "admin": t}


BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def sign_in_with(http, tenant_id, provider_name="google", headers=None):
    """Browser steps: start at the app, follow to the provider, come back to the callback."""
    r = http.client.http.get(f"/v1/portal/oidc/{provider_name}/start?tenant_id={tenant_id}")
    assert r.status_code == 302, r.body
    authorize = r.headers["Location"]
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(authorize).query))
    assert params["code_challenge_method"] == "S256" and params["state"] and params["nonce"]
    try:
        urllib.request.build_opener(NoRedirect).open(authorize)
        raise AssertionError("the provider should redirect")
    except urllib.error.HTTPError as redirect:
        back = redirect.headers["Location"]
    assert back.startswith("http://portal.test/v1/portal/oidc/google/callback?")
    if headers:
        return http.client.http.get(back.replace("http://portal.test", ""), headers=headers)
    return http.get(back.replace("http://portal.test", ""))


def test_verified_email_on_a_record_signs_in_and_creates_the_account(http, tenant, provider, shop):
    provider.user = {"sub": "g-1", "email": shop["email"].upper(), "email_verified": True}
    status, session = sign_in_with(http, tenant.id)
    assert status == 200, session
    status, me = http.get("/v1/portal/me", token=session["access_token"])
    assert me["email"] == shop["email"] and me["signed_in_with"] == "google"
    assert me["grants"][0]["customer_id"] == shop["customer_id"]
    # the second time links to the same account
    assert sign_in_with(http, tenant.id)[0] == 200
    users = http.get("/v1/portal/users", token=shop["admin"])[1]["items"]
    assert [u["email"] for u in users] == [shop["email"]] and users[0]["status"] == "active"


@pytest.mark.parametrize("user, code", [
    ({"sub": "g-2", "email": "stranger@elsewhere.example", "email_verified": True}, "email_not_on_record"),
    ({"sub": "g-3", "email": None, "email_verified": False}, "email_not_verified"),
])
def test_unverified_or_unknown_emails_get_no_account(http, tenant, provider, shop, user, code):
    if user["email"] is None:
        user["email"] = shop["email"]
    provider.user = user
    status, body = sign_in_with(http, tenant.id)
    assert status == 403 and body["error"]["code"] == code


@pytest.mark.parametrize("tamper", ["nonce", "audience", "signature"])
def test_a_bad_id_token_is_refused(http, tenant, provider, shop, tamper):
    provider.user = {"sub": "g-4", "email": shop["email"], "email_verified": True}
    provider.tamper = tamper
    status, body = sign_in_with(http, tenant.id)
    assert status == 401 and body["error"]["code"] == "id_token_invalid"


def test_state_is_single_use(http, tenant, provider, shop):
    provider.user = {"sub": "g-5", "email": shop["email"], "email_verified": True}
    r = http.client.http.get(f"/v1/portal/oidc/google/start?tenant_id={tenant.id}")
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(r.headers["Location"]).query))
    status, body = http.get(f"/v1/portal/oidc/google/callback?code=forged&state={params['state']}")
    assert status == 401 and body["error"]["code"] == "provider_refused"
    status, body = http.get(f"/v1/portal/oidc/google/callback?code=forged&state={params['state']}")
    assert status == 410 and body["error"]["code"] == "token_used"


def test_only_when_the_tenant_allows_it(http, tenant, provider, shop):
    http.call("PUT", "/v1/portal/settings", {"self_signup": False, "third_party_signin": []}, token=shop["admin"])
    status, body = http.get(f"/v1/portal/oidc/google/start?tenant_id={tenant.id}")
    assert status == 403 and body["error"]["code"] == "provider_not_allowed"
    assert http.get("/v1/portal/oidc/facebook/start?tenant_id=x")[1]["error"]["code"] == "unknown_provider"
    assert http.get(f"/v1/portal/oidc/microsoft/start?tenant_id={tenant.id}")[1]["error"]["code"] == \
        "provider_not_configured"


def test_a_browser_comes_back_to_a_page_not_to_json(http, tenant, provider, shop):
    provider.user = {"sub": "g-6", "email": shop["email"], "email_verified": True}
    page = sign_in_with(http, tenant.id, headers=BROWSER)
    text = page.body.decode()
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "You are signed in" in text and shop["email"] in text and "with Google" in text
    assert "access_token" not in text and "Content-Security-Policy" in page.headers
    provider.user = {"sub": "g-7", "email": "stranger@elsewhere.example", "email_verified": True}
    page = sign_in_with(http, tenant.id, headers=BROWSER)
    text = page.body.decode()
    assert page.status_code == 403 and page.headers["Content-Type"].startswith("text/html")
    assert "We could not sign you in with Google" in text and "not on any customer record" in text
    assert f"/sign-in?tenant_id={tenant.id}" in text  # the way back, found from the spent state
