"""Sessions the account controls (issue 14): every access token names its session; the guard checks the session
and the account live on every call, so what ends a session ends it on the very next call, and permissions come
from the live record. People see and end their sessions; admins end other people's."""
import concurrent.futures

import botocore.client
import pytest
from conftest import drain, links_to
from staff_helpers import PASSWORD, staff_member, unique_email
from test_partners import enable, enabled_partner, partner_token
from test_portal_access import PASSWORD as PORTAL_PASSWORD
from test_portal_access import invited, register  # noqa: F401  (the fixture)

from chalicelib.core.models import AuditEvent


def ended(response):
    status, body = response
    return status == 401 and body["error"]["code"] == "session_ended"


def admin(tenant, **kw):
    return staff_member(tenant, kind="employee", role="admin", **kw)


# --- 1. a session ends when the account changes -------------------------------------------------------------

def test_a_disabled_admins_old_token_cannot_re_enable_her_or_do_anything(http, tenant):
    alice, alice_token = admin(tenant)
    bob, bob_token = admin(tenant)
    assert http.patch(f"/v1/people/{alice.person_id}", {"disabled": True}, token=bob_token)[0] == 200
    assert ended(http.patch(f"/v1/people/{alice.person_id}", {"disabled": False}, token=alice_token))
    assert ended(http.patch(f"/v1/people/{bob.person_id}", {"disabled": True}, token=alice_token))
    assert ended(http.post("/v1/people", {"kind": "employee", "name": "Mallory", "email": unique_email(),
                                          "role": "admin"}, token=alice_token))
    assert http.get("/v1/staff/me", token=bob_token)[0] == 200


def test_a_demoted_admins_old_token_cannot_promote_her_back(http, tenant):
    alice, alice_token = admin(tenant)
    bob, bob_token = admin(tenant)
    assert http.patch(f"/v1/people/{alice.person_id}", {"role": "staff"}, token=bob_token)[0] == 200
    assert ended(http.patch(f"/v1/people/{alice.person_id}", {"role": "admin"}, token=alice_token))
    # signed in again, she holds what the live record says: nothing of an admin's
    status, body = tenant.sign_in(alice.username, PASSWORD)
    assert status == 200
    status, body = http.get("/v1/people", token=body["access_token"])
    assert status == 403 and body["error"]["code"] == "forbidden"


def test_permissions_come_from_the_live_record_not_the_token(http, tenant):
    """Even a session that is not ended (a permission granted since) is judged by the live record."""
    _, admin_token = admin(tenant)
    office, office_token = staff_member(tenant, kind="employee", role="office")
    assert http.get("/v1/people", token=office_token)[0] == 403
    from chalicelib.core.models import Person
    Person(tenant.id, office.person_id).update(actions=[Person.permissions.set(["accounts:manage"])],
                                              add_version_condition=False)
    assert http.get("/v1/people", token=office_token)[0] == 200  # the token says nothing of accounts:manage
    assert http.patch(f"/v1/people/{office.person_id}", {"permissions": []}, token=admin_token)[0] == 200
    assert ended(http.get("/v1/staff/me", token=office_token))


@pytest.mark.parametrize("how", ["temporary_password", "reset_link_used", "own_change"])
def test_password_changes_end_the_old_sessions(app, http, tenant, how):
    _, admin_token = admin(tenant)
    tech, tech_token = staff_member(tenant, kind="employee", role="staff")
    if how == "temporary_password":
        assert http.post(f"/v1/people/{tech.person_id}/temporary-password", {}, token=admin_token)[0] == 201
    elif how == "reset_link_used":
        assert http.post(f"/v1/people/{tech.person_id}/password-reset-link", {}, token=admin_token)[0] == 202
        drain(app)
        link = links_to(tech.email, "/staff/reset-password")[-1]
        token = link.split("token=")[1]
        status, body = http.post("/v1/staff/password-reset/complete",
                                 {"reset_token": token, "new_password": "Another-Long-Pass-77"})
        assert status == 200, body
    else:
        other_device = tenant.sign_in(tech.username, PASSWORD)[1]["access_token"]
        status, body = http.post("/v1/staff/change-password", {"current_password": PASSWORD,
                                                               "new_password": "Another-Long-Pass-77"},
                                 token=tech_token)
        assert status == 200, body
        assert ended(http.get("/v1/staff/me", token=other_device))
        assert http.get("/v1/staff/me", token=body["access_token"])[0] == 200  # the new session works
    assert ended(http.get("/v1/staff/me", token=tech_token))


def test_an_admin_set_account_ends_nothing_it_should_not(http, tenant):
    """Setting a temporary password ends the person's sessions, not the admin's."""
    _, admin_token = admin(tenant)
    tech, _ = staff_member(tenant)
    assert http.post(f"/v1/people/{tech.person_id}/temporary-password", {}, token=admin_token)[0] == 201
    assert http.get("/v1/staff/me", token=admin_token)[0] == 200


@pytest.mark.parametrize("field", [{"role": "staff"}, {"permissions": []}, {"disabled": True}])
def test_nobody_changes_their_own_access(http, tenant, field):
    me, token = admin(tenant)
    status, body = http.patch(f"/v1/people/{me.person_id}", field, token=token)
    assert status == 403 and body["error"]["code"] == "cannot_change_own_access"
    assert http.patch(f"/v1/people/{me.person_id}", {"name": "New Name"}, token=token)[0] == 200


def test_the_last_active_admin_cannot_be_disabled_or_demoted(http, tenant):
    """The tenant's first admin is its only one; a manager holding every permission (not an admin) tries."""
    from chalicelib.flows.staff import people
    everything = list(people.PERMISSIONS)
    _, manager_token = staff_member(tenant, kind="employee", role="office", permissions=everything)
    [first] = [p for p in people_of(tenant) if p.role == "admin"]
    for change in ({"disabled": True}, {"role": "office"}):
        status, body = http.patch(f"/v1/people/{first.person_id}", change, token=manager_token)
        assert status == 409 and body["error"]["code"] == "last_admin", body
    second, _ = admin(tenant)
    assert http.patch(f"/v1/people/{first.person_id}", {"role": "office"}, token=manager_token)[0] == 200
    status, body = http.patch(f"/v1/people/{second.person_id}", {"disabled": True}, token=manager_token)
    assert status == 409 and body["error"]["code"] == "last_admin"


def people_of(tenant):
    from chalicelib.core.models import Person
    return list(Person.query(tenant.id))


def test_two_admins_disabling_each_other_at_once_leave_one(app, tenant):
    """The last-admin check and the change are serialised: never zero active admins."""
    from chalice.test import Client
    from conftest import ROOT, Http
    for p in people_of(tenant):  # leave exactly these two admins active
        if p.role == "admin":
            from chalicelib.core.models import Person
            p.update(actions=[Person.role.set("staff")], add_version_condition=False)
    alice, alice_token = admin(tenant)
    bob, bob_token = admin(tenant)

    def disable(token, target):
        with Client(app.app, stage_name="local", project_dir=str(ROOT)) as c:
            return Http(c).patch(f"/v1/people/{target}", {"disabled": True}, token=token)[0]

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda a: disable(*a), [(alice_token, bob.person_id),
                                                          (bob_token, alice.person_id)]))
    active = [p for p in people_of(tenant) if p.role == "admin" and p.account_status == "active"]
    assert len(active) >= 1, results
    assert results.count(200) <= 1, results


def test_a_token_without_a_session_is_refused(http, tenant):
    from chalicelib.core.security import keys
    person, token = admin(tenant)
    claims = keys.verify(token)
    forged_free = keys.sign({k: v for k, v in claims.items() if k not in ("sid", "iat", "exp", "nbf", "iss", "jti")},
                            300)
    assert ended(http.get("/v1/staff/me", token=forged_free))
    other = keys.sign({**{k: v for k, v in claims.items() if k not in ("iat", "exp", "nbf", "iss", "jti")},
                       "sub": "someone-else"}, 300)
    assert ended(http.get("/v1/staff/me", token=other))  # a session belongs to its person only


# --- portal users --------------------------------------------------------------------------------------------

def portal_session(http, invited):
    status, body = register(http, invited)
    assert status == 200, body
    return body


def test_disabling_a_portal_user_ends_its_sessions_for_good(http, tenant, invited):
    session = portal_session(http, invited)
    user_id = http.get("/v1/portal/me", token=session["access_token"])[1]["user_id"]
    assert http.patch(f"/v1/portal/users/{user_id}", {"status": "disabled"}, token=invited["admin"])[0] == 200
    assert http.patch(f"/v1/portal/users/{user_id}", {"status": "active"}, token=invited["admin"])[0] == 200
    assert ended(http.get("/v1/portal/me", token=session["access_token"]))
    status, body = http.post("/v1/portal/token/refresh", {"refresh_token": session["refresh_token"]})
    assert status == 401 and body["error"]["code"] == "invalid_refresh_token"


def test_portal_users_see_and_end_their_sessions(http, tenant, invited):
    first = portal_session(http, invited)
    status, second = http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": invited["email"],
                                                      "password": PORTAL_PASSWORD},
                               headers={"User-Agent": "Phone/1.0"})
    assert status == 200
    status, body = http.get("/v1/portal/sessions", token=second["access_token"])
    assert status == 200
    listed = body["sessions"]
    assert [s["method"] for s in listed] == ["password", "invitation"]  # newest first
    assert [s["current"] for s in listed] == [True, False]
    assert listed[0]["user_agent"] == "Phone/1.0" and listed[0]["ip"]
    other_id = listed[1]["session_id"]
    assert http.call("DELETE", f"/v1/portal/sessions/{other_id}", token=second["access_token"])[0] == 204
    assert ended(http.get("/v1/portal/me", token=first["access_token"]))
    status, body = http.post("/v1/portal/token/refresh", {"refresh_token": first["refresh_token"]})
    assert status == 401
    assert [s["session_id"] for s in http.get("/v1/portal/sessions", token=second["access_token"])[1]
            ["sessions"]] == [listed[0]["session_id"]]
    assert http.post("/v1/portal/sign-out-everywhere", token=second["access_token"])[0] == 204
    assert ended(http.get("/v1/portal/me", token=second["access_token"]))
    assert http.post("/v1/portal/token/refresh", {"refresh_token": second["refresh_token"]})[0] == 401


def test_an_admin_signs_a_portal_user_out(http, tenant, other_tenant, invited):
    session = portal_session(http, invited)
    user_id = http.get("/v1/portal/me", token=session["access_token"])[1]["user_id"]
    status, body = http.post(f"/v1/portal/users/{user_id}/sign-out", token=other_tenant.admin_token)
    assert status == 404  # another tenant's user
    assert http.get("/v1/portal/me", token=session["access_token"])[0] == 200
    assert http.post(f"/v1/portal/users/{user_id}/sign-out", token=invited["admin"])[0] == 204
    assert ended(http.get("/v1/portal/me", token=session["access_token"]))
    assert http.post("/v1/portal/token/refresh", {"refresh_token": session["refresh_token"]})[0] == 401
    ends = [e for e in AuditEvent.query(tenant.id) if e.action == "session.ended_all" and e.target == user_id]
    assert ends and ends[-1].details["reason"] == "admin_sign_out"


# --- staff sessions ------------------------------------------------------------------------------------------

def test_staff_see_and_end_their_sessions(http, tenant):
    person, laptop = staff_member(tenant, kind="employee")
    status, body = http.post("/v1/staff/sign-in", {"tenant_id": tenant.id, "username": person.username,
                                                   "password": PASSWORD}, headers={"User-Agent": "Van tablet"})
    phone = body["access_token"]
    status, body = http.get("/v1/staff/sessions", token=laptop)
    assert status == 200
    listed = body["sessions"]
    assert len(listed) == 2 and [s["current"] for s in listed] == [False, True]
    assert listed[0]["user_agent"] == "Van tablet" and {s["method"] for s in listed} == {"password"}
    assert set(listed[0]) == {"session_id", "created_at", "last_used_at", "ip", "user_agent", "method", "current"}
    # someone else's session id is not found, and ends nothing
    _, colleague = staff_member(tenant, kind="employee")
    colleague_sid = http.get("/v1/staff/sessions", token=colleague)[1]["sessions"][0]["session_id"]
    status, body = http.call("DELETE", f"/v1/staff/sessions/{colleague_sid}", token=laptop)
    assert status == 404 and body["error"]["code"] == "session_not_found"
    assert http.get("/v1/staff/me", token=colleague)[0] == 200
    assert http.call("DELETE", f"/v1/staff/sessions/{listed[0]['session_id']}", token=laptop)[0] == 204
    assert ended(http.get("/v1/staff/me", token=phone))
    assert http.post("/v1/staff/sign-out", token=laptop)[0] == 204
    assert ended(http.get("/v1/staff/me", token=laptop))
    ends = [e for e in AuditEvent.query(tenant.id) if e.action == "session.ended" and e.target == person.person_id]
    assert len(ends) == 2 and all(e.actor == person.person_id for e in ends)


def test_staff_sign_out_everywhere(http, tenant):
    person, one = staff_member(tenant)
    two = tenant.sign_in(person.username, PASSWORD)[1]["access_token"]
    assert http.post("/v1/staff/sign-out-everywhere", token=one)[0] == 204
    assert ended(http.get("/v1/staff/me", token=one)) and ended(http.get("/v1/staff/me", token=two))
    assert http.get("/v1/staff/me", token=tenant.sign_in(person.username, PASSWORD)[1]["access_token"])[0] == 200


def test_admins_see_and_end_a_persons_sessions(http, tenant, other_tenant):
    _, admin_token = admin(tenant)
    tech, tech_token = staff_member(tenant)
    status, body = http.get(f"/v1/people/{tech.person_id}/sessions", token=admin_token)
    assert status == 200 and len(body["sessions"]) == 1 and body["sessions"][0]["current"] is False
    assert http.get(f"/v1/people/{tech.person_id}/sessions", token=other_tenant.admin_token)[0] == 404
    assert http.post(f"/v1/people/{tech.person_id}/sign-out", token=other_tenant.admin_token)[0] == 404
    status, body = http.get(f"/v1/people/{tech.person_id}/sessions", token=tech_token)
    assert status == 403  # a technician holds no accounts:manage
    assert http.post(f"/v1/people/{tech.person_id}/sign-out", token=admin_token)[0] == 204
    assert ended(http.get("/v1/staff/me", token=tech_token))
    assert http.get(f"/v1/people/{tech.person_id}/sessions", token=admin_token)[1]["sessions"] == []


def test_a_portal_token_opens_no_staff_session_route_and_back(http, tenant, invited):
    session = portal_session(http, invited)
    _, staff_token = staff_member(tenant)
    assert http.get("/v1/staff/sessions", token=session["access_token"])[0] == 403
    assert http.get("/v1/portal/sessions", token=staff_token)[0] == 403
    assert http.post("/v1/staff/sign-out-everywhere", token=session["access_token"])[0] == 403


# --- partners ------------------------------------------------------------------------------------------------

def test_disabling_a_partner_portal_ends_its_tokens_for_good(http, tenant):
    portal, secret, token = enabled_partner(http, tenant)
    assert http.post(f"/v1/partner-portals/{portal.portal_id}/disable", token=tenant.admin_token)[0] == 200
    assert enable(http, tenant, portal.portal_id)[0] == 200
    assert ended(http.get("/v1/partner/customers", token=token))
    fresh = partner_token(http, portal, secret, tenant.id)[1]["access_token"]
    assert http.get("/v1/partner/customers", token=fresh)[0] == 200


# --- cost of the live check ----------------------------------------------------------------------------------

def test_the_live_check_is_one_read_per_call(http, tenant, monkeypatch):
    _, token = staff_member(tenant)
    calls = []
    original = botocore.client.BaseClient._make_api_call

    def counting(self, operation, params):
        if self.meta.service_model.service_name == "dynamodb":
            calls.append(operation)
        return original(self, operation, params)
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    assert http.get("/v1/staff/me", token=token)[0] == 200
    reads = [c for c in calls if c in ("GetItem", "BatchGetItem", "Query", "Scan")]
    assert reads == ["BatchGetItem"], calls


# --- access-link sessions ------------------------------------------------------------------------------------

def link_session(http, tenant, user_agent="Kitchen tablet"):
    token = tenant.admin_token
    customer = http.post("/v1/customers", {"name": "Link Household", "emails": []}, token=token)[1]
    status, link = http.post(f"/v1/customers/{customer['customer_id']}/access-link", {}, token=token)
    assert status == 201, link
    link_token = link["link"].split("token=", 1)[1]
    status, session = http.post("/v1/portal/access", {"token": link_token}, headers={"User-Agent": user_agent})
    assert status == 200, session
    return customer, session["access_token"], token


def test_signing_out_ends_a_link_session_and_it_sees_only_itself(http, tenant):
    customer, first, admin_token = link_session(http, tenant)
    _, second, _ = link_session(http, tenant)
    status, body = http.get("/v1/portal/sessions", token=first)
    assert status == 200 and len(body["sessions"]) == 1
    [mine] = body["sessions"]
    assert mine["method"] == "access_link" and mine["current"] and mine["user_agent"] == "Kitchen tablet"
    assert http.post("/v1/portal/sign-out", token=first)[0] == 204
    assert ended(http.get("/v1/portal/me", token=first))
    assert http.get("/v1/portal/me", token=second)[0] == 200  # another holder's session is its own


def test_a_replaced_link_ends_its_sessions_on_every_route(http, tenant):
    customer, session, admin_token = link_session(http, tenant)
    assert http.post(f"/v1/customers/{customer['customer_id']}/access-link", {}, token=admin_token)[0] == 201
    assert ended(http.get("/v1/portal/sessions", token=session))
    assert ended(http.get("/v1/portal/me", token=session))


def test_a_username_and_an_email_share_one_lockout(http, tenant):
    """Sign-in by email finds the person whose email it is: five wrong passwords split between the two spellings
    lock the account, as five on one spelling do."""
    person, _ = staff_member(tenant, kind="employee")
    for i, identifier in enumerate([person.username, person.email, person.username, person.email.upper(),
                                    person.username]):
        status, body = tenant.sign_in(identifier, f"Wrong-Password-{i}x")
        assert status == 401, (i, body)
    status, body = tenant.sign_in(person.email, PASSWORD)
    assert status == 423 and body["error"]["code"] == "account_locked"


# --- a sign-in that overlaps the end of every session (review finding) ----------------------------------------

def during_password_check(monkeypatch, password, action):
    """Runs `action` once, while the sign-in with `password` is being checked (after the account was read)."""
    from chalicelib.core.security import passwords
    original, done = passwords.verify_password, []

    def checking(stored, typed):
        if typed == password and not done:
            done.append(True)
            action()
        return original(stored, typed)
    monkeypatch.setattr(passwords, "verify_password", checking)


def test_a_staff_sign_in_under_way_when_the_password_changes_does_not_survive_it(http, tenant, monkeypatch):
    from chalicelib.flows.staff import people, staff_signin
    person, _ = staff_member(tenant)
    during_password_check(monkeypatch, PASSWORD, lambda: staff_signin.set_password(
        people.get(tenant.id, person.person_id), "Brand-New-Secret-991"))
    status, body = tenant.sign_in(person.username, PASSWORD)
    monkeypatch.undo()
    assert status == 200  # the old password was right when it was read
    assert ended(http.get("/v1/staff/me", token=body["access_token"]))


def test_a_portal_sign_in_under_way_when_every_session_ends_does_not_survive_it(http, tenant, invited,
                                                                                 monkeypatch):
    from chalicelib.core import sessions
    from chalicelib.flows.portal import invitations
    portal_session(http, invited)
    user = invitations.find_user(tenant.id, invited["email"])
    during_password_check(monkeypatch, PORTAL_PASSWORD, lambda: sessions.end_all(
        invitations.find_user(tenant.id, invited["email"]), actor="test", reason="signed_out_everywhere", ip=None))
    status, body = http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": invited["email"],
                                                    "password": PORTAL_PASSWORD})
    monkeypatch.undo()
    assert status == 200 and user is not None
    assert ended(http.get("/v1/portal/me", token=body["access_token"]))
    assert http.post("/v1/portal/token/refresh", {"refresh_token": body["refresh_token"]})[0] == 401


def test_a_portal_reset_ends_sessions_in_the_same_write_as_the_password(app, http, tenant, invited, monkeypatch):
    """Even if what follows the password's write fails, the old sessions are over."""
    from chalicelib.core import audit
    old = portal_session(http, invited)
    assert http.post("/v1/portal/password-reset", {"tenant_id": tenant.id, "email": invited["email"]})[0] == 202
    drain(app)
    token = links_to(invited["email"], "/reset-password")[-1].split("token=", 1)[1]
    original = audit.record

    def failing(tenant_id, action, **kw):
        if action == "session.ended_all":
            raise RuntimeError("the audit write failed")
        return original(tenant_id, action, **kw)
    monkeypatch.setattr(audit, "record", failing)
    status, _ = http.post("/v1/portal/password-reset/complete", {"token": token, "new_password": "Brand-New-Porch-88",
                                                                 "new_password_confirm": "Brand-New-Porch-88"})
    monkeypatch.undo()
    assert status == 500
    assert ended(http.get("/v1/portal/me", token=old["access_token"]))
    assert http.post("/v1/portal/token/refresh", {"refresh_token": old["refresh_token"]})[0] == 401


def test_listing_a_persons_sessions_needs_the_right_to_manage_them(http, tenant):
    admin_person, _ = admin(tenant)
    _, helper_token = staff_member(tenant, kind="employee", role="staff", permissions=["accounts:manage"])
    status, body = http.get(f"/v1/people/{admin_person.person_id}/sessions", token=helper_token)
    assert status == 403 and body["error"]["code"] == "cannot_manage"


def test_a_session_id_longer_than_any_is_not_found_without_a_database_error(http, tenant):
    _, token = staff_member(tenant)
    status, body = http.call("DELETE", "/v1/staff/sessions/" + "a" * 3000, token=token)
    assert status == 404 and body["error"]["code"] == "session_not_found"
