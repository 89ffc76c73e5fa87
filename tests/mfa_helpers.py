"""Helpers for the second-factor tests: a clock for the authenticator codes (pyotp computes the same codes from
it), setting up an authenticator app through the API, and the two steps of a sign-in."""
import time

import pyotp
import pytest


class CodeClock:
    """The time mfa_totp reads; each `next()` moves to the next 30-second step, so a test can sign in again
    without waiting (a code is accepted once)."""

    def __init__(self):
        self.t = float(int(time.time()))

    def __call__(self) -> float:
        return self.t

    def next(self) -> float:
        self.t += 30
        return self.t


@pytest.fixture
def code_clock(monkeypatch):
    from chalicelib.flows.staff import mfa_totp
    c = CodeClock()
    monkeypatch.setattr(mfa_totp, "_clock", c)
    return c


def code(secret: str, at: float) -> str:
    return pyotp.TOTP(secret).at(at)


def secret_of(started: dict) -> str:
    """The base32 key as the app gets it from the otpauth URI (the text form is the same, grouped by 4)."""
    return pyotp.parse_uri(started["otpauth_uri"]).secret


def set_up_totp(http, token, clock):
    """Start and confirm an authenticator app as a person would; returns (secret, confirm answer)."""
    status, started = http.post("/v1/staff/mfa/totp", token=token)
    assert status == 200, started
    secret = secret_of(started)
    assert started["secret"].replace(" ", "") == secret
    status, confirmed = http.post("/v1/staff/mfa/totp/confirm", {"code": code(secret, clock())}, token=token)
    assert status == 200, confirmed
    clock.next()
    return secret, confirmed


def first_step(tenant, username, password):
    """The password step of a person with a factor: the mfa_token."""
    status, body = tenant.sign_in(username, password)
    assert status == 401 and body["error"]["code"] == "mfa_required", body
    return body["error"]["mfa_token"]


def second_step(http, mfa_token, answer, **extra):
    return http.post("/v1/staff/sign-in/mfa", {"mfa_token": mfa_token, "code": answer, **extra})


def sign_in_with_code(http, tenant, username, password, secret, clock):
    token = first_step(tenant, username, password)
    status, body = second_step(http, token, code(secret, clock()))
    clock.next()
    assert status == 200, body
    return body["access_token"]
