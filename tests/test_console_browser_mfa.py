"""The second factor in Debian's Chromium (issue 18): where the business requires one, the admin's sign-in leads to
the setup (QR code inline, the key in text), then the recovery codes and the console; the next sign-in asks for the
code on a second page; a person's page shows their second factor and resets it. axe-core finds no serious or
critical violation on any screen and the CSP reports nothing (the QR code is attribute-only SVG); every screen is
saved under docs/screens/console-*.png."""
import re

import pyotp
from playwright.sync_api import expect
from browser_helpers import axe_violations, browser, fill_console_sign_in, page, server, shot  # noqa: F401
from mfa_helpers import code_clock, set_up_totp  # noqa: F401
from staff_helpers import staff_member


def clean(page, name):
    assert axe_violations(page) == [], name
    shot(page, name)


def sign_in(page, tenant):
    fill_console_sign_in(page, tenant.id, tenant.admin_username, tenant.admin_password, start="/console/sign-in?next=/console/people/employees")


def test_required_setup_second_page_and_reset(app, page, tenant, code_clock):
    http = tenant.http
    person, token = staff_member(tenant, kind="employee")
    set_up_totp(http, token, code_clock)
    assert http.call("PUT", "/v1/staff/mfa/policy", {"staff_mfa": "required_for_admins"},
                     token=tenant.admin_token)[0] == 200

    sign_in(page, tenant)
    page.wait_for_url(re.compile(r"/console/mfa-setup"))
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    clean(page, "console-mfa-setup")
    key = page.locator(".key code").inner_text().replace(" ", "")
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(key).at(code_clock()))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    expect(page.get_by_role("list", name="Recovery codes").locator("li")).to_have_count(10)
    clean(page, "console-mfa-recovery-codes")
    page.get_by_role("link", name="Continue to the console").click()
    page.wait_for_url(re.compile(r"/console/people/employees"))

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/console/sign-in"))
    sign_in(page, tenant)
    page.wait_for_url(re.compile(r"/console/sign-in/factor"))
    clean(page, "console-sign-in-factor")
    field = page.get_by_label("Authenticator code or recovery code")
    field.fill("000000" if pyotp.TOTP(key).at(code_clock.next()) != "000000" else "111111")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("This code is not right").first).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_label("Authenticator code or recovery code").fill(pyotp.TOTP(key).at(code_clock()))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/console/people/employees"))

    page.goto(f"/console/people/{person.person_id}")
    expect(page.get_by_text("Set up", exact=True)).to_be_visible()
    clean(page, "console-person-second-factor")
    page.get_by_role("button", name="Reset second factor").click()
    page.wait_for_url(re.compile(r"done=mfa_reset"))
    expect(page.get_by_text("Not set up", exact=True)).to_be_visible()
    assert page.get_by_role("button", name="Reset second factor").count() == 0
    clean(page, "console-person-second-factor-reset")
