"""The bulk lane's drainer: delivers the send backlog (core/send_backlog.py) at the rate interactive messages
leave (core/send_rate.py), one business's turn after another.

Round-robin: each business with messages waiting gets a turn of TURN messages, whatever the size of its backlog,
so a business's 50 invitations wait at most one turn per other active business instead of behind another
business's 100,000 (a FIFO would make them wait for all of those, a weighting by backlog size would too).

One drainer at a time (a lease in the counters table). It stops when no line has work, or when the invocation is
about to end: then it releases the lease and kicks a successor. Delivery is idempotent on the message id and a
message leaves the backlog only after it was delivered, so a crash re-delivers nothing twice and loses nothing."""
import json
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Callable

from chalicelib.core import config, dead_letters, messaging, observability, send_backlog
from pynamodb.exceptions import DoesNotExist

from chalicelib.core.models import Counter, now
from chalicelib.core.observability import logger

TURN = 10  # messages per business per turn: a query's worth, and under a second at SES's 14/s
STOP_MS = 30_000  # stop taking turns when the invocation has less left (one turn at a throttled rate fits)
TRIES = 3  # deliveries of one message that fail in one run before it is dead-lettered
SENDERS = TURN  # a turn's messages at once
OUTAGE_WAIT_SECONDS = 60  # after a pass in which every delivery failed


def drain(context, render: Callable[[dict], dict | None]) -> dict:
    """Delivers the backlog until it is empty or time runs short; {"sent", "continued"} or {"skipped"}."""
    holder = send_backlog.acquire_lease(context.get_remaining_time_in_millis() / 1000)
    if holder is None:
        return {"skipped": "another drainer holds the lease"}
    sent, continued, outage = 0, False, False
    failures: dict[str, int] = {}  # seq -> failed deliveries in this run
    try:
        while not (continued or outage):
            lines = send_backlog.active_lines()
            if not lines:
                break
            delivered = transient = 0
            for tenant_id, touched_at in lines:
                if context.get_remaining_time_in_millis() < STOP_MS:
                    continued = True
                    break
                removed, ok, down = _turn(tenant_id, touched_at, context, render, failures)
                sent, delivered, transient = sent + removed, delivered + ok, transient + down
            # Nothing went out and AWS itself failed (5xx, no connection): SES, SNS or DynamoDB is down, not a bad
            # message. Trying on would dead-letter the backlog ten at a time: the lane waits OUTAGE_WAIT_SECONDS.
            outage = delivered == 0 and transient > 0
    finally:
        # Released before the kick: the successor it wakes must find the lease free.
        send_backlog.release_lease(holder)
    if outage:
        logger.warning("bulk drain: AWS failing, trying again later", extra={"failed": transient})
        send_backlog.kick("after an outage", OUTAGE_WAIT_SECONDS)
    elif continued or send_backlog.active_lines():  # a producer may have seen our lease just before it ended
        send_backlog.kick("continuation" if continued else "late write")
    logger.info("bulk drain", extra={"sent": sent, "continued": continued, "outage": outage})
    return {"sent": sent, "continued": continued, "outage": outage}


def _turn(tenant_id: str, touched_at: int, context, render, failures: dict) -> tuple[int, int, int]:
    """One business's turn: up to TURN of its oldest messages; an empty line loses its marker. (Removed from the
    line, delivered, failed because AWS failed.)"""
    batch = send_backlog.take(tenant_id, TURN)
    if not batch:
        send_backlog.retire(tenant_id, touched_at)
        return 0, 0, 0
    def deliver(message: dict) -> Exception | None:
        try:
            messaging.deliver_once(message, render, context, lane=messaging.BULK)
            return None
        except Exception as exc:  # noqa: BLE001 - one message's failure must not stop the others
            return exc
    # two copies of one message (a resumed bulk run puts what it decides again) go once: at once, the second would
    # only meet the first's idempotency record in progress
    once = {message.get("message_id"): message for _, message in reversed(batch)}
    outcome = dict(zip(once, _senders().map(deliver, once.values())))
    done, transient = [], 0
    delivered = sum(exc is None for exc in outcome.values())
    for seq, message in batch:
        exc = outcome[message.get("message_id")]
        if exc is None:
            done.append(seq)
            continue
        transient += _transient(exc)
        failures[seq] = failures.get(seq, 0) + 1
        logger.warning("bulk delivery failed", extra={"message_id": message.get("message_id"),
                                                      "tenant_id": tenant_id, "reason": type(exc).__name__})
        observability.count("SendFailed", channel=message.get("channel") or "email")
        if failures[seq] >= TRIES:
            _dead_letter(message, exc)
            done.append(seq)
    send_backlog.remove(tenant_id, done)
    return len(done), delivered, transient


def _transient(exc: Exception) -> bool:
    """AWS failing (a 5xx, throttling that outlasted deliver()'s retries, no connection), not this message (a 4xx
    such as MessageRejected or InvalidParameter, which only a fix of the address or number cures)."""
    from botocore.exceptions import BotoCoreError, ClientError
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code")
        return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400) >= 500 or \
            code in messaging.THROTTLE_CODES
    return isinstance(exc, (BotoCoreError, OSError))


@lru_cache(maxsize=1)
def _senders() -> ThreadPoolExecutor:
    """A turn's messages go out at once: one send waits ~60-100 ms on SES and DynamoDB (the idempotency record, the
    rate's slot), so one after another a drainer would stay under SES's 14/s; SENDERS at a time reach any rate the
    account has, and the shared counters keep them within it. Clients are made here, before the threads."""
    for service in ("dynamodb", "ses", "sns", "sqs"):
        config.client(service)
    messaging.warm_up()
    return ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="bulk-send")


def _dead_letter(message: dict, exc: Exception) -> None:
    """The message goes to the send-bulk DLQ with its reason; a redrive puts it on the send-bulk queue, whose
    handler returns it to the backlog. Once per message id until it is redriven: a bulk run resumed after a crash
    puts the invitations it decides again once more (the same ids; the sender drops a copy once one was sent), and
    a second copy that fails too must not stand in the DLQ beside the first. Marked after the DLQ has it (one
    drainer at a time holds the lease): a crash in between costs a second dead letter, never the message."""
    key = _dead_key(message)
    try:
        Counter.get(key, consistent_read=True)
        logger.info("bulk message already dead-lettered", extra={"message_id": message.get("message_id")})
        return
    except DoesNotExist:
        pass
    sqs = config.client("sqs")
    url = sqs.get_queue_url(QueueName=config.resource_name("send-bulk-dlq"))["QueueUrl"]
    sent = sqs.send_message(QueueUrl=url, MessageBody=json.dumps(message))
    Counter(key, ttl=now() + dead_letters.REASON_DAYS * 86400).save()
    dead_letters.record_failure("send-bulk", sent["MessageId"], exc, TRIES)


def _dead_key(message: dict) -> str:
    return f"dead#send-bulk#{message.get('tenant_id')}#{message.get('message_id')}"


def watch() -> dict:
    """The schedule's look at the bulk lane: lines waiting with no live drainer (one that died holding the lease, and
    the lease lapsed since: no producer would kick while it was live) get one."""
    if send_backlog.active_lines() and not send_backlog.lease_live():
        send_backlog.kick("schedule")
        return {"bulk_lane_woken": 1}
    return {"bulk_lane_woken": 0}


def redriven(message: dict) -> None:
    """A dead-lettered bulk message moved back to the send-bulk queue: it rejoins its business's line (and may be
    dead-lettered again)."""
    Counter(_dead_key(message)).delete()
    messaging.enqueue_bulk(message["tenant_id"], [message])
