"""Passkeys on the hosted staff sign-in (issues 17 and 18), in Debian's Chromium with its virtual authenticator:
where the business requires a second factor, a technician signing in to the staff app adds a passkey as that factor,
saves the recovery codes and lands back in the app; later, the app asks for a fresh sign-in (prompt=login) and the
technician signs in with the passkey alone; then with the password and the passkey as the second step. axe-core on
every new screen; screenshots docs/screens/staff-sign-in-passkey*.png."""
import re

from browser_helpers import axe_violations, browser, page, server, shot  # noqa: F401
from playwright.sync_api import expect
from staff_helpers import PASSWORD, staff_member
from test_console_browser_passkeys import authenticator, credentials
from test_oauth_browser import make_app, redeem, site, start  # noqa: F401

SERVER_HOST = "localhost"  # the passkeys' relying party is the public base URL's host: a name, never an IP


def test_a_technician_adds_a_passkey_where_required_then_signs_in_with_it(page, server, site, http, tenant):  # noqa: F811
    made = make_app(tenant.id, audience="staff", name="Technician App", redirect_uris=[site.callback])
    person, _ = staff_member(tenant)
    status, _ = http.call("PUT", "/v1/staff/mfa/policy", {"staff_mfa": "required_for_all"},
                          token=tenant.admin_token)
    assert status == 200
    cdp, auth = authenticator(page)

    client, url, state, verifier = start(server, made.client_id, site)
    page.goto(url)
    page.get_by_label("Username, email or mobile number").fill(person.username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(re.compile(r"/staff/sign-in/setup"))
    expect(page.get_by_role("heading", name="Add a passkey")).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "staff-sign-in-setup")
    page.get_by_label("Passkey name").fill("Van phone")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    expect(page.get_by_text("Your passkey is added.")).to_be_visible()
    assert len(credentials(cdp, auth)) == 1
    assert axe_violations(page) == []
    page.get_by_role("link", name="Continue").click()
    expect(page.get_by_role("heading", name="The app")).to_be_visible()
    assert http.get("/v1/staff/me", token=redeem(server, client, site, state, verifier)["access_token"])[0] == 200

    # the app asks for a fresh sign-in: the passkey alone
    client, url, state, verifier = start(server, made.client_id, site, prompt="login")
    page.goto(url)
    expect(page.get_by_role("heading", name="Or use a passkey")).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "staff-sign-in-passkey")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("heading", name="The app")).to_be_visible()
    assert http.get("/v1/staff/me", token=redeem(server, client, site, state, verifier)["access_token"])[0] == 200

    # and the password, then the passkey as the second step
    client, url, state, verifier = start(server, made.client_id, site, prompt="login")
    page.goto(url)
    page.get_by_label("Username, email or mobile number").fill(person.username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Enter your second factor")).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "staff-sign-in-passkey-factor")
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_role("heading", name="The app")).to_be_visible()
    assert http.get("/v1/staff/me", token=redeem(server, client, site, state, verifier)["access_token"])[0] == 200
