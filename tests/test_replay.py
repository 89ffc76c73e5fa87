"""Replay: every event handler gets each of its events three times in a row and interleaved with others
(S3, SQS and SNS all deliver at least once): no duplicate invitation, message or audit entry."""
import json
from collections import Counter as Tally

from conftest import SCHEDULED_EVENT, LambdaContext, _receive_all, drain, drain_bulk, outbox_for
from test_bulk_invites import BUCKET, bulk_events

from chalicelib.core import config
from chalicelib.core.models import AuditEvent, BacklogItem, Person, now


def audit_actions(tenant_id):
    return Tally(e.action for e in AuditEvent.query(tenant_id))


def send_events():
    sqs = config.client("sqs")
    url = sqs.get_queue_url(QueueName=config.queue_name("send"))["QueueUrl"]
    out = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            out.append({"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                                     "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                                     "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
                                     "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:send", "awsRegion": "us-east-1"}]})
    return out


def test_bulk_and_send_events_replayed(app, http, tenant):
    drain(app)
    t, d = tenant.admin_token, tenant.id
    emails = [f"r{i}@{d}.example" for i in range(30)]
    http.post("/v1/customers", {"name": "Replay", "emails": emails[:20]}, token=t)
    http.post("/v1/customers", {"name": "Replay 2", "emails": emails[20:]}, token=t)
    s3 = config.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"bulk-invites/{d}/one.csv", Body="\n".join(emails[:15]).encode())
    s3.put_object(Bucket=BUCKET, Key=f"bulk-invites/{d}/two.csv", Body="\n".join(emails[10:]).encode())
    one, two = [e for e in bulk_events() if "TestEvent" not in e["Records"][0]["body"]]
    for event in [one, one, one, two, one, two, two]:  # three in a row, then interleaved
        assert app.on_bulk_invite_upload(event, LambdaContext()) == {"batchItemFailures": []}
    assert send_events() == []  # bulk invitations take the bulk lane
    waiting = [item for item in BacklogItem.query(d)]
    assert len({json.loads(item.message)["message_id"] for item in waiting}) == len(waiting) == 30  # one per email
    kicks = _receive_all("send-bulk")
    assert kicks
    for record in kicks + kicks[::-1] + kicks:  # every kick three times, interleaved: one drain delivers
        app.on_send_bulk({"Records": [record]}, LambdaContext())
    # a redriven (dead-lettered, then moved back) copy of a delivered invitation rejoins the line: not sent again
    app.on_send_bulk({"Records": [{**kicks[0], "body": waiting[0].message}]}, LambdaContext())
    drain_bulk(app)
    assert all(len(outbox_for(e)) == 1 for e in emails)
    actions = audit_actions(d)
    assert actions["portal.bulk_invite_started"] == 2 and actions["portal.bulk_invite_done"] == 2


def test_schedule_replayed(app, http, tenant):
    """Each of the schedule's three jobs due once (a temporary password past its hour, a stale staff invitation,
    a password 360 days old); the schedule event three times in a row, then interleaved with send-queue
    deliveries: each acts once and the expiry warning is sent once."""
    from chalicelib.core.due import PASSWORD_MAX_AGE_SECONDS
    from chalicelib.core.security import passwords
    from chalicelib.flows.staff import people
    at = now()
    admin = next(p for p in Person.query(tenant.id))
    from chalicelib.core.due import due_actions  # back-dated as the writers date them: in the schedule's index too
    admin.update(actions=[Person.temporary_password_expires_at.set(at - 1),
                          *due_actions(admin, temporary_password_expires_at=at - 1)])
    invited = people.create(tenant.id, kind="employee", name="Invited", email=f"inv@{tenant.id}.example")
    invited.update(actions=[Person.account_status.set("invited"), Person.invitation_expires_at.set(at - 1),
                            *due_actions(invited, account_status="invited", invitation_expires_at=at - 1)])
    aging_email = f"aging@{tenant.id}.example"
    aging = people.create(tenant.id, kind="employee", name="Aging", email=aging_email, username=aging_email,
                          password_hash=passwords.hash_password("Aging-Password-365"))
    aged = at - PASSWORD_MAX_AGE_SECONDS + 5 * 24 * 3600
    aging.update(actions=[Person.password_set_at.set(aged), *due_actions(aging, password_set_at=aged)])
    for _ in range(3):
        app.run_schedule(SCHEDULED_EVENT, LambdaContext())
    sends = send_events()
    for event in [*sends, SCHEDULED_EVENT, *sends, SCHEDULED_EVENT, *sends]:
        if event is SCHEDULED_EVENT:
            app.run_schedule(event, LambdaContext())
        else:
            assert app.on_send_message(event, LambdaContext()) == {"batchItemFailures": []}
    assert send_events() == []  # the later runs queued nothing more
    actions = audit_actions(tenant.id)
    assert (actions["staff.temporary_password_expired"], actions["staff.invitation_expired"],
            actions["staff.password_expiry_warned"]) == (1, 1, 1)
    [warning] = outbox_for(aging_email)
    assert "password" in warning["subject"].lower()


def test_ses_notifications_replayed(app, http, tenant):
    t = tenant.admin_token
    email = f"bounce@{tenant.id}.example"
    c = http.post("/v1/customers", {"name": "B", "emails": [email]}, token=t)[1]
    user = http.post("/v1/portal/invitations", {"customer_id": c["customer_id"], "email": email}, token=t)[1]
    note = {"eventType": "Bounce", "mail": {"tags": {"tenant": [tenant.id]}},
            "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": email}]}}
    event = {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn:x",
                          "Sns": {"Type": "Notification", "MessageId": "n1", "TopicArn": "arn:x", "Subject": None,
                                  "Message": json.dumps(note), "Timestamp": "2026-01-01T00:00:00Z",
                                  "MessageAttributes": {}}}]}
    before = audit_actions(tenant.id)
    for _ in range(3):
        app.on_ses_event(event, LambdaContext())
    assert http.get(f"/v1/portal/users/{user['user_id']}", token=t)[1]["delivery_problem"] == "bouncing"
    assert audit_actions(tenant.id) == before
