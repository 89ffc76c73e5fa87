"""The console's People section in Debian's Chromium (Playwright): an admin signs in, finds Employees and
Technicians, filters by status, ticks people (one by one, and with "All on this page", which pages.js ticks live),
sends account invites through the confirmation, adds a technician, gives them an account, sets a temporary password
(shown once), unlocks, disables and enables, and reads the activity. axe-core finds no serious or critical
violation on any screen; every screen is saved under docs/screens/console-*.png, the Employees list also 320 px
wide."""
import re

import pytest
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
    assert page.get_by_role("heading", name="Employees").is_visible()
    assert page.get_by_role("link", name="People").get_attribute("aria-current") == "page"
    clean(page, "console-people-employees")

    # the filter (GET), then "All on this page": pages.js ticks every row as it is ticked
    page.get_by_label("Account status").select_option(label="No account")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"status=no_account"))
    assert page.get_by_role("link", name="Dee Departed").count() == 0
    page.get_by_label("All on this page").check()
    rows = page.locator("input[data-select-row]")
    assert rows.count() >= 2 and all(rows.nth(i).is_checked() for i in range(rows.count()))
    page.get_by_label("Select Ned Newcomer").uncheck()
    assert not page.get_by_label("All on this page").is_checked()
    assert page.get_by_label("All on this page").evaluate("el => el.indeterminate")
    page.get_by_label("Actions").select_option(label="Send Account Invite")
    page.get_by_role("button", name="Continue").click()
    assert page.get_by_role("heading", name="Send Account Invite").is_visible()
    going = page.get_by_role("table", name="Will get it")
    assert going.get_by_text("Nia Newcomer").is_visible() and going.get_by_text("Ned Newcomer").count() == 0
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
    assert left_out.get_by_text("Their account is disabled.").is_visible()
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/console/people/jobs/"))
    assert page.get_by_role("heading", name="Send Account Invite: result").is_visible()
    assert page.get_by_text("Sent by email").is_visible()
    clean(page, "console-people-result")
    drain(app)

    page.get_by_role("link", name="People").click()
    page.get_by_role("link", name="Technicians").click()
    page.wait_for_url(re.compile(r"/console/people/technicians"))
    assert page.get_by_role("link", name="Tia Texter").is_visible()
    clean(page, "console-people-technicians")

    page.goto("/console/people/employees")
    page.set_viewport_size({"width": 320, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 320 + 1
    clean(page, "console-people-320")


def test_add_technician_account_and_profile_actions(app, page, tenant):
    from conftest import drain
    sign_in(page, tenant)
    page.get_by_role("link", name="Add employee").click()
    assert page.get_by_role("heading", name="Add employee").is_visible()
    clean(page, "console-add-employee")
    page.goto("/console/people/technicians")
    page.get_by_role("link", name="Add technician").click()
    clean(page, "console-add-technician")
    page.get_by_role("button", name="Add technician").click()  # nothing filled in: words, not a 500
    assert page.get_by_role("heading", name="There is a problem").is_visible()
    assert page.get_by_text("Enter their name.").first.is_visible()
    assert axe_violations(page) == []
    page.get_by_label("Name").fill("Theo Tools")
    page.get_by_label("Mobile number").fill(unique_mobile())
    page.get_by_label("May use the mobile app").check()
    page.get_by_role("button", name="Add technician").click()
    assert page.get_by_role("heading", name="Theo Tools").is_visible()
    assert page.get_by_role("group", name="New Account Status").is_visible()

    # New Account Status: a username and password
    page.get_by_label("Create a username and password").check()
    page.get_by_label("Username", exact=True).fill("theo.tools")
    page.get_by_label("Password", exact=True).fill("Workshop-Bench-73")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_text("Account created.").is_visible()
    for name in ("Send Password Reset", "Set Temporary Password", "Disable", "Sign out everywhere"):
        assert page.get_by_role("button", name=name).is_visible(), name
    clean(page, "console-person")

    page.get_by_role("button", name="Set Temporary Password").click()
    assert page.get_by_text("It will not be shown again.").is_visible()
    secret = page.locator("#temporary-password").inner_text()
    assert re.fullmatch(r"[A-Za-z0-9]{16}", secret) and secret not in page.url
    clean(page, "console-person-temporary-password")
    page.get_by_role("link", name="Back to Theo Tools").click()
    assert secret not in page.content()

    page.get_by_role("button", name="Disable").click()
    assert page.get_by_role("button", name="Enable").is_visible()
    page.get_by_role("button", name="Enable").click()
    assert page.get_by_text("Enabled:").is_visible()
    page.get_by_role("button", name="Send Password Reset").click()
    assert page.get_by_text("Password reset link sent").is_visible()
    page.get_by_role("region", name="Profile Actions").get_by_role("link", name="Activity").click()
    assert page.get_by_role("heading", name="Activity: Theo Tools").is_visible()
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
    assert page.get_by_text("Unlocked: they can sign in again now.").is_visible()
    assert axe_violations(page) == []


def test_a_missing_person_is_a_404_page(page, tenant):
    sign_in(page, tenant)
    response = page.goto("/console/people/nobody-here")
    assert response.status == 404
    assert page.get_by_role("heading", name="This person was not found").is_visible()
    assert axe_violations(page) == []
