"""Rules that disagreed (issue 20): one answer for the same thing across the portal and staff flows.

- a reset or change refuses the current password (400 password_reused) everywhere, the portal reset included;
- a disabled portal user with the right password is told the account is disabled and whom to ask (403
  account_disabled); a wrong password still gets the answer every wrong password gets, and counts as one;
- accept-invite and the forced change check every field and answer every problem at once (`fields`);
- a 403 says in words what is needed, never an internal policy name;
- people take `status: active|disabled` like portal users (`disabled` kept, deprecated), through the same checks."""
import pytest
from conftest import drain, links_to
from staff_helpers import PASSWORD as STAFF_PASSWORD
from staff_helpers import staff_member, unique_email, unique_mobile
from test_portal_access import PASSWORD, invited, register, token_of  # noqa: F401  (the fixture)

from chalicelib.core import lockout
from chalicelib.core.models import AuditEvent
from chalicelib.web.api import ROUTES

NEW_PASSWORD = "Fresh-Meadow-4821"


def actions(tenant_id):
    return [e.action for e in AuditEvent.query(tenant_id)]


# --- the current password is refused by every reset ---------------------------------------------------------

def reset_link(app, http, tenant, email):
    assert http.post("/v1/portal/password-reset", {"tenant_id": tenant.id, "email": email})[0] == 202
    drain(app)
    return token_of(links_to(email, "/reset-password?token=")[-1])


def test_a_portal_reset_refuses_the_current_password(app, http, tenant, invited):
    register(http, invited)
    token = reset_link(app, http, tenant, invited["email"])
    body = {"token": token, "new_password": PASSWORD, "new_password_confirm": PASSWORD}
    status, answer = http.post("/v1/portal/password-reset/complete", body)
    assert status == 400, answer
    assert answer["error"]["code"] == "password_reused" and answer["error"]["field"] == "new_password"
    # the refusal did not spend the link: a new password goes through with it
    status, _ = http.post("/v1/portal/password-reset/complete",
                          {"token": token, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD})
    assert status == 200
    assert http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": invited["email"],
                                            "password": NEW_PASSWORD})[0] == 200


# --- a disabled portal user with the right password ---------------------------------------------------------

def sign_in(http, tenant, email, password):
    return http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": email, "password": password})


def disable(http, invited, status="disabled"):
    user_id = http.get("/v1/portal/users", token=invited["admin"])[1]["items"][0]["user_id"]
    assert http.patch(f"/v1/portal/users/{user_id}", {"status": status}, token=invited["admin"])[0] == 200


def test_a_disabled_portal_user_with_the_right_password_is_told_whom_to_ask(http, tenant, invited):
    register(http, invited)
    disable(http, invited)
    status, body = sign_in(http, tenant, invited["email"], PASSWORD)
    assert status == 403, body
    assert body["error"] == {"code": "account_disabled",
                             "message": "This account is disabled; ask Test Plumbing to enable it."}
    # a wrong password learns nothing: the answer of an unknown email
    wrong = sign_in(http, tenant, invited["email"], "Not-The-Password-1")
    unknown = sign_in(http, tenant, f"nobody@{tenant.id}.example", "Not-The-Password-1")
    assert wrong == unknown and wrong[0] == 401 and wrong[1]["error"]["code"] == "invalid_credentials"
    assert "portal.sign_in_refused" in actions(tenant.id)


def test_the_right_password_of_a_disabled_user_is_no_wrong_guess(http, tenant, invited):
    """Lockout counts as before: wrong passwords lock after five, the right one of a disabled user never does."""
    register(http, invited)
    disable(http, invited)
    for _ in range(8):
        assert sign_in(http, tenant, invited["email"], PASSWORD)[0] == 403
    for _ in range(4):
        assert sign_in(http, tenant, invited["email"], "Not-The-Password-1")[0] == 401
    assert sign_in(http, tenant, invited["email"], PASSWORD)[0] == 403  # still no lock: four wrong guesses
    assert sign_in(http, tenant, invited["email"], "Not-The-Password-1")[0] == 401  # the fifth locks
    status, body = sign_in(http, tenant, invited["email"], PASSWORD)
    assert status == 423 and body["error"]["code"] == "account_locked"
    lockout.clear("portal", tenant.id, invited["email"])
    disable(http, invited, "active")
    assert sign_in(http, tenant, invited["email"], PASSWORD)[0] == 200


# --- every field's problem at once --------------------------------------------------------------------------

def staff_invitation(app, http, tenant):
    email = unique_email("invitee")
    status, person = http.post("/v1/people", {"kind": "employee", "name": "Newcomer", "email": email},
                               token=tenant.admin_token)
    assert status == 201, person
    assert http.post(f"/v1/people/{person['person_id']}/invite", {}, token=tenant.admin_token)[0] == 202
    drain(app)
    return links_to(email, "/staff/accept-invite?token=")[-1].split("token=")[1]


def test_accept_invite_answers_every_problem_at_once(app, http, tenant):
    token = staff_invitation(app, http, tenant)
    status, body = http.post("/v1/staff/accept-invite", {"token": token, "username": "no spaces allowed",
                                                         "password": "weak"})
    assert status == 400, body
    error = body["error"]
    assert error["code"] == "invalid_username" and error["field"] == "username"  # the first one, as before
    assert [(f["field"], f["code"]) for f in error["fields"]] == [("username", "invalid_username"),
                                                                  ("password", "password_too_short")]
    assert all(f["problem"] for f in error["fields"])
    status, body = http.post("/v1/staff/accept-invite", {"token": token, "username": "good.name",
                                                         "password": NEW_PASSWORD})
    assert status == 200, body  # the refusal left the link usable


def test_the_forced_change_answers_every_problem_at_once(http, tenant):
    admin = tenant.admin_token
    status, person = http.post("/v1/people", {"kind": "technician", "name": "Given Account",
                                              "mobile": unique_mobile()}, token=admin)
    assert status == 201
    assert http.post(f"/v1/people/{person['person_id']}/account",
                     {"username": "given.account", "password": STAFF_PASSWORD}, token=admin)[0] == 201
    status, body = tenant.sign_in("given.account", STAFF_PASSWORD)
    change = body["error"]["change_token"]
    status, body = http.post("/v1/staff/change-password", {"new_username": "Given.Account",
                                                            "new_password": "alllowercase1"}, token=change)
    assert status == 400, body
    assert body["error"]["code"] == "username_unchanged" and body["error"]["field"] == "new_username"
    assert [(f["field"], f["code"]) for f in body["error"]["fields"]] == [
        ("new_username", "username_unchanged"), ("new_password", "password_needs_upper")]
    status, body = http.post("/v1/staff/change-password", {"new_username": "someone@else.example",
                                                            "new_password": STAFF_PASSWORD}, token=change)
    assert [(f["field"], f["code"]) for f in body["error"]["fields"]] == [
        ("new_username", "invalid_username"), ("new_password", "password_reused")]
    status, body = http.post("/v1/staff/change-password", {"new_username": "own.account",
                                                            "new_password": NEW_PASSWORD}, token=change)
    assert status == 200, body


# --- 403 in words --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, words", [
    ("/v1/customers", "You need permission to manage customers."),
    ("/v1/people", "You need permission to manage staff accounts."),
    ("/v1/portal/users", "You need permission to manage the customer portal."),
    ("/v1/partner-portals", "You need permission to manage partner portals."),
])
def test_a_403_says_what_is_needed_in_words(http, tenant, path, words):
    _, token = staff_member(tenant)
    status, body = http.get(path, token=token)
    assert status == 403 and body["error"] == {"code": "forbidden", "message": words}


def test_a_portal_user_on_a_staff_route_is_told_it_needs_a_staff_sign_in(http, tenant, invited):
    _, session = register(http, invited)
    status, body = http.get("/v1/staff/me", token=session["access_token"])
    assert status == 403 and body["error"] == {"code": "forbidden", "message": "This needs a staff sign-in."}
    status, body = http.get("/v1/customers", token=session["access_token"])  # an admin route
    assert status == 403 and body["error"] == {"code": "forbidden", "message": "This needs a staff sign-in."}
    _, token = staff_member(tenant)
    status, body = http.get("/v1/portal/me", token=token)
    assert status == 403 and body["error"]["message"] == "This needs a customer portal sign-in."


def test_no_refusal_names_a_policy(app):
    from chalicelib.core.principal import Principal
    from chalicelib.web.api import _forbidden
    for spec in ROUTES:
        for kind in ("staff", "portal", "partner", "password_change"):
            message = _forbidden(spec.policy, Principal(kind=kind, tenant_id="t", subject="s")).message
            assert ":" not in message and "_" not in message and "policy" not in message, message


# --- one shape for disabling: status ----------------------------------------------------------------------------

def test_people_take_status_like_portal_users(http, tenant):
    person, _ = staff_member(tenant)
    path = f"/v1/people/{person.person_id}"
    status, body = http.patch(path, {"status": "disabled"}, token=tenant.admin_token)
    assert status == 200 and body["status"] == "disabled"
    assert tenant.sign_in(person.username, STAFF_PASSWORD)[0] == 401
    status, body = http.patch(path, {"status": "active"}, token=tenant.admin_token)
    assert status == 200 and body["status"] == "active"
    assert http.patch(path, {"disabled": True}, token=tenant.admin_token)[1]["status"] == "disabled"  # deprecated
    assert http.patch(path, {"disabled": False, "status": "active"}, token=tenant.admin_token)[0] == 200  # agree
    status, body = http.patch(path, {"disabled": True, "status": "active"}, token=tenant.admin_token)
    assert status == 400 and body["error"]["code"] == "invalid_request" and body["error"]["field"] == "status"
    status, body = http.patch(path, {"status": "locked"}, token=tenant.admin_token)
    assert status == 400 and body["error"]["code"] == "invalid_request"


def test_status_goes_through_the_checks_disabled_does(http, tenant):
    from chalicelib.core.models import Person
    from chalicelib.flows.staff import people
    me, token = staff_member(tenant, kind="employee", role="admin")
    for change in ({"status": "disabled"}, {"status": "active"}):
        status, body = http.patch(f"/v1/people/{me.person_id}", change, token=token)
        assert status == 403 and body["error"]["code"] == "cannot_change_own_access"
    # the last active admin: a manager holding every permission (not an admin) cannot disable them
    for p in Person.query(tenant.id):
        if p.role == "admin" and p.person_id != me.person_id:
            p.update(actions=[Person.role.set("staff")], add_version_condition=False)
    _, manager = staff_member(tenant, kind="employee", role="office", permissions=list(people.PERMISSIONS))
    status, body = http.patch(f"/v1/people/{me.person_id}", {"status": "disabled"}, token=manager)
    assert status == 409 and body["error"]["code"] == "last_admin"


def test_the_openapi_document_marks_disabled_deprecated(http):
    schema = http.get("/v1/openapi.json")[1]["components"]["schemas"]["PersonPatch"]["properties"]
    assert schema["status"]["anyOf"][0]["enum"] == ["active", "disabled"]
    assert schema["disabled"]["deprecated"] is True and "Deprecated" in schema["disabled"]["description"]
