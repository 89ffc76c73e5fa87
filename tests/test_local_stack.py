"""The local stack as a newcomer runs it (`python -m ops.local.stack`, what `make run` execs): it serves the
API, answers unknown routes like the production API Gateway, delivers S3 → SQS events to the real handler, and
SIGTERM to its process group (what acceptance does to `make run`) leaves nothing listening."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Local-Stack-Test-2026"
needs_app = pytest.mark.skipif(not (ROOT / "app.py").exists(), reason="app.py is not written yet")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def call(base, method, path, body=None, token=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as r:
            return r.status, r.headers.get("Content-Type", ""), json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), json.loads(e.read() or b"null")


def wait_for(pred, timeout, step=0.5):
    """The predicate's first truthy value, or None after the timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return None


def stack_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PORTAL_"))}
    return dict(env, PYTHONUNBUFFERED="1", **extra)


def test_refuses_any_stage_but_local():
    out = subprocess.run([sys.executable, "-m", "ops.local.stack"], cwd=ROOT, capture_output=True, text=True,
                         env=stack_env(PORTAL_STAGE="prod", PORTAL_AWS_PORT=str(free_port()),
                                       PORTAL_API_PORT=str(free_port())), timeout=60)
    assert out.returncode == 2
    assert "PORTAL_STAGE=local" in out.stderr and "prod" in out.stderr


@needs_app
def test_stack_serves_delivers_events_and_stops_cleanly(tmp_path):
    aws_port, api_port = free_port(), free_port()
    base = f"http://127.0.0.1:{api_port}"
    log_path = tmp_path / "stack.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ops.local.stack"], cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env=stack_env(PORTAL_AWS_PORT=str(aws_port), PORTAL_API_PORT=str(api_port),
                                              PORTAL_DEMO_ADMIN_PASSWORD=PASSWORD))

    def ready():
        assert proc.poll() is None, f"stack exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}"
        try:
            return call(base, "GET", "/v1/health")[0] == 200
        except OSError:
            return False

    try:
        assert wait_for(ready, 120), "no GET /v1/health 200 within 120 s:\n" + log_path.read_text()[-3000:]
        assert wait_for(lambda: "Ctrl-C stops everything" in log_path.read_text(), 10), "no start-up banner"
        output = log_path.read_text()
        assert f"http://127.0.0.1:{api_port}" in output and "admin@demo.example" in output
        assert PASSWORD not in output  # a password from the environment is never printed

        status, _, body = call(base, "POST", "/v1/staff/sign-in",
                               {"tenant_id": "demo", "username": "admin@demo.example", "password": PASSWORD})
        assert status == 200 and body.get("access_token"), body

        status, ctype, body = call(base, "GET", "/v1/nope")
        assert (status, ctype) == (404, "application/json")
        assert body == {"error": {"code": "not_found", "message": "No such route."}}
        # found by `make fuzz`: http.server answered methods chalice lacks itself (501, HTML)
        for method in ("TRACE", "QUERY"):
            status, ctype, body = call(base, method, "/v1/customers")
            assert (status, ctype, body["error"]["code"]) == (405, "application/json", "method_not_allowed")
            assert call(base, method, "/v1/nope")[0] == 404

        import boto3
        aws = dict(endpoint_url=f"http://127.0.0.1:{aws_port}", region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
        s3 = boto3.client("s3", **aws)
        key = f"bulk-invites/demo/e2e-{api_port}.csv"
        s3.put_object(Bucket="portal-access-local-uploads", Key=key,
                      Body=b"name;email\nJamie;JAMIE.HARPER@example.com\nNobody;nobody.on.record@example.com\n")

        def report():
            try:
                body = s3.get_object(Bucket="portal-access-local-uploads",
                                     Key=key.replace("bulk-invites/", "bulk-invite-reports/") + ".json")["Body"]
                return json.loads(body.read())
            except s3.exceptions.NoSuchKey:
                return None
        got = wait_for(report, 60)
        assert got, "no bulk report within 60 s:\n" + log_path.read_text()[-3000:]
        assert got["counts"]["invited"] == 1 and got["counts"]["skipped_not_on_record"] == 1

        def invitation_in_outbox():
            for path in (ROOT / ".local" / "outbox").glob("*.json"):
                message = json.loads(path.read_text())
                # this stack's message (the outbox may hold an earlier run's, with another port)
                if message["to"] == "jamie.harper@example.com" and any(link.startswith(base + "/register?token=")
                                                                       for link in message["links"]):
                    return message
            return None
        message = wait_for(invitation_in_outbox, 60)
        assert message and message["links"][0].startswith(base + "/register?token="), log_path.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("the stack did not stop within 20 s of SIGTERM")
    assert wait_for(lambda: not listening(api_port) and not listening(aws_port), 20), "ports still in use"
