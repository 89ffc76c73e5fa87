"""Bulk invitations: a generated CSV of N rows goes S3 -> SQS (moto's notification) -> the real handler
(app.on_bulk_invite_upload), run in a child process per size so its peak RSS is that run's alone.

The file: a header, then rows `name,email,phone`; every 20th row repeats an email ten rows up (5 % duplicates),
every 50th is an email on no record (2 %), the rest are customers' emails, each on its own customer record.
The directory is written with BatchWriteItem (PynamoDB Model.batch_write), 25 items per call."""
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench.common import BUCKET, ROOT, CallCounter, LambdaContext, purge, receive_all, sqs_event


def row_email(tenant_id: str, i: int) -> tuple[str, bool]:
    """(email of row i, is it on a record?)"""
    if i % 20 == 19:
        return row_email(tenant_id, i - 10)
    if i % 50 == 7:
        return f"stranger{i}@elsewhere.example", False
    return f"c{i:07d}@{tenant_id}.example", True


def make_tenant(rows: int, label: str, customers: bool = True) -> str:
    """A tenant whose directory holds every on-record email of the file: one Customer and one RecordEmail each
    (customers=False: the RecordEmail alone, the email index a bulk run reads; it never reads a Customer)."""
    from chalicelib.core.models import Customer, RecordEmail, Tenant
    tenant_id = f"bench-{label}-{uuid.uuid4().hex[:6]}"
    Tenant(tenant_id, name=f"Bench {label}").save()
    with Customer.batch_write() as customer_items, RecordEmail.batch_write() as index:
        for i in range(rows):
            email, on_record = row_email(tenant_id, i)
            if not on_record or i % 20 == 19:
                continue
            customer_id = f"cust{i:07d}"
            if customers:
                customer_items.save(Customer(tenant_id, customer_id, name=f"Customer {i}", emails=[email]))
            index.save(RecordEmail(tenant_id, email, refs={f"customer:{customer_id}"}))
    return tenant_id


def upload(tenant_id: str, rows: int, compact: bool = False) -> tuple[dict, int, int]:
    """Puts the CSV at bulk-invites/<tenant>/… and returns (the SQS event S3's notification became, bytes,
    distinct emails). compact: rows `C<i>,<email>` (2M rows then fit the 100 MB cap; with a phone they do not)."""
    from chalicelib.core import config
    lines, distinct = ["name,email" if compact else "name,email,phone"], set()
    for i in range(rows):
        email, _ = row_email(tenant_id, i)
        distinct.add(email)
        lines.append(f"C{i},{email}" if compact else f"Customer {i},{email},+1555{i:07d}")
    body = ("\n".join(lines) + "\n").encode()
    config.client("s3").put_object(Bucket=BUCKET, Key=f"bulk-invites/{tenant_id}/bench-{rows}.csv", Body=body)
    events = [m for m in receive_all("bulk-invites", wait=2) if "s3:TestEvent" not in m["Body"]]
    assert len(events) == 1, events
    return sqs_event(events, config.queue_name("bulk-invites")), len(body), len(distinct)


def naive(event: dict) -> None:
    """The baseline: the same stream and scanner, then one call per row for each step
    (GetItem on the email index, GetItem on the portal user, PutItem, SendMessage). No report is written."""
    from pynamodb.exceptions import DoesNotExist
    from chalicelib.flows.portal import bulk_invites, email_scan
    from chalicelib.core import config
    from chalicelib.flows.portal.invitations import invite_message, portal_user_id, status_key
    from chalicelib.core.models import PortalUser, RecordEmail
    upload, = bulk_invites.uploads_in(event["Records"][0]["body"])
    tenant_id = upload.key.split("/")[1]
    s3, sqs = config.client("s3"), config.client("sqs")
    queue = sqs.get_queue_url(QueueName=config.queue_name("send"))["QueueUrl"]
    body = s3.get_object(Bucket=upload.bucket, Key=upload.key)["Body"]
    for found in email_scan.scan(body.iter_chunks(bulk_invites.READ_BYTES)):
        for email in found.emails:
            try:
                RecordEmail.get(tenant_id, email)
            except DoesNotExist:
                continue
            try:
                PortalUser.get(tenant_id, portal_user_id(email))
                continue
            except DoesNotExist:
                pass
            user = PortalUser(tenant_id, portal_user_id(email), email=email, status="invited",
                              status_key=status_key(tenant_id, "invited"), invite_job="naive")
            user.save()
            sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(
                invite_message(tenant_id, user.user_id, uuid.uuid4().hex)))


def _measure(fn, event: dict) -> dict:
    with CallCounter() as counter:
        started, cpu = time.perf_counter(), time.process_time()
        result = fn(event)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "result": result, "dynamodb": counter.service("dynamodb"),
            "sqs": counter.service("sqs"), "s3": counter.service("s3"),
            "calls": {f"{s}:{op}": n for (s, op), n in sorted(counter.calls.items())}}


def peak_rss_mb() -> float:
    """This process's peak RSS. Not ru_maxrss: Linux carries the parent's RSS at fork over into the child's
    ru_maxrss (kept across exec), so a child of a large parent would report the parent. VmHWM is the peak of
    this process image alone."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) / 1024


def _add_latency(ms: float) -> None:
    """Each AWS call waits `ms` more, as a network round trip to AWS does (moto on this machine answers in
    its own CPU time, which overlapping cannot hide when the cores are busy; AWS latency is waiting, which it can)."""
    if ms <= 0:
        return
    import botocore.client
    real = botocore.client.BaseClient._make_api_call

    def slower(client, operation, params):
        time.sleep(ms / 1000)
        return real(client, operation, params)
    botocore.client.BaseClient._make_api_call = slower


def child() -> None:
    """`python -m bench.bulk child`: stdin {"event", "naive_event"?}; stdout one JSON line."""
    job = json.loads(sys.stdin.read())
    import app  # what a Lambda cold start loads before the first event
    _add_latency(float(os.environ.get("BENCH_AWS_LATENCY_MS") or 0))
    out = {"rss_after_import_mb": peak_rss_mb()}
    out["handler"] = _measure(lambda e: app.on_bulk_invite_upload(e, LambdaContext()), job["event"])
    out["peak_rss_mb"] = peak_rss_mb()  # before the baseline runs
    if job.get("naive_event"):
        out["naive"] = _measure(naive, job["naive_event"])
    print(json.dumps(out))


def run(rows: int, with_naive: bool, log, env: dict | None = None, code: Path = ROOT) -> dict:
    """One size: directory, file, notification, then the handler (and the baseline) in a child process, whose
    handler is the code under `code` (this tree, or an earlier revision's: baseline_tree)."""
    from chalicelib.core.models import Job
    started = time.perf_counter()
    tenant_id = make_tenant(rows, f"{rows}")
    event, size, distinct = upload(tenant_id, rows)
    job = {"event": event}
    if with_naive:
        job["naive_event"] = upload(make_tenant(rows, f"naive{rows}"), rows)[0]
    log(f"bulk {rows:,} rows: directory and file ready in {time.perf_counter() - started:.0f} s; running the handler")
    command, env = [sys.executable, "-m", "bench.bulk", "child"], {**os.environ, **(env or {})}
    if code != ROOT:  # this file's child (the same measuring, the same added latency) around that tree's handler
        command, env["PYTHONPATH"] = [sys.executable, str(ROOT / "bench" / "bulk.py"), "child"], str(code)
    from bench.common import moto_cpu_seconds  # here: a baseline's child imports this file beside its own bench/
    moto_cpu, child_started = moto_cpu_seconds(), time.perf_counter()
    proc = subprocess.run(command, cwd=code, input=json.dumps(job), capture_output=True, text=True, env=env)
    # moto's share of the child's time (its import included): near 1.0, moto's one core is the limit
    moto_cpu, child_seconds = moto_cpu_seconds() - moto_cpu, time.perf_counter() - child_started
    if proc.returncode != 0:
        raise RuntimeError(f"bulk child failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    handler = out["handler"]
    assert handler["result"] == {"batchItemFailures": []}, handler["result"]
    job_record = next(Job.query(tenant_id))
    counts = {k: int(v) for k, v in job_record.summary.as_dict()["counts"].items()}
    assert job_record.status == "done" and counts["rows"] == rows + 1, (job_record.status, counts)
    purge("send")  # the invitations the run queued: the send section measures the sender separately
    out.update(moto_cpu_seconds=moto_cpu, moto_busy=moto_cpu / child_seconds)
    out.update(rows=rows, bytes=size, distinct=distinct, counts=counts, tenant_id=tenant_id,
               bucket=BUCKET, setup_seconds=time.perf_counter() - started - handler["seconds"]
               - out.get("naive", {}).get("seconds", 0))
    return out


def baseline_tree(rev: str) -> Path:
    """The files of an earlier revision (git archive) under .local/, to run its handler beside this one's."""
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout.strip()
    tree = ROOT / ".local" / f"baseline-{sha}"
    if not (tree / "app.py").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def overlap_side_by_side(rows: int, log, latency_ms: float = 0, baseline_rev: str | None = None) -> dict:
    """`python -m bench --only bulk_overlap [--overlap-rows 20000] [--baseline-rev REV]`: the same file on twin
    directories, once one chunk after the other (PORTAL_BULK_OVERLAP=false) and once overlapped (CHUNKS_AT_ONCE
    chunks in flight), in one bench run; with --baseline-rev, first the handler of that revision (the code before
    issue 21: one SQS SendMessageBatch per ten invitations, each step after the other), on a third twin."""
    out = {}
    runs = [("sequential", "false", ROOT), ("overlapped", "true", ROOT)]
    if baseline_rev:
        runs.insert(0, ("before", "false", baseline_tree(baseline_rev)))
        out["baseline_rev"] = baseline_rev
    for name, overlap, code in runs:
        b = run(rows, with_naive=False, log=log, code=code,
                env={"PORTAL_BULK_OVERLAP": overlap, "BENCH_AWS_LATENCY_MS": str(latency_ms)})
        handler = b["handler"]
        out[name] = {"seconds": handler["seconds"], "rows_per_second": rows / handler["seconds"],
                     "cpu_seconds": handler.get("cpu_seconds"), "load": os.getloadavg(),
                     "dynamodb_per_email": handler["dynamodb"] / b["distinct"],
                     "sqs_per_email": handler["sqs"] / b["distinct"], "peak_rss_mb": b["peak_rss_mb"],
                     "calls": handler["calls"], "counts": b["counts"],
                     "moto_cpu_ms_per_row": 1000 * b["moto_cpu_seconds"] / rows, "moto_busy": b["moto_busy"]}
        log(f"bulk {rows:,} rows {name} (+{latency_ms:g} ms a call): {out[name]['rows_per_second']:,.0f} rows/s, "
            f"{out[name]['dynamodb_per_email']:.3f} DynamoDB and {out[name]['sqs_per_email']:.3f} SQS calls / email")
    assert out["sequential"]["counts"] == out["overlapped"]["counts"]
    out["speedup"] = out["overlapped"]["rows_per_second"] / out["sequential"]["rows_per_second"]
    if "before" in out:
        out["speedup_over_before"] = out["overlapped"]["rows_per_second"] / out["before"]["rows_per_second"]
    log(f"bulk {rows:,} rows: overlapped is {out['speedup']:.2f}x the sequential rows/s"
        + (f", {out['speedup_over_before']:.2f}x the code before issue 21" if "before" in out else ""))
    return {"rows": rows, "aws_latency_ms": latency_ms, **out}


def transaction_connection_ms(n: int = 5) -> float:
    """What chalicelib.core.models.transaction() pays on every call: it builds a new PynamoDB Connection, so the
    first request of each transaction creates a botocore client (median of n, ms)."""
    import statistics
    from pynamodb.connection import Connection
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        Connection(region="us-east-1").client  # noqa: B018 - the property creates the client
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


if __name__ == "__main__" and sys.argv[1:] == ["child"]:
    child()
