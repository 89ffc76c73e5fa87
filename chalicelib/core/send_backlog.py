"""The bulk lane's storage: bulk messages wait in the send-backlog table, one line per business, and a kick on
the send-bulk queue wakes the drainer (flows/bulk_sending.py), which holds a lease so one runs at a time.

Why a table and not a second queue: the drainer takes turns between businesses (round-robin), which one FIFO
queue cannot do; a line per business can be read oldest first, a few messages at a time.

Nothing is stranded: a producer puts its messages, then touches its line's marker, then reads the lease
(messaging.enqueue_bulk; a producer that puts many batches with put_bulk announces after them: a line without a
marker is invisible to the drainer and to the schedule's watch). A drainer
removes a marker only if its touched_at is still what it read (a write since keeps it), and after releasing the
lease looks at the markers once more; so either the drainer sees the producer's marker or the producer sees no
live lease and kicks."""
import json
import time
import uuid
from functools import lru_cache

from pynamodb.exceptions import DeleteError, PutError

from chalicelib.core import config
from chalicelib.core.models import ACTIVE_LINE, BacklogItem, Counter, now

LEASE_KEY = "send-bulk-lease"


def seq_for(message: dict) -> str:
    """Sortable by time (zero-padded ns), unique by message id: a line reads oldest first."""
    return f"{time.time_ns():020d}#{message['message_id']}"


def put(tenant_id: str, messages: list[dict]) -> None:
    """The messages on the business's line (BatchWriteItem, 25 per call; unprocessed items are retried by
    PynamoDB), without the marker: a producer that puts many batches marks its line after them (mark_active)."""
    with BacklogItem.batch_write() as batch:
        for message in messages:
            batch.save(BacklogItem(tenant_id, seq_for(message), message=json.dumps(message)))


def mark_active(tenant_id: str) -> None:
    BacklogItem(ACTIVE_LINE, tenant_id, touched_at=time.time_ns()).save()


def active_lines() -> list[tuple[str, int]]:
    """(tenant_id, touched_at) of every line that may hold messages."""
    return [(m.seq, int(m.touched_at or 0)) for m in BacklogItem.query(ACTIVE_LINE, consistent_read=True)]


def retire(tenant_id: str, touched_at: int) -> bool:
    """Removes an empty line's marker unless a producer touched it since it was read (False then)."""
    try:
        BacklogItem(ACTIVE_LINE, tenant_id).delete(condition=BacklogItem.touched_at == touched_at)
        return True
    except DeleteError:
        return False


def take(tenant_id: str, limit: int) -> list[tuple[str, dict]]:
    """Up to `limit` of the line's oldest messages, as (seq, message); they stay until removed."""
    return [(item.seq, json.loads(item.message or "{}"))
            for item in BacklogItem.query(tenant_id, limit=limit, consistent_read=True)]


def remove(tenant_id: str, seqs: list[str]) -> None:
    with BacklogItem.batch_write() as batch:
        for seq in seqs:
            batch.delete(BacklogItem(tenant_id, seq))


# --- the lease: one drainer at a time ---------------------------------------------------------------------------

def acquire_lease(seconds: float) -> str | None:
    """A holder id while no other lease is live (a crashed holder's lapses after `seconds`), else None."""
    holder = uuid.uuid4().hex
    try:
        Counter(LEASE_KEY, reason=holder, locked_until=time.time() + seconds, ttl=now() + int(seconds) + 3600).save(
            condition=Counter.counter_key.does_not_exist() | (Counter.locked_until < time.time()))
        return holder
    except PutError:
        return None


def release_lease(holder: str) -> None:
    try:
        Counter(LEASE_KEY).delete(condition=Counter.reason == holder)
    except DeleteError:
        pass  # it lapsed and another drainer holds it now


def lease_live() -> bool:
    try:
        return Counter.get(LEASE_KEY, consistent_read=True).locked_until > time.time()
    except Counter.DoesNotExist:
        return False


# --- kicks --------------------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _kick_queue_url() -> str:
    return config.client("sqs").get_queue_url(QueueName=config.queue_name("send-bulk"))["QueueUrl"]


def kick(reason: str, delay_seconds: int = 0) -> None:
    """Wakes a drainer: one message on the send-bulk queue (after `delay_seconds`, up to SQS's 900)."""
    config.client("sqs").send_message(QueueUrl=_kick_queue_url(), MessageBody=json.dumps({"drain": reason}),
                                      DelaySeconds=delay_seconds)


def kick_unless_draining() -> None:
    """After a producer's marker: a live drainer will see it, otherwise one is woken."""
    if not lease_live():
        kick("backlog")
