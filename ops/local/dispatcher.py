"""Local stand-in for the Lambda event sources: delivers SQS messages and the schedule to the very same
Chalice handlers that run in AWS, in the event shapes AWS uses, so handlers need no local-only code.

- SQS (`bulk-invites`, which S3 notifies, `send` and `send-bulk`), each queue in a worker thread of its own (as
  each is its own Lambda function in AWS, so a bulk drain never holds up a reset code): long-poll, up to 10
  messages per batch, one Lambda SQS event per batch. As Lambda's event source mapping with ReportBatchItemFailures does: messages the
  handler did not report in `batchItemFailures` are deleted; reported ones stay on the queue and come back
  after the visibility timeout (the queue's RedrivePolicy moves them to the DLQ after maxReceiveCount);
  an exception leaves the whole batch.
- Schedule: `run_schedule` every PORTAL_SCHEDULE_SECONDS (default 60) with a CloudWatch scheduled event.

Handlers the app does not define (yet) are skipped. A handler error is logged on one line and never stops
the dispatcher. Each queue's invocations run one at a time; PORTAL_LAMBDA_TIMEOUT_SECONDS (900) is what their
context says is left, so a test can make the bulk drainer hand over to a successor quickly. Run by the local stack
as its own process (so the API process keeps its own imports): python -m ops.local.dispatcher
"""
import datetime
import hashlib
import json
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"  # moto's default account
SQS_HANDLERS = {"bulk-invites": "on_bulk_invite_upload", "send": "on_send_message", "send-bulk": "on_send_bulk"}
SCHEDULE_HANDLER = "run_schedule"
POLL_SECONDS = 1  # long-poll wait per queue: short, so a stop never waits long

stop = threading.Event()


def log(msg: str) -> None:
    print(f"dispatcher: {msg}", flush=True)


class LambdaContext:
    """The attributes Chalice, Powertools Logger and Idempotency read from a real Lambda context."""

    def __init__(self, function_name: str, timeout_s: float | None = None):
        if timeout_s is None:
            timeout_s = float(os.environ.get("PORTAL_LAMBDA_TIMEOUT_SECONDS", "900"))
        self.function_name = f"portal-access-local-{function_name}"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:{region()}:{ACCOUNT}:function:{self.function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def load_app():
    """Import app.py the way Lambda does: from the project root, with the stage's environment variables
    from .chalice/config.json (Lambda sets those; chalice local sets them for the API process too)."""
    cfg = json.loads((PROJECT_ROOT / ".chalice" / "config.json").read_text())
    env = {**cfg.get("environment_variables", {}),
           **cfg.get("stages", {}).get("local", {}).get("environment_variables", {})}
    os.environ.update(env)
    sys.path.insert(0, str(PROJECT_ROOT))
    import app
    return app


def sqs_record(msg: dict, queue_arn: str) -> dict:
    """An SQS message as the receive API returns it → a record of Lambda's SQS event."""
    attrs = {}
    for name, a in (msg.get("MessageAttributes") or {}).items():
        attrs[name] = {"dataType": a["DataType"], "stringListValues": [], "binaryListValues": []}
        if "StringValue" in a:
            attrs[name]["stringValue"] = a["StringValue"]
        if "BinaryValue" in a:
            attrs[name]["binaryValue"] = a["BinaryValue"]
    return {"messageId": msg["MessageId"], "receiptHandle": msg["ReceiptHandle"], "body": msg["Body"],
            "attributes": msg.get("Attributes", {}), "messageAttributes": attrs,
            "md5OfBody": msg.get("MD5OfBody") or hashlib.md5(msg["Body"].encode(), usedforsecurity=False).hexdigest(),
            "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region()}


def invoke(name: str, handler, event: dict):
    """Call a handler; return (ok, result). Errors are one log line, as a Lambda error would be."""
    try:
        return True, handler(event, LambdaContext(name))
    except Exception as exc:  # noqa: BLE001 - any handler error must leave the dispatcher running
        where = traceback.extract_tb(exc.__traceback__)[-1]
        message = " ".join(str(exc).split())[:300]  # one line, however multi-line the exception text is
        log(f"{name} failed: {type(exc).__name__}: {message} (at {where.filename}:{where.lineno})")
        return False, None


def deliver_batch(sqs, short: str, name: str, handler, url: str, arn: str) -> None:
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=POLL_SECONDS,
                               AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
    if not msgs:
        return
    ok, result = invoke(name, handler, {"Records": [sqs_record(m, arn) for m in msgs]})
    if not ok:
        log(f"{short}: batch of {len(msgs)} left for retry after the visibility timeout")
        return
    failures = (result.get("batchItemFailures") or []) if isinstance(result, dict) else []
    failed = {f.get("itemIdentifier") for f in failures}
    done = [m for m in msgs if m["MessageId"] not in failed]
    if done:
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
    log(f"{short}: {name} handled {len(done)} message(s)" + (f", {len(failed)} left for retry" if failed else ""))


def schedule_event() -> dict:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": ACCOUNT, "time": now, "region": region(),
            "resources": [f"arn:aws:events:{region()}:{ACCOUNT}:rule/portal-access-local-{SCHEDULE_HANDLER}"],
            "detail": {}}


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # under the stack, Ctrl-C is the stack's job
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    app = load_app()
    import boto3

    from chalicelib.core import config
    if problem := config.local_endpoint_problem():  # stage local never reaches a real AWS account
        log(f"error: {problem}")
        return 2
    sqs = boto3.client("sqs", region_name=region())
    queues = []  # a missing queue raises here: the stack then stops, as a set-up error should
    for short, name in SQS_HANDLERS.items():
        if not hasattr(app, name):
            log(f"app.py has no {name} yet: queue {short} is not delivered")
            continue
        url = sqs.get_queue_url(QueueName=config.queue_name(short))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queues.append((short, name, getattr(app, name), url, arn))
    schedule = getattr(app, SCHEDULE_HANDLER, None)
    if schedule is None:
        log(f"app.py has no {SCHEDULE_HANDLER} yet: no schedule")
    every = float(os.environ.get("PORTAL_SCHEDULE_SECONDS", "60"))
    next_run = time.monotonic() + every
    log("delivering " + (", ".join([q[0] for q in queues] + ["schedule"] * bool(schedule)) or "nothing"))
    warm_up()
    # One thread per queue, each one invocation at a time like a Lambda function of its own. Handlers share module
    # state: clients are made above, before the threads start (creating them is what is not thread-safe); the
    # Powertools Logger's keys (and Metrics' buffer, disabled on stage local) are process-wide, so a log line may
    # carry another handler's function name and request id; what the handlers do is not shared.
    workers = [threading.Thread(target=serve_queue, args=(sqs, q), name=q[0], daemon=True) for q in queues]
    for worker in workers:
        worker.start()
    while not stop.is_set():
        if schedule and time.monotonic() >= next_run:
            next_run = time.monotonic() + every
            invoke(SCHEDULE_HANDLER, schedule, schedule_event())
        stop.wait(0.5)
    for worker in workers:
        worker.join(timeout=POLL_SECONDS + 5)
    return 0


def serve_queue(sqs, queue: tuple) -> None:
    while not stop.is_set():
        try:
            deliver_batch(sqs, *queue)
        except Exception as exc:  # noqa: BLE001 - e.g. moto stopping: retry unless told to stop
            if not stop.is_set():
                log(f"{queue[0]}: {type(exc).__name__}: {exc}")
                stop.wait(1)


def warm_up() -> None:
    """The boto3 clients and PynamoDB connections the handlers use, made once in this thread."""
    from chalicelib.core import config, models
    for service in ("dynamodb", "sqs", "ses", "sns", "s3"):
        config.client(service)
    models.connect(*[m for m in map(models.__dict__.get, models.__all__)
                     if isinstance(m, type) and hasattr(m, "_get_connection") and hasattr(m, "Meta")])


if __name__ == "__main__":
    sys.exit(main())
