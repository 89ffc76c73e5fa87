"""Admin console → Customer Portal → Bulk invite users in a real browser (Debian's Chromium through Playwright): a real
CSV file chosen with the Upload File field, the Invited-status box checked, Upload List, the review read in file
order, Invite, the page following the progress by itself (pages.js, with Stop refreshing) until the final report, and Download report saved and read
back. axe-core finds no serious or critical violation on any screen; each screen is saved as
docs/screens/console-portal-bulk*.png (the upload page at 320 px too)."""
import csv

import pytest
from browser_helpers import axe_violations, browser, fill_console_sign_in, page, server, shot  # noqa: F401 (fixtures)
from conftest import drain, make_tenant
from playwright.sync_api import expect
from test_bulk_review import run_bulk_queue

from chalicelib.core.models import PortalUser
from chalicelib.web.console import portal_bulk

BUSINESS = "Brightwater Plumbing & Heating"


@pytest.fixture
def business(app, http):
    b = make_tenant(http, name=BUSINESS)
    t = b.admin_token
    harper = http.post("/v1/customers", {"name": "Harper Household", "emails": ["dana.harper@example.com"]},
                       token=t)[1]["customer_id"]
    http.post(f"/v1/customers/{harper}/locations", {"address": "4 Harbour Rd", "emails": ["tenant.4harbour@example.com"]},
              token=t)
    http.post("/v1/customers", {"name": "Quinn Bakery", "emails": ["orders@quinnbakery.example"]}, token=t)
    lee = http.post("/v1/customers", {"name": "Lee Residence", "emails": ["jordan.lee@example.com"]},
                    token=t)[1]["customer_id"]
    okafor = http.post("/v1/customers", {"name": "Okafor Dental", "emails": ["office@okafordental.example"]},
                       token=t)[1]["customer_id"]
    active = http.post("/v1/portal/invitations", {"customer_id": lee, "email": "jordan.lee@example.com"},
                       token=t)[1]["user_id"]
    assert http.post("/v1/portal/invitations", {"customer_id": okafor, "email": "office@okafordental.example"},
                     token=t)[0] == 202
    PortalUser.get(b.id, active).update(actions=[PortalUser.status.set("active"),
                                                 PortalUser.status_key.set(f"{b.id}#active")])
    drain(app)
    return b


@pytest.fixture
def customer_list(tmp_path):
    """The office's export, saved from a spreadsheet as CSV."""
    path = tmp_path / "spring-customers.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([
            ["Customer", "Email", "Phone"],
            ["Harper Household", "Dana.Harper@Example.com", "555-0101"],
            ["Harper rental", "tenant.4harbour@example.com", ""],
            ["Quinn Bakery", "orders@quinnbakery.example", "555-0144"],
            ["Walk-in", "someone.new@example.net", ""],
            ["Harper Household", "dana.harper@example.com", ""],
            ["Lee Residence", "jordan.lee@example.com", ""],
            ["Okafor Dental", "office@okafordental.example", ""],
            ["Typo", "pat@@example.com", ""],
        ])
    return path


def sign_in(page, business):
    fill_console_sign_in(page, business.id, business.admin_username, business.admin_password)
    page.wait_for_url("**/console/**")


def clean(page):
    assert axe_violations(page) == [], page.url


def test_bulk_invite_journey(app, page, business, http, customer_list, tmp_path, monkeypatch):
    sign_in(page, business)
    page.goto("/console/portal/users")
    page.get_by_role("navigation", name="Customer Portal").get_by_role("link", name="Bulk invite users").click()
    expect(page.get_by_role("heading", name="Bulk invite users", exact=True)).to_be_visible()
    expect(page.get_by_label("Billing Access", exact=True)).to_be_checked()
    clean(page)
    shot(page, "console-portal-bulk")

    # a file that is not a CSV: said in words next to the field
    picture = tmp_path / "logo.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16)
    page.get_by_label("Upload File").set_input_files(str(picture))
    page.get_by_role("button", name="Upload List").click()
    expect(page.get_by_role("alert").filter(has_text="There is a problem")).to_contain_text(
        "This file is binary, not text.")
    expect(page.get_by_label("Upload File")).to_have_attribute("aria-invalid", "true")
    clean(page)
    shot(page, "console-portal-bulk-error")

    # the real list, with the invited ones included
    page.get_by_label("Upload File").set_input_files(str(customer_list))
    page.get_by_label("Include emails in the list that are in Invited status").check()
    page.get_by_role("button", name="Upload List").click()
    expect(page.get_by_role("heading", name="Bulk invite: spring-customers.csv")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="nothing has been sent")).to_be_visible()
    table = page.get_by_role("table", name="Emails in the file")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(9)
    expected = [
        ("1", "No email on this line", "skipped: no email on this line"),
        ("2", "dana.harper@example.com", "will be invited"),
        ("3", "tenant.4harbour@example.com", "will be invited"),
        ("4", "orders@quinnbakery.example", "will be invited"),
        ("5", "someone.new@example.net", "skipped: not on a customer or location record"),
        ("6", "dana.harper@example.com", "duplicate"),
        ("7", "jordan.lee@example.com", "skipped: already has an active account"),
        ("8", "office@okafordental.example", "will be invited"),  # invited before: included, sent again
        ("9", "pat@@example.com", "invalid"),
    ]
    for i, (line, email, outcome) in enumerate(expected):
        expect(rows.nth(i).locator("td, th").nth(0)).to_have_text(line)
        expect(rows.nth(i).get_by_role("rowheader")).to_have_text(email)
        expect(rows.nth(i).locator("td").nth(1)).to_have_text(outcome)
    expect(rows.nth(2).locator("td").nth(2)).to_have_text("Non-Billing Access")  # only on a location
    counts = page.get_by_role("list", name="Counts")
    expect(counts).to_contain_text("4 will be invited")
    expect(counts).to_contain_text("1 duplicate")
    expect(page.get_by_text("4 emails will be invited.")).to_be_visible()
    clean(page)
    shot(page, "console-portal-bulk-review")

    # the filter, by keyboard
    page.get_by_label("Show").select_option(label="skipped: not on a customer or location record (1)")
    page.get_by_role("button", name="Show", exact=True).press("Enter")
    expect(page.get_by_role("table", name="Emails in the file: skipped").locator("tbody tr")).to_have_count(1)
    clean(page)
    page.get_by_label("Show").select_option(label="Every line of the file")
    page.get_by_role("button", name="Show", exact=True).click()
    expect(page.locator("tbody tr")).to_have_count(9)

    # Invite: the page shows the progress (held still while axe reads it), then follows it by itself
    monkeypatch.setattr(portal_bulk, "REFRESH_SECONDS", 120)
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_role("status").filter(has_text="the invitations are being sent")).to_be_visible()
    expect(page.get_by_text("Sending the invitations", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Invite")).to_have_count(0)
    clean(page)
    shot(page, "console-portal-bulk-sending")
    page.get_by_role("button", name="Stop refreshing").click()
    expect(page.get_by_text("This page no longer refreshes itself.")).to_be_visible()
    monkeypatch.setattr(portal_bulk, "REFRESH_SECONDS", 1)
    page.get_by_role("link", name="Refresh now").click()
    expect(page.get_by_role("button", name="Stop refreshing")).to_be_visible()
    run_bulk_queue(app)  # the bulk queue's run, as Lambda would hand it over
    drain(app)
    expect(page.get_by_role("heading", name="Report")).to_be_visible(timeout=30_000)  # no reload by the test
    expect(page.get_by_text("Done", exact=True)).to_be_visible()
    expect(page.get_by_role("list", name="Counts")).to_contain_text("4 invited")
    expect(page.get_by_role("table", name="Emails in the file").locator("tbody tr").nth(1).locator("td").nth(1)) \
        .to_have_text("invited")
    clean(page)
    shot(page, "console-portal-bulk-report")

    with page.expect_download() as got:
        page.get_by_role("link", name="Download report").click()
    download = got.value
    assert download.suggested_filename == "spring-customers-report.csv"
    with open(download.path(), newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    assert table[0] == ["line", "email", "outcome", "access"]
    assert [row[1] for row in table[1:]] == ["", *[email for _, email, _ in expected[1:]]]
    assert [(row[0], row[2]) for row in table[1:]] == [
        ("1", "no_email"), ("2", "invited"), ("3", "invited"), ("4", "invited"), ("5", "skipped_not_on_record"),
        ("6", "duplicate"), ("7", "skipped_active"), ("8", "invited"), ("9", "invalid")]
    assert table[3] == ["3", "tenant.4harbour@example.com", "invited", "non_billing"]

    # the list of uploads links to it
    page.get_by_role("link", name="Back to Bulk invite users").click()
    uploads = page.get_by_role("table", name=f"Bulk uploads of {BUSINESS}")
    expect(uploads.get_by_role("link", name="spring-customers.csv")).to_be_visible()
    expect(uploads).to_contain_text("4 invited")
    clean(page)
    page.set_viewport_size({"width": 320, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 320  # the table scrolls inside its wrapper
    clean(page)
    shot(page, "console-portal-bulk-320")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto("/console/portal/bulk/" + "0" * 24)
    expect(page.get_by_role("heading", name="Bulk upload not found")).to_be_visible()
    clean(page)
    shot(page, "console-portal-bulk-not-found")
