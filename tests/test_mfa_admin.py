"""An admin and a person's second factor (issue 18): people show `mfa`, and Reset second factor (accounts:manage)
removes the factor, audited, the person told; other businesses' people are not found, non-admins refused."""
from conftest import drain, outbox_for
from mfa_helpers import code_clock, first_step, set_up_totp  # noqa: F401
from staff_helpers import PASSWORD, staff_member


def test_admin_sees_and_resets_a_second_factor(app, http, tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    admin = tenant.admin_token
    assert http.get(f"/v1/people/{person.person_id}", token=admin)[1]["mfa"] is False
    set_up_totp(http, token, code_clock)
    assert http.get(f"/v1/people/{person.person_id}", token=admin)[1]["mfa"] is True
    listed = {p["person_id"]: p["mfa"] for p in http.get("/v1/people?limit=100", token=admin)[1]["items"]}
    assert listed[person.person_id] is True
    status, body = http.post(f"/v1/people/{person.person_id}/reset-mfa", token=admin)
    assert status == 200 and body["mfa"] is False
    assert tenant.sign_in(person.username, PASSWORD)[0] == 200  # the password alone again
    trail = http.get(f"/v1/people/{person.person_id}/audit", token=admin)[1]["items"]
    assert any(e["action"] == "staff.mfa_reset" for e in trail)
    drain(app)
    assert any("An administrator reset the second factor" in m["body"] for m in outbox_for(person.email))
    # idempotent: nothing to reset, nothing recorded
    before = len(http.get(f"/v1/people/{person.person_id}/audit", token=admin)[1]["items"])
    assert http.post(f"/v1/people/{person.person_id}/reset-mfa", token=admin)[0] == 200
    assert len(http.get(f"/v1/people/{person.person_id}/audit", token=admin)[1]["items"]) == before


def test_reset_is_refused_to_others(http, tenant, other_tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    set_up_totp(http, token, code_clock)
    _, plain = staff_member(tenant)
    status, body = http.post(f"/v1/people/{person.person_id}/reset-mfa", token=plain)
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = http.post(f"/v1/people/{person.person_id}/reset-mfa", token=other_tenant.admin_token)
    assert status == 404
    # accounts:manage alone cannot reset an admin's factor (they hold more)
    manager, manager_token = staff_member(tenant, kind="employee", permissions=["accounts:manage"])
    admin_id = http.get("/v1/staff/me", token=tenant.admin_token)[1]["person_id"]
    status, body = http.post(f"/v1/people/{admin_id}/reset-mfa", token=manager_token)
    assert status == 403 and body["error"]["code"] == "cannot_manage"
    assert first_step(tenant, person.username, PASSWORD)  # still asked for
