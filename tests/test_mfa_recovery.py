"""Recovery codes (issue 18): ten single-use codes shown once and stored hashed; each signs in once (also when
used twice at the same instant); a new set kills the old one."""
import json

from conftest import drain, outbox_for
from mfa_helpers import code, code_clock, first_step, second_step, set_up_totp  # noqa: F401
from staff_helpers import PASSWORD, run_together, staff_member, threaded_app

from chalicelib.core.models import Person


def test_a_recovery_code_signs_in_once_and_is_kept_only_hashed(app, http, tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    _, confirmed = set_up_totp(http, token, code_clock)
    codes = confirmed["recovery_codes"]
    assert len(set(codes)) == 10 and all(len(c) == 11 and c[5] == "-" for c in codes)
    raw = json.dumps(Person.get(tenant.id, person.person_id).serialize())
    assert not any(c in raw or c.replace("-", "") in raw for c in codes)
    status, session = second_step(http, first_step(tenant, person.username, PASSWORD), codes[0])
    assert status == 200 and http.get("/v1/staff/me", token=session["access_token"])[0] == 200
    status, body = second_step(http, first_step(tenant, person.username, PASSWORD), codes[0])
    assert status == 401 and body["error"]["code"] == "invalid_code"
    # typed as people type: upper case, spaces instead of the dash
    typed = codes[1].upper().replace("-", " ")
    assert second_step(http, first_step(tenant, person.username, PASSWORD), typed)[0] == 200
    assert http.get("/v1/staff/mfa", token=session["access_token"])[1]["recovery_codes_left"] == 8


def test_concurrent_uses_of_one_recovery_code_let_exactly_one_through(app, http, tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    _, confirmed = set_up_totp(http, token, code_clock)
    tokens = [first_step(tenant, person.username, PASSWORD) for _ in range(4)]
    with threaded_app(app):
        results = run_together(4, lambda i: second_step(http, tokens[i], confirmed["recovery_codes"][3]))
    assert sorted(r[0] for r in results) == [200, 401, 401, 401], results


def test_a_new_set_kills_the_old_one(app, http, tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    _, confirmed = set_up_totp(http, token, code_clock)
    status, fresh = http.post("/v1/staff/mfa/recovery-codes", token=token)
    assert status == 201 and len(fresh["recovery_codes"]) == 10
    assert not set(fresh["recovery_codes"]) & set(confirmed["recovery_codes"])
    assert second_step(http, first_step(tenant, person.username, PASSWORD), confirmed["recovery_codes"][0])[0] \
        == 401
    assert second_step(http, first_step(tenant, person.username, PASSWORD), fresh["recovery_codes"][0])[0] == 200
    drain(app)
    assert any("New recovery codes were made" in m["body"] for m in outbox_for(person.email))


def test_recovery_codes_need_a_factor_and_a_recent_sign_in(app, http, tenant, code_clock, monkeypatch):
    person, token = staff_member(tenant, kind="employee")
    status, body = http.post("/v1/staff/mfa/recovery-codes", token=token)
    assert status == 409 and body["error"]["code"] == "no_second_factor"
    set_up_totp(http, token, code_clock)
    from chalicelib.flows.staff import mfa
    real_now = mfa.now
    monkeypatch.setattr(mfa, "now", lambda: real_now() + 11 * 60)
    status, body = http.post("/v1/staff/mfa/recovery-codes", token=token)
    assert status == 403 and body["error"]["code"] == "recent_sign_in_required"


def test_recovery_codes_go_with_the_last_factor(app, http, tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    _, confirmed = set_up_totp(http, token, code_clock)
    assert http.call("DELETE", "/v1/staff/mfa/totp", token=token)[0] == 204
    assert Person.get(tenant.id, person.person_id).recovery_codes is None
    assert tenant.sign_in(person.username, PASSWORD)[0] == 200  # no second step: nothing asks for the code


def test_a_recovery_code_of_one_person_is_nobody_elses(app, http, tenant, other_tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    _, mine = set_up_totp(http, token, code_clock)
    other, other_token = staff_member(other_tenant, kind="employee", username=person.username)
    set_up_totp(http, other_token, code_clock)
    # the stored hashes copied onto the other tenant's person do not take this person's codes either
    hashes = Person.get(tenant.id, person.person_id).recovery_codes
    Person(other_tenant.id, other.person_id).update(actions=[Person.recovery_codes.set(hashes)],
                                                    add_version_condition=False)
    status, body = second_step(http, first_step(other_tenant, other.username, PASSWORD), mine["recovery_codes"][0])
    assert status == 401 and body["error"]["code"] == "invalid_code"
