"""What every section shares: the environment (set before chalicelib is imported, so boto3 and PynamoDB see
moto), the moto server process, counting AWS calls, and percentiles."""
import collections
import math
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "portal-access-bench-uploads"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_environment(aws_port: int, outbox: str) -> None:
    """For this process and the children it starts (they inherit os.environ)."""
    for key in list(os.environ):  # nothing may reach a real AWS account
        if key.startswith("AWS_"):
            del os.environ[key]
    os.environ.update({
        "PORTAL_STAGE": "local", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{aws_port}", "PORTAL_UPLOADS_BUCKET": BUCKET,
        "PORTAL_OUTBOX_DIR": outbox, "PORTAL_PUBLIC_BASE_URL": "http://portal.bench",
        "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "portal-access", "POWERTOOLS_METRICS_NAMESPACE": "PortalAccess",
        # a JSON log line per request and per message would flood the bench's output; its cost is microseconds
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    })
    sys.path.insert(0, str(ROOT))


MOTO_PID: int | None = None


def start_moto(port: int, log_path: Path) -> subprocess.Popen:
    """moto in a subprocess (bench/moto_server.py), so its CPU and memory stay out of the measured RSS."""
    global MOTO_PID
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bench.moto_server", str(port)], cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT)
    MOTO_PID = proc.pid
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"moto did not start; see {log_path}")


def moto_cpu_seconds() -> float:
    """The CPU time the moto server has used (user + system): one Python process, so at most one core's worth."""
    if MOTO_PID is None:
        return 0.0
    fields = Path(f"/proc/{MOTO_PID}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CallCounter:
    """Counts AWS API calls by (service, operation) in this process: every client, boto3's and PynamoDB's,
    goes through botocore's BaseClient._make_api_call."""

    def __init__(self):
        self.calls = collections.Counter()

    def __enter__(self):
        import botocore.client
        self._real = real = botocore.client.BaseClient._make_api_call
        calls, lock = self.calls, threading.Lock()

        def counting(client, operation, params):
            with lock:  # the bulk handler's threads call at once
                calls[(client.meta.service_model.service_name, operation)] += 1
            return real(client, operation, params)
        botocore.client.BaseClient._make_api_call = counting
        return self

    def __exit__(self, *exc):
        import botocore.client
        botocore.client.BaseClient._make_api_call = self._real

    def service(self, name: str) -> int:
        return sum(n for (service, _), n in self.calls.items() if service == name)


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (p99 of 100 samples is the 99th smallest)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary_ms(samples: list[float]) -> dict:
    return {"n": len(samples), "p50": statistics.median(samples) * 1000, "p99": percentile(samples, 99) * 1000}


class LambdaContext:
    """What the Lambda runtime passes handlers (Powertools reads these fields)."""
    function_name = "portal-access-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:portal-access-bench"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = log_stream_name = "bench"

    @staticmethod
    def get_remaining_time_in_millis():
        return 900_000


def sqs_event(messages: list[dict], queue: str) -> dict:
    """Messages from ReceiveMessage in the shape Lambda hands an SQS handler."""
    return {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                         "attributes": m.get("Attributes", {}), "messageAttributes": {},
                         "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
                         "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{queue}", "awsRegion": "us-east-1"}
                        for m in messages]}


def receive_all(queue_short: str, wait: int = 0) -> list[dict]:
    """Every message now on one of the app's queues (received and deleted), as SQS returned them."""
    from chalicelib.core import config
    sqs = config.client("sqs")
    url = sqs.get_queue_url(QueueName=config.queue_name(queue_short))["QueueUrl"]
    out = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait,
                                     AttributeNames=["All"]).get("Messages", []):
        out += got
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(got)])
        wait = 0
    return out


def purge(queue_short: str) -> None:
    """Empties a queue that may hold hundreds of thousands of messages (SQS allows one purge a minute)."""
    from botocore.exceptions import ClientError
    from chalicelib.core import config
    sqs = config.client("sqs")
    url = sqs.get_queue_url(QueueName=config.queue_name(queue_short))["QueueUrl"]
    try:
        sqs.purge_queue(QueueUrl=url)
    except ClientError as exc:
        if "PurgeQueueInProgress" not in exc.response["Error"]["Code"]:
            raise
        time.sleep(61)
        sqs.purge_queue(QueueUrl=url)
