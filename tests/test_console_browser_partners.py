"""Partner Portals and Activity in a real browser (Debian's Chromium, Playwright): the list with its Access switches,
the Legal Agreement (refused until its box is checked, Cancel), Grant Access, a portal's page with Show inactive /
Hide inactive and its activity, switching off, the Activity trail filtered, by mouse and by keyboard. axe-core
checks every screen; screenshots go to docs/screens/console-partner-*.png and console-activity*.png."""
import re
import uuid

import pytest
from browser_helpers import axe_violations, browser, fill_console_sign_in, page, server, shot  # noqa: F401 (fixtures)
from conftest import make_tenant
from playwright.sync_api import expect

from ops import partner_portals

BUSINESS = "Brightwater Plumbing & Heating"
AGREEMENT = """FLEETLINK DISPATCH PARTNER ACCESS AGREEMENT

1. Access. When you grant access, FleetLink Dispatch may read your jobs and customers and book jobs on your behalf.
2. Data. FleetLink Dispatch uses your data only to provide its service to you, and never sells it.
3. Ending. You can switch access off at any time in the admin console; the partner's access ends at once.
4. Records. Each time FleetLink Dispatch uses your data it is recorded in your activity.
"""


@pytest.fixture(scope="module")
def portals():
    """Three portals as an operator defines them (named for the screenshots; ids unique to this run)."""
    run = uuid.uuid4().hex[:6]
    made = {}
    for name, perms in (("FleetLink Dispatch", ["view_customer", "view_job", "book_job"]),
                        ("Ledgerly Accounting", ["view_customer", "view_customer_statement", "view_invoice"]),
                        ("HomeShield Warranty", ["view_alerts", "view_location"])):
        portal, secret = partner_portals.create_portal(name, perms, "2026-01", AGREEMENT.replace(
            "FleetLink Dispatch", name).replace("FLEETLINK DISPATCH", name.upper()),
            portal_id=f"{partner_portals.slug(name)}-{run}")
        made[name] = (portal, secret)
    fleet = made["FleetLink Dispatch"][0].portal_id
    partner_portals.add_user(fleet, "Dana Ruiz", f"dana.ruiz.{run}@fleetlink.example")
    partner_portals.add_user(fleet, "Sam Okafor", f"sam.okafor.{run}@fleetlink.example")
    partner_portals.add_user(fleet, "Lee Park", f"lee.park.{run}@fleetlink.example", status="inactive")
    return made


@pytest.fixture
def business(http):
    return make_tenant(http, name=BUSINESS)


def sign_in(page, tenant):
    fill_console_sign_in(page, tenant.id, tenant.admin_username, tenant.admin_password, start="/console")
    expect(page.get_by_role("navigation", name="Console sections")).to_be_visible()


def row(page, name):
    return page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name, exact=True))


def clean(page):
    assert axe_violations(page) == []


def test_partner_portals_journey(business, portals, page, http):
    fleet, fleet_secret = portals["FleetLink Dispatch"]
    sign_in(page, business)
    page.get_by_role("navigation", name="Console sections").get_by_role("link", name="Partner Portals").click()
    expect(page.get_by_role("heading", name="Partner Portals", level=1)).to_be_visible()
    switch = row(page, "FleetLink Dispatch").get_by_role("button", name="Access")
    expect(switch).to_have_attribute("aria-pressed", "false")
    expect(row(page, "Ledgerly Accounting")).to_contain_text("View Customer Statement")
    clean(page)
    shot(page, "console-partner-portals")

    # on: the Legal Agreement, refused until the box is checked
    switch.click()
    expect(page.get_by_role("heading", name="Legal Agreement")).to_be_visible()
    expect(page.get_by_role("region", name=re.compile("Agreement, version 2026-01"))).to_contain_text(
        "4. Records. Each time FleetLink Dispatch uses your data")
    box = page.get_by_label("I agree and accept these terms and consent to Partner's access to my account and data")
    expect(box).not_to_be_checked()
    clean(page)
    shot(page, "console-partner-agreement")
    page.get_by_role("button", name="Grant Access").click()
    expect(page.get_by_text("There is a problem")).to_be_visible()
    expect(page.get_by_text(re.compile("Check the box to agree")).first).to_be_visible()
    clean(page)
    assert http.get(f"/v1/partner-portals/{fleet.portal_id}", token=business.admin_token)[1]["enabled"] is False
    box = page.get_by_label("I agree and accept these terms and consent to Partner's access to my account and data")
    box.check()
    page.get_by_role("button", name="Grant Access").click()
    expect(page.get_by_role("status")).to_contain_text("Access granted to FleetLink Dispatch.")
    expect(row(page, "FleetLink Dispatch").get_by_role("button", name="Access")).to_have_attribute("aria-pressed",
                                                                                                   "true")
    clean(page)

    # by keyboard: the next switch, then Cancel on its agreement
    ledgerly = row(page, "Ledgerly Accounting").get_by_role("button", name="Access")
    ledgerly.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Legal Agreement")).to_be_visible()
    page.get_by_role("link", name="Cancel").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Access to Ledgerly Accounting was not granted.")
    expect(row(page, "Ledgerly Accounting").get_by_role("button", name="Access")).to_have_attribute("aria-pressed",
                                                                                                    "false")
    clean(page)

    # the partner works with the business: its activity
    for _ in range(2):
        assert http.post("/v1/partner/token", {"client_id": fleet.client_id, "client_secret": fleet_secret,
                                               "tenant_id": business.id})[0] == 200

    # View: the portal's page, active users, then inactive too
    row(page, "FleetLink Dispatch").get_by_role("link", name="View").click()
    expect(page.get_by_role("heading", name="FleetLink Dispatch", level=1)).to_be_visible()
    users = page.get_by_role("table", name=re.compile("users"))
    expect(users).to_contain_text("Dana Ruiz")
    expect(users).not_to_contain_text("Lee Park")
    expect(page.get_by_role("table", name=re.compile("Activity of"))).to_contain_text(
        "Access granted by Admin (agreement accepted)")
    clean(page)
    page.get_by_role("link", name="Show inactive").click()
    expect(page.get_by_role("table", name=re.compile("users"))).to_contain_text("Lee Park")
    expect(page.get_by_role("link", name="Hide inactive")).to_be_visible()
    clean(page)
    shot(page, "console-partner-portal")
    page.get_by_role("link", name="Hide inactive").click()
    expect(page.get_by_role("table", name=re.compile("users"))).not_to_contain_text("Lee Park")

    # off, at once, from the portal's page
    page.get_by_role("button", name="Access").click()
    expect(page.get_by_role("status")).to_contain_text("Access switched off for FleetLink Dispatch.")
    expect(page.get_by_role("button", name="Access")).to_have_attribute("aria-pressed", "false")
    clean(page)
    status, _ = http.post("/v1/partner/token", {"client_id": fleet.client_id, "client_secret": fleet_secret,
                                                "tenant_id": business.id})
    assert status == 403

    # a portal that does not exist
    page.goto("/console/partner-portals/no-such-portal")
    expect(page.get_by_role("heading", name="Partner portal not found")).to_be_visible()
    clean(page)


def test_activity_filtered_and_at_320_px(business, portals, page, http):
    fleet, fleet_secret = portals["FleetLink Dispatch"]
    token = business.admin_token
    assert http.post(f"/v1/partner-portals/{fleet.portal_id}/enable", {"accept": True, "agreement_version": "2026-01"},
                     token=token)[0] == 200
    partner = http.post("/v1/partner/token", {"client_id": fleet.client_id, "client_secret": fleet_secret,
                                              "tenant_id": business.id})[1]["access_token"]
    http.get("/v1/partner/customers", token=partner)
    http.get("/v1/partner/locations", token=partner)
    customer = http.post("/v1/customers", {"name": "Harper Home", "emails": [f"harper@{business.id}.example"]},
                         token=token)[1]
    http.post("/v1/portal/invitations", {"customer_id": customer["customer_id"],
                                         "email": f"harper@{business.id}.example"}, token=token)
    sign_in(page, business)
    page.get_by_role("navigation", name="Console sections").get_by_role("link", name="Activity").click()
    expect(page.get_by_role("heading", name="Activity", level=1)).to_be_visible()
    trail = page.get_by_role("table", name=re.compile("^Activity"))
    expect(trail).to_contain_text("Invited by Admin to Harper Home (Billing Access)")
    expect(trail).to_contain_text("Partner listed customers")
    clean(page)
    shot(page, "console-activity")

    page.get_by_label("Partner portal").select_option(label="FleetLink Dispatch")
    page.get_by_role("button", name="Filter").click()
    trail = page.get_by_role("table", name=re.compile("^Activity, filtered"))
    expect(trail).to_contain_text("Partner listed service locations (refused: the portal does not have that "
                                  "permission)")
    expect(trail).not_to_contain_text("Harper Home")
    expect(page.get_by_label("Partner portal")).to_have_value(fleet.portal_id)
    clean(page)

    page.get_by_label("Person").fill("nobody-at-all")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("There is a problem")).to_be_visible()
    clean(page)
    page.get_by_role("link", name="Clear filters").click()

    page.get_by_label("Portal user").fill(f"harper@{business.id}.example")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("table", name=re.compile("^Activity, filtered"))).to_contain_text("Harper Home")

    page.set_viewport_size({"width": 320, "height": 800})
    page.get_by_role("link", name="Clear filters").click()
    expect(page.get_by_role("heading", name="Activity", level=1)).to_be_visible()
    clean(page)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, width  # the table scrolls in its own box, the page does not
    shot(page, "console-activity-320")
