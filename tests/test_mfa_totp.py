"""The authenticator app (issue 18): set up with a real pyotp code, sealed at rest, asked for at sign-in, a code
accepted once (replay, and two uses of one code at the same instant), removed, and the person told each time."""
import json

import pyotp
from conftest import drain, outbox_for
from mfa_helpers import code, code_clock, first_step, second_step, secret_of, set_up_totp  # noqa: F401
from staff_helpers import PASSWORD, run_together, staff_member, threaded_app

from chalicelib.core.models import Person


def test_set_up_with_a_real_code_then_sign_in_with_the_factor(app, http, tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    status, started = http.post("/v1/staff/mfa/totp", token=token)
    assert status == 200, started
    parsed = pyotp.parse_uri(started["otpauth_uri"])
    assert parsed.digits == 6 and parsed.interval == 30 and started["otpauth_uri"].startswith("otpauth://totp/")
    assert "issuer=Test%20Plumbing" in started["otpauth_uri"] and person.username in started["otpauth_uri"]
    svg = started["qr_svg"]
    assert svg.startswith("<svg ") and 'role="img"' in svg and "aria-label=" in svg
    assert "style" not in svg and "<script" not in svg and "on" + "load" not in svg  # attributes only: fits the CSP
    secret = secret_of(started)
    assert http.get("/v1/staff/mfa", token=token)[1]["methods"] == []  # not a factor until confirmed
    wrong = "000000" if code(secret, code_clock()) != "000000" else "111111"
    status, body = http.post("/v1/staff/mfa/totp/confirm", {"code": wrong}, token=token)
    assert status == 400 and body["error"]["code"] == "invalid_code"
    status, confirmed = http.post("/v1/staff/mfa/totp/confirm", {"code": code(secret, code_clock())}, token=token)
    assert status == 200, confirmed
    assert confirmed["factor"] == "totp" and len(confirmed["recovery_codes"]) == 10
    assert "access_token" not in confirmed  # a signed-in person already has their session
    assert http.get("/v1/staff/mfa", token=token)[1] == {"methods": ["totp", "recovery_code"],
                                                         "recovery_codes_left": 10, "policy": "optional",
                                                         "required": False}
    # sealed at rest: neither the secret nor its grouped text form is in the item
    raw = json.dumps(Person.get(tenant.id, person.person_id).serialize())
    assert secret not in raw and started["secret"] not in raw
    assert Person.get(tenant.id, person.person_id).totp_secret.startswith("v1.")
    # the password alone no longer signs in; the code does, and the session is a normal one
    mfa_token = first_step(tenant, person.username, PASSWORD)
    status, body = tenant.sign_in(person.username, PASSWORD)
    assert "access_token" not in body["error"] and "change_token" not in body["error"]
    assert body["error"]["methods"] == ["totp", "recovery_code"] and body["error"]["expires_in"] == 300
    code_clock.next()
    status, session = second_step(http, mfa_token, code(secret, code_clock()))
    assert status == 200, session
    assert http.get("/v1/staff/me", token=session["access_token"])[0] == 200


def test_a_code_is_refused_a_second_time(app, http, tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    secret, _ = set_up_totp(http, token, code_clock)
    used = code(secret, code_clock())
    assert second_step(http, first_step(tenant, person.username, PASSWORD), used)[0] == 200
    status, body = second_step(http, first_step(tenant, person.username, PASSWORD), used)
    assert status == 401 and body["error"]["code"] == "invalid_code"
    # nor the code of the step before it (already passed), while the next step's is taken
    before = code(secret, code_clock() - 30)
    assert second_step(http, first_step(tenant, person.username, PASSWORD), before)[0] == 401
    assert second_step(http, first_step(tenant, person.username, PASSWORD), code(secret, code_clock() + 30))[0] \
        == 200


def test_two_uses_of_one_code_at_once_let_exactly_one_through(app, http, tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    secret, _ = set_up_totp(http, token, code_clock)
    tokens = [first_step(tenant, person.username, PASSWORD) for _ in range(4)]
    same = code(secret, code_clock())
    with threaded_app(app):
        results = run_together(4, lambda i: second_step(http, tokens[i], same))
    statuses = sorted(r[0] for r in results)
    assert statuses == [200, 401, 401, 401], results


def test_a_setup_is_confirmed_once_and_expires(app, http, tenant, code_clock, monkeypatch):
    person, token = staff_member(tenant, kind="employee")
    status, started = http.post("/v1/staff/mfa/totp", token=token)
    secret = secret_of(started)
    from chalicelib.flows.staff import mfa_totp
    real_now = mfa_totp.now
    monkeypatch.setattr(mfa_totp, "now", lambda: real_now() + 11 * 60)
    status, body = http.post("/v1/staff/mfa/totp/confirm", {"code": code(secret, code_clock())}, token=token)
    assert status == 410 and body["error"]["code"] == "totp_setup_expired"
    monkeypatch.setattr(mfa_totp, "now", real_now)
    assert http.post("/v1/staff/mfa/totp/confirm", {"code": code(secret, code_clock())}, token=token)[0] == 200
    status, body = http.post("/v1/staff/mfa/totp/confirm", {"code": code(secret, code_clock())}, token=token)
    assert status == 410  # nothing pending any more


def test_a_new_app_replaces_the_old_one(app, http, tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    old, first = set_up_totp(http, token, code_clock)
    new, second = set_up_totp(http, token, code_clock)
    assert old != new and "recovery_codes" not in second  # the recovery codes stay as they were
    assert second_step(http, first_step(tenant, person.username, PASSWORD), code(old, code_clock()))[0] == 401
    assert second_step(http, first_step(tenant, person.username, PASSWORD), code(new, code_clock()))[0] == 200


def test_removing_needs_a_recent_sign_in_and_tells_the_person(app, http, tenant, code_clock, monkeypatch):
    person, token = staff_member(tenant, kind="employee")
    set_up_totp(http, token, code_clock)
    drain(app)
    added = [m for m in outbox_for(person.email) if "sign-in method" in m["body"]]
    assert added and "A new sign-in method was added to your account" in added[-1]["body"]
    from chalicelib.flows.staff import mfa
    real_now = mfa.now
    monkeypatch.setattr(mfa, "now", lambda: real_now() + 11 * 60)
    status, body = http.call("DELETE", "/v1/staff/mfa/totp", token=token)
    assert status == 403 and body["error"]["code"] == "recent_sign_in_required"
    assert http.post("/v1/staff/mfa/totp", token=token)[1]["error"]["code"] == "recent_sign_in_required"
    monkeypatch.setattr(mfa, "now", real_now)
    assert http.call("DELETE", "/v1/staff/mfa/totp", token=token)[0] == 204
    assert http.get("/v1/staff/mfa", token=token)[1]["methods"] == []
    assert tenant.sign_in(person.username, PASSWORD)[0] == 200  # the password alone again
    drain(app)
    removed = [m for m in outbox_for(person.email) if "sign-in method was removed" in m["body"]]
    assert removed and removed[-1]["subject"].startswith("A sign-in method of your")


def test_a_technician_with_only_a_mobile_is_told_by_sms(app, http, tenant, code_clock):
    person, token = staff_member(tenant, kind="technician")
    assert person.email is None and person.mobile
    set_up_totp(http, token, code_clock)
    drain(app)
    texts = [m for m in outbox_for(person.mobile) if "sign-in method was added" in m["body"]]
    assert texts and texts[-1]["channel"] == "sms"


def test_a_sealed_secret_does_not_open_on_another_person(app, http, tenant, other_tenant, code_clock):
    """A factor of one tenant's person never signs in another's: the secret is sealed for its owner."""
    person, token = staff_member(tenant, kind="employee")
    secret, _ = set_up_totp(http, token, code_clock)
    other, _ = staff_member(other_tenant, kind="employee", username=person.username)
    sealed_secret = Person.get(tenant.id, person.person_id).totp_secret
    Person(other_tenant.id, other.person_id).update(actions=[Person.totp_secret.set(sealed_secret)],
                                                    add_version_condition=False)
    status, body = second_step(http, first_step(other_tenant, other.username, PASSWORD), code(secret, code_clock()))
    assert status == 401 and body["error"]["code"] == "invalid_code"


def test_bad_input_is_a_clear_refusal(http, tenant):
    _, token = staff_member(tenant, kind="employee")
    for body in ({}, {"code": ""}, {"code": "1" * 40}, {"code": 123456}, {"code": "12\n3456"}):
        status, answer = http.post("/v1/staff/mfa/totp/confirm", body, token=token)
        assert status in (400, 410) and answer["error"]["code"] in ("invalid_request", "totp_setup_expired")
    assert http.post("/v1/staff/mfa/totp")[0] == 401
