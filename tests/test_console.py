"""The admin console's door (issue 16): sign-in with the staff flow (wrong answers, lockout, forced change), the
session in its cookie (HttpOnly, SameSite=Strict, ended by Sign out, idle time and everything that ends a staff
session), and the gate: every console page refuses a visitor who is not signed in, and a section's pages answer
the same 403 page to staff without its permission."""
import re

import pytest
from console_helpers import SIGN_IN, ConsoleClient, admin_console, console, location, text, visible_text  # noqa: F401
from staff_helpers import PASSWORD, staff_member

from chalicelib.web.console.shell import ConsoleSignIn


def console_routes(app):
    for path, methods in app.app.routes.items():
        for method, entry in methods.items():
            if isinstance(getattr(entry.view_function, "policy", None), ConsoleSignIn):
                yield path, method, entry.view_function.policy


def concrete(path):
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_console_page_needs_a_sign_in(app, console):
    routes = list(console_routes(app))
    assert len(routes) >= 1
    for path, method, _ in routes:
        if method != "GET":
            continue
        r = console.get(concrete(path))
        assert r.status_code == 303, (path, r.status_code)
        assert location(r).startswith(SIGN_IN), path


def test_a_post_without_a_sign_in_does_nothing_and_goes_to_sign_in(app, console):
    for path, method, _ in console_routes(app):
        if method == "POST":
            r = console.post(concrete(path), {"csrf_token": "x"}, csrf=False)
            assert r.status_code == 303 and location(r).startswith(SIGN_IN), path


def test_each_section_answers_the_same_403_without_its_permission(app, client, tenant):
    """An office employee (directory:manage only) sees Customers; every other section's page, typed by hand,
    answers the 403 page, and the navigation shows only Customers."""
    person, _ = staff_member(tenant, kind="employee", role="office")
    c = ConsoleClient(client)
    r = c.sign_in(tenant.id, person.username, PASSWORD)
    assert r.status_code == 303 and location(r) == "/console"
    r = c.get("/console")
    assert r.status_code == 303 and location(r) == "/console/customers"
    refused = 0
    for path, method, policy in console_routes(app):
        if method != "GET" or policy.permission in (None, "directory:manage"):
            continue
        r = c.get(concrete(path))
        assert r.status_code == 403, (path, r.status_code)
        words = visible_text(text(r))
        assert "You cannot open this page" in words
        assert "Customer Portal" not in words and "Partner Portals" not in words
        refused += 1
    assert refused >= 4  # Customer Portal, People, Partner Portals, Activity at least


def test_staff_without_any_permission_cannot_use_the_console(client, tenant):
    person, _ = staff_member(tenant, kind="technician")
    c = ConsoleClient(client)
    r = c.sign_in(tenant.id, person.username, PASSWORD)
    assert r.status_code == 400
    assert "cannot use the admin console" in visible_text(text(r))
    assert "pa_console" not in c.cookies
    assert c.get("/console").status_code == 303


def test_sign_in_cookie_and_the_way_in(client, tenant):
    c = ConsoleClient(client)
    r = c.sign_in(tenant.id, tenant.admin_username, tenant.admin_password)
    assert r.status_code == 303 and location(r) == "/console"
    [cookie] = [line for line in r.headers["Set-Cookie"] if line.startswith("pa_console=")]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    r = c.get("/console")
    assert r.status_code == 303 and location(r) == "/console/customers"


def test_wrong_password_unknown_business_and_lockout_answer_like_the_api(client, tenant):
    c = ConsoleClient(client)
    for tenant_id, password in ((tenant.id, "Wrong-Password-123"), ("t-nope", tenant.admin_password)):
        r = c.sign_in(tenant_id, tenant.admin_username, password)
        assert r.status_code == 400
        assert "The username or password is not right." in visible_text(text(r))
    for _ in range(6):
        r = c.sign_in(tenant.id, tenant.admin_username, "Wrong-Password-123")
    assert r.status_code == 400 and "Too many failed sign-ins" in visible_text(text(r))
    r = c.sign_in(tenant.id, tenant.admin_username, tenant.admin_password)
    assert r.status_code == 400 and "pa_console" not in c.cookies


def test_a_sign_in_without_the_forms_token_is_refused(client, tenant):
    c = ConsoleClient(client)
    c.get(SIGN_IN)
    r = c.post(SIGN_IN, {"tenant_id": tenant.id, "username": tenant.admin_username,
                         "password": tenant.admin_password}, csrf=False)
    assert r.status_code == 400 and "pa_console" not in c.cookies


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example", "/console\\@evil", "/elsewhere"])
def test_sign_in_goes_back_only_into_the_console(client, tenant, target):
    c = ConsoleClient(client)
    c.get(f"{SIGN_IN}?next={target}")
    r = c.post(f"{SIGN_IN}?next={target}", {"tenant_id": tenant.id, "username": tenant.admin_username,
                                           "password": tenant.admin_password})
    assert r.status_code == 303 and location(r) == "/console"


def test_the_cookie_is_not_an_api_token(http, admin_console):
    token = admin_console.cookies["pa_console"]
    status, body = http.get("/v1/staff/me", token=token)
    assert status in (401, 403), body


def test_sign_out_ends_the_session_and_an_old_cookie_with_it(admin_console):
    page = text(admin_console.get("/console/customers"))
    old = dict(admin_console.cookies)
    r = admin_console.post("/console/sign-out", {}, page=page)
    assert r.status_code == 303 and location(r) == f"{SIGN_IN}?why=signed_out"
    assert "pa_console" not in admin_console.cookies
    admin_console.cookies = old  # someone kept the cookie
    r = admin_console.get("/console/customers")
    assert r.status_code == 303 and "why=ended" in location(r)


def test_idle_for_30_minutes_signs_out(admin_console, monkeypatch):
    from chalicelib.web.console import shell
    assert admin_console.get("/console/customers").status_code == 200
    real = shell.__dict__.get("_now")
    from chalicelib.core import models
    at = models.now() + shell.IDLE_SECONDS + 61
    monkeypatch.setattr(models, "now", lambda: at)
    r = admin_console.get("/console/customers")
    assert r.status_code == 303 and "why=idle" in location(r), location(r)
    monkeypatch.undo()
    r = admin_console.get("/console/customers")
    assert r.status_code == 303, "the idle session stays ended"
    assert real is None


def test_what_ends_a_staff_session_ends_the_console(http, client, tenant):
    person, _ = staff_member(tenant, kind="employee", role="office")
    c = ConsoleClient(client)
    assert c.sign_in(tenant.id, person.username, PASSWORD).status_code == 303
    assert c.get("/console/customers").status_code == 200
    status, body = http.patch(f"/v1/people/{person.person_id}", {"status": "disabled"},
                              token=tenant.admin_token)
    assert status == 200, body
    r = c.get("/console/customers")
    assert r.status_code == 303 and location(r).startswith(SIGN_IN)


def test_permission_taken_away_is_in_force_on_the_next_page(http, client, tenant):
    person, _ = staff_member(tenant, kind="employee", role="staff", permissions=["directory:manage",
                                                                                  "portal:manage"])
    c = ConsoleClient(client)
    assert c.sign_in(tenant.id, person.username, PASSWORD).status_code == 303
    assert c.get("/console/portal/users").status_code == 200
    status, body = http.patch(f"/v1/people/{person.person_id}", {"permissions": ["directory:manage"]},
                              token=tenant.admin_token)
    assert status == 200, body
    r = c.get("/console/portal/users")
    # a change of permissions ends the person's sessions (as for the API), so the console asks to sign in again
    assert r.status_code == 303 and location(r).startswith(SIGN_IN), r.status_code
    assert c.sign_in(tenant.id, person.username, PASSWORD).status_code == 303
    r = c.get("/console/portal/users")
    assert r.status_code == 403 and "You cannot open this page" in visible_text(text(r))
    assert c.get("/console/customers").status_code == 200


def test_forced_change_at_first_sign_in_then_the_console(http, client, tenant):
    """An admin chose this office employee's username and password (rule 10): the first console sign-in asks for
    their own, then goes straight in."""
    admin = tenant.admin_token
    status, person = http.post("/v1/people", {"kind": "employee", "name": "Office Person", "role": "office",
                                              "email": "office.person@crew.example"}, token=admin)
    assert status == 201, person
    status, body = http.post(f"/v1/people/{person['person_id']}/account",
                             {"username": "office.given", "password": PASSWORD}, token=admin)
    assert status == 201, body
    c = ConsoleClient(client)
    r = c.sign_in(tenant.id, "office.given", PASSWORD)
    assert r.status_code == 303 and location(r).startswith("/console/change-password"), location(r)
    page = c.follow()
    assert page.status_code == 200 and "Your username" in visible_text(text(page))
    r = c.post("/console/change-password", {"new_username": "office.own", "new_password": "Brand-New-Pass-2041",
                                            "new_password_confirm": "Brand-New-Pass-2041", "step": "change"})
    assert r.status_code == 303 and location(r) == "/console", text(r)
    assert c.follow().status_code == 200
    assert tenant.sign_in("office.own", "Brand-New-Pass-2041")[0] == 200
