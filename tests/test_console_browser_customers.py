"""The console's Customers section in a real browser (Debian's Chromium, Playwright): search by name, a customer's
page, Billing and Invite / Resend Invite, New Contact with Send invite to customer portal, the secure access link
with Copy (and without JavaScript, a field to copy by hand), the list at 320 px. axe-core checks every screen (no
serious or critical violation); each is saved as docs/screens/console-customer*.png."""
import pytest
from browser_helpers import axe_violations, browser, fill_console_sign_in, page, server, shot  # noqa: F401 (fixtures)
from conftest import make_tenant
from playwright.sync_api import expect

BUSINESS = "Brightwater Plumbing & Heating"


@pytest.fixture
def business(http):
    return make_tenant(http, name=BUSINESS)


@pytest.fixture
def harper(http, business):
    t = business.admin_token
    for name, email, phone in (("Alvarez Bakery", "orders@alvarez.example", "(415) 555-0101"),
                               ("Brooks Dental", "office@brooksdental.example", "415-555-0177"),
                               ("Harbor Cafe", "hello@harborcafe.example", "")):
        http.post("/v1/customers", {"name": name, "emails": [email], "phones": [phone] if phone else []}, token=t)
    status, c = http.post("/v1/customers", {"name": "Harper Household", "emails": ["jo.harper@example.com",
                                                                                   "bills@harper.example"],
                                            "phones": ["(415) 555-0134"], "billing_address": "1 Main St, Oakland"},
                          token=t)
    assert status == 201, c
    http.post(f"/v1/customers/{c['customer_id']}/locations",
              {"address": "12 Elm Street, Berkeley", "name": "Rental", "emails": ["tenant@elm.example"]}, token=t)
    http.post(f"/v1/customers/{c['customer_id']}/contacts", {"name": "Pat Harper", "phone": "+1 415 555 0199"},
              token=t)
    return c


def sign_in(page, business):
    fill_console_sign_in(page, business.id, business.admin_username, business.admin_password, start="/console")
    expect(page.get_by_role("heading", name="Customers", exact=True)).to_be_visible()


def row(page, email):
    return page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=email, exact=True))


def test_find_a_customer_invite_add_a_contact_and_make_a_link(business, harper, page, server):
    sign_in(page, business)
    expect(page.get_by_role("table", name="Customers")).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_label("Search customers").fill("harp")
    page.get_by_role("button", name="Search").click()
    results = page.get_by_role("table", name="Search results")
    expect(results.get_by_role("link", name="Harper Household")).to_be_visible()
    expect(results.get_by_role("link", name="Harbor Cafe")).to_have_count(0)
    assert axe_violations(page) == []
    shot(page, "console-customers")
    page.get_by_label("Search customers").fill("a")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("Type at least 2 letters of a name.").first).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_label("Search customers").fill("415.555.0134")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Harper Household").click()

    # the customer's page: Billing and Invite on each email; a location's email offers no Billing Access
    expect(page.get_by_role("heading", name="Harper Household", level=1)).to_be_visible()
    owner = row(page, "jo.harper@example.com")
    expect(owner.get_by_label("Billing")).to_have_text(["Billing Access Non-Billing Access No Access"],
                                                       use_inner_text=True)
    renter = row(page, "tenant@elm.example")
    assert renter.get_by_label("Billing").locator("option").all_inner_texts() == ["Non-Billing Access", "No Access"]
    owner.get_by_label("Billing").select_option(label="Non-Billing Access")
    owner.get_by_role("button", name="Invite").click()
    expect(page.get_by_role("status").filter(has_text="The invitation is on its way.")).to_be_visible()
    owner = row(page, "jo.harper@example.com")
    expect(owner.get_by_role("button", name="Resend Invite")).to_be_visible()
    expect(owner.get_by_role("button", name="Invite", exact=True)).to_have_count(0)
    expect(owner.get_by_text("Invited", exact=True)).to_be_visible()
    expect(owner.get_by_label("Billing")).to_have_value("non_billing")
    owner.get_by_role("button", name="Resend Invite").click()
    expect(page.get_by_role("status").filter(has_text="The invitation was sent again")).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "console-customer")

    # New Contact with Send invite to customer portal
    page.get_by_role("link", name="New Contact").click()
    expect(page.get_by_role("heading", name="New Contact")).to_be_visible()
    page.get_by_label("Name").fill("Sam Harper")
    page.get_by_label("Email (optional)").fill("sam@harper.example")
    page.get_by_label("Phone (optional)").fill("415 555 0111")
    page.get_by_label("Send invite to customer portal").check()
    assert axe_violations(page) == []
    shot(page, "console-new-contact")
    page.get_by_label("Email (optional)").fill("")
    page.get_by_role("button", name="Add contact").click()
    expect(page.get_by_role("alert").get_by_text("Enter the contact's email to send an invite")).to_be_visible()
    expect(page.get_by_label("Email (optional)")).to_be_focused()
    expect(page.get_by_label("Send invite to customer portal")).to_be_checked()
    assert axe_violations(page) == []
    page.get_by_label("Email (optional)").fill("sam@harper.example")
    page.get_by_role("button", name="Add contact").click()
    expect(page.get_by_role("status").filter(has_text="Contact added, and invited")).to_be_visible()
    contacts = page.get_by_role("table", name="Contacts of Harper Household")
    expect(contacts.get_by_role("row").filter(has_text="Sam Harper")).to_contain_text("Invited")

    # the secure access link: made, shown once, copied
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    page.get_by_label("Days the link works").fill("30")
    page.get_by_role("button", name="Create link").click()
    field = page.get_by_label("Secure access link")
    expect(field).to_have_attribute("readonly", "")
    link = field.input_value()
    assert link.startswith(f"{server}/portal/access?token=")
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("status").filter(has_text="Copied.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == link
    assert axe_violations(page) == []
    shot(page, "console-access-link")
    page.get_by_role("link", name="Harper Household").click()
    expect(page.get_by_role("button", name="Replace link")).to_be_visible()
    assert link not in page.content()


def test_without_javascript_the_link_is_copied_by_hand(business, harper, browser, server):
    context = browser.new_context(java_script_enabled=False, base_url=server, viewport={"width": 1000, "height": 800})
    tab = context.new_page()
    try:
        sign_in(tab, business)
        tab.goto(f"/console/customers/{harper['customer_id']}")
        tab.get_by_role("button", name="Create link").click()
        field = tab.get_by_label("Secure access link")
        expect(field).to_be_visible()
        expect(tab.get_by_role("button", name="Copy")).to_be_hidden()
        field.focus()
        tab.keyboard.press("Control+a")
        assert "/portal/access?token=" in field.input_value()
    finally:
        context.close()


def test_the_customer_list_at_320_px(business, harper, page):
    page.set_viewport_size({"width": 320, "height": 800})
    sign_in(page, business)
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    assert axe_violations(page) == []
    shot(page, "console-customers-320")
    page.get_by_role("link", name="Harper Household").click()
    expect(page.get_by_role("heading", name="Harper Household", level=1)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    assert axe_violations(page) == []
