"""Helpers shared by the staff-account and staff-recovery tests: a controllable clock, staff members with
accounts, reading links and codes from the outbox, and running requests concurrently through the app."""
import re
import threading
import time
import uuid
from contextlib import contextmanager

import pytest
from conftest import drain, links_to, outbox_for

PASSWORD = "Staff-Member-Pass-31"


class Clock:
    """Replaces `now()` wherever the staff flows read it; tokens (JWT) keep the real time."""

    def __init__(self):
        self.t = int(time.time())

    def __call__(self) -> int:
        return self.t

    def advance(self, seconds: int) -> None:
        self.t += seconds


@pytest.fixture
def clock(monkeypatch):
    """The staff flows' clock (not the sessions': an admin's session stays valid while time moves on)."""
    from chalicelib.core import models, single_use
    from chalicelib.flows import expiry
    from chalicelib.flows.staff import (admin_passwords, staff_accounts, staff_bulk, staff_invitations,
                                        staff_recovery, staff_signin)
    c = Clock()
    for module in (models, single_use, staff_signin, staff_accounts, staff_invitations, admin_passwords, staff_bulk,
                   staff_recovery, expiry):
        if hasattr(module, "now"):
            monkeypatch.setattr(module, "now", c)
    return c


def unique(prefix="p"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def unique_email(prefix="staff"):
    return f"{prefix}.{uuid.uuid4().hex[:8]}@crew.example"


def unique_mobile():
    """A North American number that exists (phonenumbers' is_valid_number, as identity requires): area code 201
    takes every exchange from 200 to 999; +1 555 … is no area code."""
    return f"+1201{2_000_000 + uuid.uuid4().int % 8_000_000}"


def staff_member(tenant, kind="technician", role=None, permissions=(), email=None, mobile=None,
                 password=PASSWORD, username=None):
    """A person with an account made directly (people.create), and their access token from a real sign-in."""
    from chalicelib.core.security import passwords
    from chalicelib.flows.staff import people
    email = email if email is not None else (unique_email(kind) if kind == "employee" else None)
    mobile = mobile if mobile is not None else (unique_mobile() if kind == "technician" else None)
    username = username or unique(kind)
    person = people.create(tenant.id, kind=kind, name=f"A {kind}", email=email, mobile=mobile,
                           role=role or ("technician" if kind == "technician" else "staff"),
                           permissions=list(permissions), username=username,
                           password_hash=passwords.hash_password(password))
    status, body = tenant.sign_in(username, password)
    assert status == 200, body
    return person, body["access_token"]


def create_person(http, token, **fields):
    status, body = http.post("/v1/people", fields, token=token)
    assert status == 201, body
    return body


def last_link(app, address, needle):
    drain(app)
    found = links_to(address, needle)
    assert found, (address, needle, outbox_for(address))
    return found[-1]


def token_of(link):
    return link.split("token=", 1)[1]


CODE_RE = re.compile(r"\b([A-Za-z0-9]{8})\b")


def last_code(app, address):
    """The code in the latest reset-code message to an address."""
    drain(app)
    messages = [m for m in outbox_for(address) if "code" in m["body"].lower()]
    assert messages, outbox_for(address)
    body = messages[-1]["body"]
    # the code stands alone on its line in the email, after "code: " in the SMS
    match = re.search(r"^\s+([A-Za-z0-9]{8})\s*$", body, re.M) or re.search(r"code: ([A-Za-z0-9]{8})\b", body)
    assert match, body
    return match.group(1)


@contextmanager
def threaded_app(app):
    """chalice.test.Client keeps the current request on the app object; `chalice local` uses LocalChalice,
    which keeps it per thread. Borrow that class while requests run in parallel threads."""
    from chalice.local import LocalChalice
    original = app.app.__class__
    app.app.__class__ = LocalChalice
    try:
        yield
    finally:
        app.app.__class__ = original


def run_together(n, fn):
    """Runs fn(i) in n threads released at the same moment; returns their results in order."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:  # noqa: BLE001 - reported to the test as a result
            results[i] = exc
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results
