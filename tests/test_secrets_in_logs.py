"""No secret is kept or shown anywhere but where it must be (issue 8, "Secrets").

One realistic run goes through every flow that makes or takes a secret: portal invitation, register, sign-in
(right and wrong), refresh (and reuse), reset by link, self sign-up, the access link and its hosted page; staff
invitation and accept, admin-set account, temporary password, voluntary change, code reset, admin reset link;
a bulk CSV invitation; a partner portal's client secret and token. Every secret the run typed or was given
(passwords, access / refresh / change / reset tokens, link tokens from the outbox, codes, flow ids, the client
secret) is collected, then searched for in:

- every log line (Powertools JSON on stdout, the outbox's console lines, log records), with the operator's
  "log the event" switch (POWERTOOLS_LOGGER_LOG_EVENT) turned on;
- every item of every DynamoDB table (only hashes may be stored), which includes the audit trail;
- the bulk reports in S3;
- the outbox files, every field but the message itself (`body`, `html`, `links` carry the link or code they
  exist to deliver);
- every error answer of the run.
"""
import json
import logging
import os
import uuid
from pathlib import Path

import pytest
from conftest import STRONG_PASSWORD, Http, LambdaContext, drain, links_to

from chalicelib.core import config, messaging

PORTAL_PASSWORD = "Porch-Light-" + uuid.uuid4().hex[:8] + "-7A"
STAFF_PASSWORD = "Crew-Pass-" + uuid.uuid4().hex[:8] + "-3B"
BUCKET = "portal-access-test-uploads"


class Recording(Http):
    """Http that keeps every error answer, to search them too."""

    def __init__(self, client):
        super().__init__(client)
        self.errors = []

    def call(self, *args, **kwargs):
        status, body = super().call(*args, **kwargs)
        if status >= 400:
            self.errors.append(json.dumps(body) if not isinstance(body, str) else body)
        return status, body


def token_of(link):
    return link.split("token=", 1)[1]


def passwords(n=1):
    return [f"Secret-{uuid.uuid4().hex[:12]}-9Z" for _ in range(n)]


class Secrets(list):
    """Every secret of the run; `delivered` are those a message exists to carry (link tokens, codes)."""
    delivered: set

    def add(self, *values):
        for value in values:
            assert isinstance(value, str) and len(value) >= 8, value
            self.append(value)
        return values[0] if len(values) == 1 else values

    def add_delivered(self, value):
        self.delivered = getattr(self, "delivered", set()) | {value}
        return self.add(value)


# --- the run --------------------------------------------------------------------------------------------------

def portal_flows(app, http, tenant, secrets):
    admin = tenant.admin_token
    secrets.add(admin)
    email = f"home.{uuid.uuid4().hex[:6]}@{tenant.id}.example"
    customer = http.post("/v1/customers", {"name": "Secret Household", "emails": [email]}, token=admin)[1]
    assert http.post("/v1/portal/invitations", {"customer_id": customer["customer_id"], "email": email},
                     token=admin)[0] in (200, 201, 202)
    drain(app)
    register_token = secrets.add_delivered(token_of(links_to(email, "/register")[-1]))
    # the hosted page opened from the email (the token is in its URL)
    page = http.client.http.get(f"/register?token={register_token}")
    assert page.status_code in (200, 303)
    weak, differ = "weakpassword", secrets.add(passwords()[0])
    assert http.post("/v1/portal/register", {"token": register_token, "password": weak})[0] == 400
    assert http.post("/v1/portal/register", {"token": register_token, "password": PORTAL_PASSWORD,
                                             "password_confirm": differ})[0] == 400
    status, session = http.post("/v1/portal/register", {"token": register_token, "password": PORTAL_PASSWORD})
    assert status == 200, session
    secrets.add(PORTAL_PASSWORD, session["access_token"], session["refresh_token"])
    status, rotated = http.post("/v1/portal/token/refresh", {"refresh_token": session["refresh_token"]})
    assert status == 200
    secrets.add(rotated["access_token"], rotated["refresh_token"])
    assert http.post("/v1/portal/token/refresh", {"refresh_token": session["refresh_token"]})[0] == 401  # reuse
    wrong = secrets.add(passwords()[0])
    assert http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": email, "password": wrong})[0] == 401
    status, signed_in = http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": email,
                                                         "password": PORTAL_PASSWORD})
    assert status == 200
    secrets.add(signed_in["access_token"], signed_in["refresh_token"])
    assert http.get("/v1/portal/me", token=signed_in["access_token"])[0] == 200
    # reset by emailed link
    assert http.post("/v1/portal/password-reset", {"tenant_id": tenant.id, "email": email})[0] == 202
    drain(app)
    reset_token = secrets.add_delivered(token_of(links_to(email, "/reset-password?token=")[-1]))
    new_password, other = secrets.add(*passwords(2))
    assert http.post("/v1/portal/password-reset/complete", {"token": reset_token, "new_password": new_password,
                                                            "new_password_confirm": other})[0] == 400
    assert http.post("/v1/portal/password-reset/complete", {"token": reset_token, "new_password": new_password,
                                                            "new_password_confirm": new_password})[0] == 200
    assert http.post("/v1/portal/password-reset/complete", {"token": reset_token, "new_password": new_password,
                                                            "new_password_confirm": new_password})[0] == 410
    # self sign-up of another email on the record
    assert http.call("PUT", "/v1/portal/settings", {"self_signup": True, "third_party_signin": []},
                     token=admin)[0] == 200
    selfie = f"selfie.{uuid.uuid4().hex[:6]}@{tenant.id}.example"
    http.patch(f"/v1/customers/{customer['customer_id']}", {"emails": [email, selfie]}, token=admin)
    assert http.post("/v1/portal/sign-up", {"tenant_id": tenant.id, "email": selfie})[0] == 202
    assert http.post("/v1/portal/sign-up", {"tenant_id": tenant.id, "email": email})[0] == 202
    drain(app)
    secrets.add_delivered(token_of(links_to(selfie, "/register")[-1]))
    # a customer's access link (rule 6), opened through the API, its state and renewal, and its hosted page
    other_customer = http.post("/v1/customers", {"name": "Link Only"}, token=admin)[1]
    link_path = f"/v1/customers/{other_customer['customer_id']}/access-link"
    status, link = http.post(link_path, {"expires_in_days": 30}, token=admin)
    assert status == 201
    access_token = secrets.add(token_of(link["link"]))
    status, link_session = http.post("/v1/portal/access", {"token": access_token})
    assert status == 200
    secrets.add(link_session["access_token"])
    assert http.post("/v1/portal/access", {"token": f"{access_token[:-2]}xx"})[0] in (400, 401, 404, 410)
    assert http.get(link_path, token=admin)[0] == 200
    assert http.post(f"{link_path}/renew", {"expires_in_days": 60}, token=admin)[0] == 200
    first = http.client.http.get(f"/portal/access?token={access_token}")
    assert first.status_code == 303 and first.headers["Location"] == "/portal/access"
    page = http.client.http.get("/portal/access", headers={"Cookie": f"pa_access={access_token}"})
    assert page.status_code == 200 and access_token not in page.body.decode()


def staff_flows(app, http, tenant, secrets):
    from staff_helpers import last_code
    admin = tenant.admin_token
    email = f"crew.{uuid.uuid4().hex[:6]}@crew.example"
    person = http.post("/v1/people", {"kind": "employee", "name": "Crew Member", "email": email}, token=admin)[1]
    pid = person["person_id"]
    assert http.post(f"/v1/people/{pid}/invite", {}, token=admin)[0] == 202
    drain(app)
    accept = secrets.add_delivered(token_of(links_to(email, "/staff/accept-invite?token=")[-1]))
    assert http.post("/v1/staff/accept-invite", {"token": accept, "password": "weakpassword"})[0] == 400
    status, body = http.post("/v1/staff/accept-invite", {"token": accept, "password": STAFF_PASSWORD})
    assert status == 200, body
    secrets.add(STAFF_PASSWORD, body["access_token"])
    username = email
    wrong = secrets.add(passwords()[0])
    assert tenant.sign_in(username, wrong)[0] == 401
    status, body = tenant.sign_in(username, STAFF_PASSWORD)
    assert status == 200
    changed = secrets.add(passwords()[0])
    status, body = http.post("/v1/staff/change-password", {"current_password": STAFF_PASSWORD,
                                                            "new_password": changed}, token=body["access_token"])
    assert status == 200
    secrets.add(body["access_token"])
    # forgot password: code by email
    status, started = http.post("/v1/staff/password-reset/start", {"tenant_id": tenant.id, "identifier": username})
    flow = secrets.add(started["flow_id"])
    assert http.post("/v1/staff/password-reset/send-code", {"flow_id": flow})[0] == 202
    code = secrets.add_delivered(last_code(app, email))
    assert http.post("/v1/staff/password-reset/verify", {"flow_id": flow, "code": "Wrong123"})[0] == 400
    status, verified = http.post("/v1/staff/password-reset/verify", {"flow_id": flow, "code": code})
    assert status == 200
    reset_token = secrets.add(verified["reset_token"])
    after_code = secrets.add(passwords()[0])
    assert http.post("/v1/staff/password-reset/complete", {"reset_token": reset_token,
                                                           "new_password": after_code})[0] == 200
    # an admin-sent reset link
    assert http.post(f"/v1/people/{pid}/password-reset-link", {}, token=admin)[0] == 202
    drain(app)
    link_token = secrets.add_delivered(token_of(links_to(email, "/staff/reset-password?token=")[-1]))
    after_link = secrets.add(passwords()[0])
    assert http.post("/v1/staff/password-reset/complete", {"reset_token": link_token,
                                                           "new_password": after_link})[0] == 200
    # a generated temporary password, then the forced change
    status, body = http.post(f"/v1/people/{pid}/temporary-password", {}, token=admin)
    assert status == 201
    temporary = secrets.add(body["temporary_password"])
    status, body = tenant.sign_in(username, temporary)
    assert status == 403
    change = secrets.add(body["error"]["change_token"])
    final = secrets.add(passwords()[0])
    assert http.post("/v1/staff/change-password", {"new_password": final}, token=change)[0] == 200
    # an admin-set account (rule 10)
    tech = http.post("/v1/people", {"kind": "technician", "name": "Tech", "mobile": f"+1201{2_000_000 + uuid.uuid4().int % 8_000_000}"},
                     token=admin)[1]
    given = secrets.add(passwords()[0])
    assert http.post(f"/v1/people/{tech['person_id']}/account", {"username": f"tech.{uuid.uuid4().hex[:6]}",
                                                                 "password": given}, token=admin)[0] == 201


def bulk_flow(app, http, tenant, secrets):
    from test_bulk_invites import upload
    admin = tenant.admin_token
    emails = [f"bulk{i}.{uuid.uuid4().hex[:6]}@{tenant.id}.example" for i in range(3)]
    http.post("/v1/customers", {"name": "Bulk Customer", "emails": emails}, token=admin)
    name = f"run-{uuid.uuid4().hex[:6]}.csv"
    upload(app, tenant.id, name, ("name,email\n" + "".join(f"N{i},{e}\n" for i, e in enumerate(emails))).encode())
    drain(app)
    for address in emails:
        secrets.add_delivered(token_of(links_to(address, "/register")[-1]))
    return name


def partner_flow(http, tenant, secrets):
    from ops import partner_portals
    portal, client_secret = partner_portals.create_portal(f"Secret Partner {uuid.uuid4().hex[:6]}", ["view_customer"],
                                                   "v1", "Agreement.\n", portal_id="p-" + uuid.uuid4().hex[:10])
    secrets.add(client_secret)
    assert http.post(f"/v1/partner-portals/{portal.portal_id}/enable", {"accept": True, "agreement_version": "v1"},
                     token=tenant.admin_token)[0] == 200
    wrong = secrets.add(passwords()[0])
    assert http.post("/v1/partner/token", {"client_id": portal.client_id, "client_secret": wrong,
                                           "tenant_id": tenant.id})[0] == 401
    status, body = http.post("/v1/partner/token", {"client_id": portal.client_id, "client_secret": client_secret,
                                                   "tenant_id": tenant.id})
    assert status == 200
    secrets.add(body["access_token"])
    assert http.get("/v1/partner/permissions", token=body["access_token"])[0] == 200
    rotated = partner_portals.rotate_secret(portal.portal_id)
    secrets.add(rotated)


# --- where to look --------------------------------------------------------------------------------------------

def every_table_item():
    ddb = config.client("dynamodb")
    for short in config.TABLES:
        name = config.table_name(short)
        for page in ddb.get_paginator("scan").paginate(TableName=name):
            for item in page["Items"]:
                yield short, json.dumps(item)


def bulk_reports(tenant_id):
    s3 = config.client("s3")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"bulk-invite-reports/{tenant_id}/").get("Contents", [])
    return [s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read().decode() for o in listed]


def outbox_files():
    return set(Path(os.environ["PORTAL_OUTBOX_DIR"]).glob("*.json"))


def found_in(secrets, texts):
    """(secret, where) for every secret found in one of the (where, text) pairs."""
    return [(secret[:12] + "…", where) for where, text in texts for secret in secrets if secret in text]


def test_no_secret_in_logs_tables_reports_outbox_or_errors(app, client, tenant, capsys, caplog, monkeypatch):
    caplog.set_level(logging.INFO)  # the level the service runs at (POWERTOOLS_LOG_LEVEL)
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")  # the operator's "log every event" switch
    monkeypatch.setenv("PORTAL_SES_RATE_PER_SECOND", "1000")
    http = Recording(client)
    secrets = Secrets([STRONG_PASSWORD])
    before = outbox_files()
    portal_flows(app, http, tenant, secrets)
    staff_flows(app, http, tenant, secrets)
    report_name = bulk_flow(app, http, tenant, secrets)
    partner_flow(http, tenant, secrets)
    # a message delivered straight through the send-queue handler, as in the first version of this test
    link_token = secrets.add_delivered("LinkToken-" + uuid.uuid4().hex * 2)
    msg = messaging.email(tenant.id, "someone@example.com", "Your link", f"Open http://x/register?token={link_token}",
                          [f"http://x/register?token={link_token}"])
    app.on_send_message({"Records": [{"messageId": "m1", "receiptHandle": "r", "body": json.dumps(msg),
                                      "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                                      "md5OfBody": "", "eventSource": "aws:sqs",
                                      "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                                      "awsRegion": "us-east-1"}]}, LambdaContext())
    assert len(set(secrets)) == len(secrets) >= 40, len(secrets)

    # logs
    out = capsys.readouterr()
    logs = out.out + out.err + "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str)
                                         for r in caplog.records)
    assert "request served" in logs and "message delivered" in logs  # the logs were captured at all
    leaks = found_in(secrets, [("logs", logs)])

    # every DynamoDB table (audit trail included)
    items = list(every_table_item())
    assert {"audit", "tokens", "sessions", "people", "portal-users", "counters", "idempotency"} <= \
        {table for table, _ in items}
    assert any(tenant.id in text for table, text in items if table == "audit")
    leaks += found_in(secrets, [(f"table {table}", text) for table, text in items])

    # bulk reports
    reports = bulk_reports(tenant.id)
    assert any(report_name in r or "invited" in r for r in reports), reports
    leaks += found_in(secrets, [("bulk report", r) for r in reports])

    # the outbox: everything but the message itself
    written = [json.loads(p.read_text()) for p in outbox_files() - before]
    assert len(written) >= 10
    carried = " ".join(" ".join([m["body"], m.get("html") or "", *m["links"]]) for m in written)
    assert all(secret in carried for secret in secrets.delivered)  # they did go out, in the message itself
    metadata = [{k: v for k, v in m.items() if k not in ("body", "html", "links")} for m in written]
    leaks += found_in(secrets, [("outbox metadata", json.dumps(m)) for m in metadata])
    # and the messages carry nothing else: no password (temporary ones included), session token or client secret
    leaks += found_in([s for s in secrets if s not in secrets.delivered], [("outbox message", carried)])

    # every error answer
    assert len(http.errors) >= 10
    leaks += found_in(secrets, [("error answer", e) for e in http.errors])

    assert not leaks, sorted(set(where for _, where in leaks)) + leaks


@pytest.mark.parametrize("field", ["password", "new_password", "client_secret"])
def test_a_refused_body_is_not_echoed(http, field):
    """Validation errors name the field and the rule, never the value (a password in the wrong field, say)."""
    secret = passwords()[0]
    for path in ("/v1/staff/sign-in", "/v1/portal/sign-in", "/v1/staff/password-reset/complete",
                 "/v1/partner/token"):
        for body in ({field: secret}, {field: secret, "tenant_id": 7}, {field: [secret]},
                     {"username": secret, field: secret, "unexpected": secret}):
            status, answer = http.post(path, body)
            assert status == 400 and secret not in json.dumps(answer), (path, body, answer)
