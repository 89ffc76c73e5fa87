"""Failed guesses per IP (issue 8, Abuse): the per-account lockout stops guessing one password; these limits stop
one client guessing across many accounts (password spraying) or guessing link and refresh tokens. Each scope
(staff sign-in, portal sign-in, link tokens, refresh tokens) allows PORTAL_FAILED_GUESSES_PER_IP wrong guesses
per IP and hour (100 in production, 5 here); past that the IP gets 429 even with the right secret, every other
IP is unaffected, and right answers never count."""
import secrets

import pytest
from chalice.local import LambdaEventConverter
from conftest import STRONG_PASSWORD
from test_portal_access import PASSWORD, invited, register  # noqa: F401

from chalicelib.core import lockout
from chalicelib.core.models import Counter

LIMIT = 5


@pytest.fixture(autouse=True)
def small_limit(monkeypatch):
    monkeypatch.setenv("PORTAL_FAILED_GUESSES_PER_IP", str(LIMIT))


def from_ip(ip):
    LambdaEventConverter.LOCAL_SOURCE_IP = ip  # conftest's client_ip fixture restores it after the test


def assert_throttled(answer):
    status, body = answer
    assert status == 429 and body["error"]["code"] == "too_many_requests", answer
    assert 0 < body["error"]["retry_after"] <= lockout.GUESS_WINDOW_SECONDS


def staff_sign_in(http, tenant, username, password):
    return http.post("/v1/staff/sign-in", {"tenant_id": tenant.id, "username": username, "password": password})


def test_staff_password_spraying_from_one_ip_is_cut_off(http, tenant, client_ip):
    # one wrong guess on each of many usernames: no account reaches its own lockout (5 failures)
    for i in range(LIMIT):
        status, body = staff_sign_in(http, tenant, f"someone{i}@{tenant.id}.example", "Guess-Number-1234")
        assert status == 401 and body["error"]["code"] == "invalid_credentials"
    assert_throttled(staff_sign_in(http, tenant, tenant.admin_username, tenant.admin_password))
    from_ip("198.51.100.7")  # the admin at the office is not locked out by someone else's guessing
    assert staff_sign_in(http, tenant, tenant.admin_username, tenant.admin_password)[0] == 200
    from_ip(client_ip)
    # an hour later the window is over
    counter = Counter.get(lockout._throttle_key("guesses-staff-sign-in", client_ip))
    counter.update(actions=[Counter.window_start.set(counter.window_start - lockout.GUESS_WINDOW_SECONDS - 1)])
    assert staff_sign_in(http, tenant, tenant.admin_username, tenant.admin_password)[0] == 200


def test_right_answers_never_count(http, tenant):
    for _ in range(3 * LIMIT):  # a whole office signing in from one address
        assert staff_sign_in(http, tenant, tenant.admin_username, tenant.admin_password)[0] == 200


def test_portal_sign_in_guesses_per_ip(http, tenant, invited):  # noqa: F811
    assert register(http, invited)[0] == 200
    sign_in = {"tenant_id": tenant.id, "email": invited["email"], "password": PASSWORD}
    for i in range(LIMIT):
        status, _ = http.post("/v1/portal/sign-in", {**sign_in, "email": f"x{i}@{tenant.id}.example"})
        assert status == 401
    assert_throttled(http.post("/v1/portal/sign-in", sign_in))
    # staff sign-in is its own scope: the same IP's staff are not refused for portal guesses
    assert staff_sign_in(http, tenant, tenant.admin_username, STRONG_PASSWORD)[0] == 200
    from_ip("198.51.100.8")
    assert http.post("/v1/portal/sign-in", sign_in)[0] == 200


def test_link_token_guesses_share_one_budget(http, tenant, invited):  # noqa: F811
    for _ in range(LIMIT):
        status, body = http.post("/v1/portal/register", {"token": secrets.token_urlsafe(32), "password": PASSWORD})
        assert status == 400 and body["error"]["code"] == "token_invalid"
    # every endpoint that takes a link token now refuses this IP, the right token included
    assert_throttled(register(http, invited))
    assert_throttled(http.post("/v1/portal/password-reset/complete",
                               {"token": secrets.token_urlsafe(32), "new_password": PASSWORD,
                                "new_password_confirm": PASSWORD}))
    assert_throttled(http.post("/v1/staff/accept-invite", {"token": secrets.token_urlsafe(32),
                                                           "password": PASSWORD}))
    assert_throttled(http.post("/v1/portal/access", {"token": secrets.token_urlsafe(32)}))
    from_ip("198.51.100.9")
    assert register(http, invited)[0] == 200


def test_refresh_token_guesses_per_ip(http, tenant, invited):  # noqa: F811
    session = register(http, invited)[1]
    for _ in range(LIMIT):
        status, body = http.post("/v1/portal/token/refresh", {"refresh_token": secrets.token_urlsafe(32)})
        assert status == 401 and body["error"]["code"] == "invalid_refresh_token"
    assert_throttled(http.post("/v1/portal/token/refresh", {"refresh_token": session["refresh_token"]}))
    from_ip("198.51.100.10")
    assert http.post("/v1/portal/token/refresh", {"refresh_token": session["refresh_token"]})[0] == 200


def test_counters_hold_no_ip_in_clear(http, tenant, client_ip):
    staff_sign_in(http, tenant, "nobody@example.com", "Wrong-Password-123")
    keys = [c.counter_key for c in Counter.scan(Counter.counter_key.startswith("throttle#guesses-"))]
    assert keys and not any(client_ip in k for k in keys)
