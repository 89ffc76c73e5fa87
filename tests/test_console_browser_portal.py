"""Admin console → Customer Portal in a real browser (Debian's Chromium through Playwright): sign in, User Management
(search by email, a user's page: Resend Invite, access per record, Disable / Enable, Activity), Permissions; axe-core
finds no serious or critical violation on any screen, and each screen is saved as docs/screens/console-portal-*.png
(the list at 320 px too)."""
import urllib.parse

import pytest
from browser_helpers import axe_violations, browser, fill_console_sign_in, page, server, shot  # noqa: F401 (fixtures)
from console_helpers import google_only  # noqa: F401 (a fixture)
from conftest import drain, links_to, make_tenant
from playwright.sync_api import expect

BUSINESS = "Brightwater Plumbing & Heating"


@pytest.fixture
def business(app, http):
    b = make_tenant(http, name=BUSINESS)
    t = b.admin_token
    people = [("Harper Household", ["dana.harper@example.com", "accounts@harper.example"]),
              ("Quinn Bakery", ["orders@quinnbakery.example"]),
              ("Lee Residence", ["jordan.lee@example.com"])]
    ids = {}
    for name, emails in people:
        cid = http.post("/v1/customers", {"name": name, "emails": emails}, token=t)[1]["customer_id"]
        ids[name] = cid
        for email in emails:
            assert http.post("/v1/portal/invitations", {"customer_id": cid, "email": email, "access": "billing"},
                             token=t)[0] == 202
    # Dana also looks after the Lees' rental: her email is on its location, so non-billing access at most there
    http.post(f"/v1/customers/{ids['Lee Residence']}/locations",
              {"address": "4 Harbour Rd", "emails": ["dana.harper@example.com"]}, token=t)
    assert http.post("/v1/portal/invitations", {"customer_id": ids["Lee Residence"],
                                                "email": "dana.harper@example.com", "access": "non_billing"},
                     token=t)[0] == 202
    drain(app)
    # and she registered, then signed in
    link = links_to("dana.harper@example.com", "/register")[-1]
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]
    assert http.post("/v1/portal/register", {"token": token, "password": "Portal-Customer-Pass-47"})[0] == 200
    assert http.post("/v1/portal/sign-in", {"tenant_id": b.id, "email": "dana.harper@example.com",
                                            "password": "Portal-Customer-Pass-47"})[0] == 200
    return b


def sign_in(page, business):
    fill_console_sign_in(page, business.id, business.admin_username, business.admin_password)
    page.wait_for_url("**/console/**")


def clean(page):
    assert axe_violations(page) == [], page.url


def test_user_management_journey(page, business, http):
    sign_in(page, business)
    page.get_by_role("navigation", name="Console sections").get_by_role("link", name="Customer Portal").click()
    expect(page.get_by_role("heading", name="User Management")).to_be_visible()
    sub = page.get_by_role("navigation", name="Customer Portal")
    for label in ("User Management", "Bulk invite users", "Permissions"):
        expect(sub.get_by_role("link", name=label)).to_be_visible()
    table = page.get_by_role("table", name="Portal users")
    expect(table.get_by_role("row")).to_have_count(5)  # header + four invited
    expect(table).to_contain_text("Harper Household: Billing Access")
    clean(page)
    shot(page, "console-portal-users")

    page.set_viewport_size({"width": 320, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 320  # the table scrolls inside its wrapper
    clean(page)
    shot(page, "console-portal-users-320")
    page.set_viewport_size({"width": 1280, "height": 900})

    # search by the start of the email, with the keyboard
    page.get_by_label("Search by email").fill("DANA")
    page.get_by_label("Search by email").press("Enter")
    expect(page.get_by_role("table", name="Portal users whose email starts with “DANA”")
           .get_by_role("row")).to_have_count(2)
    page.get_by_role("link", name="dana.harper@example.com").click()
    expect(page.get_by_role("heading", name="dana.harper@example.com")).to_be_visible()
    expect(page.get_by_role("button", name="Resend Invite")).to_have_count(0)  # she registered
    lee = page.get_by_label("Access to Lee Residence")
    expect(lee.get_by_role("option")).to_have_text(["Non-Billing Access", "No Access"])  # only on a location
    clean(page)

    page.get_by_label("Access to Harper Household").select_option(label="Non-Billing Access")
    page.get_by_role("row", name="Harper Household").get_by_role("button", name="Change access").click()
    expect(page.get_by_role("status")).to_contain_text("Access changed.")
    expect(page.get_by_label("Access to Harper Household")).to_have_value("non_billing")
    page.get_by_role("button", name="Sign out everywhere").click()
    expect(page.get_by_role("status")).to_contain_text("signed out everywhere")
    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("status")).to_contain_text("The user is disabled")
    page.get_by_role("button", name="Enable").click()
    expect(page.get_by_role("status")).to_contain_text("The user is enabled")
    activity = page.get_by_role("table", name="Activity")
    for line in ("Invited by Admin to Harper Household (Billing Access)",
                 "Invited by Admin to Lee Residence (Non-Billing Access)", "Registered and chose a password",
                 "Signed in", "Changed by Admin: access", "Signed out everywhere by Admin",
                 "Disabled by Admin (signed out everywhere)", "Changed by Admin: status"):
        expect(activity).to_contain_text(line)
    clean(page)
    shot(page, "console-portal-user")
    user_id = page.url.split("/")[-1].split("?")[0]
    status, body = http.get(f"/v1/portal/users/{user_id}", token=business.admin_token)
    assert body["status"] == "active"
    assert sorted(g["access"] for g in body["grants"]) == ["non_billing", "non_billing"]

    # an invitee who has not registered yet: Resend Invite
    page.get_by_role("link", name="Back to User Management").click()
    page.get_by_role("link", name="jordan.lee@example.com").click()
    page.get_by_role("button", name="Resend Invite").click()
    expect(page.get_by_role("status")).to_contain_text("The invitation is on its way.")
    expect(page.get_by_role("table", name="Activity")).to_contain_text("Invitation sent again by Admin")
    clean(page)

    page.goto("/console/portal/users/pu_" + "0" * 32)
    expect(page.get_by_role("heading", name="Portal user not found")).to_be_visible()
    clean(page)
    shot(page, "console-portal-user-not-found")


def test_permissions_journey(page, business, http, google_only):
    sign_in(page, business)
    page.goto("/console/portal/users")
    page.get_by_role("navigation", name="Customer Portal").get_by_role("link", name="Permissions").click()
    expect(page.get_by_role("heading", name="Permissions")).to_be_visible()
    expect(page.get_by_label("Continue with Microsoft")).to_be_disabled()
    expect(page.get_by_text("Cannot be switched on: sign-in with Microsoft is not set up")).to_be_visible()
    clean(page)
    page.get_by_label("Self sign-up").check()
    page.get_by_label("Continue with Google").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Permissions saved.")
    expect(page.get_by_label("Self sign-up")).to_be_checked()
    expect(page.get_by_label("Continue with Google")).to_be_checked()
    clean(page)
    shot(page, "console-portal-permissions")
    assert http.get("/v1/portal/settings", token=business.admin_token)[1] == {"self_signup": True,
                                                                             "third_party_signin": ["google"]}
