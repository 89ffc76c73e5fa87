"""The send queue: flows enqueue, the handler delivers through SES/SNS (moto) exactly once, the outbox gets
one JSON file per message, and a failed message is reported for retry instead of lost."""
import json
import os
from pathlib import Path

from chalicelib import config, messaging
from conftest import LambdaContext, drain, outbox_for


def test_messages_are_delivered_once_and_written_to_the_outbox(app):
    drain(app)  # what earlier tests of this process left on the queue
    msgs = [messaging.email("t1", f"user{i}@send.example", "Hello", f"Body {i}", [f"http://x/{i}"])
            for i in range(12)]
    msgs.append(messaging.sms("t1", "+15550009999", "Your code is in the app"))
    messaging.enqueue(msgs)
    event, result = drain(app)
    assert result == {"batchItemFailures": []}
    assert len(event["Records"]) == 13
    first = outbox_for("user0@send.example")
    assert len(first) == 1
    assert set(first[0]) >= {"channel", "to", "subject", "body", "links"} and first[0]["links"] == ["http://x/0"]
    assert outbox_for("+15550009999")[0]["channel"] == "sms"
    # the same delivery again (SQS at-least-once) sends nothing twice
    again = app.on_send_message(event, LambdaContext())
    assert again == {"batchItemFailures": []}
    assert len(outbox_for("user0@send.example")) == 1


def test_a_failed_send_is_reported_for_retry(app, monkeypatch):
    msg = messaging.email("t1", "bounce@send.example", "Hello", "Body")
    monkeypatch.setenv("PORTAL_SENDER_EMAIL", "unverified@elsewhere.example")  # SES refuses this sender
    event = {"Records": [{"messageId": "m-fail", "receiptHandle": "r", "body": json.dumps(msg),
                          "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "",
                          "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                          "awsRegion": "us-east-1"}]}
    result = app.on_send_message(event, LambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-fail"}]}
    assert outbox_for("bounce@send.example") == []
    monkeypatch.setenv("PORTAL_SENDER_EMAIL", "no-reply@portal-access.example")
    assert app.on_send_message(event, LambdaContext()) == {"batchItemFailures": []}  # the retry goes out
    assert len(outbox_for("bounce@send.example")) == 1
