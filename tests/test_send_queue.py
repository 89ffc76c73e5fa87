"""The send queue: flows enqueue, the handler delivers through SES/SNS (moto) exactly once, the outbox gets
one JSON file per message, and a failed message is reported for retry instead of lost."""
import json
from collections import Counter

from conftest import LambdaContext, drain, outbox_for

from chalicelib.core import messaging, send_rate


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
    tried_at: list[float] = []

    def throttled_twice(message):
        tried_at.append(time_module.time())
        if failures["left"]:
            failures["left"] -= 1
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Maximum sending rate exceeded."}},
                              "SendEmail")
        return real_send(message)
    monkeypatch.setattr(messaging, "_send", throttled_twice)
    monkeypatch.setenv("PORTAL_SES_RATE_PER_SECOND", "4")
    msgs = [messaging.email("t1", f"rate{i}@send.example", "Hi", "Body") for i in range(10)]
    for m in msgs:
        messaging.deliver(m, lane=messaging.BULK)
    assert failures["left"] == 0
    assert all(len(outbox_for(f"rate{i}@send.example")) == 1 for i in range(10))
    # 12 tries (10 sends, 2 throttled) at 4 a second: never more than 4 in one clock second, so three seconds at least
    # (the slots are per clock second: the elapsed time can be just over one second, the seconds cannot be fewer)
    per_second = Counter(int(t) for t in tried_at)
    assert len(tried_at) == 12 and max(per_second.values()) <= 4 and len(per_second) >= 3
    assert all(send_rate.taken("email", second) <= 4 for second in per_second)


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


def test_templates_escape_only_the_html_body_and_refuse_a_missing_value():
    """Jinja2 (templates/emails/): a value is HTML-escaped in the HTML body only; the subject, the text body and
    an SMS read as typed. A value the template needs and is not given is an error, never a blank."""
    import jinja2
    import pytest
    values = {"tenant_name": 'Bright & "Co" <Ltd>', "name": "Lee", "link": "https://x.example/r?token=a&b=c",
              "days": 14}
    mail = messaging.render_email("t1", "a@b.example", "staff-invite", [values["link"]], **values)
    assert mail["subject"] == 'Bright & "Co" <Ltd> invites you to create your staff account'
    assert 'Hello Lee,\n\nBright & "Co" <Ltd> has invited' in mail["body"] and values["link"] in mail["body"]
    assert "Bright &amp; &#34;Co&#34; &lt;Ltd&gt;" in mail["html"] and "<Ltd>" not in mail["html"]
    assert 'href="https://x.example/r?token=a&amp;b=c"' in mail["html"] and mail["html"].endswith("</body></html>\n")
    text = messaging.render_sms("t1", "+15550100", "staff-invite", [values["link"]], **values)
    assert text["body"] == ('Bright & "Co" <Ltd>: create your staff account (link valid 14 days, works once): '
                            "https://x.example/r?token=a&b=c")
    with pytest.raises(jinja2.UndefinedError):
        messaging.render_email("t1", "a@b.example", "staff-invite", [], **{k: v for k, v in values.items()
                                                                            if k != "days"})
