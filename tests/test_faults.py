"""Faults injected at the HTTP layer under a 5,000-row bulk run: DynamoDB `ThrottlingException` and
`ProvisionedThroughputExceededException`, SES `Throttling` (the SDK retries them, the sender backs off), an S3
read that breaks mid-stream, SES rejecting some recipients for good; and SNS throttling under a bulk run of
technician invitations by SMS, with SNS refusing one number for good. Every invitation is still sent exactly
once; what cannot be sent ends in the send DLQ with its reason, and redrive moves it back."""
import json
import os
import random
import uuid

import botocore.endpoint
import botocore.response
import pytest
from botocore.awsrequest import AWSResponse
from conftest import LambdaContext, make_tenant

from chalicelib.core import config, dead_letters
from chalicelib.core.models import Customer, RecordEmail
from chalicelib.flows.portal.invitations import portal_user_id

ROWS = int(os.environ.get("FAULT_ROWS", 5000))  # the file's rows: 1,000 distinct emails on record (each twice), 3,000 rows of strangers
INVITABLE = int(os.environ.get("FAULT_INVITABLE", 1000))
REJECTED = 3
TECHNICIANS = 60
FAULT_BUDGET = 300  # injected throttles; the SDK's retries back off, so an unbounded rate would only measure sleep


class Raw:
    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **_):
        yield self.body

    def read(self, *_):
        return self.body


DYNAMODB_THROTTLES = ("ThrottlingException", "ProvisionedThroughputExceededException")


def query_error(status, code, message):
    """An error answer of the query protocol (SES, SNS) as AWS sends it."""
    body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>x</RequestId></ErrorResponse>").encode()
    return AWSResponse("", status, {"Content-Type": "text/xml"}, Raw(body))


def throttled(request, body, stats):
    target = request.headers.get("X-Amz-Target", b"")
    target = target.decode() if isinstance(target, bytes) else target
    if target.startswith("DynamoDB_"):
        code = DYNAMODB_THROTTLES[stats["throttled"] % 2]  # both, alternately
        stats[code] = stats.get(code, 0) + 1
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}",
                           "message": "Rate of requests exceeds the allowed throughput."}).encode()
        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, Raw(body))
    if b"Action=Publish" in body:  # SNS answers throttling with 429 Throttled
        stats["Throttled"] = stats.get("Throttled", 0) + 1
        return query_error(429, "Throttled", "Rate exceeded")
    stats["Throttling"] = stats.get("Throttling", 0) + 1
    return query_error(400, "Throttling", "Maximum sending rate exceeded.")


@pytest.fixture
def faults(monkeypatch):
    # one generator for DynamoDB and one for SES/SNS: how many DynamoDB calls a flow makes (which changes with the
    # code) must not change which sends are throttled, nor how many
    rng, send_rng = random.Random(7), random.Random(11)
    stats = {"throttled": 0, "s3_breaks": 0, "refused_numbers": set()}
    real_send = botocore.endpoint.Endpoint._send

    def send(self, request):
        body = request.body.encode() if isinstance(request.body, str) else request.body
        body = body if isinstance(body, bytes) else b""  # (a stream: an S3 upload)
        target = str(request.headers.get("X-Amz-Target", b""))
        is_sns = b"Action=Publish" in body
        if is_sns and any(number.encode() in body for number in stats["refused_numbers"]):
            return query_error(400, "InvalidParameter", "Invalid parameter: PhoneNumber Reason: not a mobile")
        if stats["throttled"] < FAULT_BUDGET and (("DynamoDB" in target and rng.random() < 0.03)
                                                  or ((b"Action=SendEmail" in body or is_sns)
                                                      and send_rng.random() < 0.10)):
            response = throttled(request, body, stats)
            stats["throttled"] += 1
            return response
        return real_send(self, request)
    monkeypatch.setattr(botocore.endpoint.Endpoint, "_send", send)

    real_read = botocore.response.StreamingBody.read
    reads = {"n": 0}

    def read(self, amt=None):
        reads["n"] += 1
        if reads["n"] == 1:  # the first run gets a first piece of the file…
            return real_read(self, 4096)
        if reads["n"] == 2:  # …then the connection breaks mid-stream
            stats["s3_breaks"] += 1
            raise botocore.exceptions.ResponseStreamingError(error="connection reset by peer")
        return real_read(self, amt)
    monkeypatch.setattr(botocore.response.StreamingBody, "read", read)
    monkeypatch.setenv("PORTAL_SES_RATE_PER_SECOND", "100000")
    # The SDK really backs off and retries; its clock runs 50x faster here so the test measures behaviour, not sleep.
    real_sleep = botocore.endpoint.time.sleep
    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda seconds: real_sleep(seconds / 50))
    return stats


def delivered_per_address():
    from collections import Counter as Tally
    from pathlib import Path
    return Tally(json.loads(p.read_text())["to"] for p in Path(os.environ["PORTAL_OUTBOX_DIR"]).glob("*.json"))


def queue_url(short):
    return config.client("sqs").get_queue_url(QueueName=config.resource_name(short))["QueueUrl"]


def sqs_event(messages, queue):
    return {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                         "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                         "eventSource": "aws:sqs", "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{queue}",
                         "awsRegion": "us-east-1"} for m in messages]}


def run_queue(handler, short, max_rounds=400):
    """Lambda's SQS event source in miniature: batches to the handler, successes deleted, failures visible again
    at once (instead of after the visibility timeout); the queue's redrive policy moves repeat failures to the DLQ."""
    sqs, url = config.client("sqs"), queue_url(short)
    for _ in range(max_rounds):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
        got = [m for m in got if "s3:TestEvent" not in m["Body"]]
        if not got:
            return
        result = handler(sqs_event(got, short), LambdaContext())
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for m in got:
            if m["MessageId"] in failed:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
            else:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    raise AssertionError(f"{short} queue did not drain")


def test_every_invitation_sent_exactly_once_under_faults(app, http, faults, monkeypatch):
    from chalicelib.core import messaging
    tenant = make_tenant(http)
    emails = [f"row{i}@{tenant.id}.example" for i in range(INVITABLE)]
    strangers = [f"stranger{i}@{tenant.id}.example" for i in range(ROWS - 2 * INVITABLE)]
    rejected = set(emails[:REJECTED])
    with Customer.batch_write() as customers, RecordEmail.batch_write() as index:
        for start in range(0, INVITABLE, 50):
            cid = uuid.uuid4().hex
            customers.save(Customer(tenant.id, cid, name=f"C{start}", emails=emails[start:start + 50]))
            for e in emails[start:start + 50]:
                index.save(RecordEmail(tenant.id, e, refs={f"customer:{cid}"}))
    real_send = messaging._send

    def ses_rejects_some(message):
        if message["to"] in rejected:
            from botocore.exceptions import ClientError
            raise ClientError({"Error": {"Code": "MessageRejected", "Message": "Email address is on the account's "
                                         "suppression list."}}, "SendEmail")
        return real_send(message)
    monkeypatch.setattr(messaging, "_send", ses_rejects_some)

    csv = "\n".join(emails + strangers + emails) + "\n"
    assert csv.count("\n") == ROWS
    config.client("s3").put_object(Bucket="portal-access-test-uploads", Key=f"bulk-invites/{tenant.id}/faults.csv",
                                   Body=csv.encode())
    run_queue(app.on_bulk_invite_upload, "bulk-invites")
    run_queue(app.on_send_bulk, "send-bulk")  # the invitations go by the bulk lane

    assert faults["throttled"] >= 20 and faults["s3_breaks"] == 1
    assert all(faults.get(code, 0) >= 5 for code in (*DYNAMODB_THROTTLES, "Throttling")), sorted(faults.items())
    report = json.loads(config.client("s3").get_object(
        Bucket="portal-access-test-uploads", Key=f"bulk-invite-reports/{tenant.id}/faults.csv.json")["Body"].read())
    counts = report["counts"]
    assert (counts["rows"], counts["invited"], counts["duplicate"], counts["skipped_not_on_record"]) == \
        (ROWS, INVITABLE, INVITABLE, ROWS - 2 * INVITABLE)
    sent = delivered_per_address()
    assert {e for e in emails if sent[e] != 1} == rejected  # everyone else exactly once
    assert all(sent[e] == 0 for e in rejected) and not any(sent[e] for e in strangers)
    dead = dead_letters.list_dead("send-bulk")
    assert len(dead) == REJECTED
    assert all("MessageRejected" in d["reason"] and "suppression" in d["reason"] for d in dead)
    # once the cause is fixed (the addresses are off the suppression list), redrive sends them, once
    monkeypatch.setattr(messaging, "_send", real_send)
    assert dead_letters.redrive("send-bulk") == REJECTED
    run_queue(app.on_send_bulk, "send-bulk")
    sent = delivered_per_address()
    assert all(sent[e] == 1 for e in emails)
    assert dead_letters.list_dead("send-bulk") == []
    assert portal_user_id(emails[0])


def test_every_sms_invitation_sent_exactly_once_under_sns_throttling(app, http, faults, monkeypatch):
    """Technicians with only a mobile number, invited in one staff bulk run: SNS throttles one Publish in ten
    (429 Throttled) and refuses one number for good (InvalidParameter)."""
    from urllib.parse import quote
    tenant = make_tenant(http)
    token = tenant.admin_token
    mobiles = [f"+1201{7000000 + i}" for i in range(TECHNICIANS)]
    for i, mobile in enumerate(mobiles):
        status, _ = http.post("/v1/people", {"kind": "technician", "name": f"Tech {i}", "mobile": mobile},
                              token=token)
        assert status == 201
    refused = mobiles[0]
    faults["refused_numbers"].add(quote(refused))  # the number as it appears in the form-encoded request
    status, job = http.post("/v1/people/bulk-invite", {"all": True, "type": "send"}, token=token)
    assert status == 200 and job["counts"]["sent"] == TECHNICIANS, job
    run_queue(app.on_send_bulk, "send-bulk")  # a staff bulk run goes by the bulk lane

    assert faults.get("Throttled", 0) >= 5
    sent = delivered_per_address()
    assert {m for m in mobiles if sent[m] != 1} == {refused}
    assert sent[refused] == 0
    dead = dead_letters.list_dead("send-bulk")
    assert len(dead) == 1 and "InvalidParameter" in dead[0]["reason"]
    faults["refused_numbers"].clear()  # the number was corrected at the carrier
    assert dead_letters.redrive("send-bulk") == 1
    run_queue(app.on_send_bulk, "send-bulk")
    sent = delivered_per_address()
    assert all(sent[m] == 1 for m in mobiles) and dead_letters.list_dead("send-bulk") == []
