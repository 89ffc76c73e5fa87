"""The business's policy `staff_mfa` (issue 18) and where it requires a factor, the setup-only state: right after
the password a person without one gets a token that can set up an authenticator app and do nothing else."""
import pytest
from conftest import drain, links_to
from mfa_helpers import code, code_clock, first_step, secret_of  # noqa: F401
from staff_helpers import PASSWORD, staff_member, token_of, unique_email


def set_policy(http, tenant, value):
    status, body = http.call("PUT", "/v1/staff/mfa/policy", {"staff_mfa": value}, token=tenant.admin_token)
    assert status == 200 and body == {"staff_mfa": value}, body


def setup_token(tenant, username):
    status, body = tenant.sign_in(username, PASSWORD)
    assert status == 403 and body["error"]["code"] == "mfa_setup_required", body
    assert "access_token" not in body["error"] and body["error"]["methods"] == ["totp", "passkey"]
    return body["error"]["setup_token"]


def test_read_and_set_the_policy(http, tenant):
    admin = tenant.admin_token
    assert http.get("/v1/staff/mfa/policy", token=admin) == (200, {"staff_mfa": "optional"})
    set_policy(http, tenant, "required_for_admins")
    assert http.get("/v1/staff/mfa/policy", token=admin)[1] == {"staff_mfa": "required_for_admins"}
    status, body = http.call("PUT", "/v1/staff/mfa/policy", {"staff_mfa": "sometimes"}, token=admin)
    assert status == 400 and body["error"]["code"] == "invalid_request"
    _, staff = staff_member(tenant)
    assert http.get("/v1/staff/mfa/policy", token=staff)[0] == 403
    assert http.call("PUT", "/v1/staff/mfa/policy", {"staff_mfa": "off"}, token=staff)[0] == 403
    from chalicelib.core.models import AuditEvent
    assert any(e.action == "staff.mfa_policy_changed" for e in AuditEvent.query(tenant.id))


def test_required_for_all_sets_up_before_anything_else(app, http, tenant, code_clock):
    person, _ = staff_member(tenant)
    set_policy(http, tenant, "required_for_all")
    setup = setup_token(tenant, person.username)
    # the setup token opens nothing but the setup routes
    for method, path in (("GET", "/v1/staff/me"), ("GET", "/v1/staff/sessions"), ("POST", "/v1/staff/sign-out"),
                         ("POST", "/v1/staff/mfa/recovery-codes"), ("DELETE", "/v1/staff/mfa/totp"),
                         ("POST", "/v1/staff/change-password"), ("GET", "/v1/people")):
        status, body = http.call(method, path, body={}, token=setup)
        assert status in (400, 403) and body["error"]["code"] in ("forbidden", "invalid_request"), (path, body)
    status, started = http.post("/v1/staff/mfa/totp", token=setup)
    assert status == 200
    secret = secret_of(started)
    status, done = http.post("/v1/staff/mfa/totp/confirm", {"code": code(secret, code_clock())}, token=setup)
    assert status == 200 and done["access_token"] and len(done["recovery_codes"]) == 10
    assert http.get("/v1/staff/me", token=done["access_token"])[0] == 200
    # used: the setup token does nothing more, and the next sign-in asks for the factor
    status, body = http.post("/v1/staff/mfa/totp", token=setup)
    assert status == 401 and body["error"]["code"] == "setup_token_used"
    assert first_step(tenant, person.username, PASSWORD)


def test_required_for_admins_leaves_plain_staff_alone(http, tenant):
    plain, _ = staff_member(tenant)
    office, _ = staff_member(tenant, kind="employee", role="office")
    set_policy(http, tenant, "required_for_admins")
    assert tenant.sign_in(plain.username, PASSWORD)[0] == 200
    setup_token(tenant, office.username)
    status, body = tenant.sign_in()
    assert status == 403 and body["error"]["code"] == "mfa_setup_required"


def test_a_required_factor_cannot_be_removed_only_replaced(http, tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    from mfa_helpers import set_up_totp
    set_up_totp(http, token, code_clock)
    set_policy(http, tenant, "required_for_all")
    status, body = http.call("DELETE", "/v1/staff/mfa/totp", token=token)
    assert status == 409 and body["error"]["code"] == "mfa_required_by_policy"
    set_up_totp(http, token, code_clock)  # replacing it is fine


def test_a_setup_token_dies_with_a_new_password(http, tenant):
    person, _ = staff_member(tenant)
    set_policy(http, tenant, "required_for_all")
    setup = setup_token(tenant, person.username)
    from chalicelib.flows.staff import people, staff_signin
    staff_signin.set_password(people.get(tenant.id, person.person_id), "Another-Pass-2468")
    status, body = http.post("/v1/staff/mfa/totp", token=setup)
    assert status == 401 and body["error"]["code"] == "setup_token_used"


@pytest.mark.parametrize("how", ["invitation", "forced_change"])
def test_no_session_before_the_setup_after_an_invitation_or_a_forced_change(app, http, tenant, how):
    admin = tenant.admin_token
    email = unique_email("employee")
    status, created = http.post("/v1/people", {"kind": "employee", "name": "New Hire", "email": email}, token=admin)
    pid = created["person_id"]
    if how == "invitation":
        assert http.post(f"/v1/people/{pid}/invite", {}, token=admin)[0] == 202
    set_policy(http, tenant, "required_for_all")
    if how == "invitation":
        drain(app)
        link = token_of(links_to(email, "/staff/accept-invite?token=")[-1])
        status, body = http.post("/v1/staff/accept-invite", {"token": link, "password": PASSWORD})
    else:
        from chalicelib.flows.staff import people, staff_signin
        staff_signin.set_password(people.get(tenant.id, pid), "Given-Pass-13579", new_username=f"hire-{pid[:6]}",
                                  must_change=True)
        status, body = tenant.sign_in(f"hire-{pid[:6]}", "Given-Pass-13579")
        assert status == 403 and body["error"]["code"] == "password_change_required"
        status, body = http.post("/v1/staff/change-password", {"new_password": PASSWORD,
                                                               "new_username": f"mine-{pid[:6]}"},
                                 token=body["error"]["change_token"])
    assert status == 403 and body["error"]["code"] == "mfa_setup_required" and "access_token" not in body["error"]
