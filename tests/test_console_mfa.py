"""The console and the second factor (issue 18): the sign-in's second page, the setup a required policy asks for
(QR code as inline SVG under the CSP, confirm, recovery codes once), and a person's page in People (Second factor:
set up / not set up, Reset second factor with post/redirect/get and CSRF)."""
import re

import pyotp
from console_helpers import SIGN_IN, ConsoleClient, admin_console, console, location, text, visible_text  # noqa: F401
from mfa_helpers import code, code_clock, set_up_totp  # noqa: F401
from staff_helpers import PASSWORD, staff_member

FACTOR = "/console/sign-in/factor"
SETUP = "/console/mfa-setup"


def admin_with_factor(http, tenant, clock):
    from chalicelib.flows.staff import people
    admin_id = http.get("/v1/staff/me", token=tenant.admin_token)[1]["person_id"]
    secret, answer = set_up_totp(http, tenant.admin_token, clock)
    return people.get(tenant.id, admin_id), secret, answer["recovery_codes"]


def test_sign_in_asks_for_the_factor_on_a_second_page(http, console, tenant, code_clock):
    _, secret, codes = admin_with_factor(http, tenant, code_clock)
    r = console.sign_in(tenant.id, tenant.admin_username, tenant.admin_password)
    assert r.status_code == 303 and location(r) == FACTOR
    assert "pa_console" not in console.cookies  # no console session before the factor
    page = console.get(FACTOR)
    assert page.status_code == 200 and "Authenticator code or recovery code" in text(page)
    r = console.post(FACTOR, {"code": "000000" if code(secret, code_clock()) != "000000" else "111111"})
    assert r.status_code == 400 and "This code is not right" in visible_text(text(r))
    r = console.post(FACTOR, {"code": code(secret, code_clock())})
    assert r.status_code == 303 and location(r) == "/console" and console.cookies.get("pa_console")
    assert console.follow().status_code == 200
    # the token of the second page was used: that page sends back to the password
    assert location(console.get(FACTOR)).startswith(SIGN_IN)


def test_a_recovery_code_signs_in_to_the_console(http, console, tenant, code_clock):
    _, _, codes = admin_with_factor(http, tenant, code_clock)
    console.sign_in(tenant.id, tenant.admin_username, tenant.admin_password)
    console.get(FACTOR)
    r = console.post(FACTOR, {"code": codes[0]})
    assert r.status_code == 303 and console.cookies.get("pa_console")


def test_the_second_page_without_csrf_or_a_token_does_nothing(http, console, client, tenant, code_clock):
    _, secret, _ = admin_with_factor(http, tenant, code_clock)
    console.sign_in(tenant.id, tenant.admin_username, tenant.admin_password)
    console.get(FACTOR)
    r = console.post(FACTOR, {"code": code(secret, code_clock())}, csrf=False)
    assert r.status_code == 400 and "pa_console" not in console.cookies
    stranger = ConsoleClient(client)  # no password step: straight to the second page
    assert location(stranger.get(FACTOR)).startswith(SIGN_IN)


def test_a_required_factor_is_set_up_before_the_console(http, console, tenant, code_clock):
    assert http.call("PUT", "/v1/staff/mfa/policy", {"staff_mfa": "required_for_admins"},
                     token=tenant.admin_token)[0] == 200
    r = console.sign_in(tenant.id, tenant.admin_username, tenant.admin_password)
    assert r.status_code == 303 and location(r) == SETUP and "pa_console" not in console.cookies
    page = text(console.get(SETUP))
    svg = re.search(r"<svg .*?</svg>", page, re.S).group(0)
    assert 'role="img"' in svg and "style" not in svg and "<script" not in svg
    key = re.search(r'<p class="key"><code>([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")
    assert key == text(console.get(SETUP)).split('<p class="key"><code>')[1].split("<")[0].replace(" ", "")
    console.get("/console/customers")  # nothing else first: the console is not open
    assert location(console.last).startswith(SIGN_IN)
    console.get(SETUP)
    r = console.post(SETUP, {"code": "12345"})
    assert r.status_code == 400 and "This code is not right" in visible_text(text(r))
    r = console.post(SETUP, {"code": pyotp.TOTP(key).at(code_clock())})
    assert r.status_code == 200, visible_text(text(r))
    shown = visible_text(text(r))
    assert "Save your recovery codes" in shown and len(re.findall(r"<li><code>", text(r))) == 10
    assert console.cookies.get("pa_console") and console.get("/console").status_code == 303
    assert console.follow().status_code == 200


def test_a_persons_page_shows_and_resets_the_second_factor(app, http, admin_console, tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    page = visible_text(text(admin_console.get(f"/console/people/{person.person_id}")))
    assert "Second factor Not set up" in page and "Reset second factor" not in page
    set_up_totp(http, token, code_clock)
    here = f"/console/people/{person.person_id}"
    page = visible_text(text(admin_console.get(here)))
    assert "Second factor Set up" in page and "Reset second factor" in page
    r = admin_console.post(here, {"do": "reset_mfa"}, csrf=False)  # no CSRF: nothing happens
    assert r.status_code == 400
    assert http.get(f"/v1/people/{person.person_id}", token=tenant.admin_token)[1]["mfa"] is True
    admin_console.get(here)
    r = admin_console.post(here, {"do": "reset_mfa"})
    assert r.status_code == 303 and "done=mfa_reset" in location(r)
    page = visible_text(text(admin_console.follow()))
    assert "Second factor reset" in page and "Second factor Not set up" in page
    assert http.get(f"/v1/people/{person.person_id}", token=tenant.admin_token)[1]["mfa"] is False
    activity = visible_text(text(admin_console.get(f"{here}/activity")))
    assert "Second factor reset by" in activity and "Set up an authenticator app" in activity


def test_reset_is_refused_without_the_permission_and_across_businesses(http, console, tenant, other_tenant,
                                                                       code_clock):
    person, token = staff_member(tenant, kind="employee")
    set_up_totp(http, token, code_clock)
    office, _ = staff_member(tenant, kind="employee", role="office")
    console.sign_in(tenant.id, office.username, PASSWORD)
    r = console.get(f"/console/people/{person.person_id}")
    assert r.status_code == 403
    other = ConsoleClient(console.client)
    other.sign_in(other_tenant.id, other_tenant.admin_username, other_tenant.admin_password)
    assert other.get(f"/console/people/{person.person_id}").status_code == 404
    assert http.get(f"/v1/people/{person.person_id}", token=tenant.admin_token)[1]["mfa"] is True
