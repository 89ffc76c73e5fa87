"""The console's door in a real browser (Debian's Chromium, Playwright): sign in with the labelled fields, the first
section, Sign out; the error answers; the forced change; the 403 page. axe-core checks every screen (no serious or
critical violation), and each is saved as docs/screens/console-*.png. The sections have their own modules
(tests/test_console_browser_<section>.py)."""
import pytest
from browser_helpers import axe_violations, browser, fill_console_sign_in, page, server, shot  # noqa: F401 (fixtures)
from conftest import make_tenant
from playwright.sync_api import expect
from staff_helpers import PASSWORD, staff_member

BUSINESS = "Brightwater Plumbing & Heating"


@pytest.fixture
def business(http):
    return make_tenant(http, name=BUSINESS)


def sign_in(page, tenant_id, username, password):
    page.goto("/console")
    assert "/console/sign-in" in page.url
    fill_console_sign_in(page, tenant_id, username, password, start=page.url)


def test_axe_finds_what_it_should():
    """The check itself can fail: a field without a label is a critical violation."""
    from playwright.sync_api import sync_playwright

    from browser_helpers import CHROMIUM, CHROMIUM_ARGS
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        tab = chromium.new_page()
        tab.set_content("<!doctype html><html lang='en'><title>t</title><main><input type='text'></main></html>")
        found = axe_violations(tab)
        chromium.close()
    assert any("label" in v for v in found), found


def test_sign_in_the_first_section_and_sign_out(business, page):
    page.goto("/console")
    expect(page.get_by_role("heading", name="Sign in to the admin console")).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "console-sign-in")
    sign_in(page, business.id, business.admin_username, "Not-The-Password-1")
    expect(page.get_by_text("The username or password is not right.").first).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "console-sign-in-error")
    page.get_by_label("Password", exact=True).fill(business.admin_password)
    page.get_by_role("button", name="Sign in").click()
    nav = page.get_by_role("navigation", name="Console sections")
    for label in ("Customers", "Customer Portal", "People", "Partner Portals", "Activity"):
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Customers", exact=True)).to_have_attribute("aria-current", "page")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto("/console/customers")
    assert "/console/sign-in" in page.url


def test_a_section_without_its_permission_is_the_403_page(business, page):
    person, _ = staff_member(business, kind="employee", role="office")
    sign_in(page, business.id, person.username, PASSWORD)
    nav = page.get_by_role("navigation", name="Console sections")
    expect(nav.get_by_role("link", name="Customers", exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="People", exact=True)).to_have_count(0)
    response = page.goto("/console/people/employees")
    assert response.status == 403
    expect(page.get_by_role("heading", name="You cannot open this page")).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "console-forbidden")


def test_first_sign_in_with_an_admin_chosen_password(business, http, page):
    admin = business.admin_token
    status, person = http.post("/v1/people", {"kind": "employee", "name": "Dana Dispatcher", "role": "office",
                                              "email": "dana@brightwater.example"}, token=admin)
    assert status == 201, person
    status, body = http.post(f"/v1/people/{person['person_id']}/account",
                             {"username": "dana.given", "password": PASSWORD}, token=admin)
    assert status == 201, body
    sign_in(page, business.id, "dana.given", PASSWORD)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "console-change-password")
    page.get_by_label("Your username").fill("dana")
    page.get_by_label("New password", exact=True).fill("Dispatch-Board-2041")
    page.get_by_label("Type the new password again").fill("Dispatch-Board-2041")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("navigation", name="Console sections")).to_be_visible()
    assert "/console/customers" in page.url


def test_the_sign_in_page_at_320_px(business, page):
    page.set_viewport_size({"width": 320, "height": 800})
    page.goto("/console/sign-in")
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    shot(page, "console-sign-in-320")
