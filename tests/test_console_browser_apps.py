"""The console's Apps section in a real browser (Debian's Chromium, Playwright): the list, Add app (refused in words,
then a public app, then a confidential one with its secret shown once and Copy), an app's page (Save, Make default,
Rotate secret, Delete app behind its confirmation), an app that is not found, by mouse and by keyboard. axe-core
checks every screen; screenshots go to docs/screens/console-apps*.png, the list also at 320 px wide."""
import re

import pytest
from browser_helpers import axe_violations, browser, fill_console_sign_in, page, server, shot  # noqa: F401 (fixtures)
from conftest import make_tenant
from playwright.sync_api import expect

BUSINESS = "Brightwater Plumbing & Heating"


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


def api_apps(http, tenant):
    return {a["name"]: a for a in http.get("/v1/apps", token=tenant.admin_token)[1]["items"]}


def test_apps_journey(business, page, http):
    from chalicelib.flows import apps
    sign_in(page, business)
    page.get_by_role("navigation", name="Console sections").get_by_role("link", name="Apps").click()
    expect(page.get_by_role("heading", name="Apps", level=1)).to_be_visible()
    expect(page.get_by_text("No apps yet.")).to_be_visible()
    clean(page)
    shot(page, "console-apps-empty")

    # Add app: refused in words first
    page.get_by_role("link", name="Add app").click()
    expect(page.get_by_role("heading", name="Add app", level=1)).to_be_visible()
    clean(page)
    shot(page, "console-apps-add")
    page.get_by_label("Name", exact=True).fill("Customer Portal")
    page.get_by_label("Redirect URIs", exact=True).fill("http://portal.brightwater.example/callback")
    page.get_by_role("button", name="Add app").click()
    expect(page.get_by_text("There is a problem")).to_be_visible()
    expect(page.get_by_text("Choose who signs in to this app.").first).to_be_visible()
    expect(page.get_by_text(re.compile("must use https")).first).to_be_visible()
    clean(page)
    shot(page, "console-apps-add-problem")

    # a public app for customers
    page.get_by_label("Customer portal").check()
    page.get_by_label("Public").check()
    page.get_by_label("Redirect URIs", exact=True).fill("https://portal.brightwater.example/callback\n"
                                            "http://127.0.0.1:8400/callback")
    page.get_by_label("Post-logout redirect URIs").fill("https://portal.brightwater.example/")
    page.get_by_label("Initiate login URI").fill("https://portal.brightwater.example/")
    page.get_by_role("button", name="Add app").click()
    expect(page.get_by_role("status")).to_contain_text("App added.")
    expect(page.get_by_role("heading", name="Customer Portal", level=1)).to_be_visible()
    portal = api_apps(http, business)["Customer Portal"]
    expect(page.get_by_text(portal["client_id"])).to_be_visible()
    assert portal["is_default"] and portal["redirect_uris"] == ["https://portal.brightwater.example/callback",
                                                                "http://127.0.0.1:8400/callback"]
    clean(page)
    shot(page, "console-apps-app")

    # a confidential app: its secret once, with Copy
    page.get_by_role("link", name="Apps", exact=True).first.click()
    page.get_by_role("link", name="Add app").click()
    page.get_by_label("Name", exact=True).fill("Brightwater Office Server")
    page.get_by_label("Customer portal").check()
    page.get_by_label("Confidential").check()
    page.get_by_label("Redirect URIs", exact=True).fill("https://office.brightwater.example/oauth/callback")
    page.get_by_role("button", name="Add app").click()
    expect(page.get_by_role("heading", name="The client secret")).to_be_visible()
    secret_box = page.get_by_label("Client secret")
    secret = secret_box.input_value()
    office = api_apps(http, business)["Brightwater Office Server"]
    assert apps.check_secret(apps.find(office["client_id"]), secret)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("status").filter(has_text="Copied")).to_contain_text("Paste it into the app's settings")
    clean(page)
    shot(page, "console-apps-secret")

    # Rotate secret: a new one, once; the old one stops
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_role("heading", name="The new client secret")).to_be_visible()
    rotated = page.get_by_label("Client secret").input_value()
    stored = apps.find(office["client_id"])
    assert rotated != secret and apps.check_secret(stored, rotated) and not apps.check_secret(stored, secret)
    expect(page.get_by_text("The old secret has stopped working.")).to_be_visible()
    clean(page)

    # Save: a bad address stays in the form with its words, then a good one
    page.get_by_label("Name", exact=True).fill("Office Server")
    page.get_by_label("Redirect URIs", exact=True).fill("https://office.brightwater.example/cb#x")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text(re.compile("must not have a fragment")).first).to_be_visible()
    expect(page.get_by_label("Redirect URIs", exact=True)).to_have_value("https://office.brightwater.example/cb#x")
    clean(page)
    shot(page, "console-apps-app-problem")
    page.get_by_label("Redirect URIs", exact=True).fill("https://office.brightwater.example/cb")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Changes saved.")
    assert api_apps(http, business)["Office Server"]["redirect_uris"] == ["https://office.brightwater.example/cb"]
    expect(page.get_by_label("Client secret")).to_have_count(0)

    # Make default, by keyboard
    page.get_by_role("button", name="Make default").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("This app is now the default.")
    listed = api_apps(http, business)
    assert listed["Office Server"]["is_default"] and not listed["Customer Portal"]["is_default"]
    clean(page)

    # the list: who signs in, type, default
    page.get_by_role("navigation", name="Console sections").get_by_role("link", name="Apps").click()
    expect(row(page, "Office Server")).to_contain_text("Customer portal")
    expect(row(page, "Office Server")).to_contain_text("Confidential")
    expect(row(page, "Office Server")).to_contain_text("Default")
    expect(row(page, "Customer Portal")).to_contain_text("Public")
    clean(page)
    shot(page, "console-apps")

    # Delete app, behind its confirmation; Cancel first
    row(page, "Customer Portal").get_by_role("link", name="Customer Portal").click()
    page.get_by_role("link", name="Delete app").click()
    expect(page.get_by_role("heading", name="Delete Customer Portal?")).to_be_visible()
    clean(page)
    shot(page, "console-apps-delete")
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("heading", name="Customer Portal", level=1)).to_be_visible()
    page.get_by_role("link", name="Delete app").click()
    page.get_by_role("button", name="Delete app").click()
    expect(page.get_by_role("status")).to_contain_text("App deleted.")
    expect(row(page, "Customer Portal")).to_have_count(0)
    assert set(api_apps(http, business)) == {"Office Server"}
    clean(page)

    # an app that is not there
    page.goto(f"/console/apps/{portal['client_id']}")
    expect(page.get_by_role("heading", name="App not found")).to_be_visible()
    clean(page)
    shot(page, "console-apps-not-found")


def test_the_list_at_320_px(business, page, http):
    token = business.admin_token
    for name, audience, uri in (("Customer Portal", "portal", "https://portal.brightwater.example/callback"),
                                ("Technician App", "staff", "com.example.fieldtech:/oauth2redirect")):
        assert http.post("/v1/apps", {"name": name, "audience": audience, "redirect_uris": [uri]},
                         token=token)[0] == 201
    sign_in(page, business)
    page.set_viewport_size({"width": 320, "height": 800})
    page.goto("/console/apps")
    expect(row(page, "Technician App")).to_contain_text("Staff")
    clean(page)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, width
    shot(page, "console-apps-320")
