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


class Queued:
    """Every invitation the run puts on the bulk lane, on disk (SQLite: memory stays out of the peak RSS): how many
    were queued, to how many users, under how many message ids. One each means nothing was queued twice."""

    def __init__(self):
        import sqlite3
        import tempfile
        self._file = tempfile.NamedTemporaryFile(suffix=".sqlite")
        self._db = sqlite3.connect(self._file.name, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("CREATE TABLE queued (message_id TEXT, user_id TEXT)")
        import threading
        self._lock = threading.Lock()  # the run queues from its threads

    def add(self, messages: list[dict]) -> None:
        with self._lock:
            self._db.executemany("INSERT INTO queued VALUES (?, ?)",
                                 [(m["message_id"], m["user_id"]) for m in messages])

    def counts(self) -> dict:
        one = self._db.execute("SELECT COUNT(*), COUNT(DISTINCT message_id), COUNT(DISTINCT user_id) FROM queued")
        total, ids, users = one.fetchone()
        return {"queued": total, "message_ids": ids, "users": users}


def child() -> None:
    """`python -m bench.bulk_continuation child`: stdin {"event"}; stdout one JSON line."""
    job = json.loads(sys.stdin.read())
    import app
    from bench.bulk import peak_rss_mb
    from chalicelib.core import config, messaging
    invitations, put_bulk = Queued(), messaging.put_bulk

    def counted(tenant_id, messages):
        invitations.add(messages)
        return put_bulk(tenant_id, messages)
    messaging.put_bulk = counted
    invocations, event, started = [], job["event"], time.perf_counter()
    while event is not None:
        began = time.perf_counter()
        result = app.on_bulk_invite_upload(event, LambdaContext())
        assert result == {"batchItemFailures": []}, result
        invocations.append(round(time.perf_counter() - began, 2))
        queued = receive_all("bulk-invites")
        assert len(queued) <= 1, queued  # one continuation at a time
        event = sqs_event(queued, config.queue_name("bulk-invites")) if queued else None
    seconds, peak = time.perf_counter() - started, peak_rss_mb()
    print(json.dumps({"seconds": seconds, "invocations": invocations, "peak_rss_mb": peak,
                      "invitations": invitations.counts()}))


def run(rows: int, budget: float, log) -> dict:
    from bench import bulk
    from chalicelib.core import config
    from chalicelib.core.models import Job
    from chalicelib.flows.portal import bulk_invites, bulk_rows
    started = time.perf_counter()
    tenant_id = bulk.make_tenant(rows, "cont", customers=False)  # the email index alone: half the setup
    event, size, distinct = bulk.upload(tenant_id, rows, compact=True)
    if size > bulk_invites.MAX_BYTES:
        raise ValueError(f"{rows:,} rows make {size / 1e6:.1f} MB: over the 100 MB a bulk file may be")
    log(f"bulk continuation {rows:,} rows ({size / 1e6:.1f} MB): directory and file ready in "
        f"{time.perf_counter() - started:.0f} s; running with a {budget:g} s budget per invocation")
    env = {**os.environ, "PORTAL_BULK_TIME_BUDGET_SECONDS": str(budget), "PORTAL_BULK_CHECKPOINT_SECONDS": "30"}
    proc = subprocess.run([sys.executable, "-m", "bench.bulk_continuation", "child"], cwd=ROOT, env=env,
                          input=json.dumps({"event": event}), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"bulk continuation child failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    job = next(j for j in Job.query(tenant_id))
    counts = {k: int(v) for k, v in job.summary.as_dict()["counts"].items()}
    at = job.summary.as_dict()["rows_prefix"]
    body = config.client("s3").get_object(Bucket=BUCKET, Key=f"{at}all.jsonl")["Body"]
    stored = sum(1 for line in body.iter_lines() if line)
    assert job.status == "done" and counts["rows"] == rows + 1 == stored, (job.status, counts, stored)
    invitations = out["invitations"]  # one invitation for each invited email, none queued twice
    assert invitations["queued"] == invitations["message_ids"] == invitations["users"] == counts["invited"], \
        (invitations, counts)
    assert at.startswith(bulk_rows.REPORT_PREFIX)
    purge("send")
    out.update(rows=rows, file_rows=rows + 1, stored_rows=stored, bytes=size, distinct=distinct, budget=budget,
               continuations=len(out["invocations"]) - 1, counts=counts,
               rows_per_second=(rows + 1) / out["seconds"])
    log(f"bulk continuation {rows:,} rows: {out['rows_per_second']:,.0f} rows/s over {out['seconds']:.0f} s, "
        f"{out['continuations']} continuations, peak RSS {out['peak_rss_mb']:.0f} MB, stored rows {stored:,} "
        f"== file rows {rows + 1:,}, {out['invitations']['queued']:,} invitations queued to as many users")
    return out


if __name__ == "__main__" and sys.argv[1:] == ["child"]:
    child()
