"""The OpenID Provider attacked (issue 17): what a hostile app, a hostile user and a network attacker would try,
driven over HTTP against the app (the `server` fixture) with requests and Authlib's client, as tests/test_oauth.py
does. Each test names the attack; the provider must refuse it, end what it should, and never answer 500."""
import secrets
import string
import threading
import time
from urllib.parse import parse_qs, quote, urlencode, urlparse

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from browser_helpers import server  # noqa: F401
from mfa_helpers import code_clock  # noqa: F401
from oauth_helpers import CALLBACK, PORTAL_PASSWORD, Browser, code_of, make_app, registered_portal_user
from staff_helpers import PASSWORD, staff_member

SCOPE = "openid email profile offline_access"


# --- a signed-in app ----------------------------------------------------------------------------------------------

def start(base, client_id, scope=SCOPE, redirect_uri=CALLBACK, **extra):
    client = OAuth2Session(client_id, redirect_uri=redirect_uri, scope=scope, code_challenge_method="S256")
    verifier = secrets.token_urlsafe(48)
    url, state = client.create_authorization_url(base + "/oauth2/authorize", code_verifier=verifier,
                                                 nonce=secrets.token_urlsafe(16), **extra)
    return client, url, state, verifier


def sign_in_portal(browser, url, email, password=PORTAL_PASSWORD):
    page = browser.follow(browser.get(url))
    assert page.status_code == 200 and "Sign in to continue to" in page.text, page.text[:300]
    return browser.follow(browser.submit(page, {"email": email, "password": password}))


def redeem(base, client_id, code, verifier, redirect_uri=CALLBACK, **extra):
    return requests.post(base + "/oauth2/token", timeout=30, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "client_id": client_id,
        "code_verifier": verifier, **extra})


def refresh(base, client_id, refresh_token, **extra):
    return requests.post(base + "/oauth2/token", timeout=30, data={
        "grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token, **extra})


def signed_in(base, client_id, email, browser=None, **extra):
    """An app's tokens for a portal user who signed in through the hosted form (the browser keeps its cookies)."""
    browser = browser or Browser(base)
    client, url, _, verifier = start(base, client_id, **extra)
    answer = code_of(sign_in_portal(browser, url, email))
    token = redeem(base, client_id, answer["code"], verifier)
    assert token.status_code == 200, token.text
    return token.json()


def again(base, client_id, browser, **extra):
    """An app's tokens through the browser's hosted session (no form)."""
    _, url, _, verifier = start(base, client_id, **extra)
    token = redeem(base, client_id, code_of(browser.get(url))["code"], verifier)
    assert token.status_code == 200, token.text
    return token.json()


def a_code(base, client_id, email, browser=None, **extra):
    """A fresh code (and its verifier) for a portal user, not yet redeemed."""
    browser = browser or Browser(base)
    _, url, _, verifier = start(base, client_id, **extra)
    return code_of(sign_in_portal(browser, url, email))["code"], verifier


def me(http, access_token):
    return http.get("/v1/portal/me", token=access_token)[0]


def api_status(base, path, token):
    return requests.get(base + path, headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code


def hosted_cookie(browser, tenant_id, audience="portal"):
    return browser.http.cookies.get(f"pa_hosted_{audience}_{tenant_id}")


@pytest.fixture
def portal(app, http, tenant):
    made = make_app(tenant.id, name="Harper Portal")
    return {"client_id": made.client_id, "email": registered_portal_user(app, http, tenant)}


def slowly(monkeypatch, module, name, seconds=0.6):
    """Holds every call of module.name for a moment, so that a second request overtakes the first."""
    original = getattr(module, name)

    def held(*args, **kwargs):
        time.sleep(seconds)
        return original(*args, **kwargs)
    monkeypatch.setattr(module, name, held)


def together(*calls, stagger=0.15):
    """Runs the calls in threads, each `stagger` seconds after the one before; their results in order."""
    results = [None] * len(calls)

    def run(i, call):
        results[i] = call()
    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
        time.sleep(stagger)
    for thread in threads:
        thread.join(timeout=60)
    return results


# --- races on single-use things -----------------------------------------------------------------------------------

def test_two_concurrent_redemptions_of_one_code_give_no_tokens_and_end_the_session(server, tenant, portal,  # noqa: F811
                                                                                     monkeypatch):
    from chalicelib.core.models import Session
    from chalicelib.flows.oauth import provider
    code, verifier = a_code(server, portal["client_id"], portal["email"])
    # the first redemption is held after it spent the code, before it recorded the session it started
    slowly(monkeypatch, provider.subjects, "start_app_session")
    first, second = together(lambda: redeem(server, portal["client_id"], code, verifier),
                             lambda: redeem(server, portal["client_id"], code, verifier))
    # a code presented twice ends what it gave, even when the second came while the first was being answered;
    # that one answers invalid_grant too, so nobody holds an ID token (checked offline) of a code presented twice
    assert [r.status_code for r in (first, second)] == [400, 400], [r.text for r in (first, second)]
    assert {r.json()["error"] for r in (first, second)} == {"invalid_grant"}
    user_id = code_user(code)
    app_sessions = [s for s in Session.by_user.query(f"{tenant.id}#portal#{user_id}") if s.client_id]
    assert len(app_sessions) == 1 and app_sessions[0].revoked_at, app_sessions


def code_user(code):
    from chalicelib.core.models import Token
    from chalicelib.core.security.tokens import token_hash
    return Token.get(token_hash(code)).subject_id


def test_two_concurrent_refreshes_with_one_refresh_token_end_the_session(server, http, portal,  # noqa: F811
                                                                          monkeypatch):
    from chalicelib.flows.oauth import provider
    tokens = signed_in(server, portal["client_id"], portal["email"])
    slowly(monkeypatch, provider.subjects, "new_refresh_token")
    first, second = together(lambda: refresh(server, portal["client_id"], tokens["refresh_token"]),
                             lambda: refresh(server, portal["client_id"], tokens["refresh_token"]))
    assert sorted(r.status_code for r in (first, second)) in ([200, 400], [400, 400])
    for answer in (first, second):
        if answer.status_code == 200:  # whoever got new tokens got dead ones: the token was presented twice
            assert me(http, answer.json()["access_token"]) == 401
            assert refresh(server, portal["client_id"], answer.json()["refresh_token"]).status_code == 400
        else:
            assert answer.json()["error"] == "invalid_grant"
    assert me(http, tokens["access_token"]) == 401


# --- one app's things at another app ------------------------------------------------------------------------------

def test_a_code_of_one_app_is_refused_to_another_app_and_stays_good_for_its_own(server, tenant, other_tenant,  # noqa: F811
                                                                               portal):
    same_business = make_app(tenant.id, name="Second App")
    other_business = make_app(other_tenant.id, name="Their App")
    confidential = make_app(tenant.id, name="Back Office", client_type="confidential")
    code, verifier = a_code(server, portal["client_id"], portal["email"])
    for thief in (same_business, other_business):
        stolen = redeem(server, thief.client_id, code, verifier)
        assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant", stolen.text
    stolen = requests.post(server + "/oauth2/token", timeout=30, auth=(confidential.client_id,
                                                                       confidential.client_secret), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier})
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    assert redeem(server, portal["client_id"], code, verifier).status_code == 200


def test_a_refresh_token_of_one_app_is_refused_to_another_and_not_spent(server, http, tenant, other_tenant,  # noqa: F811
                                                                       portal):
    tokens = signed_in(server, portal["client_id"], portal["email"])
    for thief in (make_app(tenant.id, name="Second App"), make_app(other_tenant.id, name="Their App")):
        stolen = refresh(server, thief.client_id, tokens["refresh_token"])
        assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant", stolen.text
    # the token is the app's: another app presenting it neither uses it nor ends the app's session
    fresh = refresh(server, portal["client_id"], tokens["refresh_token"])
    assert fresh.status_code == 200, fresh.text
    assert me(http, fresh.json()["access_token"]) == 200


def test_an_app_cannot_revoke_another_apps_tokens(server, http, tenant, other_tenant, portal):  # noqa: F811
    tokens = signed_in(server, portal["client_id"], portal["email"])
    for thief in (make_app(tenant.id, name="Second App"), make_app(other_tenant.id, name="Their App")):
        for kind in ("refresh_token", "access_token"):
            refused = requests.post(server + "/oauth2/revoke", timeout=30, data={
                "token": tokens[kind], "token_type_hint": kind, "client_id": thief.client_id})
            assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"  # RFC 7009 §2.1
    assert me(http, tokens["access_token"]) == 200
    assert refresh(server, portal["client_id"], tokens["refresh_token"]).status_code == 200


# --- what is not an access token ----------------------------------------------------------------------------------

def test_id_tokens_and_cookie_values_are_not_access_tokens(server, http, tenant, portal):  # noqa: F811
    browser = Browser(server)
    tokens = signed_in(server, portal["client_id"], portal["email"], browser=browser)
    hosted = hosted_cookie(browser, tenant.id)
    assert hosted
    _, url, _, _ = start(server, portal["client_id"], prompt="login")
    browser.follow(browser.get(url))
    remembered = browser.http.cookies.get("pa_authorize")
    assert remembered
    for fake in (tokens["id_token"], hosted, remembered, tokens["refresh_token"]):
        for path in ("/v1/portal/me", "/v1/portal/sessions", "/v1/staff/me", "/v1/apps", "/oauth2/userinfo"):
            assert api_status(server, path, fake) in (401, 403), path
        info = requests.post(server + "/oauth2/userinfo", headers={"Authorization": f"Bearer {fake}"}, timeout=30)
        assert info.status_code == 401
    assert api_status(server, "/oauth2/userinfo", tokens["access_token"]) == 200


def test_an_access_token_of_one_business_does_nothing_to_another_businesss_app(server, http, other_tenant,  # noqa: F811
                                                                              portal):
    tokens = signed_in(server, portal["client_id"], portal["email"])
    theirs = make_app(other_tenant.id, name="Their App")
    revoked = requests.post(server + "/oauth2/revoke", timeout=30, data={
        "token": tokens["access_token"], "client_id": theirs.client_id})
    assert revoked.status_code in (200, 400)
    assert me(http, tokens["access_token"]) == 200
    info = requests.get(server + "/oauth2/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                        timeout=30).json()
    assert info["tenant_id"] != other_tenant.id


# --- the hosted session across businesses and audiences -----------------------------------------------------------

def test_a_portal_users_hosted_session_never_signs_in_to_a_staff_app(server, tenant, other_tenant, portal):  # noqa: F811
    browser = Browser(server)
    signed_in(server, portal["client_id"], portal["email"], browser=browser)
    staff_app = make_app(tenant.id, audience="staff", name="Technician App")
    _, url, _, _ = start(server, staff_app.client_id, prompt="none")
    assert code_of(browser.get(url))["error"] == "login_required"
    # the cookie's value carried under the staff cookie's name, or under another business's, is still not one
    value = hosted_cookie(browser, tenant.id)
    theirs = make_app(other_tenant.id, name="Their App")
    for name, client_id in ((f"pa_hosted_staff_{tenant.id}", staff_app.client_id),
                            (f"pa_hosted_portal_{other_tenant.id}", theirs.client_id)):
        _, url, _, _ = start(server, client_id, prompt="none")
        answer = requests.get(url, headers={"Cookie": f"{name}={value}"}, allow_redirects=False, timeout=30)
        assert code_of(answer)["error"] == "login_required", name


def test_prompt_none_never_shows_a_form_even_without_openid(server, portal):  # noqa: F811
    _, url, state, _ = start(server, portal["client_id"], scope="email", prompt="none")
    answer = Browser(server).get(url)
    assert answer.status_code == 302 and answer.headers["Location"].startswith(CALLBACK), answer.headers
    back = code_of(answer)
    assert back["error"] == "login_required" and back["state"] == state and "code" not in back


def test_max_age_asks_for_the_password_again_when_the_sign_in_is_older(server, portal):  # noqa: F811
    import jwt
    browser = Browser(server)
    signed_in(server, portal["client_id"], portal["email"], browser=browser)
    time.sleep(2.1)
    _, url, _, _ = start(server, portal["client_id"], max_age="1", prompt="none")
    assert code_of(browser.get(url))["error"] == "login_required"
    # the form again; after it, back to the app (the request is not asked again for a sign-in made just now)
    _, url, _, verifier = start(server, portal["client_id"], max_age="1")
    back = code_of(sign_in_portal(browser, url, portal["email"]))
    token = redeem(server, portal["client_id"], back["code"], verifier)
    assert token.status_code == 200
    auth_time = jwt.decode(token.json()["id_token"], options={"verify_signature": False})["auth_time"]
    assert time.time() - auth_time < 2
    # a recent enough sign-in goes through without the form
    _, url, _, verifier = start(server, portal["client_id"], max_age="3600")
    assert "code" in code_of(browser.get(url))
    _, url, state, _ = start(server, portal["client_id"], max_age="soon")
    refused = code_of(browser.get(url))
    assert refused["error"] == "invalid_request" and refused["state"] == state


# --- open redirects -----------------------------------------------------------------------------------------------

def test_redirect_uri_variants_get_a_page_never_a_redirect(server, portal):  # noqa: F811
    registered = CALLBACK  # http://127.0.0.1:8999/callback
    variants = ["HTTP://127.0.0.1:8999/callback", "http://127.0.0.1:8999/Callback", registered + "/",
                "http://127.0.0.1:8999/%63allback", "http://evil.example@127.0.0.1:8999/callback",
                "http://127.0.0.1:8999@evil.example/callback", "http://127.0.0.1:8999/callback/../callback",
                registered + "#x", registered + "?next=https://evil.example", "http://127.0.0.1:8998/callback",
                "javascript:alert(1)//" + registered, "data:text/html,<script>alert(1)</script>",
                "//evil.example/callback", " " + registered, registered + "%00", registered + "\t", ""]
    for uri in variants:
        _, url, _, _ = start(server, portal["client_id"], redirect_uri=uri or CALLBACK)
        if not uri:
            url = url.replace("redirect_uri=" + quote(CALLBACK, safe=""), "redirect_uri=")
        answer = Browser(server).get(url)
        assert answer.status_code == 400 and "Location" not in answer.headers, uri
    # a second redirect_uri, whichever comes first
    _, url, _, _ = start(server, portal["client_id"])
    for extra in ("https://evil.example/cb", CALLBACK):
        answer = Browser(server).get(url + "&redirect_uri=" + quote(extra, safe=""))
        assert answer.status_code == 400 and "Location" not in answer.headers, extra


def test_logout_redirects_only_to_the_apps_own_registered_uri(server, tenant, other_tenant, portal):  # noqa: F811
    from chalicelib.flows import apps
    apps.patch(tenant.id, portal["client_id"], apps.AppPatch(post_logout_redirect_uris=["http://127.0.0.1:9/bye"]),
               actor="test", ip=None)
    theirs = make_app(other_tenant.id, name="Their App", post_logout_redirect_uris=["https://their.example/bye"])
    browser = Browser(server)
    signed_in(server, portal["client_id"], portal["email"], browser=browser)
    for target in ("https://evil.example/", "http://127.0.0.1:9/bye/", "http://127.0.0.1:9/Bye",
                   "https://their.example/bye", "javascript:alert(1)", "//evil.example"):
        answer = browser.get("/oauth2/logout?" + urlencode({"client_id": portal["client_id"],
                                                            "post_logout_redirect_uri": target}))
        assert answer.status_code == 200 and "Location" not in answer.headers, target
    # another business's app, with its own registered address: back there, and this business's session untouched
    browser = Browser(server)
    signed_in(server, portal["client_id"], portal["email"], browser=browser)
    answer = browser.get("/oauth2/logout?" + urlencode({"client_id": theirs.client_id,
                                                        "post_logout_redirect_uri": "https://their.example/bye"}))
    assert answer.status_code in (200, 302)
    _, url, _, _ = start(server, portal["client_id"], prompt="none")
    assert "code" in code_of(browser.get(url))


# --- parameter pollution ------------------------------------------------------------------------------------------

def test_a_repeated_parameter_is_refused_at_authorize(server, portal):  # noqa: F811
    browser = Browser(server)
    signed_in(server, portal["client_id"], portal["email"], browser=browser)  # a hosted session: codes at once
    _, url, _, _ = start(server, portal["client_id"])
    for name, value in (("client_id", "app_" + "x" * 22), ("state", "other"), ("scope", "openid"),
                        ("response_type", "code"), ("code_challenge", "A" * 43), ("code_challenge_method", "S256"),
                        ("nonce", "other"), ("prompt", "none"), ("max_age", "0"), ("login_hint", "x@example.com")):
        sent = parse_qs(urlparse(url).query)
        twice = [(name, value)] if name in sent else [(name, value), (name, value + "1")]
        answer = browser.get(url + "&" + urlencode(twice))
        location = answer.headers.get("Location", "")
        assert answer.status_code in (302, 400), (name, answer.status_code, location)
        assert "code=" not in location, (name, location)
        if answer.status_code == 302:
            assert location.startswith(CALLBACK) and "error=invalid_request" in location, (name, location)


def test_a_repeated_parameter_is_refused_at_the_token_endpoint(server, http, tenant, portal):  # noqa: F811
    confidential = make_app(tenant.id, name="Back Office", client_type="confidential")
    code, verifier = a_code(server, portal["client_id"], portal["email"])
    base = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
            "client_id": portal["client_id"], "code_verifier": verifier}
    for name, value in (("client_id", confidential.client_id), ("code", "x" * 48), ("code_verifier", "y" * 43),
                        ("grant_type", "refresh_token"), ("redirect_uri", "https://evil.example/cb")):
        pairs = list(base.items()) + [(name, value)]
        answer = requests.post(server + "/oauth2/token", data=pairs, timeout=30)
        assert answer.status_code in (400, 401) and answer.json()["error"] in ("invalid_request", "invalid_client"), \
            (name, answer.text)
    # the code was not spent by the refusals
    assert redeem(server, portal["client_id"], code, verifier).status_code == 200


# --- oversized, odd and injected ----------------------------------------------------------------------------------

def set_cookies(response):
    return [h for k, h in response.raw.headers.items() if k.lower() == "set-cookie"]


def test_an_oversized_request_never_makes_a_cookie_over_4_kb_nor_a_500(server, portal):  # noqa: F811
    for state in ("é" * 1900, "\u2603" * 1000, "a" * 1900, '"\\' * 900, "<" * 1900, "a" * 20000):
        _, url, _, _ = start(server, portal["client_id"], state=state, login_hint="ü" * 300)
        answer = Browser(server).get(url)
        assert answer.status_code < 500, len(state)
        assert all(len(c) <= 4096 for c in set_cookies(answer)), [len(c) for c in set_cookies(answer)]
        # either the request is remembered for after the sign-in, or the page says it is too long: never lost
        assert answer.status_code == 400 or any(c.startswith("pa_authorize=") for c in set_cookies(answer))
    # oversized and garbage cookies sent back
    _, url, _, _ = start(server, portal["client_id"])
    for cookie in ("pa_authorize=" + "x" * 6000, f"pa_authorize={'a.b.c' * 500}", "pa_hosted_portal_x=" + "y" * 6000,
                   "pa_csrf=" + "z" * 4000):
        answer = requests.get(url, headers={"Cookie": cookie}, allow_redirects=False, timeout=30)
        assert answer.status_code < 500, cookie[:20]


def test_no_header_injection_through_state_login_hint_or_redirect(server, portal):  # noqa: F811
    for evil in ("a\r\nSet-Cookie: pwned=1", "a%0d%0aSet-Cookie:%20pwned=1", "a\nLocation: https://evil.example",
                 "x&code=planted&error=none#frag"):
        _, url, _, _ = start(server, portal["client_id"], state=evil, login_hint=evil)
        answer = Browser(server).get(url)
        assert answer.status_code < 500
        assert "pwned" not in str(answer.headers.get("Set-Cookie", "")).replace("pwned%3D1", "")
        for name, value in answer.headers.items():
            assert "\n" not in value and "\r" not in value, name
        _, url, _, _ = start(server, portal["client_id"], state=evil, prompt="none")
        answer = Browser(server).get(url)
        assert answer.status_code == 302 and "\n" not in answer.headers["Location"]
        back = parse_qs(urlparse(answer.headers["Location"]).query)
        assert back["state"] == [evil] and back["error"] == ["login_required"] and "code" not in back
        assert "#" not in answer.headers["Location"]


def test_scope_cannot_grow_on_refresh(server, portal):  # noqa: F811
    browser = Browser(server)
    client, url, _, verifier = start(server, portal["client_id"], scope="openid offline_access")
    answer = code_of(sign_in_portal(browser, url, portal["email"]))
    tokens = redeem(server, portal["client_id"], answer["code"], verifier).json()
    assert tokens["scope"] == "openid offline_access"
    grown = refresh(server, portal["client_id"], tokens["refresh_token"], scope="openid email profile offline_access")
    assert grown.status_code == 400 and grown.json()["error"] == "invalid_scope"
    unknown = refresh(server, portal["client_id"], tokens["refresh_token"], scope="openid admin")
    assert unknown.status_code == 400
    _, url, state, _ = start(server, portal["client_id"], scope="openid admin")
    refused = code_of(browser.get(url))
    assert refused["error"] == "invalid_scope" and refused["state"] == state


def test_only_the_code_flow_in_the_query_is_answered(server, portal):  # noqa: F811
    browser = Browser(server)
    signed_in(server, portal["client_id"], portal["email"], browser=browser)
    for response_type in ("token", "id_token", "code id_token", "code token", "id_token token", "none", ""):
        _, url, _, _ = start(server, portal["client_id"], response_type=response_type)
        url = url.replace("response_type=code&", "response_type=" + quote(response_type) + "&", 1)
        answer = browser.get(url)
        location = answer.headers.get("Location", "")
        assert "access_token" not in location and "id_token=" not in location and "#" not in location, location
        assert answer.status_code in (302, 400) and "code=" not in location, (response_type, location)
    for mode in ("fragment", "form_post", "web_message", "query.jwt"):
        _, url, _, _ = start(server, portal["client_id"], response_mode=mode)
        answer = browser.get(url)
        location = answer.headers.get("Location", "")
        assert answer.status_code in (302, 400) and "#" not in location and "<form" not in answer.text, mode


# --- what happens between the sign-in and the code's redemption ---------------------------------------------------

def end_portal_user(how, http, tenant, email):
    admin = tenant.admin_token
    user_id = http.get("/v1/portal/users?q=" + quote(email), token=admin)[1]["items"][0]["user_id"]
    if how == "disabled":
        assert http.patch(f"/v1/portal/users/{user_id}", {"status": "disabled"}, token=admin)[0] == 200
    elif how == "disabled and enabled again":
        assert http.patch(f"/v1/portal/users/{user_id}", {"status": "disabled"}, token=admin)[0] == 200
        assert http.patch(f"/v1/portal/users/{user_id}", {"status": "active"}, token=admin)[0] == 200
    elif how == "signed out by an admin":
        assert http.post(f"/v1/portal/users/{user_id}/sign-out", token=admin)[0] == 204
    elif how == "signed out everywhere":
        other = http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": email,
                                                 "password": PORTAL_PASSWORD})[1]
        assert http.post("/v1/portal/sign-out-everywhere", token=other["access_token"])[0] == 204
    elif how == "business disabled":
        from chalicelib.flows import tenants
        tenants.set_status(tenant.id, "disabled")
    else:
        raise AssertionError(how)


ENDS = ("disabled", "disabled and enabled again", "signed out by an admin", "signed out everywhere",
        "business disabled")


@pytest.mark.parametrize("how", ENDS)
def test_an_end_between_sign_in_and_redemption_leaves_the_app_nothing(server, http, tenant, portal, how):  # noqa: F811
    browser = Browser(server)
    code, verifier = a_code(server, portal["client_id"], portal["email"], browser=browser)
    tokens = again(server, portal["client_id"], browser)
    try:
        end_portal_user(how, http, tenant, portal["email"])
        late = redeem(server, portal["client_id"], code, verifier)
        assert late.status_code == 400 and late.json()["error"] == "invalid_grant", late.text
        assert refresh(server, portal["client_id"], tokens["refresh_token"]).status_code == 400
        assert api_status(server, "/oauth2/userinfo", tokens["access_token"]) == 401
        _, url, _, _ = start(server, portal["client_id"], prompt="none")
        assert code_of(browser.get(url))["error"] == "login_required"
    finally:
        from chalicelib.flows import tenants
        tenants.set_status(tenant.id, "active")


def test_a_staff_password_change_between_sign_in_and_redemption_leaves_the_app_nothing(server, http,  # noqa: F811
                                                                                        tenant):
    made = make_app(tenant.id, audience="staff", name="Technician App")
    person, api_token = staff_member(tenant)
    browser = Browser(server)
    _, url, _, verifier = start(server, made.client_id)
    page = browser.follow(browser.get(url))
    code = code_of(browser.follow(browser.submit(page, {"username": person.username, "password": PASSWORD})))["code"]
    status, body = http.post("/v1/staff/change-password", {"current_password": PASSWORD,
                                                           "new_password": "Another-Staff-Pass-77"}, token=api_token)
    assert status == 200, body
    late = redeem(server, made.client_id, code, verifier)
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"
    _, url, _, _ = start(server, made.client_id, prompt="none")
    assert code_of(browser.get(url))["error"] == "login_required"


def test_a_deleted_apps_tokens_stop_working(server, http, tenant, portal):  # noqa: F811
    from chalicelib.flows import apps
    tokens = signed_in(server, portal["client_id"], portal["email"])
    code, verifier = a_code(server, portal["client_id"], portal["email"])
    assert me(http, tokens["access_token"]) == 200
    apps.delete(tenant.id, portal["client_id"], actor="test", ip=None)
    assert refresh(server, portal["client_id"], tokens["refresh_token"]).status_code in (400, 401)
    assert redeem(server, portal["client_id"], code, verifier).status_code in (400, 401)
    assert me(http, tokens["access_token"]) == 401
    assert api_status(server, "/oauth2/userinfo", tokens["access_token"]) == 401


def test_one_kind_of_token_is_never_taken_for_another(server, portal):  # noqa: F811
    code, verifier = a_code(server, portal["client_id"], portal["email"])
    tokens = signed_in(server, portal["client_id"], portal["email"])
    for wrong in (code, tokens["access_token"], tokens["id_token"]):
        assert refresh(server, portal["client_id"], wrong).status_code == 400
    for wrong in (tokens["refresh_token"], tokens["access_token"], tokens["id_token"]):
        assert redeem(server, portal["client_id"], wrong, verifier).status_code == 400
    assert redeem(server, portal["client_id"], code, verifier).status_code == 200


def test_another_businesss_waiting_request_never_follows_a_sign_in_here(server, tenant, other_tenant,  # noqa: F811
                                                                        portal):
    theirs = make_app(other_tenant.id, name="Their App")
    browser = Browser(server)
    _, url, _, _ = start(server, theirs.client_id)
    browser.follow(browser.get(url))  # their sign-in page: their request is remembered
    assert browser.http.cookies.get("pa_authorize")
    page = browser.get(f"/sign-in?tenant_id={tenant.id}")
    assert "Their App" not in page.text
    done = browser.submit(page, {"email": portal["email"], "password": PORTAL_PASSWORD})
    assert done.status_code == 200 and "Refresh" not in done.headers and "You are signed in" in done.text


# --- the hosted pages ---------------------------------------------------------------------------------------------

def test_login_csrf_on_the_hosted_sign_in_signs_nobody_in(server, tenant, portal):  # noqa: F811
    browser = Browser(server)
    _, url, _, _ = start(server, portal["client_id"])
    page = browser.follow(browser.get(url))
    action = "/sign-in?tenant_id=" + tenant.id
    fields = {"email": portal["email"], "password": PORTAL_PASSWORD}
    # a form on another site: no token, a forged token, or the right token with the browser saying cross-site
    import re
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    for extra, headers in (({}, {"Origin": "https://evil.example"}), ({"csrf_token": "x" * 43}, {}),
                           ({"csrf_token": csrf}, {"Origin": "https://evil.example"}),
                           ({"csrf_token": csrf}, {"Sec-Fetch-Site": "cross-site"})):
        answer = browser.http.post(server + action, data={**fields, **extra}, headers=headers, allow_redirects=False)
        assert answer.status_code == 400 and not any("pa_hosted" in c for c in set_cookies(answer)), (extra, headers)
        assert "Refresh" not in answer.headers
    assert not hosted_cookie(browser, tenant.id)
    # the staff sign-in too
    made = make_app(tenant.id, audience="staff", name="Technician App")
    person, _ = staff_member(tenant)
    _, url, _, _ = start(server, made.client_id)
    page = browser.follow(browser.get(url))
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    fields = {"username": person.username, "password": PASSWORD}
    for extra, headers in (({}, {}), ({"csrf_token": csrf}, {"Origin": "https://evil.example"}),
                           ({"csrf_token": csrf}, {"Sec-Fetch-Site": "cross-site"})):
        answer = browser.http.post(server + "/staff/sign-in?tenant_id=" + tenant.id, data={**fields, **extra},
                                   headers=headers, allow_redirects=False)
        assert answer.status_code == 400 and not any("pa_hosted" in c for c in set_cookies(answer)), (extra, headers)
    assert not hosted_cookie(browser, tenant.id, "staff")


def test_the_refresh_interstitial_goes_only_to_this_sites_authorize(server, portal):  # noqa: F811
    browser = Browser(server)
    _, url, _, _ = start(server, portal["client_id"], state="//evil.example/x?y=\r\nz")
    page = browser.follow(browser.get(url))
    answer = browser.submit(page, {"email": portal["email"], "password": PORTAL_PASSWORD})
    assert answer.status_code == 200
    refresh_to = answer.headers["Refresh"]
    assert refresh_to.startswith("0; url=/oauth2/authorize?"), refresh_to
    assert "\n" not in refresh_to and "\r" not in refresh_to
    assert 'href="/oauth2/authorize?' in answer.text


def test_the_required_factor_setup_shows_its_recovery_codes_and_goes_on_to_the_waiting_app(server, http,  # noqa: F811
                                                                                            tenant, code_clock):  # noqa: F811
    import re

    import pyotp
    assert http.call("PUT", "/v1/staff/mfa/policy", {"staff_mfa": "required_for_all"},
                     token=tenant.admin_token)[0] == 200
    made = make_app(tenant.id, audience="staff", name="Technician App")
    person = staff_member_without_sign_in(tenant)
    browser = Browser(server)
    _, url, state, verifier = start(server, made.client_id)
    page = browser.follow(browser.get(url))
    setup = browser.follow(browser.submit(page, {"username": person.username, "password": PASSWORD}))
    assert setup.status_code == 200 and "Set up a second sign-in step" in setup.text, setup.text[:300]
    key = re.search(r'<p class="key"><code>([^<]+)</code>', setup.text).group(1).replace(" ", "")
    done = browser.submit(setup, {"code": pyotp.TOTP(key).at(code_clock())})
    # the codes are shown once: never a failure in their place; the way on is the waiting app
    assert done.status_code == 200 and "Save your recovery codes" in done.text, done.text[:300]
    target = re.search(r'<a class="button" href="([^"]+)">Continue</a>', done.text).group(1).replace("&amp;", "&")
    assert target.startswith("/oauth2/authorize?")
    back = code_of(browser.get(target))
    assert back["state"] == state
    assert redeem(server, made.client_id, back["code"], verifier).status_code == 200


def staff_member_without_sign_in(tenant):
    """A technician with an account (staff_member's sign-in would stop at the required setup)."""
    from chalicelib.core.security import passwords
    from chalicelib.flows.staff import people
    from staff_helpers import unique, unique_mobile
    return people.create(tenant.id, kind="technician", name="A technician", email=None, mobile=unique_mobile(),
                         role="technician", permissions=[], username=unique("technician"),
                         password_hash=passwords.hash_password(PASSWORD))


# --- garbage never answers 500 ------------------------------------------------------------------------------------

def garbage(rng, n=None):
    alphabet = string.printable + "éü☃\x00\ud7ff" + "%&=+;#?"
    return "".join(rng.choice(alphabet) for _ in range(n if n is not None else rng.randint(0, 80)))


def garbage_form(rng, names):
    pairs = []
    for _ in range(rng.randint(0, 8)):
        name = rng.choice(names) if rng.random() < 0.8 else garbage(rng, 8)
        pairs.append((name, rng.choice([garbage(rng), "", "x" * rng.randint(40, 5000), "app_" + "a" * 22,
                                         "authorization_code", "refresh_token", "S256", "openid", CALLBACK])))
    return pairs


def test_garbage_at_every_endpoint_never_answers_500(server, portal):  # noqa: F811
    import random
    rng = random.Random(17)
    names = ["grant_type", "code", "redirect_uri", "client_id", "client_secret", "code_verifier", "refresh_token",
             "scope", "token", "token_type_hint", "response_type", "state", "nonce", "code_challenge",
             "code_challenge_method", "prompt", "login_hint", "max_age", "id_token_hint", "post_logout_redirect_uri"]
    session = requests.Session()
    failures = []
    for _ in range(200):
        pairs = garbage_form(rng, names)
        if rng.random() < 0.5:
            pairs.append(("grant_type", rng.choice(["authorization_code", "refresh_token"])))
        if rng.random() < 0.5:
            pairs.append(("client_id", portal["client_id"]))
        headers = {}
        roll = rng.random()
        if roll < 0.2:
            headers["Authorization"] = "Basic " + garbage(rng, 30)
        elif roll < 0.4:
            headers["Authorization"] = "Bearer " + garbage(rng, 200)
        elif roll < 0.5:
            headers["Authorization"] = rng.choice(["Basic", "Bearer", "Basic Og==", "Basic " + "QQ==" * 2000,
                                                   "Basic YXBwXzpf", "Basic w6k6w6k="])
        if rng.random() < 0.3:
            headers["Content-Type"] = rng.choice(["application/json", "text/plain", "multipart/form-data",
                                                  "application/x-www-form-urlencoded; charset=latin-1"])
        if rng.random() < 0.2:
            headers["Cookie"] = rng.choice(["pa_authorize=", "pa_hosted_portal_t=" + garbage(rng, 50),
                                            "pa_csrf=" + garbage(rng, 43)]).replace("\x00", "").encode(
                "latin-1", "replace").decode("latin-1")
        body = urlencode(pairs).encode() if rng.random() < 0.8 else garbage(rng, 300).encode("utf-8", "replace")
        if rng.random() < 0.1:
            body = bytes(rng.randrange(256) for _ in range(200))
        for method, path in (("POST", "/oauth2/token"), ("POST", "/oauth2/revoke"), ("GET", "/oauth2/userinfo"),
                             ("POST", "/oauth2/userinfo"), ("GET", "/oauth2/authorize"), ("GET", "/oauth2/logout")):
            try:
                if method == "GET":
                    answer = session.get(server + path + "?" + urlencode(pairs), headers=headers, timeout=30,
                                         allow_redirects=False)
                else:
                    answer = session.post(server + path, data=body, headers=headers, timeout=30,
                                          allow_redirects=False)
            except (UnicodeEncodeError, ValueError):  # requests itself refuses to send some header values
                continue
            if answer.status_code >= 500:
                failures.append((method, path, headers.get("Authorization", "")[:30], answer.status_code))
    assert failures == []


def test_what_the_app_sent_is_never_markup_on_the_error_page(server, portal):  # noqa: F811
    _, url, _, _ = start(server, portal["client_id"])
    for name in ("response_type", "scope", "code_challenge_method", "client_id", "redirect_uri", "state"):
        bad = url + "&" + urlencode({name: '<script>alert(1)</script>"'})
        answer = Browser(server).get(bad)
        assert answer.status_code < 500 and "<script>alert" not in answer.text, name


def test_token_answers_are_never_cached(server, portal):  # noqa: F811
    code, verifier = a_code(server, portal["client_id"], portal["email"])
    answer = redeem(server, portal["client_id"], code, verifier)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store" and answer.headers["Pragma"] == "no-cache"
