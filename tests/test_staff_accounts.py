"""Staff accounts end to end (DESIGN rules 8-12, 14-17): people, invitations by email and SMS, accepting them,
admin-created accounts, reset links, temporary passwords, bulk runs, statuses, the schedule, and who may do it.
Every message goes through the send queue (drain) and is read back from the outbox."""
import re

import pytest
from conftest import SCHEDULED_EVENT, LambdaContext, drain, outbox_for
from staff_helpers import (  # noqa: F401
    PASSWORD,
    clock,
    create_person,
    last_link,
    run_together,
    staff_member,
    threaded_app,
    token_of,
    unique,
    unique_email,
    unique_mobile,
)

from chalicelib.core import lockout
from chalicelib.core.models import AuditEvent, Person, Token, now
from chalicelib.web.api import ROUTES, Admin

NEW_PASSWORD = "Chosen-Password-2468"
ACCEPT = "/staff/accept-invite?token="
RESET = "/staff/reset-password?token="


@pytest.fixture
def admin(tenant):
    return tenant.admin_token


def actions(tenant_id, person_id=None):
    return [e.action for e in AuditEvent.query(tenant_id)
            if person_id is None or person_id in (e.target, e.actor)]


def invite(http, admin, person_id, **body):
    status, out = http.post(f"/v1/people/{person_id}/invite", body, token=admin)
    assert status == 202, out
    return out


# --- people: create, read, list, change ---------------------------------------------------------------------

def test_create_employee_and_technician_and_read_them_back(http, admin, tenant):
    email = unique_email()
    employee = create_person(http, admin, kind="employee", name="Erin Office", email=email.upper(),
                             permissions=["directory:manage"])
    assert employee["email"] == email  # normalised
    assert employee["role"] == "staff" and employee["status"] == "no_account" and employee.get("username") is None
    assert employee["effective_permissions"] == ["directory:manage"]
    tech = create_person(http, admin, kind="technician", name="Tom Tech", mobile="(201) 555-7788",
                         mobile_access=True)
    assert tech["mobile"] == "+12015557788" and tech["role"] == "technician" and tech["mobile_access"] is True
    status, got = http.get(f"/v1/people/{tech['person_id']}", token=admin)
    assert status == 200 and got == tech
    status, page = http.get("/v1/people?kind=technician", token=admin)
    assert status == 200 and [p["person_id"] for p in page["items"]] == [tech["person_id"]]
    status, page = http.get("/v1/people?status=no_account", token=admin)
    assert {p["person_id"] for p in page["items"]} == {employee["person_id"], tech["person_id"]}
    status, page = http.get("/v1/people?status=active", token=admin)
    assert [p["username"] for p in page["items"]] == [tenant.admin_username]


@pytest.mark.parametrize("raw, e164", [("201-555-7789", "+12015557789"), ("1 201 555 7789", "+12015557789"),
                                       ("+44 7400 123456", "+447400123456"), ("+1 (201) 555.7789", "+12015557789")])
def test_mobile_numbers_are_normalised_to_e164(http, admin, raw, e164):
    person = create_person(http, admin, kind="technician", name="T", mobile=raw)
    assert person["mobile"] == e164


def test_duplicates_are_409_naming_the_field(http, admin, tenant):
    email, mobile = unique_email(), unique_mobile()
    create_person(http, admin, kind="employee", name="A", email=email)
    tech = create_person(http, admin, kind="technician", name="B", mobile=mobile)
    status, body = http.post("/v1/people", {"kind": "technician", "name": "C", "email": email.upper()}, token=admin)
    assert status == 409 and body["error"]["code"] == "email_taken" and body["error"]["field"] == "email"
    formatted = f"({mobile[2:5]}) {mobile[5:8]}-{mobile[8:]}"  # the same number written differently
    status, body = http.post("/v1/people", {"kind": "technician", "name": "D", "mobile": formatted}, token=admin)
    assert status == 409 and body["error"]["code"] == "mobile_taken" and body["error"]["field"] == "mobile"
    status, body = http.patch(f"/v1/people/{tech['person_id']}", {"email": email}, token=admin)
    assert status == 409 and body["error"]["field"] == "email"
    # the admin's own email is taken too
    status, body = http.post("/v1/people", {"kind": "employee", "name": "E", "email": tenant.admin_username},
                             token=admin)
    assert status == 409 and body["error"]["field"] == "email"


def test_patch_moves_the_unique_claims(http, admin):
    old, new = unique_email(), unique_email()
    a = create_person(http, admin, kind="employee", name="A", email=old)
    status, body = http.patch(f"/v1/people/{a['person_id']}", {"email": new, "name": "A. Renamed"}, token=admin)
    assert status == 200 and body["email"] == new and body["name"] == "A. Renamed"
    # the old email is free again, the new one is not
    create_person(http, admin, kind="employee", name="B", email=old)
    status, body = http.post("/v1/people", {"kind": "employee", "name": "C", "email": new}, token=admin)
    assert status == 409


@pytest.mark.parametrize("body, code, field", [
    ({"kind": "employee", "name": "No Email", "mobile": "+12015550111"}, "email_required", "email"),
    ({"kind": "technician", "name": "Nothing"}, "contact_required", "mobile"),
    ({"kind": "technician", "name": "T", "mobile": "12"}, "invalid_request", "mobile"),
    ({"kind": "employee", "name": "E", "email": "not-an-email"}, "invalid_request", "email"),
    ({"kind": "manager", "name": "M", "email": "m@crew.example"}, "invalid_request", "kind"),
    ({"kind": "employee", "name": "E", "email": "e@crew.example", "permissions": ["root"]}, "invalid_request",
     "permissions.0"),
    ({"kind": "employee", "name": "E", "email": "e@crew.example", "mobile_access": True}, "invalid_request",
     "mobile_access"),
    ({"kind": "employee", "name": "", "email": "e@crew.example"}, "invalid_request", "name"),
    ({"kind": "employee", "name": "E", "email": "e@crew.example", "password": "x"}, "invalid_request", "password"),
])
def test_bad_people_are_400_with_the_field(http, admin, body, code, field):
    status, got = http.post("/v1/people", body, token=admin)
    assert status == 400, got
    assert got["error"]["code"] == code and (got["error"].get("field") or got["error"]["fields"][0]["field"]) == field


def test_bad_queries_and_unknown_people(http, admin):
    assert http.get("/v1/people?status=sleeping", token=admin)[1]["error"]["field"] == "status"
    assert http.get("/v1/people?kind=robot", token=admin)[0] == 400
    assert http.get("/v1/people?limit=0", token=admin)[0] == 400
    assert http.get("/v1/people?cursor=%%%", token=admin)[1]["error"]["code"] == "invalid_cursor"
    for method, path in [("GET", "/v1/people/nope"), ("PATCH", "/v1/people/nope"),
                         ("POST", "/v1/people/nope/invite"), ("POST", "/v1/people/nope/password-reset-link"),
                         ("POST", "/v1/people/nope/temporary-password"), ("GET", "/v1/people/nope/audit"),
                         ("GET", "/v1/people/bulk-jobs/nope")]:
        status, body = http.call(method, path, body={}, token=admin)
        assert status == 404 and set(body) == {"error"}, (method, path, body)
    status, body = http.post("/v1/people/nope/account", {"username": "x.y.z", "password": NEW_PASSWORD}, token=admin)
    assert status == 404
    status, body = http.post("/v1/people", raw="{oops", token=admin)
    assert status == 400 and body["error"]["code"] == "malformed_json"


def test_pages_and_cursor(http, admin):
    ids = {create_person(http, admin, kind="technician", name=f"T{i}", mobile=unique_mobile())["person_id"]
           for i in range(5)}
    seen, cursor = [], None
    while True:
        status, page = http.get("/v1/people?kind=technician&limit=2" + (f"&cursor={cursor}" if cursor else ""),
                                token=admin)
        assert status == 200 and len(page["items"]) <= 2
        seen += [p["person_id"] for p in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert sorted(seen) == sorted(ids)


def test_an_admin_cannot_grant_what_they_do_not_hold(http, tenant):
    _, manager = staff_member(tenant, kind="employee", permissions=["accounts:manage"])
    ok = create_person(http, manager, kind="employee", name="Fine", email=unique_email(), role="staff")
    assert ok["role"] == "staff"
    status, body = http.post("/v1/people", {"kind": "employee", "name": "Boss", "email": unique_email(),
                                            "role": "admin"}, token=manager)
    assert status == 403 and body["error"]["code"] == "cannot_grant"
    status, body = http.patch(f"/v1/people/{ok['person_id']}", {"permissions": ["partners:manage"]}, token=manager)
    assert status == 403 and body["error"]["code"] == "cannot_grant"
    # nor take over someone who holds more: the admin's contact, password and reset links are out of reach
    admin_id = http.get("/v1/staff/me", token=tenant.admin_token)[1]["person_id"]
    for method, path, body in [("PATCH", f"/v1/people/{admin_id}", {"email": unique_email()}),
                               ("POST", f"/v1/people/{admin_id}/temporary-password", {}),
                               ("POST", f"/v1/people/{admin_id}/password-reset-link", {})]:
        status, got = http.call(method, path, body=body, token=manager)
        assert status == 403 and got["error"]["code"] == "cannot_manage", (method, path, got)
    status, run = http.post("/v1/people/bulk-password-reset", {"all": True, "type": "dry_run"}, token=manager)
    assert {"person_id": admin_id, "name": "Admin", "outcome": "skipped", "reason": "not_permitted"} \
        in run["outcomes"]
    assert tenant.sign_in()[0] == 200

# --- invitations (rule 9) -----------------------------------------------------------------------------------

def test_invitation_by_email_and_accept_with_the_default_username(app, http, admin, tenant):
    email = unique_email("erin")
    person = create_person(http, admin, kind="employee", name="Erin", email=email)
    out = invite(http, admin, person["person_id"])
    assert out["channel"] == "email" and out["status"] == "invited"
    assert http.get(f"/v1/people/{person['person_id']}", token=admin)[1]["status"] == "invited"
    link = last_link(app, email, ACCEPT)
    assert link.startswith("http://portal.test/staff/accept-invite?token=")
    message = outbox_for(email)[-1]
    assert "Test Plumbing" in message["subject"] and link in message["body"]
    status, body = http.post("/v1/staff/accept-invite", {"token": token_of(link), "password": NEW_PASSWORD})
    assert status == 200 and body["token_type"] == "Bearer"
    assert http.get("/v1/staff/me", token=body["access_token"])[1]["person_id"] == person["person_id"]
    assert tenant.sign_in(email, NEW_PASSWORD)[0] == 200  # the username is the email
    got = http.get(f"/v1/people/{person['person_id']}", token=admin)[1]
    assert got["status"] == "active" and got["username"] == email
    status, body = http.post("/v1/staff/accept-invite", {"token": token_of(link), "password": NEW_PASSWORD})
    assert status == 410 and body["error"]["code"] == "token_used"
    assert {"staff.invited", "staff.invitation_accepted"} <= set(actions(tenant.id, person["person_id"]))
    # an account exists now: no more invitations
    status, body = http.post(f"/v1/people/{person['person_id']}/invite", {}, token=admin)
    assert status == 409 and body["error"]["code"] == "account_exists"


def test_invitation_by_sms_when_a_technician_has_only_a_mobile(app, http, admin, tenant):
    mobile = unique_mobile()
    person = create_person(http, admin, kind="technician", name="Tia", mobile=mobile)
    assert invite(http, admin, person["person_id"])["channel"] == "sms"
    link = last_link(app, mobile, ACCEPT)
    assert outbox_for(mobile)[-1]["channel"] == "sms"
    status, body = http.post("/v1/staff/accept-invite", {"token": token_of(link), "password": NEW_PASSWORD})
    assert status == 400 and body["error"]["code"] == "username_required" and body["error"]["field"] == "username"
    status, body = http.post("/v1/staff/accept-invite", {"token": token_of(link), "username": "tia.tech",
                                                          "password": NEW_PASSWORD})
    assert status == 200
    assert tenant.sign_in("tia.tech", NEW_PASSWORD)[0] == 200
    # email asked for, but there is none
    other = create_person(http, admin, kind="technician", name="Ty", mobile=unique_mobile())
    status, body = http.post(f"/v1/people/{other['person_id']}/invite", {"channel": "email"}, token=admin)
    assert status == 400 and body["error"]["code"] == "channel_unavailable"


def test_a_technician_with_both_gets_email_unless_sms_is_asked_for(app, http, admin):
    email, mobile = unique_email(), unique_mobile()
    person = create_person(http, admin, kind="technician", name="Both", email=email, mobile=mobile)
    assert invite(http, admin, person["person_id"], channel="sms")["channel"] == "sms"
    last_link(app, mobile, ACCEPT)
    assert invite(http, admin, person["person_id"])["channel"] == "email"
    last_link(app, email, ACCEPT)


def test_username_may_be_changed_and_must_be_unique(app, http, admin, tenant):
    email = unique_email()
    person = create_person(http, admin, kind="employee", name="U", email=email)
    invite(http, admin, person["person_id"])
    token = token_of(last_link(app, email, ACCEPT))
    taken = staff_member(tenant)[0].username
    status, body = http.post("/v1/staff/accept-invite", {"token": token, "username": taken.upper(),
                                                          "password": NEW_PASSWORD})
    assert status == 409 and body["error"]["code"] == "username_taken" and body["error"]["field"] == "username"
    # a colleague's email is not a username one may take (it would be found by it): not theirs, so refused
    status, body = http.post("/v1/staff/accept-invite", {"token": token, "username": tenant.admin_username.upper(),
                                                          "password": NEW_PASSWORD})
    assert status == 400 and body["error"]["code"] == "invalid_username" and body["error"]["field"] == "username"
    status, body = http.post("/v1/staff/accept-invite", {"token": token, "username": "has space",
                                                          "password": NEW_PASSWORD})
    assert status == 400 and body["error"]["code"] == "invalid_username"
    status, body = http.post("/v1/staff/accept-invite", {"token": token, "password": "short"})
    assert status == 400 and body["error"]["code"] == "password_too_short" and body["error"]["field"] == "password"
    status, body = http.post("/v1/staff/accept-invite", {"token": token, "password": "Password123"})
    assert status == 400 and body["error"]["code"] == "password_too_common"
    # none of the refusals used the link up
    status, body = http.post("/v1/staff/accept-invite", {"token": token, "username": "U.Chosen",
                                                          "password": NEW_PASSWORD})
    assert status == 200
    assert tenant.sign_in("u.chosen", NEW_PASSWORD)[0] == 200  # usernames are case-insensitive
    assert tenant.sign_in(email, NEW_PASSWORD)[0] == 200  # an email signs in the person whose email it is


def test_reinviting_replaces_the_link(app, http, admin):
    email = unique_email()
    person = create_person(http, admin, kind="employee", name="R", email=email)
    invite(http, admin, person["person_id"])
    first = token_of(last_link(app, email, ACCEPT))
    invite(http, admin, person["person_id"])
    second = token_of(last_link(app, email, ACCEPT))
    assert first != second
    status, body = http.post("/v1/staff/accept-invite", {"token": first, "password": NEW_PASSWORD})
    assert status == 410 and body["error"]["code"] == "invitation_replaced"
    assert http.post("/v1/staff/accept-invite", {"token": second, "password": NEW_PASSWORD})[0] == 200


def test_invitations_expire_after_seven_days_and_the_schedule_resets_them(app, http, admin, clock):
    email = unique_email()
    person = create_person(http, admin, kind="employee", name="Late", email=email)
    invite(http, admin, person["person_id"])
    token = token_of(last_link(app, email, ACCEPT))
    clock.advance(7 * 24 * 3600 + 1)
    status, body = http.post("/v1/staff/accept-invite", {"token": token, "password": NEW_PASSWORD})
    assert status == 410 and body["error"]["code"] == "token_expired"
    assert http.get(f"/v1/people/{person['person_id']}", token=admin)[1]["status"] == "invited"
    result = app.run_schedule(SCHEDULED_EVENT, LambdaContext())
    assert result["invitations_expired"] >= 1
    assert http.get(f"/v1/people/{person['person_id']}", token=admin)[1]["status"] == "no_account"
    invite(http, admin, person["person_id"])  # "send invite" stays available until the account exists
    fresh = token_of(last_link(app, email, ACCEPT))
    assert http.post("/v1/staff/accept-invite", {"token": fresh, "password": NEW_PASSWORD})[0] == 200


def test_changing_the_contact_of_an_invited_person_withdraws_the_invitation(app, http, admin):
    email = unique_email()
    person = create_person(http, admin, kind="employee", name="Typo", email=email)
    invite(http, admin, person["person_id"])
    token = token_of(last_link(app, email, ACCEPT))
    status, body = http.patch(f"/v1/people/{person['person_id']}", {"email": unique_email()}, token=admin)
    assert status == 200 and body["status"] == "no_account"
    assert http.post("/v1/staff/accept-invite", {"token": token, "password": NEW_PASSWORD})[0] == 410


@pytest.mark.parametrize("body", [{}, {"token": "x"}, {"token": "abc", "password": NEW_PASSWORD},
                                  {"token": "A" * 43, "password": NEW_PASSWORD},
                                  {"token": 5, "password": NEW_PASSWORD},
                                  {"token": "A" * 43, "password": NEW_PASSWORD, "admin": True}])
def test_bad_accepts_are_4xx_envelopes(http, body):
    status, got = http.post("/v1/staff/accept-invite", body)
    assert status == 400 and set(got) == {"error"} and got["error"]["code"] in ("invalid_request", "token_invalid")


def test_twenty_concurrent_accepts_of_one_invitation_have_one_winner(app, http, admin, tenant):
    email = unique_email()
    person = create_person(http, admin, kind="employee", name="Race", email=email)
    invite(http, admin, person["person_id"])
    token = token_of(last_link(app, email, ACCEPT))
    with threaded_app(app):
        results = run_together(20, lambda i: http.post("/v1/staff/accept-invite", {
            "token": token, "username": f"racer{i}", "password": f"Racer-Password-{i:02d}x"}))
    assert not [r for r in results if isinstance(r, Exception)], results
    winners = [i for i, (status, _) in enumerate(results) if status == 200]
    assert len(winners) == 1, results
    assert {status for status, _ in results} <= {200, 409, 410}
    assert all(body["error"]["code"] in ("token_used", "edit_conflict") for status, body in results if status != 200)
    won = winners[0]
    assert tenant.sign_in(f"racer{won}", f"Racer-Password-{won:02d}x")[0] == 200
    loser = (won + 1) % 20
    assert tenant.sign_in(f"racer{loser}", f"Racer-Password-{loser:02d}x")[0] == 401


# --- admin-created accounts (rule 10) -----------------------------------------------------------------------

def test_admin_created_account_must_change_username_and_password_at_first_sign_in(app, http, admin, tenant):
    person = create_person(http, admin, kind="technician", name="Ad Min", mobile=unique_mobile())
    pid = person["person_id"]
    status, body = http.post(f"/v1/people/{pid}/account", {"username": "given.name", "password": "weak"},
                             token=admin)
    assert status == 400 and body["error"]["code"] == "password_too_short"
    status, body = http.post(f"/v1/people/{pid}/account", {"username": staff_member(tenant)[0].username,
                                                           "password": "Given-Password-1357"}, token=admin)
    assert status == 409 and body["error"]["code"] == "username_taken" and body["error"]["field"] == "username"
    status, body = http.post(f"/v1/people/{pid}/account", {"username": tenant.admin_username,
                                                           "password": "Given-Password-1357"}, token=admin)
    assert status == 400 and body["error"]["code"] == "invalid_username" and body["error"]["field"] == "username"
    status, body = http.post(f"/v1/people/{pid}/account", {"username": "given.name",
                                                           "password": "Given-Password-1357"}, token=admin)
    assert status == 201 and body["status"] == "active" and body["username"] == "given.name"
    status, body = http.post(f"/v1/people/{pid}/account", {"username": "again.name",
                                                           "password": "Given-Password-1357"}, token=admin)
    assert status == 409 and body["error"]["code"] == "account_exists"
    status, body = tenant.sign_in("given.name", "Given-Password-1357")
    assert status == 403 and body["error"]["code"] == "password_change_required"
    change = body["error"]["change_token"]
    status, body = http.post("/v1/staff/change-password", {"new_password": NEW_PASSWORD,
                                                            "new_username": "Given.Name"}, token=change)
    assert status == 400 and body["error"]["code"] == "username_unchanged"
    status, body = http.post("/v1/staff/change-password", {"new_password": "Given-Password-1357",
                                                            "new_username": "my.name"}, token=change)
    assert status == 400 and body["error"]["code"] == "password_reused"
    status, body = http.post("/v1/staff/change-password", {"new_password": NEW_PASSWORD,
                                                            "new_username": "my.name"}, token=change)
    assert status == 200
    assert tenant.sign_in("my.name", NEW_PASSWORD)[0] == 200
    assert tenant.sign_in("given.name", "Given-Password-1357")[0] == 401
    assert "staff.account_created" in actions(tenant.id, pid)


def test_creating_an_account_ends_a_pending_invitation(app, http, admin):
    email = unique_email()
    person = create_person(http, admin, kind="employee", name="Both Ways", email=email)
    invite(http, admin, person["person_id"])
    token = token_of(last_link(app, email, ACCEPT))
    assert http.post(f"/v1/people/{person['person_id']}/account", {"username": "both.ways",
                                                                    "password": "Given-Password-1357"},
                     token=admin)[0] == 201
    status, body = http.post("/v1/staff/accept-invite", {"token": token, "password": NEW_PASSWORD})
    assert status == 410


# --- temporary passwords and reset links (rule 14) ----------------------------------------------------------

def test_generated_temporary_password_signs_in_once_then_demands_a_new_password(app, http, admin, tenant):
    person, _ = staff_member(tenant, kind="employee")
    status, body = http.post(f"/v1/people/{person.person_id}/temporary-password", {}, token=admin)
    assert status == 201 and len(body["temporary_password"]) == 16
    temporary = body["temporary_password"]
    assert Person.get(tenant.id, person.person_id).password_hash.startswith("$argon2id$")
    status, body = tenant.sign_in(person.username, PASSWORD)
    assert status == 401  # the old password is gone
    status, body = tenant.sign_in(person.username, temporary)
    assert status == 403 and body["error"]["code"] == "password_change_required"
    # only a new password: the username stays the person's own
    status, body = http.post("/v1/staff/change-password", {"new_password": NEW_PASSWORD},
                             token=body["error"]["change_token"])
    assert status == 200
    assert tenant.sign_in(person.username, NEW_PASSWORD)[0] == 200
    drain(app)
    notices = [m for m in outbox_for(person.email) if "password" in m["subject"].lower()]
    assert any("temporary password" in m["body"] for m in notices)  # ASVS 2.2.3
    assert any("was changed" in m["body"] for m in notices)
    assert all(temporary not in m["body"] for m in outbox_for(person.email))


def test_a_given_temporary_password_is_not_echoed(http, admin, tenant):
    person, _ = staff_member(tenant)
    status, body = http.post(f"/v1/people/{person.person_id}/temporary-password", {"password": "Temporary-Pass-77"},
                             token=admin)
    assert status == 201 and "temporary_password" not in body
    status, body = http.post(f"/v1/people/{person.person_id}/temporary-password", {"password": "abc"}, token=admin)
    assert status == 400 and body["error"]["field"] == "password"


def test_temporary_password_expires_after_an_hour_with_its_own_error(app, http, admin, tenant, clock):
    person, _ = staff_member(tenant)
    http.post(f"/v1/people/{person.person_id}/temporary-password", {"password": "Temporary-Pass-77"}, token=admin)
    clock.advance(59 * 60)
    assert tenant.sign_in(person.username, "Temporary-Pass-77")[1]["error"]["code"] == "password_change_required"
    clock.advance(2 * 60)
    status, body = tenant.sign_in(person.username, "Temporary-Pass-77")
    assert status == 401 and body["error"]["code"] == "temporary_password_expired"  # before the schedule ran
    assert http.get(f"/v1/people/{person.person_id}", token=admin)[1]["status"] == "password_expired"
    result = app.run_schedule(SCHEDULED_EVENT, LambdaContext())
    assert result["temporary_passwords_expired"] >= 1
    assert Person.get(tenant.id, person.person_id).password_hash is None
    status, body = tenant.sign_in(person.username, "Temporary-Pass-77")
    assert status == 401 and body["error"]["code"] == "temporary_password_expired"  # and after it
    status, body = tenant.sign_in(person.username, "Some-Other-Guess-1")
    assert status == 401 and body["error"]["code"] == "invalid_credentials"
    assert http.get(f"/v1/people/{person.person_id}", token=admin)[1]["status"] == "password_expired"
    # one call issues a new one
    status, body = http.post(f"/v1/people/{person.person_id}/temporary-password", {}, token=admin)
    assert status == 201
    status, body = tenant.sign_in(person.username, body["temporary_password"])
    assert status == 403 and body["error"]["code"] == "password_change_required"


def test_reset_link_sets_a_new_password_once(app, http, admin, tenant):
    person, _ = staff_member(tenant, kind="employee")
    status, body = http.post(f"/v1/people/{person.person_id}/password-reset-link", {}, token=admin)
    assert status == 202 and body["channel"] == "email"
    first = token_of(last_link(app, person.email, RESET))
    http.post(f"/v1/people/{person.person_id}/password-reset-link", {}, token=admin)
    link = last_link(app, person.email, RESET)
    assert link.startswith("http://portal.test/staff/reset-password?token=")
    status, body = http.post("/v1/staff/password-reset/complete", {"reset_token": first,
                                                                    "new_password": NEW_PASSWORD})
    assert status == 410  # replaced by the second link
    status, body = http.post("/v1/staff/password-reset/complete", {"reset_token": token_of(link),
                                                                    "new_password": "weakpassword"})
    assert status == 400 and body["error"]["code"] == "password_needs_upper"
    status, body = http.post("/v1/staff/password-reset/complete", {"reset_token": token_of(link),
                                                                    "new_password": NEW_PASSWORD})
    assert status == 200
    assert tenant.sign_in(person.username, NEW_PASSWORD)[0] == 200
    assert tenant.sign_in(person.username, PASSWORD)[0] == 401
    status, body = http.post("/v1/staff/password-reset/complete", {"reset_token": token_of(link),
                                                                    "new_password": "Another-Pass-9753"})
    assert status == 410 and body["error"]["code"] == "token_used"
    drain(app)
    assert any("link your administrator sent" in m["body"] for m in outbox_for(person.email))


def test_reset_link_by_sms_and_refusals(app, http, admin, tenant):
    person, _ = staff_member(tenant)  # a technician with only a mobile
    assert http.post(f"/v1/people/{person.person_id}/password-reset-link", {}, token=admin)[1]["channel"] == "sms"
    assert last_link(app, person.mobile, RESET)
    fresh = create_person(http, admin, kind="employee", name="No Account", email=unique_email())
    for path in ("password-reset-link", "temporary-password"):
        status, body = http.post(f"/v1/people/{fresh['person_id']}/{path}", {}, token=admin)
        assert status == 409 and body["error"]["code"] == "no_account"


# --- statuses (rule 17) -------------------------------------------------------------------------------------

def test_locked_password_expired_and_disabled_statuses(http, admin, tenant):
    locked, _ = staff_member(tenant)
    for _ in range(lockout.MAX_FAILURES):
        tenant.sign_in(locked.username, "Wrong-Password-00")
    got = http.get(f"/v1/people/{locked.person_id}", token=admin)[1]
    assert got["status"] == "locked" and got["locked_until"]
    expired, _ = staff_member(tenant)
    Person.get(tenant.id, expired.person_id).update(actions=[Person.password_set_at.set(now() - 366 * 86400)])
    assert http.get(f"/v1/people/{expired.person_id}", token=admin)[1]["status"] == "password_expired"
    disabled, _ = staff_member(tenant)
    status, body = http.patch(f"/v1/people/{disabled.person_id}", {"disabled": True}, token=admin)
    assert status == 200 and body["status"] == "disabled"
    assert tenant.sign_in(disabled.username, PASSWORD)[0] == 401
    for status_name, person in [("locked", locked), ("password_expired", expired), ("disabled", disabled)]:
        page = http.get(f"/v1/people?status={status_name}", token=admin)[1]
        assert [p["person_id"] for p in page["items"]] == [person.person_id], status_name
    active = [p["person_id"] for p in http.get("/v1/people?status=active", token=admin)[1]["items"]]
    assert locked.person_id not in active and expired.person_id not in active
    status, body = http.patch(f"/v1/people/{disabled.person_id}", {"disabled": False}, token=admin)
    assert status == 200 and body["status"] == "active"
    assert tenant.sign_in(disabled.username, PASSWORD)[0] == 200
    # an admin cannot disable themselves
    me = http.get("/v1/staff/me", token=admin)[1]["person_id"]
    status, body = http.patch(f"/v1/people/{me}", {"disabled": True}, token=admin)
    assert status == 403 and body["error"]["code"] == "cannot_change_own_access"


def test_a_disabled_person_cannot_be_invited_or_accept(app, http, admin):
    email = unique_email()
    person = create_person(http, admin, kind="employee", name="Gone", email=email)
    invite(http, admin, person["person_id"])
    token = token_of(last_link(app, email, ACCEPT))
    http.patch(f"/v1/people/{person['person_id']}", {"disabled": True}, token=admin)
    assert http.post("/v1/staff/accept-invite", {"token": token, "password": NEW_PASSWORD})[0] in (403, 410)
    status, body = http.post(f"/v1/people/{person['person_id']}/invite", {}, token=admin)
    assert status == 409 and body["error"]["code"] == "account_disabled"


# --- the schedule: password expiry warnings (rule 12) -------------------------------------------------------

def test_password_expiry_is_warned_once_14_days_before(app, http, admin, tenant, clock):
    person, _ = staff_member(tenant, kind="employee")
    clock.advance(350 * 86400)
    app.run_schedule(SCHEDULED_EVENT, LambdaContext())
    drain(app)
    assert not [m for m in outbox_for(person.email) if "expires" in m["subject"]]
    clock.advance(2 * 86400)  # day 352: 13 days left
    result = app.run_schedule(SCHEDULED_EVENT, LambdaContext())
    assert result["expiry_warnings_sent"] >= 1
    app.run_schedule(SCHEDULED_EVENT, LambdaContext())  # a later run does not warn again
    drain(app)
    warnings = [m for m in outbox_for(person.email) if "expires" in m["subject"]]
    assert len(warnings) == 1 and "13 days" in warnings[0]["body"]
    # the change page, and where the business's staff sign in (no staff app here: the staff sign-in page)
    assert warnings[0]["links"] == [f"http://portal.test/staff/change-password?tenant_id={tenant.id}",
                                    f"http://portal.test/staff/sign-in?tenant_id={tenant.id}"]
    assert "staff.password_expiry_warned" in actions(tenant.id, person.person_id)
    clock.advance(14 * 86400)
    status, body = tenant.sign_in(person.username, PASSWORD)
    assert status == 403 and body["error"]["code"] == "password_expired"
    assert http.post("/v1/staff/change-password", {"new_password": NEW_PASSWORD},
                     token=body["error"]["change_token"])[0] == 200
    # the new password gets its own warning, 351 days later
    clock.advance(352 * 86400)
    app.run_schedule(SCHEDULED_EVENT, LambdaContext())
    drain(app)
    assert len([m for m in outbox_for(person.email) if "expires" in m["subject"]]) == 2


def test_the_schedule_runs_every_five_minutes(app):
    (schedule,) = [s for s in app.app.event_sources if s.name == "run_schedule"]
    assert schedule.schedule_expression.to_string() == "rate(5 minutes)"


# --- bulk (rule 15) -----------------------------------------------------------------------------------------

def test_bulk_invite_dry_run_then_send(app, http, admin, tenant):
    email, mobile = unique_email(), unique_mobile()
    by_email = create_person(http, admin, kind="employee", name="Bulk E", email=email)
    by_sms = create_person(http, admin, kind="technician", name="Bulk T", mobile=mobile)
    has_account, _ = staff_member(tenant)
    drain(app)
    ids = [by_email["person_id"], by_sms["person_id"], has_account.person_id, "missing-id"]
    status, dry = http.post("/v1/people/bulk-invite", {"person_ids": ids, "type": "dry_run"}, token=admin)
    assert status == 200 and dry.get("job_id") is None
    outcome = {o["person_id"]: o for o in dry["outcomes"]}
    assert outcome[by_email["person_id"]]["outcome"] == "would_send"
    assert outcome[by_email["person_id"]]["channel"] == "email"
    assert outcome[by_sms["person_id"]]["channel"] == "sms"
    assert outcome[has_account.person_id]["outcome"] == "skipped"
    assert outcome[has_account.person_id]["reason"] == "has_account"
    assert outcome["missing-id"]["outcome"] == "not_found"
    assert drain(app)[0]["Records"] == []  # a dry run sends nothing
    status, run = http.post("/v1/people/bulk-invite", {"person_ids": ids, "type": "send"}, token=admin)
    assert status == 200 and run["job_id"] and run["counts"] == {"sent": 2, "skipped": 1, "not_found": 1}
    assert last_link(app, email, ACCEPT) and last_link(app, mobile, ACCEPT)
    status, job = http.get(f"/v1/people/bulk-jobs/{run['job_id']}", token=admin)
    assert status == 200 and job["outcomes"] == run["outcomes"] and job["status"] == "done"
    assert "staff.bulk_invite" in actions(tenant.id)
    # all: true reaches everyone without an account; invited people are invited again (new link)
    status, everyone = http.post("/v1/people/bulk-invite", {"all": True, "type": "dry_run"}, token=admin)
    would = {o["person_id"] for o in everyone["outcomes"] if o["outcome"] == "would_send"}
    assert {by_email["person_id"], by_sms["person_id"]} <= would and has_account.person_id not in would


def test_a_send_to_all_is_refused_past_the_limit_with_the_way_to_do_it(app, http, admin, tenant, monkeypatch):
    from chalicelib.flows.staff import staff_bulk
    for name in ("Over A", "Over B", "Over C"):
        create_person(http, admin, kind="employee", name=name, email=unique_email())
    drain(app)
    would = [o for o in http.post("/v1/people/bulk-invite", {"all": True, "type": "dry_run"}, token=admin)[1]
             ["outcomes"] if o["outcome"] == "would_send"]
    monkeypatch.setattr(staff_bulk, "BULK_MAX_IDS", len(would) - 1)
    status, body = http.post("/v1/people/bulk-invite", {"all": True, "type": "send"}, token=admin)
    assert status == 400 and body["error"]["code"] == "too_many_people"
    assert body["error"]["count"] == len(would) and body["error"]["limit"] == len(would) - 1
    assert drain(app)[0]["Records"] == []  # nothing was sent
    assert http.post("/v1/people/bulk-invite", {"all": True, "type": "dry_run"}, token=admin)[0] == 200


def test_bulk_password_reset(app, http, admin, tenant):
    a, _ = staff_member(tenant, kind="employee")
    b, _ = staff_member(tenant)
    none = create_person(http, admin, kind="employee", name="No Account", email=unique_email())
    status, run = http.post("/v1/people/bulk-password-reset",
                            {"person_ids": [a.person_id, b.person_id, none["person_id"]], "type": "send"},
                            token=admin)
    assert status == 200 and run["counts"] == {"sent": 2, "skipped": 1}
    assert [o["reason"] for o in run["outcomes"] if o["outcome"] == "skipped"] == ["no_account"]
    link = last_link(app, a.email, RESET)
    assert last_link(app, b.mobile, RESET)
    assert http.post("/v1/staff/password-reset/complete", {"reset_token": token_of(link),
                                                            "new_password": NEW_PASSWORD})[0] == 200


@pytest.mark.parametrize("body", [{}, {"all": True, "person_ids": ["a"]}, {"person_ids": []},
                                  {"all": False}, {"all": True, "type": "now"}, {"person_ids": "a"},
                                  {"person_ids": ["x"] * 1001}])
def test_bad_bulk_bodies(http, admin, body):
    status, got = http.post("/v1/people/bulk-invite", body, token=admin)
    assert status == 400 and got["error"]["code"] == "invalid_request"


# --- who may do it (rule 16) and tenant isolation -----------------------------------------------------------

def accounts_routes(app):
    return [(r.method, r.path) for r in ROUTES
            if isinstance(r.policy, Admin) and r.policy.permission == "accounts:manage"]


def concrete(path, person_id):
    return path.replace("{person_id}", person_id).replace("{job_id}", "some-job")


def test_there_is_one_accounts_route_for_each_admin_action(app):
    assert set(accounts_routes(app)) >= {
        ("POST", "/v1/people"), ("GET", "/v1/people"), ("GET", "/v1/people/{person_id}"),
        ("PATCH", "/v1/people/{person_id}"), ("POST", "/v1/people/{person_id}/invite"),
        ("POST", "/v1/people/{person_id}/account"), ("POST", "/v1/people/{person_id}/password-reset-link"),
        ("POST", "/v1/people/{person_id}/temporary-password"), ("POST", "/v1/people/bulk-invite"),
        ("POST", "/v1/people/bulk-password-reset"), ("GET", "/v1/people/{person_id}/audit")}


@pytest.mark.parametrize("kind, permissions", [("technician", ()), ("employee", ()),
                                               ("employee", ("directory:manage", "portal:manage"))])
def test_technicians_and_plain_employees_get_403_on_every_accounts_route(app, http, tenant, kind, permissions):
    target, _ = staff_member(tenant, kind="employee")
    _, token = staff_member(tenant, kind=kind, permissions=permissions)
    bodies = {"POST /v1/people": {"kind": "employee", "name": "X", "email": unique_email()},
              "POST /v1/people/{person_id}/account": {"username": "x.y.z", "password": NEW_PASSWORD},
              "POST /v1/people/bulk-invite": {"all": True, "type": "send"},
              "POST /v1/people/bulk-password-reset": {"all": True, "type": "send"}}
    for method, path in accounts_routes(app):
        status, body = http.call(method, concrete(path, target.person_id), body=bodies.get(f"{method} {path}", {}),
                                 token=token)
        assert status == 403 and body["error"]["code"] == "forbidden", (kind, method, path, body)
    assert Person.get(tenant.id, target.person_id).password_hash  # nothing happened to the target


def test_another_tenant_can_neither_see_nor_touch_people(app, http, tenant, other_tenant):
    admin, intruder = tenant.admin_token, other_tenant.admin_token
    person, _ = staff_member(tenant, kind="employee")
    pid = person.person_id
    for method, path, body in [("GET", f"/v1/people/{pid}", None), ("PATCH", f"/v1/people/{pid}", {"name": "X"}),
                               ("POST", f"/v1/people/{pid}/invite", {}),
                               ("POST", f"/v1/people/{pid}/account", {"username": "x.y.z",
                                                                      "password": NEW_PASSWORD}),
                               ("POST", f"/v1/people/{pid}/password-reset-link", {}),
                               ("POST", f"/v1/people/{pid}/temporary-password", {}),
                               ("GET", f"/v1/people/{pid}/audit", None)]:
        status, got = http.call(method, path, body=body, token=intruder)
        assert status == 404 and got["error"]["code"] == "person_not_found", (method, path, got)
    assert pid not in [p["person_id"] for p in http.get("/v1/people", token=intruder)[1]["items"]]
    status, run = http.post("/v1/people/bulk-password-reset", {"person_ids": [pid], "type": "send"}, token=intruder)
    assert run["outcomes"] == [{"person_id": pid, "outcome": "not_found"}]
    status, run = http.post("/v1/people/bulk-password-reset", {"all": True, "type": "dry_run"}, token=intruder)
    assert pid not in [o["person_id"] for o in run["outcomes"]]
    # the same email may exist in another business (uniqueness is per tenant)
    create_person(http, intruder, kind="employee", name="Twin", email=person.email)
    # and the person is untouched
    assert http.get(f"/v1/people/{pid}", token=admin)[1]["name"] == "A employee"
    assert tenant.sign_in(person.username, PASSWORD)[0] == 200


# --- audit and secrets --------------------------------------------------------------------------------------

def test_audit_shows_what_was_done_to_a_person_without_secrets(app, http, admin, tenant):
    email = unique_email()
    person = create_person(http, admin, kind="employee", name="Audited", email=email)
    pid = person["person_id"]
    invite(http, admin, pid)
    link = last_link(app, email, ACCEPT)
    http.post("/v1/staff/accept-invite", {"token": token_of(link), "password": NEW_PASSWORD})
    status, temp = http.post(f"/v1/people/{pid}/temporary-password", {}, token=admin)
    status, page = http.get(f"/v1/people/{pid}/audit", token=admin)
    assert status == 200
    seen = [e["action"] for e in page["items"]]
    assert seen[:5] == ["staff.temporary_password_set", "session.ended_all", "staff.invitation_accepted",
                        "staff.invited", "staff.person_created"]  # newest first; the new password ended sessions
    assert all(pid in (e.get("target"), e.get("actor")) for e in page["items"])
    text = str(page)
    for secret in (token_of(link), NEW_PASSWORD, temp["temporary_password"]):
        assert secret not in text
    status, first = http.get(f"/v1/people/{pid}/audit?limit=2", token=admin)
    status, rest = http.get(f"/v1/people/{pid}/audit?limit=2&cursor={first['next_cursor']}", token=admin)
    assert [e["action"] for e in first["items"] + rest["items"]] == seen[:4]


def test_links_and_passwords_are_stored_only_hashed(app, http, admin, tenant):
    email = unique_email()
    person = create_person(http, admin, kind="employee", name="Hashed", email=email)
    invite(http, admin, person["person_id"])
    token = token_of(last_link(app, email, ACCEPT))
    http.post("/v1/staff/accept-invite", {"token": token, "password": NEW_PASSWORD})
    stored = Person.get(tenant.id, person["person_id"])
    raw_person = str(stored.serialize())
    assert token not in raw_person and NEW_PASSWORD not in raw_person
    assert stored.password_hash.startswith("$argon2id$")
    assert not any(token in str(t.serialize()) for t in Token.scan(Token.tenant_id == tenant.id))
    assert re.fullmatch(r"[0-9a-f]{64}", next(iter(Token.scan(Token.tenant_id == tenant.id))).token_hash)


def test_change_password_tells_the_person(app, http, tenant):
    person, token = staff_member(tenant, kind="employee")
    status, _ = http.post("/v1/staff/change-password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                          token=token)
    assert status == 200
    drain(app)
    notice = [m for m in outbox_for(person.email) if m["subject"] and "password was changed" in m["subject"]]
    assert len(notice) == 1 and NEW_PASSWORD not in notice[0]["body"] and PASSWORD not in notice[0]["body"]
    # by SMS when there is only a mobile
    tech, tech_token = staff_member(tenant)
    http.post("/v1/staff/change-password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
              token=tech_token)
    drain(app)
    assert [m["channel"] for m in outbox_for(tech.mobile)] == ["sms"]
