"""Secrets do not outlive the request that carried them (security review): an error object kept at module level
and raised again and again keeps the traceback of its last raise, whose frames hold the password (or token,
or client secret) that was typed, alive for as long as a warm Lambda lives. Every error is now made afresh.

Each test submits unique random secrets through the app in failing requests, then collects garbage and walks
everything the collector tracks (every string an object refers to, and the locals of every frame reachable from
a traceback): no submitted secret may be found. The test itself keeps only the secrets' SHA-256 and a pattern that
recognises them (the marker they share is stored reversed and the pattern spells it one character class at a
time), so it cannot find its own copies and cannot pass by accident."""
import gc
import hashlib
import re
import secrets
import types

import pytest
from test_portal_access import invited, register  # noqa: F401

from chalicelib.core import lockout

_MARKER_REVERSED = secrets.token_hex(6)[::-1]
_PATTERN = "Sx7" + "".join(f"[{c}]" for c in _MARKER_REVERSED[::-1]) + "[0-9a-f]{32}"
_STR = re.compile(_PATTERN)
_BYTES = re.compile(_PATTERN.encode())
_CONTAINERS = (tuple, list, dict, set, frozenset)


class Secrets:
    """Mints the secrets a test submits; remembers only their hashes."""

    def __init__(self):
        self.hashes = set()

    def submit(self, call):
        """call(secret) makes one request; the secret exists only for that call."""
        secret = "Sx7" + _MARKER_REVERSED[::-1] + secrets.token_hex(16)  # upper, lower and digit: passes the policy
        self.hashes.add(hashlib.sha256(secret.encode()).hexdigest())
        return call(secret)

    def submit_two(self, call):
        return self.submit(lambda first: self.submit(lambda second: call(first, second)))


def _matches(value, found: set, hashes: set) -> None:
    if isinstance(value, str):
        hits = _STR.findall(value)
    elif isinstance(value, (bytes, bytearray)):
        hits = [h.decode() for h in _BYTES.findall(bytes(value))]
    else:
        return
    found.update(h for h in (hashlib.sha256(hit.encode()).hexdigest() for hit in hits) if h in hashes)


def _look_into(value, found: set, hashes: set, depth: int, seen: set) -> None:
    """Strings in value, and in the containers the collector does not track (a tuple or dict of strings only
    is untracked, so the walk over tracked objects would not reach what it holds)."""
    if id(value) in seen:
        return
    seen.add(id(value))
    _matches(value, found, hashes)
    if depth <= 0:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _look_into(k, found, hashes, depth - 1, seen)
            _look_into(v, found, hashes, depth - 1, seen)
    elif isinstance(value, _CONTAINERS):
        for v in value:
            _look_into(v, found, hashes, depth - 1, seen)
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        try:
            _look_into(vars(value), found, hashes, depth - 1, seen)
        except TypeError:
            pass


def reachable(hashes: set) -> set:
    """The hashes of the submitted secrets still reachable in this process."""
    gc.collect()
    found: set = set()
    for obj in gc.get_objects():
        if isinstance(obj, types.TracebackType):
            tb = obj
            while tb is not None:
                frame = tb.tb_frame
                while frame is not None:
                    _look_into(dict(frame.f_locals), found, hashes, 4, set())
                    frame = frame.f_back
                tb = tb.tb_next
        for ref in gc.get_referents(obj):
            if isinstance(ref, (str, bytes, bytearray)):
                _matches(ref, found, hashes)
            elif isinstance(ref, _CONTAINERS) and not gc.is_tracked(ref):
                _look_into(ref, found, hashes, 3, set())
    return found


@pytest.fixture
def typed():
    return Secrets()


def assert_forgotten(http, typed):
    assert len(typed.hashes) >= 2
    left = reachable(typed.hashes)
    assert not left, f"{len(left)} of {len(typed.hashes)} submitted secrets are still reachable"


def test_failed_staff_sign_ins(http, tenant, typed):
    for _ in range(lockout.MAX_FAILURES + 2):  # the last ones meet the lockout (423)
        status, _ = typed.submit(lambda p: tenant.sign_in(password=p))
        assert status in (401, 423)
    for i in range(3):
        assert typed.submit(lambda p, i=i: tenant.sign_in(username=f"nobody{i}@nowhere.example", password=p))[0] == 401
    assert_forgotten(http, typed)


def test_failed_portal_sign_ins(http, tenant, invited, typed):  # noqa: F811
    assert register(http, invited)[0] == 200
    for email in [invited["email"]] * (lockout.MAX_FAILURES + 2) + ["ghost@nowhere.example"] * 3:
        status, _ = typed.submit(lambda p, email=email: http.post("/v1/portal/sign-in", {
            "tenant_id": tenant.id, "email": email, "password": p}))
        assert status in (401, 423)
    assert_forgotten(http, typed)


def test_wrong_refresh_tokens(http, tenant, invited, typed):  # noqa: F811
    assert register(http, invited)[0] == 200
    for _ in range(4):
        status, body = typed.submit(lambda t: http.post("/v1/portal/token/refresh", {"refresh_token": t}))
        assert status == 401 and body["error"]["code"] == "invalid_refresh_token"
    assert_forgotten(http, typed)


def test_failed_change_password(http, tenant, typed):
    token = tenant.admin_token
    for _ in range(3):
        status, body = typed.submit_two(lambda current, new: http.post(
            "/v1/staff/change-password", {"current_password": current, "new_password": new}, token=token))
        assert status == 400 and body["error"]["code"] == "current_password_wrong"
    # the right current password and a new one the policy refuses: the current one is what is secret here
    status, body = http.post("/v1/staff/change-password", {"current_password": tenant.admin_password,
                                                            "new_password": "password"}, token=token)
    assert status == 400
    assert_forgotten(http, typed)


def test_failed_resets_and_link_tokens(http, tenant, typed):
    for _ in range(2):
        status, _ = typed.submit_two(lambda token, new: http.post(
            "/v1/portal/password-reset/complete", {"token": token, "new_password": new, "new_password_confirm": new}))
        assert status == 400
        status, _ = typed.submit_two(lambda token, new: http.post(
            "/v1/staff/password-reset/complete", {"reset_token": token, "new_password": new}))
        assert status in (400, 410)
        status, _ = typed.submit_two(lambda token, new: http.post(
            "/v1/staff/accept-invite", {"token": token, "password": new}))
        assert status == 400
        status, _ = typed.submit_two(lambda token, new: http.post(
            "/v1/portal/register", {"token": token, "password": new}))
        assert status == 400
    assert_forgotten(http, typed)


def test_wrong_partner_client_secrets(http, tenant, typed):
    from test_partners import make_portal
    portal, _ = make_portal()
    for _ in range(3):
        status, body = typed.submit(lambda s: http.post("/v1/partner/token", {
            "client_id": portal.client_id, "client_secret": s, "tenant_id": tenant.id}))
        assert status == 401 and body["error"]["code"] == "invalid_client"
    assert_forgotten(http, typed)


def test_the_walk_finds_a_secret_that_is_kept(http, typed):
    """The detector itself: a secret kept in a module-level error's traceback is found."""
    from chalicelib.core.errors import Unauthenticated
    kept = Unauthenticated("invalid_credentials", "kept")

    def sign_in(password):
        raise kept

    def call(secret):
        try:
            sign_in(secret)
        except Unauthenticated:
            pass
    typed.submit(call)
    typed.submit(lambda s: None)
    assert len(reachable(typed.hashes)) == 1
    kept.__traceback__ = None
    assert not reachable(typed.hashes)
