"""The send queue: N queued emails through the real sender handler (app.on_send_message, Lambda's SQS event
shape, ten per batch) with a configured account rate (PORTAL_SES_RATE_PER_SECOND; the interactive lane takes its
slots without waiting, so this measures the handler's own throughput); every message must reach the outbox exactly once, also when
SQS delivers every batch a second time (at-least-once)."""
import collections
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

from bench.common import CallCounter, LambdaContext, receive_all, sqs_event


def run(rate: int, n: int, log) -> dict:
    import app
    from chalicelib.core import config, messaging
    receive_all("send")  # whatever earlier sections left
    outbox = Path(tempfile.mkdtemp(prefix=f"bench-outbox-{rate}-"))
    os.environ["PORTAL_SES_RATE_PER_SECOND"] = str(rate)  # the account's rate: the interactive lane never waits for it
    os.environ["PORTAL_OUTBOX_DIR"] = str(outbox)  # read per message: this run's files only
    messaging.enqueue([messaging.email("bench-send", f"send{rate}-{i}@bench.example", "Hello", f"Body {i}",
                                       [f"http://portal.bench/{i}"]) for i in range(n)])
    received = receive_all("send")
    assert len(received) == n, len(received)
    events = [sqs_event(received[i:i + 10], config.queue_name("send")) for i in range(0, n, 10)]
    log(f"send queue at {rate}/s: {n} messages queued; delivering")
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), CallCounter() as counter:
        started = time.perf_counter()
        failures = [f for e in events for f in app.on_send_message(e, LambdaContext())["batchItemFailures"]]
        seconds = time.perf_counter() - started
        calls = dict(counter.calls)
        for e in events:  # SQS delivers at least once: every batch again
            failures += app.on_send_message(e, LambdaContext())["batchItemFailures"]
    delivered = collections.Counter(json.loads(p.read_text())["message_id"] for p in outbox.glob("*.json"))
    sent = {json.loads(m["Body"])["message_id"] for m in received}
    return {"rate": rate, "n": n, "seconds": seconds, "per_second": n / seconds, "failures": len(failures),
            "lost": len(sent - set(delivered)), "duplicated": sum(c - 1 for c in delivered.values()),
            "calls_per_message": {f"{s}:{op}": v / n for (s, op), v in sorted(calls.items())}}
