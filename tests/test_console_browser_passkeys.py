"""Passkeys in Debian's Chromium (issue 18), with the browser's own virtual authenticator (the DevTools protocol's
WebAuthn domain, through Playwright's CDP session): a person adds a passkey in the console and renames it; signs
out; signs in with the password and the passkey as the second factor; signs out; signs in without a password (a
discoverable passkey); removes it, and it no longer signs in. Where the business requires a factor, the setup
takes a passkey. Without JavaScript the passkey page says it needs it and the password still signs in. axe-core
finds no serious or critical violation on any screen, the CSP reports nothing (one first-party script), and every
screen is saved under docs/screens/console-passkey*.png.

WebAuthn needs a secure context and a domain name as the relying-party id (never an IP address), so this module
serves the app at http://localhost:<port> (a secure context) and makes that the public base URL."""
import re

from playwright.sync_api import expect
from browser_helpers import axe_violations, browser, fill_console_sign_in, page, server, shot  # noqa: F401
from staff_helpers import PASSWORD, staff_member


SERVER_HOST = "localhost"  # browser_helpers.server: the passkeys' relying party is the public base URL's host


def authenticator(page):
    """A platform authenticator that keeps discoverable credentials and verifies the user (as a phone's
    fingerprint does), for this tab."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    found = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    return cdp, found["authenticatorId"]


def credentials(cdp, authenticator_id):
    return cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]


def clean(page, name):
    assert axe_violations(page) == [], name
    shot(page, name)


def sign_out(page):
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/console/sign-in"))


def test_add_a_passkey_then_sign_in_with_it_as_the_factor_and_without_a_password(app, page, tenant):
    cdp, auth = authenticator(page)
    fill_console_sign_in(page, tenant.id, tenant.admin_username, tenant.admin_password,
                         start="/console/sign-in?next=/console/customers")
    page.wait_for_url(re.compile(r"/console/customers"))
    page.get_by_role("link", name="Sign-in methods").click()
    page.wait_for_url(re.compile(r"/console/mfa-setup"))
    expect(page.get_by_role("heading", name="Passkeys", exact=True)).to_be_visible()
    expect(page.get_by_text("A passkey needs JavaScript").first).to_be_hidden()  # the script hid it
    clean(page, "console-passkeys")

    page.get_by_label("Passkey name").fill("Office laptop")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    expect(page.get_by_text("Your passkey is added.")).to_be_visible()
    assert page.get_by_role("list", name="Recovery codes").locator("li").count() == 10
    clean(page, "console-passkey-recovery-codes")
    [credential] = credentials(cdp, auth)
    assert credential["isResidentCredential"] is True and credential["rpId"] == "localhost"
    page.get_by_role("link", name="Continue to the console").click()
    page.wait_for_url(re.compile(r"/console/mfa-setup"))
    table = page.get_by_role("table", name="Your passkeys")
    expect(table.get_by_role("rowheader", name="Office laptop")).to_be_visible()
    page.get_by_label("New name for Office laptop").fill("Work laptop")
    page.get_by_role("button", name="Rename Office laptop").click()
    page.wait_for_url(re.compile(r"done=renamed"))
    expect(page.get_by_role("rowheader", name="Work laptop")).to_be_visible()
    clean(page, "console-passkey-list")
    page.set_viewport_size({"width": 320, "height": 800})
    clean(page, "console-passkey-list-320")
    page.set_viewport_size({"width": 1280, "height": 900})

    # the password, then the passkey as the second factor
    sign_out(page)
    fill_console_sign_in(page, tenant.id, tenant.admin_username, tenant.admin_password,
                         start="/console/sign-in?next=/console/customers")
    page.wait_for_url(re.compile(r"/console/sign-in/factor"))
    expect(page.get_by_label("Authenticator code or recovery code")).to_be_visible()  # the other way stays
    clean(page, "console-passkey-factor")
    page.get_by_role("button", name="Use a passkey").click()
    page.wait_for_url(re.compile(r"/console/customers"))
    assert credentials(cdp, auth)[0]["signCount"] >= 2

    # no password at all: the passkey the device offers says whose it is
    sign_out(page)
    page.get_by_role("link", name="Sign in with a passkey").click()
    page.wait_for_url(re.compile(r"/console/sign-in/passkey"))
    clean(page, "console-passkey-sign-in")
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(re.compile(r"/console/customers"))

    # username first, then removed: it no longer signs in
    sign_out(page)
    page.goto("/console/sign-in/passkey")
    page.get_by_label("Business ID (optional)").fill(tenant.id)
    page.get_by_label("Username (optional)").fill(tenant.admin_username)
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(re.compile(r"/console/(customers|portal|people)"))
    page.goto("/console/mfa-setup")
    page.get_by_role("button", name="Remove Work laptop").click()
    page.wait_for_url(re.compile(r"done=removed"))
    expect(page.get_by_text("You have no passkey yet.")).to_be_visible()
    sign_out(page)
    page.goto("/console/sign-in/passkey")
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(re.compile(r"/console/sign-in/passkey"))
    expect(page.get_by_text("This passkey was not accepted").first).to_be_visible()
    clean(page, "console-passkey-refused")
    # the password alone signs in again (the removed passkey was the only factor)
    fill_console_sign_in(page, tenant.id, tenant.admin_username, tenant.admin_password,
                         start="/console/sign-in?next=/console/customers")
    page.wait_for_url(re.compile(r"/console/customers"))


def test_an_old_sign_in_signs_in_again_before_adding(app, page, tenant, monkeypatch):
    from chalicelib.flows.staff import mfa
    fill_console_sign_in(page, tenant.id, tenant.admin_username, tenant.admin_password,
                         start="/console/sign-in?next=/console/mfa-setup")
    page.wait_for_url(re.compile(r"/console/mfa-setup"))
    real_now = mfa.now
    monkeypatch.setattr(mfa, "now", lambda: real_now() + 11 * 60)  # the sign-in is 11 minutes old
    page.reload()
    expect(page.get_by_text("adding or removing a passkey needs a sign-in in the last 10 minutes")).to_be_visible()
    assert page.get_by_role("button", name="Add a passkey").count() == 0
    clean(page, "console-passkey-sign-in-again")
    monkeypatch.setattr(mfa, "now", real_now)
    page.get_by_role("button", name="Sign in again").click()
    page.wait_for_url(re.compile(r"/console/sign-in\?next="))
    page.get_by_label("Business ID").fill(tenant.id)
    page.get_by_label("Username").fill(tenant.admin_username)
    page.get_by_label("Password", exact=True).fill(tenant.admin_password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/console/mfa-setup"))
    expect(page.get_by_role("button", name="Add a passkey")).to_be_visible()


def test_a_required_factor_can_be_a_passkey(app, page, tenant):
    http = tenant.http
    person, _ = staff_member(tenant, kind="employee", permissions=["directory:manage"])
    assert http.call("PUT", "/v1/staff/mfa/policy", {"staff_mfa": "required_for_all"},
                     token=tenant.admin_token)[0] == 200
    authenticator(page)
    fill_console_sign_in(page, tenant.id, person.username, PASSWORD, start="/console/sign-in?next=/console/customers")
    page.wait_for_url(re.compile(r"/console/mfa-setup"))
    expect(page.get_by_role("heading", name="Add a passkey")).to_be_visible()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()  # or the app
    clean(page, "console-passkey-setup")
    page.get_by_label("Passkey name").fill("Phone")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_text("Your passkey is added.")).to_be_visible()
    page.get_by_role("link", name="Continue to the console").click()
    page.wait_for_url(re.compile(r"/console/customers"))
    # the passkey is the factor the policy asks for: the next sign-in needs no setup, and no password
    sign_out(page)
    page.goto("/console/sign-in/passkey")
    page.get_by_label("Business ID (optional)").fill(tenant.id)
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(re.compile(r"/console/customers"))


def test_without_javascript_the_page_says_so_and_the_password_still_works(browser, server, tenant):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server, java_script_enabled=False)
    tab = context.new_page()
    try:
        tab.goto("/console/sign-in/passkey")
        expect(tab.get_by_text("A passkey needs JavaScript, which is off or blocked in this browser.")).to_be_visible()
        expect(tab.get_by_role("button", name="Sign in with a passkey")).to_be_hidden()
        shot(tab, "console-passkey-no-javascript")
        tab.get_by_role("link", name="Sign in with your password").click()
        fill_console_sign_in(tab, tenant.id, tenant.admin_username, tenant.admin_password,
                             start="/console/sign-in?next=/console/customers")
        tab.wait_for_url(re.compile(r"/console/customers"))
        tab.goto("/console/mfa-setup")
        expect(tab.get_by_text("A passkey needs JavaScript").first).to_be_visible()
        expect(tab.get_by_role("button", name="Add a passkey")).to_be_hidden()
    finally:
        context.close()
