"""The two sending lanes under a bulk backlog (`python -m bench --only sending`): business A's backlog of bulk
emails is delivering at the account's rate (14/s) through the local dispatcher's worker threads (one per queue, the
real handlers); meanwhile 50 staff reset codes are requested through the flow (one every 0.4 s) and business B puts
50 invitations in the bulk lane. Measured from the outbox files (their names start with the time they were
written): each reset code's request → outbox time, B's first request → last delivery, and the most sends in any
one second. Then how many sends per second one sender process sustains when the rate does not hold it back."""
import contextlib
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

RATE = 14
CODES, CODE_EVERY = 50, 0.4
B_INVITATIONS = 50


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


def _outbox() -> list[dict]:
    out = []
    for path in Path(os.environ["PORTAL_OUTBOX_DIR"]).glob("*.json"):
        record = json.loads(path.read_text())
        record["at"] = int(path.name.split("-", 1)[0]) / 1e9
        out.append(record)
    return out


def _workers():
    """The local dispatcher's worker threads for the send and send-bulk queues, against the real handlers."""
    import boto3

    import app
    from chalicelib.core import config
    from ops.local import dispatcher
    sqs = boto3.client("sqs", region_name=dispatcher.region())
    dispatcher.warm_up()
    threads = []
    for short, name in (("send", "on_send_message"), ("send-bulk", "on_send_bulk")):
        url = sqs.get_queue_url(QueueName=config.queue_name(short))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        thread = threading.Thread(target=dispatcher.serve_queue, args=(sqs, (short, name, getattr(app, name), url, arn)),
                                  daemon=True)
        thread.start()
        threads.append(thread)
    return dispatcher.stop, threads


def _staff(tenant_id: str, n: int) -> list[tuple[str, str]]:
    """n staff members with an account and an email: (username, email)."""
    from chalicelib.core.models import Tenant
    from chalicelib.core.security import passwords
    from chalicelib.flows.staff import people
    Tenant(tenant_id, name="Bench Heating").save()
    password_hash = passwords.hash_password("Bench-Lanes-Pass-2468")
    out = []
    for i in range(n):
        username, email = f"tech{i}-{uuid.uuid4().hex[:6]}", f"tech{i}@{tenant_id}.example"
        people.create(tenant_id, kind="employee", name=f"Tech {i}", email=email, mobile=None, role="staff",
                      permissions=[], username=username, password_hash=password_hash)
        out.append((username, email))
    return out


def run(log, backlog: int = 20_000) -> dict:
    from chalicelib.core import messaging, send_rate
    from chalicelib.flows import bulk_sending
    from chalicelib.flows.staff import staff_recovery
    os.environ["PORTAL_OUTBOX_DIR"] = tempfile.mkdtemp(prefix="bench-lanes-outbox-")
    os.environ["PORTAL_SES_RATE_PER_SECOND"] = str(RATE)
    os.environ["PORTAL_SNS_RATE_PER_SECOND"] = "20"
    os.environ["PORTAL_LAMBDA_TIMEOUT_SECONDS"] = "90"  # the drainer hands over to a successor every minute
    a, b, staff_tenant = (f"bench-{x}-{uuid.uuid4().hex[:6]}" for x in ("a", "b", "staff"))
    staff = _staff(staff_tenant, CODES)
    body = "You are invited to the customer portal of Bench Heating. Open the link to choose a password.\n" * 4
    log(f"sending: writing a backlog of {backlog:,} invitations for business A")
    started = time.monotonic()
    for start in range(0, backlog, 1000):
        messaging.enqueue_bulk(a, [messaging.email(a, f"a{i}@{a}.example", "Your portal invitation", body,
                                                   [f"http://portal.bench/register?token=a{i}"])
                                   for i in range(start, min(backlog, start + 1000))])
    write_seconds = time.monotonic() - started
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        stop, threads = _workers()
        time.sleep(5)  # the backlog is delivering
        log("sending: 50 reset codes over 20 s, and business B's 50 invitations")
        b_started = time.time()
        messaging.enqueue_bulk(b, [messaging.email(b, f"b{i}@{b}.example", "Your portal invitation", body)
                                   for i in range(B_INVITATIONS)])
        asked = {}
        for i, (username, email) in enumerate(staff):
            ip = f"10.9.{i // 200}.{i % 200 + 1}"
            flow = staff_recovery.start(staff_recovery.ResetStart(tenant_id=staff_tenant, identifier=username), ip)
            asked[email] = time.time()
            staff_recovery.send_code(staff_recovery.SendCode(flow_id=flow["flow_id"]), ip)
            time.sleep(CODE_EVERY)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the last codes and B's invitations
            out = _outbox()
            if sum(m["to"] in asked for m in out) >= CODES and sum(m["tenant_id"] == b for m in out) >= B_INVITATIONS:
                break
            time.sleep(0.5)
        bulk_sending.STOP_MS = 10**9  # the drainer ends at its next turn (a successor's kick stays queued)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    out = _outbox()
    code_at = {m["to"]: m["at"] for m in out if m["to"] in asked}
    latencies = [code_at[e] - asked[e] for e in asked if e in code_at]
    b_done = [m["at"] for m in out if m["tenant_id"] == b]
    per_second: dict[int, int] = {}
    bulk_per_second: dict[int, int] = {}
    for m in out:
        per_second[int(m["at"])] = per_second.get(int(m["at"]), 0) + 1
        if m["tenant_id"] in (a, b):
            bulk_per_second[int(m["at"])] = bulk_per_second.get(int(m["at"]), 0) + 1
    busy = sorted(per_second)[1:-1] or sorted(per_second)  # whole seconds only
    result = {"rate": RATE, "backlog": backlog, "backlog_write_seconds": write_seconds,
              "codes": len(latencies), "codes_missing": CODES - len(latencies),
              "code_p50_s": statistics.median(latencies) if latencies else None,
              "code_p99_s": percentile(latencies, 99) if latencies else None,
              "code_max_s": max(latencies) if latencies else None,
              "b_delivered": len(b_done), "b_seconds": (max(b_done) - b_started) if b_done else None,
              "a_delivered": sum(m["tenant_id"] == a for m in out),
              "max_sends_in_a_second": max(per_second[s] for s in busy),
              "max_bulk_sends_in_a_second": max(bulk_per_second.get(s, 0) for s in busy),
              "mean_sends_per_second": statistics.mean(per_second[s] for s in busy),
              # the shared rate's own count: slots taken per second (a send's file lands a moment after its slot)
              "max_slots_in_a_second": max(send_rate.taken("email", s) for s in busy)}
    log(f"sending: reset codes p50 {result['code_p50_s']:.2f} s, p99 {result['code_p99_s']:.2f} s; B's 50 in "
        f"{result['b_seconds']:.1f} s; at most {result['max_sends_in_a_second']} sends in a second "
        f"({result['max_bulk_sends_in_a_second']} bulk) by the outbox, {result['max_slots_in_a_second']} slots taken")
    result["uncapped_per_second"] = uncapped(log)
    result["uncapped_drainer_per_second"] = uncapped(log, parallel=True)
    return result


def uncapped(log, n: int = 300, parallel: bool = False) -> float:
    """One sender process's sends per second when the rate does not hold it back: n bulk emails, each delivered
    as the drainer does (idempotency record, rate slot, SES, outbox file), one after another or, `parallel`, a
    drainer's turn at a time (bulk_sending's senders)."""
    from bench.common import LambdaContext
    from chalicelib.core import messaging
    from chalicelib.events import sender
    os.environ["PORTAL_SES_RATE_PER_SECOND"] = "100000"
    tenant_id = f"bench-u-{uuid.uuid4().hex[:6]}"
    messages = [messaging.email(tenant_id, f"u{i}@{tenant_id}.example", "Hi", "Body") for i in range(n)]
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        started = time.perf_counter()
        if parallel:
            from chalicelib.flows import bulk_sending
            context = LambdaContext()
            list(bulk_sending._senders().map(
                lambda m: messaging.deliver_once(m, sender.render, context, lane=messaging.BULK), messages))
        else:
            for message in messages:
                messaging.deliver_once(message, sender.render, LambdaContext(), lane=messaging.BULK)
        seconds = time.perf_counter() - started
    log(f"sending: one sender process, rate not limiting, {'a turn at a time' if parallel else 'one by one'}: "
        f"{n / seconds:.0f} sends/s")
    return n / seconds
