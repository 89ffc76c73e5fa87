"""The second step of a staff sign-in cannot be skipped, guessed or borrowed (issue 18): wrong codes lock the
account like wrong passwords; an mfa_token is single use, bound to its person and password step, and useless in
another business; the forced change comes after the factor; unknown users are answered as before."""
from mfa_helpers import code, code_clock, first_step, second_step, set_up_totp  # noqa: F401
from staff_helpers import PASSWORD, staff_member

from chalicelib.core.models import Person


def wrong_for(secret, at):
    right = code(secret, at)
    return next(c for c in ("000000", "111111", "222222") if c != right and c != code(secret, at - 30)
                and c != code(secret, at + 30))


def test_wrong_codes_lock_the_account_and_a_right_password_does_not_unlock_it(app, http, tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    secret, _ = set_up_totp(http, token, code_clock)
    wrong = wrong_for(secret, code_clock())
    mfa_token = first_step(tenant, person.username, PASSWORD)
    for _ in range(2):
        assert second_step(http, mfa_token, wrong)[1]["error"]["code"] == "invalid_code"
    # a right password between wrong codes does not wipe the count (else guessing could go on for ever)
    mfa_token = first_step(tenant, person.username, PASSWORD)
    for _ in range(3):
        assert second_step(http, mfa_token, wrong)[1]["error"]["code"] == "invalid_code"
    status, body = second_step(http, mfa_token, code(secret, code_clock()))
    assert status == 423 and body["error"]["code"] == "account_locked" and body["error"]["retry_after"] > 0
    status, body = tenant.sign_in(person.username, PASSWORD)
    assert status == 423  # the password step is locked as well: it is one lockout
    from chalicelib.core.models import AuditEvent
    actions = [e.action for e in AuditEvent.query(tenant.id)]
    assert actions.count("staff.mfa_failed") == 5 and "staff.locked" in actions


def test_no_session_without_a_valid_mfa_token(http, tenant, other_tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    secret, _ = set_up_totp(http, token, code_clock)
    right = code(secret, code_clock())
    assert http.post("/v1/staff/sign-in/mfa", {"code": right})[0] == 400  # no token at all
    for forged in ("x" * 43, "", "a" * 200, token):  # unknown, empty, over-long, an access token instead
        status, body = second_step(http, forged, right)
        assert status in (400, 401) and "access_token" not in body, (forged[:8], body)
        if status == 401:
            assert body["error"]["code"] == "mfa_token_invalid"
    # the right token and code, but named with another business: refused outright
    mfa_token = first_step(tenant, person.username, PASSWORD)
    status, body = second_step(http, mfa_token, right, tenant_id=other_tenant.id)
    assert status == 401 and body["error"]["code"] == "mfa_token_invalid"
    assert second_step(http, mfa_token, right, tenant_id=tenant.id)[0] == 200
    code_clock.next()
    # used once: never again, even with a new right code
    status, body = second_step(http, mfa_token, code(secret, code_clock()))
    assert status == 401 and body["error"]["code"] == "mfa_token_invalid"


def test_an_mfa_token_of_another_tenants_person_takes_only_that_persons_codes(http, tenant, other_tenant,
                                                                               code_clock):
    """A factor of one tenant's person never signs in another's: same username and password in two businesses."""
    mine, my_token = staff_member(tenant, kind="employee")
    theirs, their_token = staff_member(other_tenant, kind="employee", username=mine.username)
    my_secret, _ = set_up_totp(http, my_token, code_clock)
    their_secret, _ = set_up_totp(http, their_token, code_clock)
    their_step = first_step(other_tenant, theirs.username, PASSWORD)
    status, body = second_step(http, their_step, code(my_secret, code_clock()))
    assert status == 401 and body["error"]["code"] == "invalid_code"
    status, session = second_step(http, first_step(tenant, mine.username, PASSWORD), code(my_secret, code_clock()))
    assert status == 200
    from chalicelib.core.security import keys
    assert keys.verify(session["access_token"])["tid"] == tenant.id


def test_an_mfa_token_dies_with_the_password_it_followed(http, tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    secret, _ = set_up_totp(http, token, code_clock)
    mfa_token = first_step(tenant, person.username, PASSWORD)
    admin = tenant.admin_token
    assert http.post(f"/v1/people/{person.person_id}/temporary-password", {"password": "Temp-Pass-1234x"},
                     token=admin)[0] == 201
    status, body = second_step(http, mfa_token, code(secret, code_clock()))
    assert status == 401 and body["error"]["code"] == "mfa_token_invalid"


def test_the_forced_change_comes_after_the_factor(http, tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    secret, _ = set_up_totp(http, token, code_clock)
    admin = tenant.admin_token
    assert http.post(f"/v1/people/{person.person_id}/temporary-password", {"password": "Temp-Pass-1234x"},
                     token=admin)[0] == 201
    status, body = tenant.sign_in(person.username, "Temp-Pass-1234x")
    assert status == 401 and body["error"]["code"] == "mfa_required" and "change_token" not in body["error"]
    status, body = second_step(http, body["error"]["mfa_token"], code(secret, code_clock()))
    assert status == 403 and body["error"]["code"] == "password_change_required" and body["error"]["change_token"]
    status, session = http.post("/v1/staff/change-password", {"new_password": "Chosen-Pass-98765"},
                                token=body["error"]["change_token"])
    assert status == 200 and http.get("/v1/staff/me", token=session["access_token"])[0] == 200


def test_answers_for_wrong_passwords_and_unknown_users_are_as_before(http, tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    set_up_totp(http, token, code_clock)
    for username, password in ((person.username, "Wrong-Pass-12345"), ("nobody-here", PASSWORD)):
        status, body = tenant.sign_in(username, password)
        assert status == 401 and body["error"]["code"] == "invalid_credentials" and set(body["error"]) == \
            {"code", "message"}


def test_the_factor_is_asked_even_when_the_policy_is_off(http, tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    secret, _ = set_up_totp(http, token, code_clock)
    assert http.call("PUT", "/v1/staff/mfa/policy", {"staff_mfa": "off"}, token=tenant.admin_token)[0] == 200
    assert first_step(tenant, person.username, PASSWORD)
    status, body = http.post("/v1/staff/mfa/totp", token=token)
    assert status == 403 and body["error"]["code"] == "mfa_off"
    assert Person.get(tenant.id, person.person_id).totp_secret


def test_the_hosted_change_page_asks_for_the_factor_before_the_change(client, http, tenant, code_clock):
    """/staff/change-password signs in with a password to change it; a person with a factor is sent to the staff
    sign-in's factor step first, and only a right code gives the change token (a change ends in a session)."""
    from console_helpers import visible_text
    from mfa_helpers import code
    from test_pages import Browserless
    person, token = staff_member(tenant, kind="employee")
    secret, _ = set_up_totp(http, token, code_clock)
    browser = Browserless(client)
    r = browser.post(f"/staff/change-password?tenant_id={tenant.id}",
                     {"step": "sign_in", "username": person.username, "password": PASSWORD})
    assert r.status_code == 303 and r.headers["Location"].endswith("/staff/sign-in/factor")
    assert not any(name.endswith("pa_change") for name in browser.cookies)
    r = browser.post("/staff/sign-in/factor", {"code": "000000" if code(secret, code_clock()) != "000000" else "1"})
    assert r.status_code == 400 and "not right" in visible_text(r.body.decode())
    assert not any(name.endswith("pa_change") for name in browser.cookies)
    r = browser.post("/staff/sign-in/factor", {"code": code(secret, code_clock())})
    assert r.status_code == 303 and r.headers["Location"].endswith("/staff/change-password")
    assert any(name.endswith("pa_change") for name in browser.cookies)
