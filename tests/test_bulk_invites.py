"""Bulk invitations from a CSV dropped into the uploads bucket: S3 -> SQS (moto delivers the notification) ->
the real handler; one outcome per distinct email, a report, exactly-once sending across replays and resumes."""
import json
import urllib.request

import botocore.client
import pytest
from conftest import LambdaContext, drain, outbox_for

from chalicelib.core import config, messaging
from chalicelib.core.models import Job, PortalUser
from chalicelib.flows.portal.invitations import portal_user_id

BUCKET = "portal-access-test-uploads"


def s3():
    return config.client("s3")


def bulk_events():
    """What S3 put on the bulk queue since last time, as Lambda SQS events of one record each (batch_size=1)."""
    sqs = config.client("sqs")
    url = sqs.get_queue_url(QueueName=config.queue_name("bulk-invites"))["QueueUrl"]
    events = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
        if not got:
            return events
        for m in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            events.append({"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
                                        "body": m["Body"], "attributes": m.get("Attributes", {}),
                                        "messageAttributes": {}, "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
                                        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bulk",
                                        "awsRegion": "us-east-1"}]})


def upload(app, tenant_id, name, data, metadata=None):
    s3().put_object(Bucket=BUCKET, Key=f"bulk-invites/{tenant_id}/{name}", Body=data, Metadata=metadata or {})
    events = [e for e in bulk_events() if "s3:TestEvent" not in e["Records"][0]["body"]]
    assert events, "S3 did not notify the bulk queue"
    results = [app.on_bulk_invite_upload(e, LambdaContext()) for e in events]
    return events, results


def report(tenant_id, name):
    body = s3().get_object(Bucket=BUCKET, Key=f"bulk-invite-reports/{tenant_id}/{name}.json")["Body"].read()
    return json.loads(body)


@pytest.fixture
def directory_of(http, tenant):
    t = tenant.admin_token
    d = tenant.id
    c1 = http.post("/v1/customers", {"name": "Harper", "emails": [f"owner@{d}.example"]}, token=t)[1]
    http.post(f"/v1/customers/{c1['customer_id']}/locations", {"address": "1 Elm", "emails": [f"renter@{d}.example"]},
              token=t)
    http.post(f"/v1/customers/{c1['customer_id']}/contacts", {"name": "Books", "email": f"books@{d}.example"}, token=t)
    for name in ("active", "bouncing", "invited"):
        http.post("/v1/customers", {"name": name, "emails": [f"{name}@{d}.example"]}, token=t)
    users = {}
    for name in ("active", "bouncing", "invited"):
        cid = http.get("/v1/customers?limit=100", token=t)[1]["items"]
        cid = next(c["customer_id"] for c in cid if c["name"] == name)
        users[name] = http.post("/v1/portal/invitations", {"customer_id": cid, "email": f"{name}@{d}.example"},
                                token=t)[1]["user_id"]
    PortalUser.get(d, users["active"]).update(actions=[PortalUser.status.set("active"),
                                                       PortalUser.status_key.set(f"{d}#active")])
    PortalUser.get(d, users["bouncing"]).update(actions=[PortalUser.delivery_problem.set("bouncing")])
    drain(app_module())
    return {"customer_id": c1["customer_id"], "token": t, "domain": d}


def app_module():
    import app
    return app


def test_one_outcome_per_distinct_email_and_a_report(app, http, tenant, directory_of):
    d = directory_of["domain"]
    csv = (f"name,email\nOwner,OWNER@{d}.example\nRenter,renter@{d}.example\nBooks,\"Books <books@{d}.example>\"\n"
           f"Again,owner@{d}.example\nStranger,stranger@{d}.example\nActive,active@{d}.example\n"
           f"Bouncing,bouncing@{d}.example\nInvited,invited@{d}.example\nBad,bad@@{d}.example\n,\n").encode()
    _, results = upload(app, d, "march.csv", csv)
    assert results == [{"batchItemFailures": []}]
    r = report(d, "march.csv")
    assert r["status"] == "done"
    c = r["counts"]
    assert (c["invited"], c["skipped_not_on_record"], c["skipped_active"], c["skipped_bouncing"],
            c["skipped_already_invited"], c["invalid"], c["duplicate"]) == (3, 1, 1, 1, 1, 1, 1)
    outcomes = {(row["line"], row.get("email") or row.get("text")): row["outcome"] for row in r["rows"]}
    assert outcomes[(2, f"owner@{d}.example")] == "invited" and outcomes[(5, f"owner@{d}.example")] == "duplicate"
    assert outcomes[(11, None)] == "no_email" if (11, None) in outcomes else True
    drain(app)
    for who in ("owner", "renter", "books"):
        assert len(outbox_for(f"{who}@{d}.example")) == 1, who
    assert outbox_for(f"stranger@{d}.example") == []
    assert len(outbox_for(f"invited@{d}.example")) == 1  # only the first, individual invitation
    grants = {g.customer_id: (g.access, g.contact_id) for g in PortalUser.get(d, portal_user_id(f"books@{d}.example")).grants}
    assert list(grants.values())[0][0] == "non_billing" and list(grants.values())[0][1]
    renter = PortalUser.get(d, portal_user_id(f"renter@{d}.example")).grants[0]
    assert renter.access == "non_billing"
    # the job behind the API
    status, jobs = http.get("/v1/portal/bulk-invites", token=directory_of["token"])
    assert status == 200 and jobs["items"][0]["status"] == "done" and jobs["items"][0]["counts"]["invited"] == 3
    status, job = http.get(f"/v1/portal/bulk-invites/{jobs['items'][0]['job_id']}", token=directory_of["token"])
    assert job["report_key"] == f"bulk-invite-reports/{d}/march.csv.json"


def test_the_same_upload_delivered_again_sends_nothing(app, tenant, directory_of):
    d = directory_of["domain"]
    events, _ = upload(app, d, "again.csv", f"owner@{d}.example\nrenter@{d}.example\n".encode())
    for _ in range(3):  # S3 and SQS both deliver at least once
        for event in events:
            assert app.on_bulk_invite_upload(event, LambdaContext()) == {"batchItemFailures": []}
    drain(app)
    assert len(outbox_for(f"owner@{d}.example")) == 1 and len(outbox_for(f"renter@{d}.example")) == 1


def test_include_invited_resends_to_those_still_invited(app, tenant, directory_of):
    d = directory_of["domain"]
    upload(app, d, "resend.csv", f"invited@{d}.example\nactive@{d}.example\n".encode(),
           metadata={"include-invited": "true"})
    assert report(d, "resend.csv")["counts"]["invited"] == 1
    drain(app)
    assert len(outbox_for(f"invited@{d}.example")) == 2
    assert outbox_for(f"active@{d}.example") == []


@pytest.mark.parametrize("name, data, code", [
    ("empty.csv", b"", "empty_file"),
    ("book.xlsx", b"PK\x03\x04" + bytes(200), "not_csv"),
    ("photo.csv", bytes(range(256)) * 20, "not_text"),
])
def test_bad_files_get_a_report_and_send_nothing(app, http, tenant, directory_of, name, data, code):
    d = directory_of["domain"]
    _, results = upload(app, d, name, data)
    assert results == [{"batchItemFailures": []}]  # not retried: retrying cannot fix the file
    r = report(d, name)
    assert r["status"] == "failed" and r["error"] == code
    jobs = http.get("/v1/portal/bulk-invites", token=directory_of["token"])[1]["items"]
    assert any(j["error"] == code and j["status"] == "failed" for j in jobs)


def test_unknown_tenant_prefix(app):
    _, results = upload(app, "no-such-tenant", "x.csv", b"a@b.example\n")
    assert results == [{"batchItemFailures": []}]
    assert report("no-such-tenant", "x.csv")["error"] == "unknown_tenant"


def customers_with(http, tenant, emails: list[str]) -> None:
    """The emails on customer records, 20 to a record."""
    for start in range(0, len(emails), 20):
        http.post("/v1/customers", {"name": f"C{start}", "emails": emails[start:start + 20]}, token=tenant.admin_token)


def second_chunk_put_fails(monkeypatch, error: Exception):
    """The second chunk's invitations fail to go onto the line (a chunk puts its own); the real put, to restore."""
    real_put, calls = messaging.put_bulk, {"n": 0}

    def put(tenant_id, messages):
        calls["n"] += 1
        if calls["n"] == 2:
            raise error
        return real_put(tenant_id, messages)
    monkeypatch.setattr(messaging, "put_bulk", put)
    return real_put


def test_a_run_cut_off_half_way_finishes_without_sending_twice(app, http, tenant, monkeypatch):
    d = tenant.id
    emails = [f"person{i}@{d}.example" for i in range(250)]
    customers_with(http, tenant, emails)
    real_put = second_chunk_put_fails(monkeypatch, ConnectionError("Lambda timed out here"))
    s3().put_object(Bucket=BUCKET, Key=f"bulk-invites/{d}/big.csv", Body="\n".join(emails).encode())
    [event] = [e for e in bulk_events() if "TestEvent" not in e["Records"][0]["body"]]
    result = app.on_bulk_invite_upload(event, LambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    job = next(Job.query(d))
    assert job.status == "running"
    monkeypatch.setattr(messaging, "put_bulk", real_put)
    assert app.on_bulk_invite_upload(event, LambdaContext()) == {"batchItemFailures": []}  # the redelivery
    drain(app)
    assert all(len(outbox_for(e)) == 1 for e in emails)
    assert report(d, "big.csv")["counts"]["invited"] == 250
    assert Job.get(d, job.job_id).attempts == 2


def test_a_run_failing_on_its_last_try_still_sends_what_it_invited(app, http, tenant, monkeypatch):
    """The queue's last try fails after some chunks put their invitations on the line: the job ends failed, and
    those invitations are announced to the sender (their users are written as invited by this job, so no later run
    would invite them again)."""
    from chalicelib.core import send_backlog
    d = tenant.id
    emails = [f"last{i}@{d}.example" for i in range(250)]
    customers_with(http, tenant, emails)
    drain(app)
    second_chunk_put_fails(monkeypatch, ConnectionError("DynamoDB unreachable"))
    s3().put_object(Bucket=BUCKET, Key=f"bulk-invites/{d}/last.csv", Body="\n".join(emails).encode())
    [event] = [e for e in bulk_events() if "TestEvent" not in e["Records"][0]["body"]]
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "5"
    assert app.on_bulk_invite_upload(event, LambdaContext())["batchItemFailures"]
    assert next(Job.query(d)).status == "failed"
    assert d in dict(send_backlog.active_lines())  # announced: the drainer and the schedule see the line
    drain(app)
    sent = [e for e in emails if outbox_for(e)]
    assert len(sent) >= 100 and all(len(outbox_for(e)) == 1 for e in sent)


def test_poison_upload_fails_the_job_on_the_last_try(app, tenant, monkeypatch):
    from chalicelib.flows.portal import bulk_invites
    d = tenant.id
    monkeypatch.setattr(bulk_invites, "_decide", lambda run: (_ for _ in ()).throw(RuntimeError("bug")))
    s3().put_object(Bucket=BUCKET, Key=f"bulk-invites/{d}/poison.csv", Body=b"a@b.example\n")
    [event] = [e for e in bulk_events() if "TestEvent" not in e["Records"][0]["body"]]
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "5"
    result = app.on_bulk_invite_upload(event, LambdaContext())
    assert result["batchItemFailures"]  # to the DLQ, by the queue's redrive policy
    job = next(Job.query(d))
    assert job.status == "failed" and job.error == "processing_failed"


def test_few_dynamodb_calls_per_email(app, http, tenant, monkeypatch):
    t, d = tenant.admin_token, tenant.id
    emails = [f"p{i}@{d}.example" for i in range(400)]
    for start in range(0, 400, 20):
        http.post("/v1/customers", {"name": f"C{start}", "emails": emails[start:start + 20]}, token=t)
    s3().put_object(Bucket=BUCKET, Key=f"bulk-invites/{d}/count.csv", Body="\n".join(emails * 2).encode())
    [event] = [e for e in bulk_events() if "TestEvent" not in e["Records"][0]["body"]]
    counted = {"dynamodb": 0, "bulk lane": 0, "per job": 0}
    real = botocore.client.BaseClient._make_api_call

    def counting(self, operation, params):
        if self.meta.service_model.service_name == "dynamodb":
            # the bulk lane's writes (send backlog, its lease read) are counted apart: they scale with messages;
            # and the job's own item and the business's (start, lease, checkpoint, end): a few per file, any size
            tables = json.dumps(params.get("RequestItems") or params.get("TableName"))
            lane = "send-backlog" in tables or "send-bulk-lease" in json.dumps(params.get("Key"))
            job = tables.endswith('-jobs"') or tables.endswith('-tenants"')
            counted["bulk lane" if lane else "per job" if job else "dynamodb"] += 1
        return real(self, operation, params)
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    assert app.on_bulk_invite_upload(event, LambdaContext()) == {"batchItemFailures": []}
    monkeypatch.undo()
    assert report(d, "count.csv")["counts"]["invited"] == 400
    print(f"\nDynamoDB calls per distinct email: {counted['dynamodb'] / 400:.3f} "
          f"and {counted['bulk lane'] / 400:.3f} on the bulk lane; {counted['per job']} for the job")
    assert counted["per job"] <= 10, counted
    assert (counted["dynamodb"] + counted["bulk lane"]) / 400 <= 0.1, counted  # DESIGN's bar, the lane included
    # 25 messages per BatchWriteItem, then one marker and one lease read per 500 invitations (not per chunk)
    assert counted["bulk lane"] <= 400 / 25 + 2, counted


def test_upload_url_binds_the_tenant(app, http, tenant, directory_of):
    d = directory_of["domain"]
    status, body = http.post("/v1/portal/bulk-invites/upload-url", {"filename": "../../other-tenant/evil.csv",
                                                                     "include_invited": True}, token=tenant.admin_token)
    assert status == 201 and body["key"].startswith(f"bulk-invites/{d}/") and "/../" not in body["key"]
    assert body["key"].count("/") == 2
    req = urllib.request.Request(body["url"], data=f"owner@{d}.example\n".encode(), method="PUT",
                                 headers=body["headers"])
    with urllib.request.urlopen(req) as r:
        assert r.status == 200
    events = [e for e in bulk_events() if "TestEvent" not in e["Records"][0]["body"]]
    [app.on_bulk_invite_upload(e, LambdaContext()) for e in events]
    name = body["key"].split("/", 2)[2]
    r = report(d, name)
    assert r["counts"]["invited"] == 1 and r["include_invited"] is True
