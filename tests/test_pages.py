"""Hosted pages without a browser (the browser tests are test_pages_browser.py): every page route is a Public
HTML page with the security headers, CSRF refuses forged posts, the link token leaves the URL, link problems
explain themselves in HTML, policy errors sit next to their field, and the sign-in page offers only the
providers the business allows."""
import re
import urllib.parse

import pytest
from conftest import STRONG_PASSWORD, drain, links_to
from console_helpers import google_only  # noqa: F401 (a fixture: Google set up, Microsoft not)

from chalicelib.web.api import ROUTES

PAGES = ["/register", "/reset-password", "/sign-in", "/staff/accept-invite", "/staff/reset-password",
         "/staff/change-password"]
PASSWORD = "Garden-Gate-2031"


class Browserless:
    """A cookie jar and form posts over chalice.test.Client (which has no cookies of its own)."""

    def __init__(self, client):
        self.client, self.cookies = client, {}

    def _headers(self, extra=None):
        h = dict(extra or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return h

    def _keep(self, response):
        set_cookie = response.headers.get("Set-Cookie") or []
        for line in [set_cookie] if isinstance(set_cookie, str) else set_cookie:
            name, _, rest = line.partition("=")
            value = rest.split(";")[0]
            if "Max-Age=0" in line:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response

    def get(self, path, headers=None):
        return self._keep(self.client.http.get(path, headers=self._headers(headers)))

    def post(self, path, data, headers=None, csrf=True, page=None):
        data = dict(data)
        if csrf:
            data.setdefault("csrf_token", csrf_of(page if page is not None else self.get(path)))
        h = self._headers({"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})
        return self._keep(self.client.http.post(path, headers=h, body=urllib.parse.urlencode(data)))


def csrf_of(response):
    return re.search(r'name="csrf_token" value="([^"]+)"', response.body.decode()).group(1)


def text(response):
    return response.body.decode()


@pytest.fixture
def browser(client):
    return Browserless(client)


@pytest.fixture
def invited(app, http, tenant):
    email = f"home@{tenant.id}.example"
    c = http.post("/v1/customers", {"name": "Harper Household", "emails": [email]}, token=tenant.admin_token)[1]
    status, _ = http.post("/v1/portal/invitations", {"customer_id": c["customer_id"], "email": email},
                          token=tenant.admin_token)
    assert status == 202
    drain(app)
    [link] = links_to(email, "/register?token=")
    return email, link


def path_of(link):
    parsed = urllib.parse.urlparse(link)
    return parsed.path + ("?" + parsed.query if parsed.query else "")


def test_every_page_is_a_public_html_route(app):
    from chalicelib.web.api import Public
    for path in PAGES:
        for method in ("GET", "POST"):
            view = app.app.routes[path][method].view_function
            assert isinstance(view.policy, Public) and view.page is True
    assert "application/x-www-form-urlencoded" in app.app.routes["/register"]["POST"].content_types
    assert not any(spec.path in PAGES for spec in ROUTES)  # not JSON API routes: not in OpenAPI


def test_security_headers_on_every_page_and_answer(browser, tenant):
    answers = [browser.get(p) for p in PAGES]
    answers.append(browser.get(f"/sign-in?tenant_id={tenant.id}"))
    answers.append(browser.get("/register?token=" + "x" * 43))
    for r in answers:
        assert r.headers["Content-Type"].startswith("text/html")
        csp = r.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "style-src 'self'" in csp and "form-action 'self'" in csp and "script-src 'self'" in csp
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert r.headers["Cache-Control"] == "no-store"
        # the one script is the app's own file: nothing inline, no style attribute
        assert re.findall(r"<script[^>]*>", text(r)) == ['<script src="/assets/pages.js" defer>']
        assert "</script>" in text(r) and "<script>" not in text(r) and "style=" not in text(r)
    css = browser.get("/assets/pages.css")
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    js = browser.get("/assets/pages.js")
    assert js.status_code == 200 and js.headers["Content-Type"].startswith("text/javascript")
    assert js.headers["X-Content-Type-Options"] == "nosniff"


def test_link_token_leaves_the_url_for_a_cookie(browser, invited):
    email, link = invited
    first = browser.get(path_of(link))
    assert first.status_code == 303 and first.headers["Location"] == "/register"
    [cookie] = [c for c in first.headers["Set-Cookie"] if c.startswith("pa_register=")]
    assert "HttpOnly" in cookie and "Path=/register" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # http here; https adds Secure and the __Secure- prefix
    page = browser.get("/register")
    assert page.status_code == 200 and email in text(page) and "Test Plumbing" in text(page)
    assert "token" not in text(page).split("<form")[1].split("</form>")[0].replace("csrf_token", "")
    for rule in ("At least 10 characters", "A digit", "Not a common password"):
        assert rule in text(page)


def test_a_form_without_a_valid_csrf_token_is_not_acted_on(app, browser, client, invited):
    from chalicelib.core.models import PortalUser
    email, link = invited
    browser.get(path_of(link))
    page = browser.get("/register")
    good = csrf_of(page)
    forged = [("no token", {}, {}), ("wrong token", {"csrf_token": "A" * 43}, {}),
              ("cross-site", {"csrf_token": good}, {"Sec-Fetch-Site": "cross-site"}),
              ("other origin", {"csrf_token": good}, {"Origin": "https://evil.example"})]
    for what, extra, headers in forged:
        r = browser.post("/register", {"password": PASSWORD, "password_confirm": PASSWORD, **extra},
                         headers=headers, csrf=False)
        assert r.status_code == 400, what
        assert "was not sent" in text(r), what
    # a token made for another browser's cookie does not verify with this one
    other = Browserless(client)
    other.cookies = {"pa_register": browser.cookies["pa_register"]}
    r = other.post("/register", {"password": PASSWORD, "password_confirm": PASSWORD, "csrf_token": good},
                   csrf=False)
    assert r.status_code == 400 and "was not sent" in text(r)
    users = [u for u in PortalUser.query(invited_tenant(link)) if u.email == email]
    assert users[0].status == "invited"
    ok = browser.post("/register", {"password": PASSWORD, "password_confirm": PASSWORD}, page=page)
    assert ok.status_code == 200 and "Your account is ready" in text(ok)


def invited_tenant(link):
    from chalicelib.core.models import Token
    from chalicelib.core.security.tokens import token_hash
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]
    return Token.get(token_hash(token)).tenant_id


def test_policy_errors_sit_next_to_the_field_and_typed_values_stay(browser, invited, tenant):
    email, link = invited
    browser.get(path_of(link))
    r = browser.post("/register", {"password": "alllowercase", "password_confirm": "alllowercase"})
    body = text(r)
    assert r.status_code == 400
    assert 'id="password-error"' in body and "The password needs an upper case letter." in body
    assert "The password needs a digit." in body  # every rule it breaks, in plain words
    assert 'aria-describedby="password-rules password-error"' in body and 'aria-invalid="true"' in body
    assert 'role="alert"' in body and 'aria-live="assertive"' in body
    assert 'value="alllowercase"' not in body  # passwords are never sent back
    r = browser.post("/register", {"password": PASSWORD, "password_confirm": PASSWORD + "x"})
    assert 'id="password_confirm-error"' in text(r) and "not the same" in text(r)
    r = browser.post(f"/sign-in?tenant_id={tenant.id}", {"email": email, "password": "Wrong-Password-1"})
    assert r.status_code == 400 and f'value="{email}"' in text(r) and "not right" in text(r)


def test_sign_in_page_says_when_this_network_must_wait(browser, monkeypatch, tenant):
    monkeypatch.setenv("PORTAL_FAILED_GUESSES_PER_IP", "2")
    for i in range(2):
        browser.post(f"/sign-in?tenant_id={tenant.id}", {"email": f"guess{i}@b.example", "password": "Wrong-Pass-123"})
    r = browser.post(f"/sign-in?tenant_id={tenant.id}", {"email": "c@b.example", "password": "Wrong-Pass-123"})
    assert r.status_code == 400 and "Too many attempts from your network. Try again in 60 minutes." in text(r)


def test_used_expired_and_unknown_links_explain_the_next_step(app, browser, http, invited, tenant):
    email, link = invited
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]
    status, _ = http.post("/v1/portal/register", {"token": token, "password": PASSWORD})
    assert status == 200
    used = browser.get(path_of(link))
    assert used.status_code == 410 and "already used" in text(used)
    assert f"/sign-in?tenant_id={tenant.id}" in text(used) and "Test Plumbing" in text(used)
    assert "error" not in used.headers.get("Content-Type", "") and not text(used).startswith("{")
    unknown = browser.get("/register?token=" + "Q" * 43)
    assert unknown.status_code == 400 and "This link does not work" in text(unknown)
    missing = browser.get("/staff/accept-invite")
    assert missing.status_code == 400 and "Open the link from your message" in text(missing)
    # a replaced staff invitation says a newer one was sent
    from chalicelib.core import single_use
    from chalicelib.core.models import Token
    from chalicelib.core.security.tokens import token_hash
    old = single_use.issue("staff_invite", tenant.id, "nobody", 3600)
    single_use.revoke(token_hash(old), "invitation_replaced")
    replaced = browser.get(f"/staff/accept-invite?token={old}")
    assert replaced.status_code == 410 and "A newer link was sent" in text(replaced)
    expired = single_use.issue("portal_reset", tenant.id, "nobody", 3600)
    Token(token_hash(expired)).update(actions=[Token.expires_at.set(1)])
    r = browser.get(f"/reset-password?token={expired}")
    assert r.status_code == 410 and "expired" in text(r) and f"/reset-password?tenant_id={tenant.id}" in text(r)


def test_sign_in_offers_only_the_providers_the_business_allows(browser, http, tenant, google_only):
    body = text(browser.get(f"/sign-in?tenant_id={tenant.id}"))
    assert "Continue with" not in body and f"/reset-password?tenant_id={tenant.id}" in body
    status, _ = http.call("PUT", "/v1/portal/settings", {"self_signup": True, "third_party_signin": ["google"]},
                          token=tenant.admin_token)
    assert status == 200
    body = text(browser.get(f"/sign-in?tenant_id={tenant.id}"))
    assert f'href="/v1/portal/oidc/google/start?tenant_id={tenant.id}"' in body
    assert "Continue with Google" in body and "Microsoft" not in body
    assert f"/register?tenant_id={tenant.id}" in body  # self sign-up is on too
    unknown = browser.get("/sign-in?tenant_id=no-such-business")
    assert unknown.status_code == 400 and "We do not know this business ID" in text(unknown)


def test_self_sign_up_page_gives_the_same_answer(browser, http, tenant):
    assert browser.get(f"/register?tenant_id={tenant.id}").status_code == 400  # invitation-only: explained
    http.call("PUT", "/v1/portal/settings", {"self_signup": True}, token=tenant.admin_token)
    form = browser.get(f"/register?tenant_id={tenant.id}")
    assert form.status_code == 200 and "Send me a link" in text(form)
    a = browser.post(f"/register?tenant_id={tenant.id}", {"email": "nobody@nowhere.example"}, page=form)
    assert a.status_code == 202 and "Check your email" in text(a)
    bad = browser.post(f"/register?tenant_id={tenant.id}", {"email": "not-an-email"})
    assert bad.status_code == 400 and 'id="email-error"' in text(bad) and 'value="not-an-email"' in text(bad)


def test_staff_invitation_prefills_the_email_as_username(app, browser, http, tenant):
    token = tenant.admin_token
    status, person = http.post("/v1/people", {"kind": "employee", "name": "Robin Office",
                                              "email": f"robin@{tenant.id}.example"}, token=token)
    assert status == 201
    assert http.post(f"/v1/people/{person['person_id']}/invite", {}, token=token)[0] == 202
    drain(app)
    [link] = links_to(f"robin@{tenant.id}.example", "/staff/accept-invite?token=")
    assert browser.get(path_of(link)).status_code == 303
    page = text(browser.get("/staff/accept-invite"))
    assert f'name="username" type="text" value="robin@{tenant.id}.example"' in page and "Robin Office" in page
    r = browser.post("/staff/accept-invite", {"username": "robin.o", "password": PASSWORD,
                                              "password_confirm": PASSWORD})
    assert r.status_code == 200 and "Your username is robin.o" in text(r)
    assert tenant.sign_in("robin.o", PASSWORD)[0] == 200


def test_expired_password_sends_the_person_through_the_change_page(browser, http, tenant):
    from chalicelib.core.models import Person
    from chalicelib.core.security import passwords
    from chalicelib.flows.staff import people
    person = people.create(tenant.id, kind="employee", name="Old Timer", email=f"old@{tenant.id}.example",
                           username="old.timer", password_hash=passwords.hash_password(PASSWORD))
    Person.get(tenant.id, person.person_id).update(actions=[Person.password_set_at.set(1)])
    r = browser.post(f"/staff/change-password?tenant_id={tenant.id}",
                     {"step": "sign_in", "username": "old.timer", "password": PASSWORD})
    assert r.status_code == 303 and r.headers["Location"] == "/staff/change-password"
    form = browser.get("/staff/change-password")
    assert "over a year old" in text(form) and "new_username" not in text(form)
    r = browser.post("/staff/change-password", {"step": "change", "new_password": PASSWORD,
                                                "new_password_confirm": PASSWORD}, page=form)
    assert r.status_code == 400 and "different from the current one" in text(r)
    r = browser.post("/staff/change-password", {"step": "change", "new_password": STRONG_PASSWORD,
                                                "new_password_confirm": STRONG_PASSWORD})
    assert r.status_code == 200 and "Your password was changed" in text(r)
    assert tenant.sign_in("old.timer", STRONG_PASSWORD)[0] == 200
    again = browser.get("/staff/change-password")  # the cookie is gone: nothing to change here
    assert again.status_code == 400


def test_a_failure_inside_a_flow_shows_an_apology_page(browser, monkeypatch, tenant):
    from chalicelib.flows.portal import portal_access

    def broken(*_args, **_kwargs):
        raise RuntimeError("database on fire")
    monkeypatch.setattr(portal_access, "sign_in", broken)
    r = browser.post(f"/sign-in?tenant_id={tenant.id}", {"email": "a@b.example", "password": "x"})
    assert r.status_code == 500 and "Something went wrong on our side" in text(r)
    assert "database on fire" not in text(r) and "Traceback" not in text(r)
    assert r.headers["Content-Security-Policy"]


def test_csrf_key_comes_from_the_key_ring_and_survives_a_rotation(app, browser, tenant):
    from chalicelib.core.security import keys
    first = keys.derived_secrets("pages-csrf")
    assert len(first[0]) == 32 and first[0] != keys.derived_secrets("another-purpose")[0]
    page = browser.get(f"/sign-in?tenant_id={tenant.id}")
    old_kid = keys.list_keys()[-1]["kid"]
    assert [k for k in keys.list_keys() if k["active"]][0]["kid"] == old_kid
    keys.rotate()
    try:
        assert keys.derived_secrets("pages-csrf")[0] != first[0] and first[0] in keys.derived_secrets("pages-csrf")
        # a form opened before the rotation still posts
        r = browser.post(f"/sign-in?tenant_id={tenant.id}", {"email": "x@y.example", "password": "Wrong-Pass-123"},
                         page=page)
        assert r.status_code == 400 and "not right" in text(r)
        keys.retire(old_kid)
        # once that key is retired, the old form is shown again instead of being acted on
        r = browser.post(f"/sign-in?tenant_id={tenant.id}", {"email": "x@y.example", "password": "Wrong-Pass-123"},
                         page=page)
        assert r.status_code == 400 and "was not sent" in text(r)
    finally:
        keys.ensure_signing_key()


# --- issue 20: what a new user hit ---------------------------------------------------------------------------------

def test_the_front_page_says_what_this_is_and_links_only_what_exists(app, browser, tenant):
    view = app.app.routes["/"]["GET"].view_function
    from chalicelib.web.api import Public
    assert isinstance(view.policy, Public) and view.page is True
    r = browser.get("/")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "customer portal" in text(r) and 'method="get" action="/"' in text(r) and 'name="tenant_id"' in text(r)
    r = browser.get(f"/?tenant_id={tenant.id}")
    body = text(r)
    assert r.status_code == 200 and "Test Plumbing" in body
    hrefs = re.findall(r'href="([^"#]+)"', body)
    assert f"/sign-in?tenant_id={tenant.id}" in hrefs and f"/staff/reset-password?tenant_id={tenant.id}" in hrefs
    assert {h.split("?")[0] for h in hrefs} <= {"/sign-in", "/register", "/staff/sign-in", "/staff/reset-password",
                                               "/staff/change-password", "/assets/pages.css", "/favicon.ico"}
    assert f"/staff/sign-in?tenant_id={tenant.id}" in hrefs
    unknown = browser.get("/?tenant_id=no-such-business")
    assert unknown.status_code == 400 and 'id="tenant_id-error"' in text(unknown)


def test_a_favicon_is_served_and_linked(browser, tenant):
    icon = browser.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["Content-Type"] == "image/svg+xml"
    assert text(icon).startswith("<svg") and "<script" not in text(icon)
    page = text(browser.get(f"/sign-in?tenant_id={tenant.id}"))
    assert '<link rel="icon" href="/favicon.ico" type="image/svg+xml">' in page


def test_sign_in_without_a_business_asks_for_it(browser, tenant):
    r = browser.get("/sign-in")
    body = text(r)
    assert r.status_code == 200 and "Open the link from your message" not in body
    assert 'method="get" action="/sign-in"' in body and 'name="tenant_id"' in body and "tenant_id=" in body
    assert browser.get(f"/sign-in?tenant_id={tenant.id}").status_code == 200


def test_every_password_field_has_a_show_password_button_hidden_without_javascript(browser, invited):
    email, link = invited
    browser.get(path_of(link))
    body = text(browser.get("/register"))
    for name in ("password", "password_confirm"):
        assert (f'<button type="button" class="reveal" aria-controls="{name}" aria-pressed="false" hidden>'
                "Show password</button>") in body


def test_new_password_forms_carry_the_account_username(app, browser, http, invited, tenant):
    email, link = invited
    browser.get(path_of(link))
    field_html = (f'<input type="email" id="account-username" autocomplete="username" value="{email}" '
                  'readonly hidden>')
    assert field_html in text(browser.get("/register"))
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]
    assert http.post("/v1/portal/register", {"token": token, "password": PASSWORD})[0] == 200
    http.post("/v1/portal/password-reset", {"tenant_id": tenant.id, "email": email})
    drain(app)
    [reset] = links_to(email, "/reset-password?token=")
    browser.get(path_of(reset))
    assert field_html in text(browser.get("/reset-password"))


def test_the_staff_reset_preselects_the_channel_the_identifier_names(browser, tenant):
    for identifier, checked in (("+1 201 555 0999", "sms"), ("someone@crew.example", "email"),
                                ("some.username", "email")):
        start = f"/staff/reset-password?tenant_id={tenant.id}"
        r = browser.post(start, {"step": "start", "identifier": identifier})
        assert r.status_code == 303, identifier
        body = text(browser.get("/staff/reset-password"))
        [preselected] = re.findall(r'id="channel-(\w+)" name="channel" value="\w+" checked', body)
        assert preselected == checked, identifier


def test_the_forced_change_hint_says_only_what_the_person_has(browser, http, tenant):
    status, person = http.post("/v1/people", {"kind": "technician", "name": "Mobile Only", "mobile": "+12015557001"},
                               token=tenant.admin_token)
    assert http.post(f"/v1/people/{person['person_id']}/account", {"username": "mob.only", "password": PASSWORD},
                     token=tenant.admin_token)[0] == 201
    r = browser.post(f"/staff/change-password?tenant_id={tenant.id}",
                     {"step": "sign_in", "username": "mob.only", "password": PASSWORD})
    assert r.status_code == 303
    form = text(browser.get("/staff/change-password"))
    assert 'id="new_username-hint"' in form and "email" not in form.split('id="new_username-hint">')[1][:200]


def test_accept_invite_page_shows_every_error_at_once(app, browser, http, tenant):
    email = f"every.error@{tenant.id}.example"
    status, person = http.post("/v1/people", {"kind": "employee", "name": "Every Error", "email": email},
                               token=tenant.admin_token)
    assert http.post(f"/v1/people/{person['person_id']}/invite", {}, token=tenant.admin_token)[0] == 202
    drain(app)
    [link] = links_to(email, "/staff/accept-invite?token=")
    browser.get(path_of(link))
    r = browser.post("/staff/accept-invite", {"username": "has spaces", "password": "alllowercase",
                                              "password_confirm": "different"})
    body = text(r)
    assert r.status_code == 400
    for name in ("username", "password", "password_confirm"):
        assert f'id="{name}-error"' in body, name
    assert "upper case" in body and "not the same" in body


def test_a_disabled_portal_user_is_told_whom_to_ask_on_the_sign_in_page(browser, http, invited, tenant):
    email, link = invited
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]
    assert http.post("/v1/portal/register", {"token": token, "password": PASSWORD})[0] == 200
    user_id = http.get("/v1/portal/users", token=tenant.admin_token)[1]["items"][0]["user_id"]
    http.patch(f"/v1/portal/users/{user_id}", {"status": "disabled"}, token=tenant.admin_token)
    r = browser.post(f"/sign-in?tenant_id={tenant.id}", {"email": email, "password": PASSWORD})
    assert r.status_code == 400 and "This account is disabled; ask Test Plumbing to enable it." in text(r)


def test_a_current_password_can_be_changed_on_the_change_page(browser, http, tenant):
    """The expiry warning sends people here before their password expires: signing in with it leads to the
    change form, not to "nothing to change"; no session is started on the way."""
    from chalicelib.core.security import passwords
    from chalicelib.flows.staff import people
    people.create(tenant.id, kind="employee", name="Early Bird", email=f"early@{tenant.id}.example",
                  username="early.bird", password_hash=passwords.hash_password(PASSWORD))
    r = browser.post(f"/staff/change-password?tenant_id={tenant.id}",
                     {"step": "sign_in", "username": "early.bird", "password": PASSWORD})
    assert r.status_code == 303 and r.headers["Location"] == "/staff/change-password"
    form = browser.get("/staff/change-password")
    assert "Choose a new password. It replaces the one you signed in with" in text(form)
    r = browser.post("/staff/change-password", {"step": "change", "new_password": STRONG_PASSWORD,
                                                "new_password_confirm": STRONG_PASSWORD}, page=form)
    assert r.status_code == 200 and "Your password was changed" in text(r)
    assert tenant.sign_in("early.bird", STRONG_PASSWORD)[0] == 200
    assert tenant.sign_in("early.bird", PASSWORD)[0] == 401


def test_page_templates_escape_every_value_and_refuse_a_missing_one(app):
    """Jinja2 with autoescape and StrictUndefined (chalicelib/web/pages/render.py): a business name or an address is
    text, never markup; a value a template needs and is not given is an error, never a blank."""
    import jinja2
    from chalicelib.web.pages.render import render
    body = render("pages/message.html", tenant_name='<b>"Bob" & Co</b>', section="Customer portal",
                  heading="<script>alert(1)</script>", paragraphs=["<i>x</i>"], actions=[("Go", "/x?a=1&b=2")],
                  tone="ok")
    assert "<b>" not in body and "<script>alert" not in body and "<i>" not in body
    assert "&lt;b&gt;&#34;Bob&#34; &amp; Co&lt;/b&gt;" in body and 'href="/x?a=1&amp;b=2"' in body
    with pytest.raises(jinja2.UndefinedError):
        render("pages/message.html", tenant_name=None, section="", heading="No paragraphs", actions=(), tone="ok")
