"""POST /v1/people/{person_id}/unlock: an admin ends a sign-in lockout at once, audited as staff.unlocked."""
from staff_helpers import PASSWORD, staff_member


def lock_out(tenant, username):
    for _ in range(5):
        status, _ = tenant.sign_in(username, "Wrong-Password-99")
        assert status == 401
    status, body = tenant.sign_in(username, PASSWORD)
    assert status == 423, body


def test_an_admin_unlocks_a_locked_person_who_signs_in_at_once(http, tenant):
    person, _ = staff_member(tenant, kind="employee")
    lock_out(tenant, person.username)
    admin = tenant.admin_token
    assert http.get(f"/v1/people/{person.person_id}", token=admin)[1]["status"] == "locked"
    status, body = http.post(f"/v1/people/{person.person_id}/unlock", token=admin)
    assert status == 200, body
    assert (body["person_id"], body["status"], body.get("locked_until")) == (person.person_id, "active", None)
    assert tenant.sign_in(person.username, PASSWORD)[0] == 200
    events = http.get(f"/v1/people/{person.person_id}/audit", token=admin)[1]["items"]
    unlocked = [e for e in events if e["action"] == "staff.unlocked"]
    assert len(unlocked) == 1
    admin_id = http.get("/v1/staff/me", token=admin)[1]["person_id"]
    assert unlocked[0]["actor"] == admin_id


def test_signing_in_by_email_is_unlocked_too(http, tenant):
    person, _ = staff_member(tenant, kind="employee")
    lock_out(tenant, person.email)  # counted under the username whichever identifier was typed
    assert http.post(f"/v1/people/{person.person_id}/unlock", token=tenant.admin_token)[0] == 200
    assert tenant.sign_in(person.email, PASSWORD)[0] == 200


def test_unlocking_someone_not_locked_is_a_no_op(http, tenant):
    person, _ = staff_member(tenant, kind="employee")
    admin = tenant.admin_token
    status, body = http.post(f"/v1/people/{person.person_id}/unlock", token=admin)
    assert (status, body["status"]) == (200, "active")
    assert http.post(f"/v1/people/{person.person_id}/unlock", token=admin)[0] == 200
    events = http.get(f"/v1/people/{person.person_id}/audit", token=admin)[1]["items"]
    assert not [e for e in events if e["action"] == "staff.unlocked"]
    status, body = http.post("/v1/people", {"kind": "employee", "name": "No Account",
                                            "email": "noaccount@crew.example"}, token=admin)
    assert status == 201
    status, body = http.post(f"/v1/people/{body['person_id']}/unlock", token=admin)
    assert (status, body["status"]) == (200, "no_account")


def test_another_tenants_person_is_not_found_and_stays_locked(http, tenant, other_tenant):
    person, _ = staff_member(tenant, kind="employee")
    lock_out(tenant, person.username)
    status, body = http.post(f"/v1/people/{person.person_id}/unlock", token=other_tenant.admin_token)
    assert status == 404, body
    assert tenant.sign_in(person.username, PASSWORD)[0] == 423
    assert http.post("/v1/people/no-such-person/unlock", token=tenant.admin_token)[0] == 404


def test_unlocking_needs_accounts_manage_and_cannot_reach_above_the_caller(http, tenant):
    person, _ = staff_member(tenant, kind="employee")
    lock_out(tenant, person.username)
    _, office = staff_member(tenant, kind="employee", role="office")
    status, body = http.post(f"/v1/people/{person.person_id}/unlock", token=office)
    assert (status, body["error"]["code"]) == (403, "forbidden")
    _, manager = staff_member(tenant, kind="employee", role="staff", permissions=["accounts:manage"])
    admin_id = http.get("/v1/staff/me", token=tenant.admin_token)[1]["person_id"]
    status, body = http.post(f"/v1/people/{admin_id}/unlock", token=manager)
    assert (status, body["error"]["code"]) == (403, "cannot_manage")
    assert tenant.sign_in(person.username, PASSWORD)[0] == 423
