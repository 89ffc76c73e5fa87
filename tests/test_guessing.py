"""Guessing under concurrency (security review): the sign-in lockout counts an attempt before the password is
checked, with one conditional write, so of N concurrent wrong guesses at most the remaining allowance (5) is
checked and the rest get 423; wrong current passwords on change-password count towards the same lockout; the
per-IP budget of wrong guesses reserves a guess before the flow runs, so it is exact under concurrency too."""
import os
import threading

import pytest
from staff_helpers import run_together, staff_member, threaded_app, unique
from test_portal_access import PASSWORD, invited, register  # noqa: F401

from chalicelib.core import lockout
from chalicelib.core.models import AuditEvent, Counter, Person
from chalicelib.core.security import passwords

N = 25


@pytest.fixture
def verifications(monkeypatch):
    """How many argon2 verifications ran (each one is a password checked)."""
    counted = {"n": 0}
    lock = threading.Lock()
    original = passwords.verify_password

    def counting(stored, password):
        with lock:
            counted["n"] += 1
        return original(stored, password)
    monkeypatch.setattr(passwords, "verify_password", counting)
    return counted


def actions(tenant_id):
    return [e.action for e in AuditEvent.query(tenant_id)]


def assert_locked(answer):
    status, body = answer
    assert status == 423 and body["error"]["code"] == "account_locked", answer
    retry_after = body["error"]["retry_after"]
    assert isinstance(retry_after, int) and 1 <= retry_after <= lockout.MAX_LOCK_SECONDS, answer


def concurrently(app, n, call):
    # chalice.test's client swaps os.environ for a copy around each request and puts back the one it found:
    # with requests in parallel threads, one can put back another's copy, which then outlives the test (and the
    # monkeypatched PORTAL_FAILED_GUESSES_PER_IP with it). Keep the real one.
    environ = os.environ
    try:
        with threaded_app(app):
            results = run_together(n, call)
    finally:
        os.environ = environ  # noqa: B003 - putting back the very object, not clearing it
    assert not [r for r in results if isinstance(r, Exception)], results
    return results


def split(results, wrong_code):
    wrong = [r for r in results if r[0] != 423]
    assert all(r[1]["error"]["code"] == wrong_code for r in wrong), wrong
    for r in results:
        if r[0] == 423:
            assert_locked(r)
    return len(wrong), len(results) - len(wrong)


# --- the sign-in lockout under concurrency --------------------------------------------------------------------

def test_concurrent_wrong_portal_sign_ins_check_at_most_five(app, http, tenant, invited, verifications):  # noqa: F811
    assert register(http, invited)[0] == 200
    verifications["n"] = 0
    results = concurrently(app, N, lambda i: http.post("/v1/portal/sign-in", {
        "tenant_id": tenant.id, "email": invited["email"], "password": f"Wrong-Guess-{i:03d}"}))
    wrong, locked = split(results, "invalid_credentials")
    assert verifications["n"] == wrong <= lockout.MAX_FAILURES, (verifications, results)
    assert wrong >= 1 and locked == N - wrong
    assert actions(tenant.id).count("portal.locked") == 1
    # locked now: the right password is refused too, without being checked
    before = verifications["n"]
    assert_locked(http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": invited["email"],
                                                   "password": PASSWORD}))
    assert verifications["n"] == before


def test_concurrent_wrong_staff_sign_ins_check_at_most_five(app, http, tenant, verifications):
    verifications["n"] = 0
    results = concurrently(app, N, lambda i: tenant.sign_in(password=f"Wrong-Guess-{i:03d}"))
    wrong, locked = split(results, "invalid_credentials")
    assert verifications["n"] == wrong <= lockout.MAX_FAILURES, (verifications, results)
    assert wrong >= 1
    assert actions(tenant.id).count("staff.locked") == 1
    assert_locked(tenant.sign_in())


def test_unknown_usernames_are_counted_the_same_way(app, http, tenant, verifications):
    ghost = f"ghost-{unique()}@nowhere.example"
    results = concurrently(app, N, lambda i: tenant.sign_in(username=ghost, password=f"Wrong-Guess-{i:03d}"))
    wrong, locked = split(results, "invalid_credentials")
    assert verifications["n"] == wrong <= lockout.MAX_FAILURES
    assert_locked(tenant.sign_in(username=ghost, password="Wrong-Guess-999"))
    email = f"ghost-{unique()}@nowhere.example"
    results = concurrently(app, N, lambda i: http.post("/v1/portal/sign-in", {
        "tenant_id": tenant.id, "email": email, "password": f"Wrong-Guess-{i:03d}"}))
    assert split(results, "invalid_credentials")[0] <= lockout.MAX_FAILURES


def test_sequential_failures_lock_on_the_fifth_and_a_right_password_clears(tenant):
    for _ in range(lockout.MAX_FAILURES - 1):
        assert tenant.sign_in(password="Wrong-Guess-000")[0] == 401
    assert tenant.sign_in()[0] == 200  # clears the count
    for _ in range(lockout.MAX_FAILURES):
        assert tenant.sign_in(password="Wrong-Guess-000")[0] == 401
    assert_locked(tenant.sign_in())
    counter = Counter.get(lockout._key("staff", tenant.id, tenant.admin_username))
    assert counter.lockouts == 1 and 0 < counter.locked_until - counter.window_start <= lockout.FIRST_LOCK_SECONDS


def test_a_retired_temporary_password_is_not_a_wrong_guess(tenant):
    person, _ = staff_member(tenant)
    person = Person.get(tenant.id, person.person_id)
    person.update(actions=[Person.expired_temporary_hash.set(person.password_hash), Person.password_hash.remove()])
    from staff_helpers import PASSWORD as STAFF_PASSWORD
    for _ in range(2 * lockout.MAX_FAILURES):
        status, body = tenant.sign_in(person.username, STAFF_PASSWORD)
        assert status == 401 and body["error"]["code"] == "temporary_password_expired", body


# --- change-password: wrong current passwords count towards the same lockout ----------------------------------

def change(http, token, current):
    return http.post("/v1/staff/change-password", {"current_password": current,
                                                    "new_password": "Another-Good-Pass-7"}, token=token)


def test_wrong_current_passwords_lock_like_sign_in(http, tenant):
    token = tenant.admin_token
    answers = [change(http, token, f"Wrong-Current-{i:02d}") for i in range(40)]
    wrong = [a for a in answers if a[0] == 400]
    assert len(wrong) == lockout.MAX_FAILURES, answers
    assert all(a[1]["error"]["code"] == "current_password_wrong" for a in wrong)
    for answer in answers[lockout.MAX_FAILURES:]:
        assert_locked(answer)
    assert_locked(change(http, token, tenant.admin_password))  # the right one is refused while locked
    assert_locked(tenant.sign_in())  # the same lockout as sign-in
    assert "staff.locked" in actions(tenant.id)


def test_concurrent_wrong_current_passwords_check_at_most_five(app, http, tenant, verifications):
    token = tenant.admin_token
    verifications["n"] = 0
    results = concurrently(app, N, lambda i: change(http, token, f"Wrong-Current-{i:02d}"))
    wrong, _ = split(results, "current_password_wrong")
    assert verifications["n"] == wrong <= lockout.MAX_FAILURES, (verifications, results)


def test_sign_in_failures_count_towards_change_password(http, tenant):
    token = tenant.admin_token
    for _ in range(lockout.MAX_FAILURES):
        assert tenant.sign_in(password="Wrong-Guess-000")[0] == 401
    assert_locked(change(http, token, tenant.admin_password))


def test_a_right_current_password_still_changes_it(http, tenant):
    token = tenant.admin_token
    for i in range(lockout.MAX_FAILURES - 1):
        assert change(http, token, f"Wrong-Current-{i:02d}")[0] == 400
    status, body = change(http, token, tenant.admin_password)
    assert status == 200, body
    assert tenant.sign_in(password="Another-Good-Pass-7")[0] == 200


# --- the per-IP budget of wrong guesses is exact ---------------------------------------------------------------

LIMIT = 10


@pytest.fixture
def small_budget(monkeypatch):
    monkeypatch.setenv("PORTAL_FAILED_GUESSES_PER_IP", str(LIMIT))


def guesses_counted(scope, ip):
    return int(Counter.get(lockout._throttle_key(f"guesses-{scope}", ip), consistent_read=True).hits)


def test_per_ip_budget_is_exact_for_concurrent_staff_guesses(app, tenant, small_budget, client_ip):
    # every guess names another (unknown) username: no account lockout, only the IP's budget
    results = concurrently(app, 3 * LIMIT, lambda i: tenant.sign_in(f"sprayed{i}-{unique()}", "Wrong-Guess-000"))
    statuses = sorted(status for status, _ in results)
    assert statuses == [401] * LIMIT + [429] * (2 * LIMIT), statuses
    assert {b["error"]["code"] for s, b in results if s == 429} == {"too_many_requests"}
    assert guesses_counted("staff-sign-in", client_ip) == LIMIT


def test_per_ip_budget_is_exact_for_concurrent_portal_guesses(app, http, tenant, small_budget, client_ip):
    results = concurrently(app, 3 * LIMIT, lambda i: http.post("/v1/portal/sign-in", {
        "tenant_id": tenant.id, "email": f"sprayed{i}-{unique()}@nowhere.example", "password": "Wrong-Guess-000"}))
    statuses = sorted(status for status, _ in results)
    assert statuses == [401] * LIMIT + [429] * (2 * LIMIT), statuses
    assert guesses_counted("portal-sign-in", client_ip) == LIMIT


def test_right_answers_give_their_reserved_guess_back(tenant, small_budget, client_ip):
    for i in range(LIMIT - 1):
        assert tenant.sign_in(f"sprayed{i}-{unique()}", "Wrong-Guess-000")[0] == 401
    for _ in range(5):  # each reserves the last guess left and gives it back
        assert tenant.sign_in()[0] == 200
    assert guesses_counted("staff-sign-in", client_ip) == LIMIT - 1
    assert tenant.sign_in(f"sprayed-{unique()}", "Wrong-Guess-000")[0] == 401
    status, body = tenant.sign_in()
    assert status == 429 and body["error"]["retry_after"] >= 1
    assert guesses_counted("staff-sign-in", client_ip) == LIMIT


# --- fixed-window throttles under concurrency -----------------------------------------------------------------

def test_concurrent_first_hits_of_a_throttle_window_stop_at_its_limit(app, http, tenant):
    """Portal sign-up allows 3 requests per email and hour. Twelve at once on a fresh email: each of the first
    hits used to open the window itself (an unconditional write of hits = 1), so more than three got through."""
    email = f"burst-{unique()}@{tenant.id}.example"
    results = concurrently(app, 12, lambda i: http.post("/v1/portal/sign-up", {"tenant_id": tenant.id,
                                                                                 "email": email}))
    statuses = sorted(r[0] for r in results)
    assert statuses.count(202) == 3 and statuses.count(429) == 9, statuses
