"""Sign in, fail, change a password, send a message: no password, token or code reaches any log line."""
import json
import logging

from chalicelib import messaging
from conftest import STRONG_PASSWORD, LambdaContext


def test_no_secret_in_any_log_line(http, tenant, app, capsys, caplog):
    caplog.set_level(logging.INFO)  # the level the service runs at (POWERTOOLS_LOG_LEVEL)
    secrets = [STRONG_PASSWORD, "Wrong-Password-99", "Brand-New-Pass-77"]
    assert tenant.sign_in(password="Wrong-Password-99")[0] == 401
    status, body = tenant.sign_in()
    token = body["access_token"]
    secrets.append(token)
    status, body = http.post("/v1/staff/change-password", {"current_password": STRONG_PASSWORD,
                                                            "new_password": "Brand-New-Pass-77"}, token=token)
    assert status == 200
    secrets.append(body["access_token"])
    link_token = "LinkToken-" + "x" * 40
    secrets.append(link_token)
    msg = messaging.email(tenant.id, "someone@example.com", "Your link", f"Open http://x/register?token={link_token}",
                          [f"http://x/register?token={link_token}"])
    app.on_send_message({"Records": [{"messageId": "m1", "receiptHandle": "r", "body": json.dumps(msg),
                                      "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                                      "md5OfBody": "", "eventSource": "aws:sqs",
                                      "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                                      "awsRegion": "us-east-1"}]}, LambdaContext())
    out = capsys.readouterr()
    lines = out.out + out.err + "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str)
                                          for r in caplog.records)
    assert "request served" in lines  # the logs were captured at all
    for secret in secrets:
        assert secret not in lines
