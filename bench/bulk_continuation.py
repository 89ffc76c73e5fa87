"""A bulk file larger than one invocation (issue 21 §1): a generated N-row CSV (bench/bulk.py's rows and directory)
goes S3 -> SQS -> the real handler with a small time budget (PORTAL_BULK_TIME_BUDGET_SECONDS), and every
continuation it queues on the bulk queue is handed to the handler again, in one child process (so its peak RSS is
the run's alone: a Lambda container is reused the same way), until the job is done.

`python -m bench --only bulk_continuation [--continuation-rows 200000] [--budget 20]`. Measures rows/s over the
whole run, the number of continuations, each invocation's seconds (the seen-set rebuild grows with the rows already
read), the child's peak RSS, and that the stored rows (all.jsonl) hold every row of the file."""
import json
import os
import subprocess
import sys
import time

from bench.common import BUCKET, ROOT, LambdaContext, purge, receive_all, sqs_event

DEFAULT_ROWS = 2_000_000
DEFAULT_BUDGET = 20.0


def child() -> None:
    """`python -m bench.bulk_continuation child`: stdin {"event"}; stdout one JSON line."""
    job = json.loads(sys.stdin.read())
    import app
    from bench.bulk import peak_rss_mb
    from chalicelib.core import config
    invocations, event, started = [], job["event"], time.perf_counter()
    while event is not None:
        began = time.perf_counter()
        result = app.on_bulk_invite_upload(event, LambdaContext())
        assert result == {"batchItemFailures": []}, result
        invocations.append(round(time.perf_counter() - began, 2))
        queued = receive_all("bulk-invites")
        assert len(queued) <= 1, queued  # one continuation at a time
        event = sqs_event(queued, config.queue_name("bulk-invites")) if queued else None
    print(json.dumps({"seconds": time.perf_counter() - started, "invocations": invocations,
                      "peak_rss_mb": peak_rss_mb()}))


def run(rows: int, budget: float, log) -> dict:
    from bench import bulk
    from chalicelib.core import config
    from chalicelib.core.models import Job
    from chalicelib.flows.portal import bulk_rows
    started = time.perf_counter()
    tenant_id = bulk.make_tenant(rows, f"cont{rows}")
    event, size, distinct = bulk.upload(tenant_id, rows)
    log(f"bulk continuation {rows:,} rows ({size / 1e6:.1f} MB): directory and file ready in "
        f"{time.perf_counter() - started:.0f} s; running with a {budget:g} s budget per invocation")
    env = {**os.environ, "PORTAL_BULK_TIME_BUDGET_SECONDS": str(budget), "PORTAL_BULK_CHECKPOINT_SECONDS": "30"}
    proc = subprocess.run([sys.executable, "-m", "bench.bulk_continuation", "child"], cwd=ROOT, env=env,
                          input=json.dumps({"event": event}), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"bulk continuation child failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    job = next(j for j in Job.query(tenant_id))
    counts = {k: int(v) for k, v in job.summary.as_dict()["counts"].items()}
    at = job.summary.as_dict()["rows_prefix"]
    body = config.client("s3").get_object(Bucket=BUCKET, Key=f"{at}all.jsonl")["Body"]
    stored = sum(1 for line in body.iter_lines() if line)
    assert job.status == "done" and counts["rows"] == rows + 1 == stored, (job.status, counts, stored)
    assert at.startswith(bulk_rows.REPORT_PREFIX)
    purge("send")
    out.update(rows=rows, file_rows=rows + 1, stored_rows=stored, bytes=size, distinct=distinct, budget=budget,
               continuations=len(out["invocations"]) - 1, counts=counts,
               rows_per_second=(rows + 1) / out["seconds"])
    log(f"bulk continuation {rows:,} rows: {out['rows_per_second']:,.0f} rows/s over {out['seconds']:.0f} s, "
        f"{out['continuations']} continuations, peak RSS {out['peak_rss_mb']:.0f} MB, stored rows {stored:,} "
        f"== file rows {rows + 1:,}")
    return out


if __name__ == "__main__" and sys.argv[1:] == ["child"]:
    child()
