"""Every test process gets its own moto server (over HTTP, like the local stack) with the resources of
infra/template.json, a signing key, and tenants created per test so tests never see each other's data."""
import itertools
import json
import os
import socket
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_PORT = _free_port()
os.environ.update({
    "PORTAL_STAGE": "local", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_PORT}",
    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "portal-access", "POWERTOOLS_METRICS_NAMESPACE": "PortalAccess",
    "PORTAL_PUBLIC_BASE_URL": "http://portal.test",
})
for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(var, None)

STRONG_PASSWORD = "Correct-Horse-42-Battery"


@pytest.fixture(scope="session", autouse=True)
def aws(tmp_path_factory):
    from moto.server import ThreadedMotoServer

    from ops.local.moto_server import check_item_size_once, make_item_writes_atomic
    make_item_writes_atomic()
    check_item_size_once()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_PORT, verbose=False)
    server.start()
    os.environ["PORTAL_OUTBOX_DIR"] = str(tmp_path_factory.mktemp("outbox"))
    # Bulk-lane sends wait for the account's rate (core/send_rate.py): tests that are not about it never wait.
    os.environ.setdefault("PORTAL_SES_RATE_PER_SECOND", "100000")
    os.environ.setdefault("PORTAL_SNS_RATE_PER_SECOND", "100000")
    from chalicelib.core.security import keys
    from ops.local.resources import create_all
    created = create_all(stage="local", uploads_bucket="portal-access-test-uploads")
    os.environ["PORTAL_UPLOADS_BUCKET"] = "portal-access-test-uploads"
    keys.ensure_signing_key()
    yield created
    server.stop()


_test_ips = itertools.count(1)


@pytest.fixture(autouse=True)
def client_ip(monkeypatch):
    """Each test is a client of its own: chalice's local gateway puts this source IP in every event it makes
    (chalice.test.Client and chalice local alike), so per-IP limits one test reaches never refuse another."""
    from chalice.local import LambdaEventConverter
    n = next(_test_ips)
    ip = f"172.{16 + n // 65536 % 16}.{n // 256 % 256}.{n % 256}"
    monkeypatch.setattr(LambdaEventConverter, "LOCAL_SOURCE_IP", ip)
    return ip


@pytest.fixture(scope="session")
def app(aws):
    import app as app_module
    return app_module


@pytest.fixture
def client(app):
    from chalice.test import Client
    with Client(app.app, stage_name="local", project_dir=str(ROOT)) as c:
        yield c


class Http:
    """JSON calls through chalice.test.Client: returns (status, body)."""

    def __init__(self, client):
        self.client = client

    def call(self, method, path, body=None, token=None, raw=None, headers=None):
        h = {"Content-Type": "application/json", **(headers or {})}
        if token:
            h["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        r = getattr(self.client.http, method.lower())(path, headers=h, body=data)
        try:
            parsed = json.loads(r.body) if r.body else None
        except ValueError:
            parsed = r.body
        return r.status_code, parsed

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)


@pytest.fixture
def http(client):
    return Http(client)


class TenantFixture:
    def __init__(self, http, tenant_id, admin_username, admin_password):
        self.http, self.id, self.admin_username, self.admin_password = http, tenant_id, admin_username, admin_password

    def sign_in(self, username=None, password=None):
        return self.http.post("/v1/staff/sign-in", {"tenant_id": self.id, "username": username or self.admin_username,
                                                    "password": password or self.admin_password})

    @property
    def admin_token(self):
        status, body = self.sign_in()
        assert status == 200, body
        return body["access_token"]


def make_tenant(http, name="Test Plumbing", role="admin", password=STRONG_PASSWORD):
    from chalicelib.core.models import Tenant
    from chalicelib.core.security import passwords
    from chalicelib.flows.staff import people
    tenant_id = "t-" + uuid.uuid4().hex[:10]
    Tenant(tenant_id, name=name).save()
    username = f"admin@{tenant_id}.example"
    people.create(tenant_id, kind="employee", name="Admin", email=username, role=role, username=username,
                  password_hash=passwords.hash_password(password))
    return TenantFixture(http, tenant_id, username, password)


@pytest.fixture
def tenant(http):
    return make_tenant(http)


@pytest.fixture
def other_tenant(http):
    return make_tenant(http, name="Other Heating")


class LambdaContext:
    """What the Lambda runtime passes handlers (Powertools reads these fields)."""
    function_name = "portal-access-local"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:portal-access-local"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = log_stream_name = "local"

    @staticmethod
    def get_remaining_time_in_millis():
        return 300_000


SCHEDULED_EVENT = {"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
                   "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
                   "resources": ["arn:aws:events:us-east-1:123456789012:rule/portal-access-local-run_schedule"],
                   "detail": {}}


def _receive_all(queue: str) -> list[dict]:
    """Every message on the queue, removed from it, as records of Lambda's SQS event."""
    from chalicelib.core import config
    sqs = config.client("sqs")
    url = sqs.get_queue_url(QueueName=config.queue_name(queue))["QueueUrl"]
    records = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                  AttributeNames=["All"]).get("Messages", [])
        if not got:
            return records
        for m in got:
            records.append({"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                            "attributes": m.get("Attributes", {}), "messageAttributes": {},
                            "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
                            "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{config.queue_name(queue)}",
                            "awsRegion": "us-east-1"})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def drain_bulk(app, context=None) -> list[dict]:
    """The bulk lane to the end: each kick on the send-bulk queue handed to on_send_bulk (batch size 1, as
    Lambda does), continuations included; the handlers' results."""
    results = []
    for _round in range(1000):
        records = _receive_all("send-bulk")
        if not records:
            return results
        for record in records:
            results.append(app.on_send_bulk({"Records": [record]}, context or LambdaContext()))
    raise AssertionError("the bulk lane never ran dry")


def drain(app):
    """Receives what is on the send queue and hands it to the handler in the shape Lambda uses (the event and
    the handler's answer are returned); then runs the bulk lane to the end when the app has one."""
    records = _receive_all("send")
    event = {"Records": records}
    # Lambda never invokes with an empty batch
    result = app.on_send_message(event, LambdaContext()) if records else {"batchItemFailures": []}
    if hasattr(app, "on_send_bulk"):
        drain_bulk(app)
    return event, result


def outbox_for(address):
    """Messages delivered to an address, oldest first."""
    out = []
    from pathlib import Path
    for path in sorted(Path(os.environ["PORTAL_OUTBOX_DIR"]).glob("*.json")):  # names start with time_ns
        data = json.loads(path.read_text())
        if data["to"] == address:
            out.append(data)
    return out


def links_to(address, needle=""):
    """Every link sent to an address (oldest first), optionally only those containing needle."""
    return [link for m in outbox_for(address) for link in m["links"] if needle in link]
