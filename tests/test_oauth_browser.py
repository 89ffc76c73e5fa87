"""The OpenID Provider's journeys in Debian's Chromium (issue 17): an app (Authlib's client) sends the person to the
hosted pages, Playwright fills them as a person would, and the browser lands back on the app's redirect URI with a
code the app redeems. The app's side is a small web server of the test's own,
which records where the browser went."""
import secrets

import pytest
from authlib.integrations.requests_client import OAuth2Session
from browser_helpers import axe_violations, browser, page, server, shot  # noqa: F401
from conftest import drain, links_to
from mfa_helpers import code, code_clock, set_up_totp  # noqa: F401
from oauth_helpers import PORTAL_PASSWORD, make_app, registered_portal_user
from playwright.sync_api import expect
from staff_helpers import PASSWORD, staff_member

SCOPE = "openid email profile offline_access"


class AppSite:
    """The app's side: a small web server on a free port that answers every request with a page and remembers
    where the browser came."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        visits = self.visits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path != "/favicon.ico":
                    visits.append(self.path)
                body = b"<!doctype html><html lang=en><title>App</title><main><h1>The app</h1></main></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.home = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.callback = self.home + "callback"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def site():
    running = AppSite()
    yield running
    running.close()


def start(server, client_id, site, **extra):  # noqa: F811
    client = OAuth2Session(client_id, redirect_uri=site.callback, scope=SCOPE, code_challenge_method="S256")
    verifier = secrets.token_urlsafe(48)
    url, state = client.create_authorization_url(server + "/oauth2/authorize", code_verifier=verifier,
                                                 nonce=secrets.token_urlsafe(12), **extra)
    return client, url, state, verifier


def redeem(server, client, site, state, verifier):  # noqa: F811
    [back] = [v for v in site.visits if v.startswith("/callback")]
    site.visits.clear()
    assert f"state={state}" in back
    return client.fetch_token(server + "/oauth2/token", authorization_response=site.home[:-1] + back,
                              code_verifier=verifier)


@pytest.fixture
def portal_app(app, http, tenant, site):
    made = make_app(tenant.id, name="Harper Portal", initiate_login_uri=site.home, redirect_uris=[site.callback])
    return made.client_id, registered_portal_user(app, http, tenant)


def test_a_customer_signs_in_to_the_portal_app_and_lands_back_in_it(page, server, site, http, portal_app):  # noqa: F811
    client_id, email = portal_app
    client, url, state, verifier = start(server, client_id, site)
    page.goto(url)
    expect(page.get_by_role("heading", name="Sign in to continue to Harper Portal")).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "oauth-portal-sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PORTAL_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="The app")).to_be_visible()
    token = redeem(server, client, site, state, verifier)
    assert http.get("/v1/portal/me", token=token["access_token"])[0] == 200


def test_a_forgotten_password_reset_from_the_app_ends_back_in_the_app(page, server, site, app, portal_app):  # noqa: F811
    client_id, email = portal_app
    client, url, state, verifier = start(server, client_id, site)
    page.goto(url)
    page.get_by_role("link", name="Can't sign in?").click()
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    drain(app)
    page.goto(links_to(email, "/reset-password")[-1])
    page.get_by_label("New password", exact=True).fill("Brand-New-Porch-77")
    page.get_by_label("Type the new password again").fill("Brand-New-Porch-77")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("heading", name="The app")).to_be_visible()
    assert redeem(server, client, site, state, verifier)["access_token"]


def test_an_invited_customer_registers_and_continues_to_the_default_app(page, server, site, app, http, tenant):  # noqa: F811
    make_app(tenant.id, name="Harper Portal", initiate_login_uri=site.home, redirect_uris=[site.callback])
    email = f"new.{secrets.token_hex(3)}@{tenant.id}.example"
    t = tenant.admin_token
    customer = http.post("/v1/customers", {"name": "Harper", "emails": [email]}, token=t)[1]
    http.post("/v1/portal/invitations", {"customer_id": customer["customer_id"], "email": email}, token=t)
    drain(app)
    page.goto(links_to(email, "/register")[-1])
    page.get_by_label("Password", exact=True).fill(PORTAL_PASSWORD)
    page.get_by_label("Type the password again").fill(PORTAL_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Your account is ready")).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "oauth-continue-to-app")
    page.get_by_role("link", name="Continue to Harper Portal").click()
    expect(page.get_by_role("heading", name="The app")).to_be_visible()
    assert any(v.startswith("/?iss=") for v in site.visits)
    # the app signs the person in without the form: the registration started the hosted session
    client, url, state, verifier = start(server, site_client_id(tenant), site, prompt="none")
    page.goto(url)
    assert redeem(server, client, site, state, verifier)["access_token"]


def site_client_id(tenant):
    from chalicelib.flows import apps
    return apps.default_app(tenant.id, "portal").client_id


def test_a_technician_with_an_authenticator_signs_in_to_the_staff_app(page, server, site, http, tenant,  # noqa: F811
                                                                      code_clock):  # noqa: F811
    made = make_app(tenant.id, audience="staff", name="Technician App", redirect_uris=[site.callback])
    person, token = staff_member(tenant)
    secret, _ = set_up_totp(http, token, code_clock)
    client, url, state, verifier = start(server, made.client_id, site)
    page.goto(url)
    expect(page.get_by_role("heading", name="Sign in to continue to Technician App")).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "staff-sign-in")
    page.get_by_label("Username, email or mobile number").fill(person.username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Enter your second factor")).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "staff-sign-in-factor")
    page.get_by_label("Authenticator code or recovery code").fill("000000" if code(secret, code_clock()) != "000000"
                                                                  else "111111")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#code-error")).to_contain_text("This code is not right")
    page.get_by_label("Authenticator code or recovery code").fill(code(secret, code_clock()))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="The app")).to_be_visible()
    tokens = redeem(server, client, site, state, verifier)
    assert http.get("/v1/staff/me", token=tokens["access_token"])[0] == 200


def test_a_secure_access_link_opens_the_portal_app_signed_in(page, server, site, http, tenant):  # noqa: F811
    make_app(tenant.id, name="Harper Portal", initiate_login_uri=site.home, redirect_uris=[site.callback])
    t = tenant.admin_token
    customer = http.post("/v1/customers", {"name": "Walk-in"}, token=t)[1]
    status, link = http.post(f"/v1/customers/{customer['customer_id']}/access-link", {}, token=t)
    assert status == 201, link
    page.goto(link["link"])
    expect(page.get_by_role("heading", name="The app")).to_be_visible()
    assert "token=" not in page.url
    client, url, state, verifier = start(server, site_client_id(tenant), site, prompt="none")
    page.goto(url)
    tokens = redeem(server, client, site, state, verifier)
    status, me = http.get("/v1/portal/me", token=tokens["access_token"])
    assert status == 200, me
