"""The send queue: flows enqueue, the handler delivers through SES/SNS (moto) exactly once, the outbox gets
one JSON file per message, and a failed message is reported for retry instead of lost."""
import json

from conftest import LambdaContext, drain, outbox_for

from chalicelib.core import messaging


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


def test_throttling_is_retried_with_back_off_and_the_rate_is_kept(app, monkeypatch):
    import time as time_module

    from botocore.exceptions import ClientError
    real_send = messaging._send
    failures = {"left": 2}

    def throttled_twice(message):
        if failures["left"]:
            failures["left"] -= 1
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Maximum sending rate exceeded."}},
                              "SendEmail")
        return real_send(message)
    monkeypatch.setattr(messaging, "_send", throttled_twice)
    monkeypatch.setenv("PORTAL_SEND_RATE_PER_SECOND", "20")
    msgs = [messaging.email("t1", f"rate{i}@send.example", "Hi", "Body") for i in range(10)]
    started = time_module.monotonic()
    for m in msgs:
        messaging.deliver(m)
    took = time_module.monotonic() - started
    assert failures["left"] == 0
    assert all(len(outbox_for(f"rate{i}@send.example")) == 1 for i in range(10))
    assert took >= 9 / 20  # 10 sends at 20/s need at least 0.45 s


def test_lasting_throttling_gives_the_message_back_to_the_queue(app, monkeypatch):
    from botocore.exceptions import ClientError

    def always_throttled(message):
        raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "SendEmail")
    monkeypatch.setattr(messaging, "_send", always_throttled)
    msg = messaging.email("t1", "stuck@send.example", "Hi", "Body")
    event = {"Records": [{"messageId": "m-throttled", "receiptHandle": "r", "body": json.dumps(msg),
                          "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "",
                          "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                          "awsRegion": "us-east-1"}]}
    assert app.on_send_message(event, LambdaContext()) == {"batchItemFailures": [{"itemIdentifier": "m-throttled"}]}
