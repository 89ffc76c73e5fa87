"""The console's People section in Debian's Chromium (Playwright): an admin signs in, finds Employees and
Technicians, filters by status, ticks people (one by one, and with "All on this page", which pages.js ticks live),
sends account invites through the confirmation, adds a technician, gives them an account, sets a temporary password
(shown once), unlocks, disables and enables, and reads the activity. axe-core finds no serious or critical
violation on any screen; every screen is saved under docs/screens/console-*.png, the Employees list also 320 px
wide."""
import re

import pytest
from playwright.sync_api import expect
from browser_helpers import axe_violations, browser, fill_console_sign_in, page, server, shot  # noqa: F401
from staff_helpers import create_person, staff_member, unique_email, unique_mobile


@pytest.fixture
def people(tenant):
    token = tenant.admin_token
    made = [create_person(tenant.http, token, kind="employee", name=name, email=unique_email())
            for name in ("Nia Newcomer", "Ned Newcomer")]
    staff_member(tenant, kind="employee")
    gone = create_person(tenant.http, token, kind="employee", name="Dee Departed", email=unique_email())
    assert tenant.http.patch(f"/v1/people/{gone['person_id']}", {"status": "disabled"}, token=token)[0] == 200
    create_person(tenant.http, token, kind="technician", name="Tia Texter", mobile=unique_mobile())
    return made


def sign_in(page, tenant):
    fill_console_sign_in(page, tenant.id, tenant.admin_username, tenant.admin_password, start="/console/sign-in?next=/console/people/employees")
    page.wait_for_url(re.compile(r"/console/people/employees"))


def clean(page, name):
    assert axe_violations(page) == [], name
    shot(page, name)


def test_people_lists_actions_and_confirmation(app, page, tenant, people):
    from conftest import drain
    sign_in(page, tenant)
    expect(page.get_by_role("heading", name="Employees")).to_be_visible()
    assert page.get_by_role("link", name="People").get_attribute("aria-current") == "page"
    clean(page, "console-people-employees")

    # the filter (GET), then "All on this page": pages.js ticks every row as it is ticked
    page.get_by_label("Account status").select_option(label="No account")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"status=no_account"))
    expect(page.get_by_role("link", name="Dee Departed")).to_have_count(0)
    page.get_by_label("All on this page").check()
    rows = page.locator("input[data-select-row]")
    assert rows.count() >= 2 and all(rows.nth(i).is_checked() for i in range(rows.count()))
    page.get_by_label("Select Ned Newcomer").uncheck()
    assert not page.get_by_label("All on this page").is_checked()
    assert page.get_by_label("All on this page").evaluate("el => el.indeterminate")
    page.get_by_label("Actions").select_option(label="Send Account Invite")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Send Account Invite")).to_be_visible()
    going = page.get_by_role("table", name="Will get it")
    expect(going.get_by_text("Nia Newcomer")).to_be_visible()
    assert going.get_by_text("Ned Newcomer").count() == 0
    clean(page, "console-people-confirm")
    page.get_by_role("link", name="Back").click()
    page.wait_for_url(re.compile(r"/console/people/employees\?status=no_account"))

    # tick one, and one who is left out, with the keyboard
    page.goto("/console/people/employees")
    page.get_by_label("Select Nia Newcomer").focus()
    page.keyboard.press("Space")
    page.get_by_label("Select Dee Departed").check()
    page.get_by_label("Actions").select_option(label="Send Account Invite")
    page.get_by_role("button", name="Continue").click()
    left_out = page.get_by_role("table", name="Left out")
    expect(left_out.get_by_text("Their account is disabled.")).to_be_visible()
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/console/people/jobs/"))
    expect(page.get_by_role("heading", name="Send Account Invite: result")).to_be_visible()
    expect(page.get_by_text("Sent by email")).to_be_visible()
    clean(page, "console-people-result")
    drain(app)

    page.get_by_role("link", name="People").click()
    page.get_by_role("link", name="Technicians").click()
    page.wait_for_url(re.compile(r"/console/people/technicians"))
    expect(page.get_by_role("link", name="Tia Texter")).to_be_visible()
    clean(page, "console-people-technicians")

    page.goto("/console/people/employees")
    page.set_viewport_size({"width": 320, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 320 + 1
    clean(page, "console-people-320")


def test_add_technician_account_and_profile_actions(app, page, tenant):
    from conftest import drain
    sign_in(page, tenant)
    page.get_by_role("link", name="Add employee").click()
    expect(page.get_by_role("heading", name="Add employee")).to_be_visible()
    clean(page, "console-add-employee")
    page.goto("/console/people/technicians")
    page.get_by_role("link", name="Add technician").click()
    clean(page, "console-add-technician")
    page.get_by_role("button", name="Add technician").click()  # nothing filled in: words, not a 500
    expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
    expect(page.get_by_text("Enter their name.").first).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_label("Name").fill("Theo Tools")
    page.get_by_label("Mobile number").fill(unique_mobile())
    page.get_by_label("May use the mobile app").check()
    page.get_by_role("button", name="Add technician").click()
    expect(page.get_by_role("heading", name="Theo Tools")).to_be_visible()
    expect(page.get_by_role("group", name="New Account Status")).to_be_visible()

    # New Account Status: a username and password
    page.get_by_label("Create a username and password").check()
    page.get_by_label("Username", exact=True).fill("theo.tools")
    page.get_by_label("Password", exact=True).fill("Workshop-Bench-73")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Account created.")).to_be_visible()
    for name in ("Send Password Reset", "Set Temporary Password", "Disable", "Sign out everywhere"):
        expect(page.get_by_role("button", name=name)).to_be_visible()
    clean(page, "console-person")

    page.get_by_role("button", name="Set Temporary Password").click()
    expect(page.get_by_text("It will not be shown again.")).to_be_visible()
    secret = page.locator("#temporary-password").inner_text()
    assert re.fullmatch(r"[A-Za-z0-9]{16}", secret) and secret not in page.url
    clean(page, "console-person-temporary-password")
    page.get_by_role("link", name="Back to Theo Tools").click()
    expect(page.get_by_role("button", name="Set Temporary Password")).to_be_visible()
    assert secret not in page.content()

    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("button", name="Enable")).to_be_visible()
    page.get_by_role("button", name="Enable").click()
    expect(page.get_by_text("Enabled:")).to_be_visible()
    page.get_by_role("button", name="Send Password Reset").click()
    expect(page.get_by_text("Password reset link sent")).to_be_visible()
    page.get_by_role("region", name="Profile Actions").get_by_role("link", name="Activity").click()
    expect(page.get_by_role("heading", name="Activity: Theo Tools")).to_be_visible()
    clean(page, "console-person-activity")
    drain(app)


def test_unlock_a_locked_person(page, tenant):
    from chalicelib.core import lockout
    person, _ = staff_member(tenant, kind="employee")
    for _ in range(12):
        tenant.sign_in(person.username, "Wrong-Password-99")
        if lockout.locked_until("staff", tenant.id, [person.username]).get(person.username):
            break
    sign_in(page, tenant)
    page.goto(f"/console/people/{person.person_id}")
    page.get_by_role("button", name="Unlock").click()
    page.get_by_text("Unlocked: they can sign in again now.").wait_for()  # the page after the POST (CI read it early)
    expect(page.get_by_text("Unlocked: they can sign in again now.")).to_be_visible()
    assert axe_violations(page) == []


def test_a_missing_person_is_a_404_page(page, tenant):
    sign_in(page, tenant)
    response = page.goto("/console/people/nobody-here")
    assert response.status == 404
    expect(page.get_by_role("heading", name="This person was not found")).to_be_visible()
    assert axe_violations(page) == []
