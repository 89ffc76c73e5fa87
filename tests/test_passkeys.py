"""Passkeys through the API (issue 18), with a software authenticator whose bytes are real (passkey_helpers):
several per person, named, renamed and removed; as the second factor after a password; as a sign-in without a
password, discoverable or username first. Attacks: a replayed or old challenge, a challenge of another purpose or
person, another business's passkey, a removed passkey, a counter gone backwards, wrong answers towards the lockout,
unknown users answered as users without passkeys, the recent sign-in, the policy and an admin's reset."""
import pytest
from conftest import drain, outbox_for
from mfa_helpers import code, code_clock, first_step, second_step, set_up_totp  # noqa: F401
from passkey_helpers import SoftAuthenticator, register, sign_in_without_password
from staff_helpers import PASSWORD, staff_member

from chalicelib.core.models import AuditEvent, Claim, Person
from chalicelib.core.security import keys


def me(http, token):
    return http.get("/v1/staff/me", token=token)[1]


def amr(body):
    return keys.verify(body["access_token"])["amr"]


# --- registering, naming, listing, removing ----------------------------------------------------------------------

def test_several_passkeys_are_registered_named_renamed_and_removed(app, http, tenant):
    person, token = staff_member(tenant, kind="employee")
    _, first = register(http, token, name="Work phone")
    assert first["passkey"]["name"] == "Work phone" and len(first["recovery_codes"]) == 10  # the first factor
    _, second = register(http, token)
    assert second["passkey"]["name"] == "Passkey 2" and "recovery_codes" not in second  # shown once, at the first
    items = http.get("/v1/staff/passkeys", token=token)[1]["items"]
    assert [p["name"] for p in items] == ["Work phone", "Passkey 2"] and all(p.get("last_used_at") is None for p in items)
    assert http.get("/v1/staff/mfa", token=token)[1]["methods"] == ["passkey", "recovery_code"]

    pid = second["passkey"]["id"]
    status, renamed = http.patch(f"/v1/staff/passkeys/{pid}", {"name": "Laptop"}, token=token)
    assert status == 200 and renamed["name"] == "Laptop" and renamed["id"] == pid
    assert http.patch(f"/v1/staff/passkeys/{pid}", {"name": "Bad\nname"}, token=token)[0] == 400
    assert http.call("DELETE", f"/v1/staff/passkeys/{pid}", token=token)[0] == 204
    assert [p["name"] for p in http.get("/v1/staff/passkeys", token=token)[1]["items"]] == ["Work phone"]
    assert http.call("DELETE", f"/v1/staff/passkeys/{pid}", token=token)[1]["error"]["code"] == "passkey_not_found"
    assert http.patch(f"/v1/staff/passkeys/{pid}", {"name": "x"}, token=token)[0] == 404

    actions = [e.action for e in AuditEvent.query(tenant.id) if e.target == person.person_id]
    assert actions.count("staff.mfa_passkey_added") == 2 and "staff.mfa_passkey_renamed" in actions \
        and "staff.mfa_passkey_removed" in actions
    drain(app)
    bodies = [m["body"] for m in outbox_for(person.email)]
    assert sum("A new sign-in method was added to your account: a passkey." in b for b in bodies) == 2
    assert any("A sign-in method was removed from your account: a passkey." in b for b in bodies)
    status, people = http.get(f"/v1/people/{person.person_id}", token=tenant.admin_token)
    assert people["mfa"] is True


def test_the_options_are_for_this_site_and_this_person(http, tenant):
    person, token = staff_member(tenant, kind="employee")
    device, _ = register(http, token)
    options = http.post("/v1/staff/passkeys/options", token=token)[1]["options"]
    assert options["rp"] == {"id": "portal.test", "name": "Test Plumbing"}
    assert options["user"]["name"] == person.username and options["user"]["displayName"] == person.name
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["attestation"] == "none"
    assert [c["id"] for c in options["excludeCredentials"]] == [device.id]  # a device says it has one already
    assert {p["alg"] for p in options["pubKeyCredParams"]} == {-7, -8, -257}


def test_a_registration_is_checked(http, tenant, other_tenant):
    _, token = staff_member(tenant, kind="employee")
    device = SoftAuthenticator()
    options = http.post("/v1/staff/passkeys/options", token=token)[1]["options"]
    # another site's origin, a user not verified, a broken attestation: refused, and nothing kept
    for made in (lambda o: device.create(o, origin="https://evil.example"), lambda o: device.create(o, uv=False)):
        status, body = http.post("/v1/staff/passkeys", {"credential": made(options)}, token=token)
        assert status == 400 and body["error"]["code"] == "passkey_invalid", body
        options = http.post("/v1/staff/passkeys/options", token=token)[1]["options"]
    broken = device.create(options)
    broken["response"]["attestationObject"] = broken["response"]["attestationObject"][:-8]
    status, body = http.post("/v1/staff/passkeys", {"credential": broken}, token=token)
    assert status == 400 and body["error"]["code"] == "passkey_invalid" and body["error"]["field"] == "credential"
    assert http.get("/v1/staff/passkeys", token=token)[1]["items"] == []
    # the challenge was spent by that try: the same answer again is a used challenge
    status, body = http.post("/v1/staff/passkeys", {"credential": device.create(options)}, token=token)
    assert status == 410 and body["error"]["code"] == "passkey_expired"
    # someone else's challenge (here: another business's person) does not register a passkey for this person
    _, stranger = staff_member(other_tenant, kind="employee")
    theirs = http.post("/v1/staff/passkeys/options", token=stranger)[1]["options"]
    status, body = http.post("/v1/staff/passkeys", {"credential": device.create(theirs)}, token=token)
    assert status == 410 and body["error"]["code"] == "passkey_expired"
    # not JSON of a credential at all: the envelope, never a 500
    for bad in ({"credential": {"id": "x"}}, {"credential": "nope"}, {}, {"credential": device.create(options),
                                                                          "name": ""}):
        assert http.post("/v1/staff/passkeys", bad, token=token)[0] == 400


def test_one_credential_is_one_persons(http, tenant, other_tenant):
    _, token = staff_member(tenant, kind="employee")
    device, _ = register(http, token)
    again = http.post("/v1/staff/passkeys/options", token=token)[1]["options"]
    status, body = http.post("/v1/staff/passkeys", {"credential": device.create(again)}, token=token)
    assert status == 409 and body["error"]["code"] == "passkey_exists"
    _, stranger = staff_member(other_tenant, kind="employee")
    theirs = http.post("/v1/staff/passkeys/options", token=stranger)[1]["options"]
    status, body = http.post("/v1/staff/passkeys", {"credential": device.create(theirs)}, token=stranger)
    assert status == 409 and body["error"]["code"] == "passkey_exists"


def test_another_persons_passkey_id_is_not_found(http, tenant, other_tenant):
    _, token = staff_member(tenant, kind="employee")
    _, added = register(http, token)
    pid = added["passkey"]["id"]
    for owner in (tenant, other_tenant):
        _, someone = staff_member(owner, kind="employee")
        assert http.call("DELETE", f"/v1/staff/passkeys/{pid}", token=someone)[0] == 404
        assert http.patch(f"/v1/staff/passkeys/{pid}", {"name": "Mine now"}, token=someone)[0] == 404
    assert http.get("/v1/staff/passkeys", token=token)[1]["items"][0]["name"] == "Passkey 1"


def test_at_most_ten(http, tenant):
    _, token = staff_member(tenant, kind="employee")
    for _ in range(10):
        register(http, token)
    status, body = http.post("/v1/staff/passkeys/options", token=token)
    assert status == 409 and body["error"]["code"] == "too_many_passkeys"


def test_adding_and_removing_need_a_recent_sign_in(http, tenant, monkeypatch):
    from chalicelib.flows.staff import mfa
    _, token = staff_member(tenant, kind="employee")
    _, added = register(http, token)
    options = http.post("/v1/staff/passkeys/options", token=token)[1]["options"]
    real_now = mfa.now
    monkeypatch.setattr(mfa, "now", lambda: real_now() + 11 * 60)
    assert http.post("/v1/staff/passkeys/options", token=token)[1]["error"]["code"] == "recent_sign_in_required"
    status, body = http.post("/v1/staff/passkeys", {"credential": SoftAuthenticator().create(options)}, token=token)
    assert status == 403 and body["error"]["code"] == "recent_sign_in_required"
    status, body = http.call("DELETE", f"/v1/staff/passkeys/{added['passkey']['id']}", token=token)
    assert status == 403 and body["error"]["code"] == "recent_sign_in_required"
    # renaming changes nothing about how one signs in
    assert http.patch(f"/v1/staff/passkeys/{added['passkey']['id']}", {"name": "Old phone"}, token=token)[0] == 200


def test_the_policy_off_refuses_new_passkeys(http, tenant):
    _, token = staff_member(tenant, kind="employee")
    assert http.call("PUT", "/v1/staff/mfa/policy", {"staff_mfa": "off"}, token=tenant.admin_token)[0] == 200
    status, body = http.post("/v1/staff/passkeys/options", token=token)
    assert status == 403 and body["error"]["code"] == "mfa_off"


# --- the second factor -------------------------------------------------------------------------------------------

def test_a_passkey_is_the_second_factor_after_the_password(http, tenant, monkeypatch):
    person, token = staff_member(tenant, kind="employee")
    device, _ = register(http, token)
    status, body = tenant.sign_in(person.username, PASSWORD)
    error = body["error"]
    assert status == 401 and error["code"] == "mfa_required" and error["methods"] == ["passkey", "recovery_code"]
    options = error["passkey_options"]
    assert options["rpId"] == "portal.test" and [c["id"] for c in options["allowCredentials"]] == [device.id]
    status, signed_in = http.post("/v1/staff/sign-in/mfa", {"mfa_token": error["mfa_token"],
                                                            "passkey": device.get(options)})
    assert status == 200, signed_in
    assert amr(signed_in) == ["pwd", "hwk"] and me(http, signed_in["access_token"])["person_id"] == person.person_id
    item = http.get("/v1/staff/passkeys", token=token)[1]["items"][0]
    assert item["last_used_at"] is not None
    # the token was spent: a second answer (a new challenge for it included) gets nothing
    assert http.post("/v1/staff/sign-in/mfa/passkey-options", {"mfa_token": error["mfa_token"]})[0] == 401
    # a person with a passkey and an app may use either
    from mfa_helpers import CodeClock

    from chalicelib.flows.staff import mfa_totp
    clock = CodeClock()
    monkeypatch.setattr(mfa_totp, "_clock", clock)
    secret, _ = set_up_totp(http, token, clock)
    status, body = tenant.sign_in(person.username, PASSWORD)
    assert body["error"]["methods"] == ["totp", "passkey", "recovery_code"]
    assert second_step(http, body["error"]["mfa_token"], code(secret, clock()))[0] == 200


def test_the_second_step_takes_only_its_own_challenge(http, tenant, other_tenant):
    person, token = staff_member(tenant, kind="employee")
    device, _ = register(http, token)
    mfa_token = first_step(tenant, person.username, PASSWORD)
    other_token = first_step(tenant, person.username, PASSWORD)  # a second sign-in of the same person
    fresh = http.post("/v1/staff/sign-in/mfa/passkey-options", {"mfa_token": mfa_token})[1]["options"]
    # a challenge of the other sign-in, of a registration, of a sign-in without a password: refused
    others = [http.post("/v1/staff/sign-in/mfa/passkey-options", {"mfa_token": other_token})[1]["options"],
              http.post("/v1/staff/passkeys/options", token=token)[1]["options"],
              http.post("/v1/staff/sign-in/passkey/options", {})[1]["options"]]
    for options in others:
        status, body = http.post("/v1/staff/sign-in/mfa", {"mfa_token": mfa_token, "passkey": device.get(options)})
        assert status == 401 and body["error"]["code"] == "passkey_invalid", body
    answer = device.get(fresh)
    assert http.post("/v1/staff/sign-in/mfa", {"mfa_token": mfa_token, "passkey": answer})[0] == 200
    # replayed with the other sign-in's token: its challenge was spent
    status, body = http.post("/v1/staff/sign-in/mfa", {"mfa_token": other_token, "passkey": answer})
    assert status == 401 and body["error"]["code"] == "passkey_invalid"
    # a token of another business: refused before anything else when the business is named
    assert http.post("/v1/staff/sign-in/mfa/passkey-options",
                     {"mfa_token": other_token, "tenant_id": other_tenant.id})[1]["error"]["code"] \
        == "mfa_token_invalid"
    # both code and passkey, or neither: a bad request
    assert http.post("/v1/staff/sign-in/mfa", {"mfa_token": other_token})[0] == 400
    assert http.post("/v1/staff/sign-in/mfa", {"mfa_token": other_token, "code": "123456",
                                               "passkey": device.get(fresh)})[0] == 400


def test_a_person_without_passkeys_gets_no_passkey_options(http, tenant, code_clock):
    person, token = staff_member(tenant, kind="employee")
    set_up_totp(http, token, code_clock)
    status, body = tenant.sign_in(person.username, PASSWORD)
    assert "passkey_options" not in body["error"] and "passkey" not in body["error"]["methods"]
    status, body = http.post("/v1/staff/sign-in/mfa/passkey-options", {"mfa_token": body["error"]["mfa_token"]})
    assert status == 409 and body["error"]["code"] == "no_passkey"


def test_another_businesss_passkey_is_not_this_persons_factor(http, tenant, other_tenant):
    person, token = staff_member(tenant, kind="employee")
    register(http, token)
    _, stranger_token = staff_member(other_tenant, kind="employee")
    theirs, _ = register(http, stranger_token)
    status, body = tenant.sign_in(person.username, PASSWORD)
    options = body["error"]["passkey_options"]
    status, body = http.post("/v1/staff/sign-in/mfa", {"mfa_token": body["error"]["mfa_token"],
                                                       "passkey": theirs.get(options)})
    assert status == 401 and body["error"]["code"] == "passkey_invalid"


def test_wrong_answers_count_towards_the_lockout(http, tenant):
    person, token = staff_member(tenant, kind="employee")
    device, _ = register(http, token)
    impostor = SoftAuthenticator()
    impostor.credential_id = device.credential_id  # the right id (it is not secret), the wrong key
    for _ in range(5):
        status, body = tenant.sign_in(person.username, PASSWORD)
        answer = impostor.get(body["error"]["passkey_options"])
        status, body = http.post("/v1/staff/sign-in/mfa", {"mfa_token": body["error"]["mfa_token"],
                                                           "passkey": answer})
        assert status == 401 and body["error"]["code"] == "passkey_invalid"
    status, body = tenant.sign_in(person.username, PASSWORD)
    assert status == 423 and body["error"]["code"] == "account_locked"
    # and without a password: locked too, before the answer is looked at
    assert sign_in_without_password(http, device)[0] == 423
    failed = [e for e in AuditEvent.query(tenant.id) if e.action == "staff.mfa_failed"]
    assert len(failed) == 5 and all(e.details.as_dict().get("method") == "passkey" for e in failed)


def test_a_counter_that_goes_backwards_is_a_clone(http, tenant):
    person, token = staff_member(tenant, kind="employee")
    device, _ = register(http, token)
    status, body = sign_in_without_password(http, device)  # count 1
    device.count = 9
    assert sign_in_without_password(http, device)[0] == 200  # count 10
    started = http.post("/v1/staff/sign-in/passkey/options", {})[1]
    status, body = http.post("/v1/staff/sign-in/passkey", {"credential": device.get(started["options"], count=10)})
    assert status == 401 and body["error"]["code"] == "passkey_invalid"  # the same counter again: a copy
    started = http.post("/v1/staff/sign-in/passkey/options", {})[1]
    status, body = http.post("/v1/staff/sign-in/passkey", {"credential": device.get(started["options"], count=4)})
    assert status == 401 and body["error"]["code"] == "passkey_invalid"
    device.count = 10
    assert sign_in_without_password(http, device)[0] == 200  # the real device, counting on from 10
    failures = [e for e in AuditEvent.query(tenant.id) if e.action == "staff.sign_in_failed"]
    assert len(failures) == 2


# --- without a password ------------------------------------------------------------------------------------------

def test_a_discoverable_passkey_signs_in_without_a_password(http, tenant):
    person, token = staff_member(tenant, kind="employee")
    device, _ = register(http, token)
    status, body = sign_in_without_password(http, device)
    assert status == 200, body
    assert amr(body) == ["hwk", "user", "mfa"] and me(http, body["access_token"])["person_id"] == person.person_id
    from chalicelib.flows.staff import mfa
    assert mfa.multi_factor(amr(body)) and mfa.multi_factor(["pwd", "hwk"]) and not mfa.multi_factor(["pwd"])
    # named: the business and the username (or the email) it belongs to
    assert sign_in_without_password(http, device, tenant_id=tenant.id)[0] == 200
    assert sign_in_without_password(http, device, username=person.username.upper())[0] == 200
    started = http.post("/v1/staff/sign-in/passkey/options", {})[1]
    assert http.post("/v1/staff/sign-in/passkey", {"credential": device.get(started["options"]),
                                                   "username": person.username, "tenant_id": tenant.id})[0] == 200
    actions = [e.action for e in AuditEvent.query(tenant.id) if e.actor == person.person_id]
    assert "staff.passkey_sign_in" in actions and "staff.signed_in" in actions


def test_without_a_password_the_user_must_be_verified(http, tenant):
    _, token = staff_member(tenant, kind="employee")
    device, _ = register(http, token)
    started = http.post("/v1/staff/sign-in/passkey/options", {})[1]
    assert started["options"]["userVerification"] == "required" and started["options"]["allowCredentials"] == []
    status, body = http.post("/v1/staff/sign-in/passkey", {"credential": device.get(started["options"], uv=False)})
    assert status == 401 and body["error"]["code"] == "passkey_invalid"


def test_a_passkey_never_signs_in_to_another_business(http, tenant, other_tenant):
    person, token = staff_member(tenant, kind="employee")
    device, _ = register(http, token)
    status, body = sign_in_without_password(http, device, tenant_id=other_tenant.id)
    assert status == 401 and body["error"]["code"] == "passkey_invalid"
    # the challenge bound to one business and the answer naming the other: refused either way round
    started = http.post("/v1/staff/sign-in/passkey/options", {"tenant_id": other_tenant.id})[1]
    assert http.post("/v1/staff/sign-in/passkey", {"credential": device.get(started["options"]),
                                                   "tenant_id": tenant.id})[0] == 401
    started = http.post("/v1/staff/sign-in/passkey/options", {})[1]
    assert http.post("/v1/staff/sign-in/passkey", {"credential": device.get(started["options"]),
                                                   "tenant_id": other_tenant.id})[0] == 401
    # a colleague's username in another business with the same name: still this passkey's person only
    other_person, _ = staff_member(other_tenant, kind="employee")
    assert sign_in_without_password(http, device, tenant_id=other_tenant.id,
                                    username=other_person.username)[0] == 401
    assert sign_in_without_password(http, device)[0] == 200


def test_username_first_answers_the_same_for_anyone(http, tenant):
    """A username with passkeys, one without, one of nobody: the same options (nothing is read about anyone), and
    the same refusal for an answer that is not theirs."""
    with_passkey, token = staff_member(tenant, kind="employee")
    device, _ = register(http, token)
    without, _ = staff_member(tenant, kind="employee")
    shapes, refusals = [], []
    for username in (with_passkey.username, without.username, "nobody-at-all"):
        status, started = http.post("/v1/staff/sign-in/passkey/options", {"tenant_id": tenant.id,
                                                                          "username": username})
        assert status == 200
        shapes.append(({k: v for k, v in started["options"].items() if k != "challenge"}, sorted(started)))
        if username != with_passkey.username:
            refusals.append(http.post("/v1/staff/sign-in/passkey", {"credential": device.get(started["options"]),
                                                                    "tenant_id": tenant.id, "username": username}))
    assert shapes[0] == shapes[1] == shapes[2] and shapes[0][0]["allowCredentials"] == []
    assert refusals[0] == refusals[1] == (401, {"error": {"code": "passkey_invalid", "message": (
        "This passkey was not accepted. Try again, or sign in with your password.")}})
    # the username bound at the options and another one at the answer: refused as well
    started = http.post("/v1/staff/sign-in/passkey/options", {"username": without.username})[1]
    assert http.post("/v1/staff/sign-in/passkey", {"credential": device.get(started["options"]),
                                                   "username": with_passkey.username})[0] == 401


def test_a_challenge_is_used_once_and_not_for_long(http, tenant, monkeypatch):
    _, token = staff_member(tenant, kind="employee")
    device, _ = register(http, token)
    started = http.post("/v1/staff/sign-in/passkey/options", {})[1]
    answer = device.get(started["options"])
    assert http.post("/v1/staff/sign-in/passkey", {"credential": answer})[0] == 200
    status, body = http.post("/v1/staff/sign-in/passkey", {"credential": answer})  # the same answer again
    assert status == 401 and body["error"]["code"] == "passkey_invalid"
    # an answer to a challenge older than 5 minutes
    from chalicelib.flows.staff import passkey_ceremony
    started = http.post("/v1/staff/sign-in/passkey/options", {})[1]
    real_now = passkey_ceremony.now
    monkeypatch.setattr(passkey_ceremony, "now", lambda: real_now() + 5 * 60 + 1)
    assert http.post("/v1/staff/sign-in/passkey", {"credential": device.get(started["options"])})[0] == 401
    monkeypatch.setattr(passkey_ceremony, "now", real_now)
    # a challenge this service never issued
    made_up = {**started["options"], "challenge": "A" * 43}
    assert http.post("/v1/staff/sign-in/passkey", {"credential": device.get(made_up)})[0] == 401


def test_two_uses_of_one_answer_at_once_give_one_session(app, http, tenant):
    from staff_helpers import run_together, threaded_app
    _, token = staff_member(tenant, kind="employee")
    device, _ = register(http, token)
    answer = device.get(http.post("/v1/staff/sign-in/passkey/options", {})[1]["options"])
    with threaded_app(app):
        statuses = run_together(4, lambda _: http.post("/v1/staff/sign-in/passkey", {"credential": answer})[0])
    assert sorted(statuses) == [200, 401, 401, 401]


def test_a_removed_passkey_no_longer_signs_in(http, tenant):
    person, token = staff_member(tenant, kind="employee")
    device, added = register(http, token)
    keep, _ = register(http, token)
    assert http.call("DELETE", f"/v1/staff/passkeys/{added['passkey']['id']}", token=token)[0] == 204
    status, body = sign_in_without_password(http, device)
    assert status == 401 and body["error"]["code"] == "passkey_invalid"
    status, body = tenant.sign_in(person.username, PASSWORD)
    options = body["error"]["passkey_options"]
    assert [c["id"] for c in options["allowCredentials"]] == [keep.id]
    assert http.post("/v1/staff/sign-in/mfa", {"mfa_token": body["error"]["mfa_token"],
                                               "passkey": device.get(options)})[0] == 401
    assert sign_in_without_password(http, keep)[0] == 200


def test_a_disabled_person_or_business_does_not_sign_in(http, tenant):
    from chalicelib.core import tenants
    from chalicelib.core.models import Tenant
    person, token = staff_member(tenant, kind="employee")
    device, _ = register(http, token)
    Person(tenant.id, person.person_id).update(actions=[Person.account_status.set("disabled")],
                                                      add_version_condition=False)
    assert sign_in_without_password(http, device)[0] == 401
    Person(tenant.id, person.person_id).update(actions=[Person.account_status.set("active")],
                                                      add_version_condition=False)
    Tenant(tenant.id).update(actions=[Tenant.status.set("disabled")])
    tenants.forget(tenant.id)
    assert sign_in_without_password(http, device)[0] == 401


def test_malformed_answers_are_refused_in_words(http, tenant):
    _, token = staff_member(tenant, kind="employee")
    device, _ = register(http, token)
    options = http.post("/v1/staff/sign-in/passkey/options", {})[1]["options"]
    good = device.get(options)
    bad_answers = [
        {**good, "rawId": "!!"}, {**good, "type": "password"}, {**good, "response": {}},
        {**good, "response": {**good["response"], "clientDataJSON": "e30"}},  # {}
        {**good, "response": {**good["response"], "clientDataJSON": "bm90IGpzb24gYXQgYWxs"}},
        {**good, "response": {**good["response"], "signature": "AAAAAAAAAAAA"}},
        {**good, "rawId": "A", "id": "A"},
    ]
    for answer in bad_answers:
        status, body = http.post("/v1/staff/sign-in/passkey", {"credential": answer})
        assert status in (400, 401) and body["error"]["code"] in ("invalid_request", "passkey_invalid"), body


# --- the policy and an admin ------------------------------------------------------------------------------------

def test_a_passkey_satisfies_a_required_policy(http, tenant):
    assert http.call("PUT", "/v1/staff/mfa/policy", {"staff_mfa": "required_for_all"},
                     token=tenant.admin_token)[0] == 200
    from chalicelib.core.security import passwords
    from chalicelib.flows.staff import people
    person = people.create(tenant.id, kind="employee", name="New hire", email="new.hire@crew.example",
                           role="staff", username="new-hire", password_hash=passwords.hash_password(PASSWORD))
    status, body = tenant.sign_in("new-hire", PASSWORD)
    assert status == 403 and body["error"]["code"] == "mfa_setup_required"
    assert body["error"]["methods"] == ["totp", "passkey"]
    setup = body["error"]["setup_token"]
    assert http.get("/v1/staff/passkeys", token=setup)[0] == 403  # the setup token only sets a factor up
    device, added = register(http, setup, name="Phone")
    assert added["access_token"] and len(added["recovery_codes"]) == 10
    assert amr(added) == ["pwd", "hwk"] and me(http, added["access_token"])["person_id"] == person.person_id
    assert http.post("/v1/staff/passkeys/options", token=setup)[0] == 401  # the setup is over: its token is dead
    # from now on the passkey is the factor: asked after the password, or alone
    status, body = tenant.sign_in("new-hire", PASSWORD)
    assert status == 401 and body["error"]["code"] == "mfa_required"
    status, body = sign_in_without_password(http, device)
    assert status == 200
    # the last factor cannot be removed while the policy requires one
    pid = added["passkey"]["id"]
    status, body = http.call("DELETE", f"/v1/staff/passkeys/{pid}", token=body["access_token"])
    assert status == 409 and body["error"]["code"] == "mfa_required_by_policy"


def test_removing_the_app_keeps_the_recovery_codes_while_a_passkey_is_left(http, tenant, code_clock):
    _, token = staff_member(tenant, kind="employee")
    secret, confirmed = set_up_totp(http, token, code_clock)
    register(http, token)
    assert http.call("DELETE", "/v1/staff/mfa/totp", token=token)[0] == 204
    status, body = http.get("/v1/staff/mfa", token=token)
    assert body["methods"] == ["passkey", "recovery_code"] and body["recovery_codes_left"] == 10


def test_the_last_passkey_takes_the_recovery_codes_with_it(http, tenant):
    _, token = staff_member(tenant, kind="employee")
    _, added = register(http, token)
    assert http.call("DELETE", f"/v1/staff/passkeys/{added['passkey']['id']}", token=token)[0] == 204
    status, body = http.get("/v1/staff/mfa", token=token)
    assert body["methods"] == [] and body["recovery_codes_left"] == 0


def test_an_admin_reset_removes_every_passkey(app, http, tenant):
    person, token = staff_member(tenant, kind="employee")
    device, _ = register(http, token)
    register(http, token)
    status, body = http.post(f"/v1/people/{person.person_id}/reset-mfa", token=tenant.admin_token)
    assert status == 200 and body["mfa"] is False
    assert http.get("/v1/staff/passkeys", token=token)[1]["items"] == []
    assert sign_in_without_password(http, device)[0] == 401
    assert tenant.sign_in(person.username, PASSWORD)[0] == 200  # the password alone again
    from chalicelib.flows.staff import passkey_ceremony
    with pytest.raises(Claim.DoesNotExist):
        Claim.get(*passkey_ceremony.claim_key(device.credential_id))
    event = next(e for e in AuditEvent.query(tenant.id) if e.action == "staff.mfa_reset")
    assert event.details.as_dict().get("passkeys") == 2
    drain(app)
    assert any("passkeys and recovery codes were removed" in m["body"] for m in outbox_for(person.email))
    register(http, token, device=device)  # the same device may register again
