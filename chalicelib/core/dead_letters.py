"""Messages the queues gave up on: why each failed, and moving them back once the cause is fixed.

Every failed attempt records its reason (exception type and a short message; never the message body) keyed by
the SQS message id, which SQS keeps when it moves a message to the dead-letter queue, so an operator listing the
DLQ sees why each message is there."""
import json
import time

from pynamodb.exceptions import DoesNotExist

from chalicelib.core import config
from chalicelib.core.models import Counter

REASON_DAYS = 14  # as long as the DLQ keeps messages
QUEUES = {"bulk-invites": "bulk-invites-dlq", "send": "send-dlq", "send-bulk": "send-bulk-dlq"}


def record_failure(queue: str, message_id: str, exc: BaseException, receive_count: int) -> None:
    reason = f"{type(exc).__name__}: {str(exc)[:200]}"
    expires = int(time.time()) + REASON_DAYS * 86400
    Counter(f"failure#{queue}#{message_id}", hits=receive_count, window_start=int(time.time()), ttl=expires,
            reason=reason).save()


def reason_for(queue: str, message_id: str) -> str | None:
    try:
        return Counter.get(f"failure#{queue}#{message_id}").reason
    except DoesNotExist:
        return None


def _url(name: str) -> str:
    return config.client("sqs").get_queue_url(QueueName=config.resource_name(name))["QueueUrl"]


def _check(queue: str) -> None:
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}: choose one of {', '.join(QUEUES)}")


def list_dead(queue: str, limit: int = 100) -> list[dict]:
    """Dead-lettered messages with their reason. They stay in the DLQ (briefly invisible while read)."""
    _check(queue)
    sqs, url = config.client("sqs"), _url(QUEUES[queue])
    out: list[dict] = []
    seen = set()
    while len(out) < limit:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=5,
                                  AttributeNames=["All"]).get("Messages", [])
        if got:  # reading must not hide them: visible again at once, for a redrive or the next listing
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(got)])
        fresh = [m for m in got if m["MessageId"] not in seen]
        if not fresh:
            break
        for m in fresh:
            seen.add(m["MessageId"])
            out.append({"message_id": m["MessageId"], "reason": reason_for(queue, m["MessageId"]),
                        "receive_count": int(m.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
                        "summary": _summary(queue, m["Body"])})
    return out


def _summary(queue: str, body: str) -> str:
    """What the message is about, without its content (an email body may hold a link)."""
    try:
        data = json.loads(body)
    except ValueError:
        return "unreadable body"
    if queue == "send-bulk" and "drain" in data:
        return f"a wake-up of the bulk drainer ({data['drain']})"
    if queue in ("send", "send-bulk"):
        to = data.get("to") or f"portal user {data.get('user_id')}"  # an invitation is rendered at delivery
        return f"{data.get('channel')} to {to} ({data.get('render') or 'message'})"
    keys = [r.get("s3", {}).get("object", {}).get("key") for r in data.get("Records", [])]
    return "upload " + ", ".join(k for k in keys if k) if keys else "s3 event"


def redrive(queue: str, progress=None) -> int:
    """Moves every message of the queue's DLQ back to the queue. Each is sent before it is deleted, so a crash
    in between can only duplicate a message, and the handlers' idempotency absorbs duplicates."""
    _check(queue)
    sqs, dlq, source, moved = config.client("sqs"), _url(QUEUES[queue]), _url(queue), 0
    while True:
        got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages", [])
        if not got:
            return moved
        sqs.send_message_batch(QueueUrl=source, Entries=[{"Id": str(i), "MessageBody": m["Body"]}
                                                         for i, m in enumerate(got)])
        sqs.delete_message_batch(QueueUrl=dlq, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(got)])
        moved += len(got)
        if progress:
            progress(len(got))
