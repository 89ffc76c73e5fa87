"""Calls users wait for, in-process through chalice.test.Client (the app object Lambda runs) against moto, with
the production argon2id parameters. The first calls of each kind warm up (lazy imports, the key ring, clients)
and are not counted: cold start has its own section."""
import json
import os
import time
import uuid
from pathlib import Path

from bench.common import ROOT, LambdaContext, receive_all, sqs_event, summary_ms

PASSWORD = "Bench-Staff-Pass-42"
PORTAL_PASSWORD = "Bench-Portal-Pass-42"
WARM_UP = 3


class Http:
    def __init__(self, client):
        self.client = client

    def call(self, method, path, body=None, token=None, expect=(200, 201, 202)):
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        r = getattr(self.client.http, method)(path, headers=headers, body=json.dumps(body) if body else None)
        data = json.loads(r.body) if r.body else None
        assert r.status_code in expect, (path, r.status_code, data)
        return data


def timed(n: int, call) -> dict:
    """call(i) for i in range(WARM_UP + n); the first WARM_UP are not counted."""
    samples = []
    for i in range(WARM_UP + n):
        started = time.perf_counter()
        call(i)
        if i >= WARM_UP:
            samples.append(time.perf_counter() - started)
    return summary_ms(samples)


def argon2_alone(n: int = 20) -> dict:
    from chalicelib.core.security import passwords
    hashed = passwords.hash_password(PASSWORD)
    hashes, verifies = [], []
    for _ in range(n):
        started = time.perf_counter()
        passwords.hash_password(PASSWORD)
        hashes.append(time.perf_counter() - started)
        started = time.perf_counter()
        passwords.verify_password(hashed, PASSWORD)
        verifies.append(time.perf_counter() - started)
    return {"hash": summary_ms(hashes), "verify": summary_ms(verifies),
            "params": f"argon2id m={passwords.ARGON2_MEMORY_KIB // 1024} MiB, t={passwords.ARGON2_TIME_COST}, "
                      f"p={passwords.ARGON2_PARALLELISM}"}


def deliver_send_queue(app) -> None:
    """What a flow queued goes through the real sender (it mints invitation links at delivery)."""
    from chalicelib.core import config
    received = receive_all("send")
    for start in range(0, len(received), 10):
        result = app.on_send_message(sqs_event(received[start:start + 10], config.queue_name("send")),
                                     LambdaContext())
        assert result == {"batchItemFailures": []}, result


def links_by_address(needle: str) -> dict:
    out = {}
    for path in sorted(Path(os.environ["PORTAL_OUTBOX_DIR"]).glob("*.json")):  # names start with time_ns
        message = json.loads(path.read_text())
        for link in message.get("links") or []:
            if needle in link:
                out[message["to"]] = link  # the latest wins
    return out


def clear_throttles(*keys: tuple[str, str]) -> None:
    """The public endpoints are rate-limited per IP (the test client is always 127.0.0.1) and per identifier:
    reset the counters between calls, outside the timed part, or the bench would time 429s."""
    from chalicelib.core import lockout
    from chalicelib.core.models import Counter
    for scope, key in keys:
        Counter(lockout._throttle_key(scope, key)).delete()


def dynamodb_calls(call) -> list[str]:
    """The DynamoDB operations call() makes, counted in botocore (every client)."""
    import botocore.client
    seen: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def counting(self, operation, params):
        if self.meta.service_model.service_name == "dynamodb":
            seen.append(operation)
        return original(self, operation, params)
    botocore.client.BaseClient._make_api_call = counting
    try:
        call()
    finally:
        botocore.client.BaseClient._make_api_call = original
    return seen


def session_check(http, token: str, n: int = 200) -> dict:
    """What the live session check (chalicelib/core/sessions.py) costs an authenticated call: the DynamoDB requests
    of the check alone and of a whole GET /v1/customers?limit=1, and that call's time with the check and with
    the guard as it was before (the tenant's GetItem; role and permissions read from the token)."""
    from chalicelib.web import api
    from chalicelib.core import sessions, tenants
    principal = api.authenticate(f"Bearer {token}")

    def check():
        sessions.check(principal, sessions.read(principal))
    listing = "/v1/customers?limit=1"
    out = {"check_calls": dynamodb_calls(check), "call_calls": dynamodb_calls(lambda: http.call("get", listing,
                                                                                              token=token)),
           "check_alone": timed(n, lambda i: check()),
           "with_check": timed(n, lambda i: http.call("get", listing, token=token))}
    live = api._check_live

    def before(p):  # the guard before issue 14
        if not tenants.is_active(p.tenant_id):
            raise api._tenant_disabled()
    api._check_live = before
    try:
        out["before_calls"] = dynamodb_calls(lambda: http.call("get", listing, token=token))
        out["before"] = timed(n, lambda i: http.call("get", listing, token=token))
    finally:
        api._check_live = live
    return out


def run(log, n_sign_in: int = 100, n_flows: int = 60) -> dict:
    import contextlib
    from chalice.test import Client
    import app
    from chalicelib.flows.staff import people
    from chalicelib.core.models import Tenant
    from chalicelib.core.security import passwords
    out = {"argon2": argon2_alone()}
    tenant = f"bench-flows-{uuid.uuid4().hex[:6]}"
    Tenant(tenant, name="Bench Flows").save()
    admin = f"admin@{tenant}.example"
    people.create(tenant, kind="employee", name="Admin", email=admin, role="admin", username=admin,
                  password_hash=passwords.hash_password(PASSWORD))
    count = WARM_UP + max(n_flows, n_sign_in)
    emails = [f"owner{i}@{tenant}.example" for i in range(count)]
    with Client(app.app, stage_name="local", project_dir=str(ROOT)) as client, \
            open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # the outbox prints a line each
        http = Http(client)
        token = http.call("post", "/v1/staff/sign-in", {"tenant_id": tenant, "username": admin, "password": PASSWORD})
        token = token["access_token"]
        customers = [http.call("post", "/v1/customers", {"name": f"Owner {i}", "emails": [e]}, token)["customer_id"]
                     for i, e in enumerate(emails)]
        log("in-process: directory ready; timing calls")
        out["session_check"] = session_check(http, token)
        out["staff_sign_in"] = timed(n_sign_in, lambda i: http.call(
            "post", "/v1/staff/sign-in", {"tenant_id": tenant, "username": admin, "password": PASSWORD}))
        out["invitation"] = timed(count - WARM_UP, lambda i: http.call(
            "post", "/v1/portal/invitations", {"customer_id": customers[i], "email": emails[i]}, token))
        deliver_send_queue(app)
        links = links_by_address("/register?token=")
        out["registration"] = timed(count - WARM_UP, lambda i: http.call(
            "post", "/v1/portal/register", {"token": links[emails[i]].split("token=", 1)[1],
                                            "password": PORTAL_PASSWORD}))
        out["portal_sign_in"] = timed(n_sign_in, lambda i: http.call(
            "post", "/v1/portal/sign-in", {"tenant_id": tenant, "email": emails[i], "password": PORTAL_PASSWORD}))

        def staff_reset(i):
            clear_throttles(("staff-reset-start_ip", "127.0.0.1"), ("staff-reset-start_identifier", f"{tenant}#{admin}"))
            started = time.perf_counter()
            http.call("post", "/v1/staff/password-reset/start", {"tenant_id": tenant, "identifier": admin})
            return time.perf_counter() - started

        def portal_reset(i):
            clear_throttles(("portal-reset-ip", "127.0.0.1"))
            started = time.perf_counter()
            http.call("post", "/v1/portal/password-reset", {"tenant_id": tenant, "email": emails[i]})
            return time.perf_counter() - started
        out["staff_reset_start"] = summary_ms([staff_reset(i) for i in range(count)][WARM_UP:])
        out["portal_reset_start"] = summary_ms([portal_reset(i) for i in range(count)][WARM_UP:])
    receive_all("send")  # the reset emails: not this section's business
    out["sign_in_without_argon2_p50_ms"] = {
        k: out[k]["p50"] - out["argon2"]["verify"]["p50"] for k in ("staff_sign_in", "portal_sign_in")}
    return out
