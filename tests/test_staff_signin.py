import statistics
import time

import pytest
from conftest import SCHEDULED_EVENT, STRONG_PASSWORD, LambdaContext

from chalicelib.core import lockout
from chalicelib.core.models import AuditEvent, Person, now
from chalicelib.core.security import passwords
from chalicelib.flows.staff import people


def actions(tenant_id):
    return [e.action for e in AuditEvent.query(tenant_id)]


def test_sign_in_returns_a_bearer_token(tenant):
    status, body = tenant.sign_in()
    assert status == 200
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900 and body["access_token"].count(".") == 2
    assert "staff.signed_in" in actions(tenant.id)


def test_same_answer_for_unknown_user_and_wrong_password(tenant):
    wrong = tenant.sign_in(password="Wrong-Password-99")
    unknown = tenant.sign_in(username="nobody@nowhere.example", password="Wrong-Password-99")
    no_tenant = tenant.http.post("/v1/staff/sign-in", {"tenant_id": "no-such-tenant", "username": "a",
                                                         "password": "Wrong-Password-99"})
    assert wrong == unknown == no_tenant
    assert wrong[0] == 401 and wrong[1]["error"]["code"] == "invalid_credentials"


def test_unknown_and_known_take_the_same_time_within_noise(tenant):
    def timed(username):
        t = time.perf_counter()
        tenant.sign_in(username=username, password="Wrong-Password-99")
        return time.perf_counter() - t
    known, unknown = [], []
    for i in range(4):  # below the lockout threshold; alternate to share the machine's noise
        known.append(timed(tenant.admin_username))
        unknown.append(timed(f"ghost{i}@nowhere.example"))
    lockout.clear("staff", tenant.id, tenant.admin_username)
    k, u = statistics.median(known), statistics.median(unknown)
    assert abs(k - u) / max(k, u) < 0.5, (k, u)  # both pay one argon2 verification


def test_lockout_after_five_failures_with_growing_back_off(tenant, monkeypatch):
    for _ in range(4):
        assert tenant.sign_in(password="Wrong-Password-99")[0] == 401
    assert tenant.sign_in(password="Wrong-Password-99")[0] == 401  # the fifth failure locks
    status, body = tenant.sign_in()  # even the right password is refused while locked
    assert status == 423 and body["error"]["code"] == "account_locked"
    first = body["error"]["retry_after"]
    assert 0 < first <= 60
    assert "staff.locked" in actions(tenant.id)
    # after the lock runs out, five more failures lock for longer
    later = time.time() + 61
    monkeypatch.setattr(lockout.time, "time", lambda: later)
    for _ in range(5):
        assert tenant.sign_in(password="Wrong-Password-99")[0] == 401
    status, body = tenant.sign_in()
    assert status == 423 and body["error"]["retry_after"] > first


def test_unknown_usernames_lock_too(tenant):
    for _ in range(5):
        tenant.sign_in(username="ghost@nowhere.example", password="Wrong-Password-99")
    status, body = tenant.sign_in(username="ghost@nowhere.example", password="Wrong-Password-99")
    assert status == 423


def test_change_password(http, tenant):
    token = tenant.admin_token
    status, body = http.post("/v1/staff/change-password", {"current_password": "nope-Nope-1",
                                                            "new_password": "Another-Good-Pass-7"}, token=token)
    assert status == 400 and body["error"]["code"] == "current_password_wrong"
    status, body = http.post("/v1/staff/change-password", {"current_password": STRONG_PASSWORD,
                                                            "new_password": "password123"}, token=token)
    assert status == 400 and body["error"]["code"] == "password_needs_upper"
    status, body = http.post("/v1/staff/change-password", {"current_password": STRONG_PASSWORD,
                                                            "new_password": STRONG_PASSWORD}, token=token)
    assert status == 400 and body["error"]["code"] == "password_reused"
    status, body = http.post("/v1/staff/change-password", {"current_password": STRONG_PASSWORD,
                                                            "new_password": "Another-Good-Pass-7"}, token=token)
    assert status == 200 and body["access_token"]
    assert tenant.sign_in()[0] == 401
    assert tenant.sign_in(password="Another-Good-Pass-7")[0] == 200
    assert "staff.password_changed" in actions(tenant.id)


def _person(tenant_id, username):
    return people.find_by_username(tenant_id, username)


def test_admin_set_password_forces_a_new_username_and_password(http, tenant):
    person = people.create(tenant.id, kind="technician", name="Tech", mobile="+12015551231",
                           username="tech1", password_hash=passwords.hash_password("Temp-Pass-1234"))
    person.update(actions=[Person.must_change_password.set(True)])
    status, body = tenant.sign_in("tech1", "Temp-Pass-1234")
    assert status == 403 and body["error"]["code"] == "password_change_required"
    change = body["error"]["change_token"]
    # a change token opens nothing else
    assert http.get("/v1/staff/me", token=change)[0] == 403
    status, body = http.post("/v1/staff/change-password", {"new_password": "Fresh-Pass-5678"}, token=change)
    assert status == 400 and body["error"]["code"] == "username_required"
    status, body = http.post("/v1/staff/change-password", {"new_password": "Temp-Pass-1234",
                                                            "new_username": "tech.one"}, token=change)
    assert status == 400 and body["error"]["code"] == "password_reused"
    people.create(tenant.id, kind="technician", name="Other", mobile="+12015551232", username="taken.name",
                  password_hash=passwords.hash_password("Other-Pass-1234"))
    status, body = http.post("/v1/staff/change-password", {"new_password": "Fresh-Pass-5678",
                                                            "new_username": "Taken.Name"}, token=change)
    assert status == 409 and body["error"]["code"] == "username_taken"
    status, body = http.post("/v1/staff/change-password", {"new_password": "Fresh-Pass-5678",
                                                            "new_username": tenant.admin_username}, token=change)
    assert status == 400 and body["error"]["code"] == "invalid_username"  # a colleague's email: not theirs
    status, body = http.post("/v1/staff/change-password", {"new_password": "Fresh-Pass-5678",
                                                            "new_username": "tech.one"}, token=change)
    assert status == 200, body
    # the change token was for the old password: it cannot be used again
    assert http.post("/v1/staff/change-password", {"new_password": "Other-Pass-9012", "new_username": "x.y"},
                     token=change)[0] == 401
    assert tenant.sign_in("tech1", "Fresh-Pass-5678")[0] == 401  # old username released
    assert tenant.sign_in("tech.one", "Fresh-Pass-5678")[0] == 200


def test_expired_password_demands_a_change(http, tenant):
    person = _person(tenant.id, tenant.admin_username)
    person.update(actions=[Person.password_set_at.set(now() - 366 * 24 * 3600)])
    status, body = tenant.sign_in()
    assert status == 403 and body["error"]["code"] == "password_expired"
    status, body = http.post("/v1/staff/change-password", {"new_password": "Renewed-Pass-2027"},
                             token=body["error"]["change_token"])
    assert status == 200
    assert tenant.sign_in(password="Renewed-Pass-2027")[0] == 200


def test_temporary_password_refused_after_expiry_even_before_the_schedule(tenant):
    person = _person(tenant.id, tenant.admin_username)
    person.update(actions=[Person.temporary_password_expires_at.set(now() - 1)])
    status, body = tenant.sign_in()
    assert status == 401 and body["error"]["code"] == "temporary_password_expired"


def test_schedule_expires_unused_temporary_passwords(app, tenant):
    person = _person(tenant.id, tenant.admin_username)
    from chalicelib.flows.expiry import due_actions  # back-dated in the schedule's index too, as the writers do
    person.update(actions=[Person.temporary_password_expires_at.set(now() - 1),
                           *due_actions(person, temporary_password_expires_at=now() - 1)])
    result = app.run_schedule(SCHEDULED_EVENT, LambdaContext())
    assert result["temporary_passwords_expired"] >= 1
    person.refresh()
    assert person.password_hash is None
    assert tenant.sign_in()[0] == 401


def test_disabled_tenant_cannot_sign_in(tenant):
    from chalicelib.core.models import Tenant
    Tenant.get(tenant.id).update(actions=[Tenant.status.set("disabled")])
    assert tenant.sign_in()[0] == 401


@pytest.mark.parametrize("body", [{}, {"tenant_id": "x"}, {"tenant_id": 1, "username": "a", "password": "b"},
                                  {"tenant_id": "x", "username": "a", "password": "b", "extra": 1}])
def test_bad_sign_in_bodies_are_400(http, body):
    status, got = http.post("/v1/staff/sign-in", body)
    assert status == 400 and got["error"]["code"] == "invalid_request"
