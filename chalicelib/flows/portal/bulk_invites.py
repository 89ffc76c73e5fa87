"""Bulk portal invitations from a CSV put at `bulk-invites/<tenant_id>/<name>` in the uploads bucket
(DESIGN rule 3 and Events). S3 notifies the bulk queue; the handler streams the object through email_scan,
decides one outcome per distinct email in chunks of 100 (two BatchGetItem, one TransactWriteItems), puts the
invitations on the business's bulk sending line (messaging.put_bulk), and writes the report to
`bulk-invite-reports/<tenant_id>/<name>.json` and the rows the API pages through (bulk_rows). A file with metadata
`review: true` is only decided (`will_invite`): its job waits in `ready` until bulk_review.send moves it to
`sending` and queues {"bulk_send": ...} on the bulk queue, whose run (handle_send) decides every reviewed email
again and invites. Either run continues across invocations from checkpoints (bulk_checkpoints).

Exactly once: the job id is derived from bucket + key + the PUT (the event's sequencer, else version, else event
time), so every delivery of one upload is the same job and each new upload, even of the same bytes, a new one.
Each invited user records the job that invited them (a conditional write), and each invitation message id is
derived from job + email, so a redelivered or resumed run re-decides nothing and the sender's idempotency drops
messages already sent."""
import hashlib
import itertools
import json
import os
import re
import tempfile
import threading
import urllib.parse
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError
from pynamodb.expressions.update import Action

from chalicelib.core import audit, config, messaging, observability, tenants
from chalicelib.core.models import (
    AuditEvent,
    BacklogItem,
    Counter,
    Grant,
    Job,
    PortalUser,
    RecordEmail,
    connect,
    now,
    transaction,
)
from chalicelib.core.observability import logger
from chalicelib.flows.portal import bulk_checkpoints, bulk_rows, email_scan
from chalicelib.flows.portal.invitations import (
    ACCESS_RANK,
    grants_from_refs,
    invite_message,
    merge_grant,
    portal_user_id,
    status_key,
)

PREFIX = "bulk-invites/"
REPORT_PREFIX = bulk_rows.REPORT_PREFIX
MAX_BYTES = 100 * 1024 * 1024
CHUNK = 100  # BatchGetItem's limit; one TransactWriteItems holds up to 100 items too
BUFFER_ROWS = 1000  # rows held before they are written in file order (invalid or duplicate rows need no read)
READ_BYTES = 256 * 1024
JOB_KIND = "portal_bulk_invite"
MAX_RECEIVES = 5  # the queue's maxReceiveCount: on the last try a failing job is marked failed
REVIEW_SECONDS = 24 * 3600  # a reviewed job can be sent for this long, then it is expired
OUTCOMES = bulk_rows.OUTCOMES
OUTCOME_WORDS = bulk_rows.OUTCOME_WORDS
SEND_KEY = "bulk_send"  # a bulk-queue message {"bulk_send": {"tenant_id", "job_id"}}: send a reviewed job
_JOB_ID = re.compile(r"[0-9a-f]{24}")


@dataclass
class Upload:
    bucket: str
    key: str
    version: str | None
    etag: str | None
    size: int | None
    sequencer: str | None = None  # unique per PUT of a key (S3 orders a key's events by it)
    event_time: str | None = None
    principal: str | None = None  # the AWS principal that put the object, when S3 says

    @property
    def job_id(self) -> str:
        """The same for every delivery of one PUT and new for each PUT, even of the same bytes to the same key
        (the ETag alone is the same then): the sequencer, else the version, else the event's time (moto's
        notifications carry neither sequencer nor version)."""
        put = self.sequencer or self.version or f"{self.event_time}|{self.etag}"
        return hashlib.sha256(f"{self.bucket}/{self.key}#{put}".encode()).hexdigest()[:24]


def uploads_in(sqs_body: str) -> list[Upload]:
    """The uploads an S3 notification (as delivered to SQS) announces; none for S3's own test event."""
    message = json.loads(sqs_body)
    out = []
    for record in message.get("Records") or []:
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record["s3"]
        obj = s3["object"]
        out.append(Upload(s3["bucket"]["name"], urllib.parse.unquote_plus(obj["key"]), obj.get("versionId"),
                          obj.get("eTag"), obj.get("size"), obj.get("sequencer"), record.get("eventTime"),
                          (record.get("userIdentity") or {}).get("principalId")))
    return out


def sends_in(sqs_body: str) -> list[tuple[str, str]]:
    """(tenant_id, job_id) of the reviewed jobs a bulk-queue message asks to send (see bulk_review.send)."""
    message = json.loads(sqs_body)
    send = message.get(SEND_KEY) if isinstance(message, dict) else None
    return [(send["tenant_id"], send["job_id"])] if isinstance(send, dict) else []


@dataclass
class Options:
    """What the object's metadata asks (x-amz-meta-*): set by the upload URL, or by hand with the AWS CLI."""
    review: bool = False
    include_invited: bool = False
    access: str = "billing"
    actor: str | None = None
    job_id: str | None = None


def options_from(metadata: dict, upload: Upload) -> Options:
    meta = {k.lower().replace("_", "-"): str(v).strip() for k, v in (metadata or {}).items()}
    access = meta.get("access", "").lower()
    job_id = meta.get("job-id", "").lower()
    return Options(review=meta.get("review", "").lower() == "true",
                   include_invited=meta.get("include-invited", "").lower() == "true",
                   access=access if access in ("billing", "non_billing") else "billing",
                   actor=meta.get("uploaded-by") or (f"aws:{upload.principal}" if upload.principal else None),
                   job_id=job_id if _JOB_ID.fullmatch(job_id) else None)


# --- one run -----------------------------------------------------------------------------------------------------

@dataclass
class Run:
    tenant_id: str
    job_id: str
    include_invited: bool
    access_cap: str
    report: "Report"
    review: bool = False  # decide only: will_invite, nothing written or sent
    actor: str | None = None
    sending: bool = False  # a reviewed job's send: its rows come from the review's stored rows
    line: int = 0  # the line of the last stored row taken (a send counts the file's lines from its rows)
    seen: "SeenEmails" = field(default_factory=lambda: SeenEmails())
    buffer: list = field(default_factory=list)  # rows in file order; outcome None = not decided yet
    undecided: int = 0
    calls: dict = field(default_factory=lambda: {"batch_get": 0, "transact_write": 0, "put": 0})
    overlap: bool = field(default_factory=lambda: os.environ.get("PORTAL_BULK_OVERLAP", "true") != "false")
    # chunks in flight, oldest first (overlap): futures of (rows, decided, invitations put on the line)
    writing: list[Future] = field(default_factory=list)
    unannounced: int = 0  # invitations on the business's line since its marker was last touched (_announce)
    announcing: list[Future] = field(default_factory=list)  # the line's marker being touched (overlap)

    @property
    def phase(self) -> str:
        """The stored rows' phase (bulk_rows.prefix); the parts of a send have their own prefix."""
        return "sent" if self.sending else ("review" if self.review else "run")


class SeenEmails:
    """The distinct emails of one file, on disk (SQLite in a temporary file, with a small page cache): a set in
    memory would grow by ~190 bytes per email, this keeps the handler's memory flat whatever the file size."""

    def __init__(self):
        import sqlite3
        self._file = tempfile.NamedTemporaryFile(suffix=".sqlite")
        self._db = sqlite3.connect(self._file.name, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("PRAGMA cache_size=-4096")  # 4 MB of pages at most
        self._db.execute("CREATE TABLE seen (email TEXT PRIMARY KEY) WITHOUT ROWID")

    def add(self, email: str) -> bool:
        """True when the email is new to this file."""
        return self._db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (email,)).rowcount == 1

    def add_many(self, emails: list[str]) -> None:
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", [(e,) for e in emails])


class Report:
    """Row outcomes streamed to temporary files (memory stays flat), counts kept aside; uploaded at the end: the
    JSON report at the file's report key, and the rows the API pages through (bulk_rows)."""

    def __init__(self, counts: dict | None = None, header: bool = True):
        self.rows = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.stored = bulk_rows.RowsWriter(header)
        self.counts = counts or {o: 0 for o in OUTCOMES if o != "no_email"} | {"rows": 0, "rows_without_email": 0}
        self._first = True
        self.written = 0

    def row(self, **entry) -> None:
        self.rows.write(("" if self._first else ",\n") + json.dumps(entry))
        self._first = False
        self.written += 1
        self.stored.add(entry)

    def upload_part(self, bucket: str, at: str) -> list[str]:
        """The rows held as one part of a continued run (bulk_checkpoints); the names of its stored-row files."""
        bulk_rows.upload_text(self.rows, bucket, f"{at}report.json")
        return self.stored.upload_part(bucket, at)

    def append_part(self, bucket: str, at: str, names: list[str]) -> None:
        if not self._first:
            self.rows.write(",\n")
        bulk_rows.download_text(bucket, f"{at}report.json", self.rows)
        self._first = False
        self.stored.append_part(bucket, at, names)

    def upload(self, bucket: str, key: str, header: dict, rows_at: str | None = None) -> None:
        with tempfile.NamedTemporaryFile("w+b", suffix=".json") as out:
            head = json.dumps({**header, "counts": self.counts})[:-1]
            out.write((head + ', "rows": [\n').encode())
            self.rows.seek(0)
            while block := self.rows.read(1 << 20):
                out.write(block.encode())
            out.write(b"\n]}\n")
            out.flush()
            config.client("s3").upload_file(out.name, bucket, key, ExtraArgs={"ContentType": "application/json"},
                                            Config=bulk_rows.transfer_config())
        self.rows.close()
        if rows_at:
            self.stored.upload(bucket, rows_at)


def handle(upload: Upload, receive_count: int = 1, context=None) -> dict:
    """Processes one uploaded file. Bad files end in a report with an error code and send nothing; only
    transient failures raise (the queue retries them; the last try marks the job failed). A file whose metadata
    says `review: true` is decided but not sent: its job waits in `ready` (bulk_review.send)."""
    key_parts = upload.key.split("/")
    if not upload.key.startswith(PREFIX) or len(key_parts) < 3 or not key_parts[1] or not key_parts[-1]:
        logger.warning("bulk upload outside bulk-invites/<tenant_id>/<name>: ignored", extra={"key": upload.key})
        return {"status": "failed", "error": "outside_prefix"}
    tenant_id, name = key_parts[1], "/".join(key_parts[2:])
    report_key = f"{REPORT_PREFIX}{tenant_id}/{name}.json"
    if tenants.find(tenant_id) is None:
        # No tenant to hold a job: the report under that prefix and the log say why nothing was sent.
        header = {"job_id": upload.job_id, "tenant_id": tenant_id, "source": f"s3://{upload.bucket}/{upload.key}"}
        Report().upload(upload.bucket, report_key, {**header, "status": "failed", "error": "unknown_tenant",
                                                    "message": f"There is no business {tenant_id!r}."})
        logger.warning("bulk upload for an unknown tenant", extra={"key": upload.key})
        return {"status": "failed", "error": "unknown_tenant"}

    s3 = config.client("s3")
    version = {"VersionId": upload.version} if upload.version else {}
    head = s3.head_object(Bucket=upload.bucket, Key=upload.key, **version)
    options = options_from(head.get("Metadata") or {}, upload)
    # upload_for_review names the job in the metadata (it runs the review itself and returns the id)
    job = _start_job(tenant_id, _job_id_for(tenant_id, options, upload), upload, report_key, options)
    if job.status != "running":
        return {"status": job.status, "job_id": job.job_id, "replayed": True}
    try:
        result = _run(upload, head, options, job, report_key, context)
    except Exception as exc:
        if receive_count >= MAX_RECEIVES:  # the queue gives up after this try: say so on the job
            _finish(job, "failed", error="processing_failed", message=type(exc).__name__)
        raise
    return result


def _job_id_for(tenant_id: str, options: Options, upload: Upload) -> str:
    """The metadata's job id only for this very object: a hand upload (AWS CLI) naming another file's job would
    otherwise run its bytes from that job's checkpoint, into its report."""
    if options.job_id:
        try:
            named = Job.get(tenant_id, options.job_id, consistent_read=True)
        except DoesNotExist:
            return options.job_id
        if named.source == upload.key:
            return options.job_id
        logger.warning("bulk upload names another file's job: ignored", extra={"key": upload.key})
    return upload.job_id


def _start_job(tenant_id: str, job_id: str, upload: Upload, report_key: str, options: Options) -> Job:
    summary = {"report_key": report_key, "name": upload.key.split("/", 2)[2], "bucket": upload.bucket,
               "review": options.review, "include_invited": options.include_invited, "access": options.access}
    if options.actor:
        summary["actor"] = options.actor
    if upload.version:  # a continuation reads this version of the object
        summary["version"] = upload.version
    job = Job(tenant_id, job_id, kind=JOB_KIND, status="running", source=upload.key, attempts=1, summary=summary)
    try:
        job.save(condition=Job.job_id.does_not_exist())
        bulk_checkpoints.mark_running(tenant_id, job.job_id)  # the schedule's list of jobs that may stall
        audit.record(tenant_id, "portal.bulk_invite_started", actor=options.actor, target=job.job_id,
                     source=upload.key, review=options.review)
        return job
    except PutError:
        job = Job.get(tenant_id, job_id, consistent_read=True)
        if job.status == "running":  # a redelivery of a run that was cut off: resume it
            job.update(actions=[Job.attempts.add(1), Job.updated_at.set(now())])
            bulk_checkpoints.mark_running(tenant_id, job.job_id)  # the first try may have died before writing it
        return job


def _finish(job: Job, status: str, *, error: str | None = None, message: str | None = None,
            counts: dict | None = None, rows_prefix: str | None = None,
            state: "bulk_checkpoints.State | None" = None) -> None:
    """The job's end; `state`, a run's last position, so that the progress of a checkpointed run shows it whole."""
    summary = job.summary.as_dict() if job.summary else {}
    if counts is not None:
        summary["counts"] = counts
    if message:
        summary["message"] = message
    if rows_prefix:
        summary["rows_prefix"] = rows_prefix
    actions: list[Action] = [Job.status.set(status), Job.summary.set(summary), Job.updated_at.set(now())]
    if state is not None and job.checkpoint:
        actions.append(Job.checkpoint.set({**state.as_map(), "counts": dict(counts or state.counts)}))
    if status == "ready":
        actions.append(Job.expires_at.set(now() + REVIEW_SECONDS))
    job.update(actions=actions + ([Job.error.set(error)] if error else []))
    audit.record(job.tenant_id, f"portal.bulk_invite_{status}", target=job.job_id, error=error)
    rows = int((counts or {}).get("rows", 0))
    if status == "failed":
        observability.count("BulkJobsFailed")
        observability.count("BulkRowsFailed", rows)  # the rows of a failed run (its report says what each got)
    elif status == "done":
        observability.count("BulkRowsProcessed", rows)


def _header(job: Job, bucket: str, source: str) -> dict:
    return {"job_id": job.job_id, "tenant_id": job.tenant_id, "source": f"s3://{bucket}/{source}"}


def _run(upload: Upload, head: dict, options: Options, job: Job, report_key: str, context=None) -> dict:
    """Reads the file from the job's checkpoint (the start, for a new job) until it ends or this invocation's
    time runs low (then it queues a continuation: bulk_checkpoints); the invocation that reads the end joins the
    parts and finishes the job."""
    s3 = config.client("s3")
    version = {"VersionId": upload.version} if upload.version else {}
    header = _header(job, upload.bucket, upload.key)
    rows_at = bulk_rows.prefix(job.tenant_id, job.job_id, "review" if options.review else "run")
    owner, clock = uuid.uuid4().hex[:12], bulk_checkpoints.Clock(context)
    if not bulk_checkpoints.take_lease(job, owner, clock.lease_seconds):
        logger.info("bulk run already under way elsewhere", extra={"job_id": job.job_id})
        return {"status": "running", "job_id": job.job_id, "busy": True}
    state = bulk_checkpoints.State.of(job, head["ContentLength"])
    run = Run(job.tenant_id, job.job_id, options.include_invited, options.access,
              Report(state.counts or None, header=not state.parts), review=options.review, actor=options.actor)
    try:
        if head["ContentLength"] > MAX_BYTES:
            raise email_scan.BadFile("file_too_large", "The file is over 100 MB: split it into smaller files.")
        if state.parts:
            bulk_checkpoints.rebuild_seen(upload.bucket, job.tenant_id, job.job_id, state, run.seen)
        if state.codec is None or state.offset < state.total_bytes:
            ranged = {"Range": f"bytes={state.offset}-"} if state.codec else {}
            body = s3.get_object(Bucket=upload.bucket, Key=upload.key, **version, **ranged)["Body"]
            try:
                if _read(run, body.iter_chunks(READ_BYTES), state, job, owner, clock, upload.bucket):
                    return {"status": "running", "job_id": job.job_id, "continued": True,
                            "counts": run.report.counts, "calls": run.calls}
            finally:
                body.close()
        if state.parts:  # continued: the report is the parts in order, then what this invocation decided
            _save_part(run, state, owner, upload.bucket)
            run.report = _joined(upload.bucket, run, state)
    except bulk_checkpoints.LeaseLost:
        logger.warning("bulk run taken over by another invocation: stopped", extra={"job_id": job.job_id})
        return {"status": "running", "job_id": job.job_id, "busy": True}
    except email_scan.BadFile as bad:
        run.report.upload(upload.bucket, report_key, {**header, "status": "failed", "error": bad.code,
                                                      "message": bad.message}, rows_at)
        _finish(job, "failed", error=bad.code, message=bad.message, counts=run.report.counts, rows_prefix=rows_at)
        return {"status": "failed", "error": bad.code, "job_id": job.job_id}
    except Exception:  # the queue's retry may take the job up at once (a run killed outright cannot do this:
        _settle_quietly(run)  # its lease runs out before the queue shows its message again)
        bulk_checkpoints.release(job, owner)
        raise
    status = "ready" if options.review else "done"
    run.report.upload(upload.bucket, report_key, {**header, "status": status, "review": options.review,
                                                  "include_invited": run.include_invited}, rows_at)
    _finish(job, status, counts=run.report.counts, rows_prefix=rows_at, state=state)
    logger.info("bulk invite " + status, extra={"job_id": job.job_id, "counts": run.report.counts,
                                                 "calls": run.calls, "continuations": state.continuations})
    return {"status": status, "job_id": job.job_id, "counts": run.report.counts, "calls": run.calls}


def _read(run: Run, chunks, state: "bulk_checkpoints.State", job: Job, owner: str,
          clock: "bulk_checkpoints.Clock", bucket: str) -> bool:
    """Takes the file's rows from the checkpoint on; True when it handed over to a continuation."""
    chunks = iter(chunks)
    if state.codec is None:  # a new run: the encoding from the first bytes, as email_scan.lines does
        head = b""
        for chunk in chunks:
            head += chunk
            if len(head) >= 4096:
                break
        state.codec, skip = email_scan.detect(head)
        chunks, state.offset = itertools.chain([head[skip:]], chunks), skip
    found = email_scan.scan(chunks, state.codec, state.offset, state.line)
    return _take_all(run, ((f, f.end, f.line) for f in found), _take_row, state, job, owner, clock, bucket)


def _take_all(run: Run, rows, take, state: "bulk_checkpoints.State", job: Job, owner: str,
              clock: "bulk_checkpoints.Clock", bucket: str) -> bool:
    """Takes each (row, byte offset after it, its line) with `take`, checkpointing between decided chunks and
    handing over to a continuation when this invocation's time runs low (then True)."""
    for row, end, line in rows:
        take(run, row)
        if run.buffer:  # rows of a chunk not decided yet: no checkpoint inside a chunk
            continue
        state.offset, state.line = end, line
        if clock.out():
            _settle(run)
            _hand_over(run, state, job, owner, clock, bucket)
            return True
        if clock.checkpoint_due():
            _settle(run)
            _checkpoint(run, state, job, owner, clock, bucket)
    _decide(run)
    _settle(run)
    state.offset = state.total_bytes
    if state.parts and clock.out():  # the joining of the parts in a fresh invocation
        _hand_over(run, state, job, owner, clock, bucket)
        return True
    return False


def _hand_over(run: Run, state: "bulk_checkpoints.State", job: Job, owner: str, clock: "bulk_checkpoints.Clock",
               bucket: str) -> None:
    state.continuations += 1
    _checkpoint(run, state, job, owner, clock, bucket, release=True)
    bulk_checkpoints.queue_continuation(job.tenant_id, job.job_id)


def _checkpoint(run: Run, state: "bulk_checkpoints.State", job: Job, owner: str, clock: "bulk_checkpoints.Clock",
                bucket: str, release: bool = False) -> None:
    """The rows decided since the last checkpoint as a part in S3, then the job's checkpoint (the seam a test
    breaks to kill a run after a chunk was written but before it was checkpointed)."""
    _save_part(run, state, owner, bucket)
    state.counts = dict(run.report.counts)
    bulk_checkpoints.save(job, owner, state, clock.lease_seconds, release=release)
    clock.saved()


def _save_part(run: Run, state: "bulk_checkpoints.State", owner: str, bucket: str) -> None:
    if not run.report.written:
        return
    part_id = f"{len(state.parts):05d}-{owner}"  # a part of an invocation that did not checkpoint is never read
    at = f"{bulk_checkpoints.parts_prefix(run.tenant_id, run.job_id, run.phase)}{part_id}/"
    state.parts.append({"id": part_id, "files": run.report.upload_part(bucket, at)})
    run.report = Report(run.report.counts, header=False)


def _joined(bucket: str, run: Run, state: "bulk_checkpoints.State") -> "Report":
    report = Report(run.report.counts)
    for part in state.parts:
        report.append_part(bucket, f"{bulk_checkpoints.parts_prefix(run.tenant_id, run.job_id, run.phase)}"
                                   f"{part['id']}/", part["files"])
    return report


def _job_in(tenant_id: str, job_id: str, *statuses: str) -> Job | dict:
    """The job a bulk-queue message names, when it is in one of `statuses`; otherwise the handler's answer (an
    unknown job, or a redelivery of work already done)."""
    try:
        job = Job.get(tenant_id, job_id, consistent_read=True)
    except DoesNotExist:
        logger.warning("bulk message for an unknown job", extra={"job_id": job_id, "expected": statuses})
        return {"status": "failed", "error": "job_not_found"}
    if job.status not in statuses:
        return {"status": job.status, "job_id": job_id, "replayed": True}
    return job


def handle_continue(tenant_id: str, job_id: str, receive_count: int = 1, context=None) -> dict:
    """Continues a run that handed over ({"bulk_continue": ...} on the bulk queue) from its checkpoint: the
    reading of a file, or the send of a reviewed job."""
    job = _job_in(tenant_id, job_id, *bulk_checkpoints.WORKING)
    if not isinstance(job, Job):
        return job
    if job.status == "sending":
        return _send_run(job, receive_count, context)
    summary = job.summary.as_dict() if job.summary else {}
    upload = Upload(summary["bucket"], job.source or "", summary.get("version"), None, None)
    options = Options(review=bool(summary.get("review")), include_invited=bool(summary.get("include_invited")),
                      access=summary.get("access") or "billing", actor=summary.get("actor"))
    version = {"VersionId": upload.version} if upload.version else {}
    try:
        head = config.client("s3").head_object(Bucket=upload.bucket, Key=upload.key, **version)
        return _run(upload, head, options, job, summary["report_key"], context)
    except Exception as exc:
        if receive_count >= MAX_RECEIVES:
            _finish(job, "failed", error="processing_failed", message=type(exc).__name__)
        raise


def handle_send(tenant_id: str, job_id: str, receive_count: int = 1, context=None) -> dict:
    """Sends a reviewed job that bulk_review.send moved to `sending` (only one caller can): every email of the
    reviewed rows is decided again, now, and invited. Like a file's run it checkpoints and continues across
    invocations (a reviewed file of 2M rows takes longer than one), and a redelivery resumes."""
    job = _job_in(tenant_id, job_id, "sending")
    if not isinstance(job, Job):
        return job
    job.update(actions=[Job.attempts.add(1), Job.updated_at.set(now())])
    return _send_run(job, receive_count, context)


def _send_run(job: Job, receive_count: int, context=None) -> dict:
    """The reviewed rows (the review's all.jsonl, read from the checkpoint's byte offset) decided and invited."""
    summary = job.summary.as_dict() if job.summary else {}
    bucket = summary.get("bucket") or config.uploads_bucket()
    owner, clock = uuid.uuid4().hex[:12], bulk_checkpoints.Clock(context)
    if not bulk_checkpoints.take_lease(job, owner, clock.lease_seconds):
        logger.info("bulk send already under way elsewhere", extra={"job_id": job.job_id})
        return {"status": "sending", "job_id": job.job_id, "busy": True}
    run: Run | None = None
    try:  # from here on, whatever fails gives the lease back and, on the queue's last try, fails the job
        s3, reviewed = config.client("s3"), f"{summary['rows_prefix']}all.jsonl"
        state = bulk_checkpoints.State.of(job, s3.head_object(Bucket=bucket, Key=reviewed)["ContentLength"])
        run = Run(job.tenant_id, job.job_id, bool(summary.get("include_invited")), summary.get("access") or "billing",
                  Report(state.counts or None, header=not state.parts), actor=summary.get("actor"), sending=True,
                  line=state.line)
        if state.offset < state.total_bytes:
            body = s3.get_object(Bucket=bucket, Key=reviewed, Range=f"bytes={state.offset}-")["Body"]
            try:
                rows = _stored_from(body.iter_chunks(READ_BYTES), state.offset)
                if _take_all(run, rows, _take_stored, state, job, owner, clock, bucket):
                    return {"status": "sending", "job_id": job.job_id, "continued": True,
                            "counts": run.report.counts, "calls": run.calls}
            finally:
                body.close()
        if state.parts:
            _save_part(run, state, owner, bucket)
            run.report = _joined(bucket, run, state)
        rows_at = bulk_rows.prefix(job.tenant_id, job.job_id, "sent")
        run.report.upload(bucket, summary["report_key"], {**_header(job, bucket, job.source or ""),
                                                          "status": "done", "review": True,
                                                          "include_invited": run.include_invited}, rows_at)
    except bulk_checkpoints.LeaseLost:
        logger.warning("bulk send taken over by another invocation: stopped", extra={"job_id": job.job_id})
        return {"status": "sending", "job_id": job.job_id, "busy": True}
    except Exception as exc:
        if run is not None:
            _settle_quietly(run)
        bulk_checkpoints.release(job, owner)
        if receive_count >= MAX_RECEIVES:
            _finish(job, "failed", error="processing_failed", message=type(exc).__name__)
        raise
    _finish(job, "done", counts=run.report.counts, rows_prefix=rows_at, state=state)
    logger.info("bulk invite sent", extra={"job_id": job.job_id, "counts": run.report.counts,
                                           "continuations": state.continuations})
    return {"status": "done", "job_id": job.job_id, "counts": run.report.counts, "calls": run.calls}


def _stored_from(chunks, offset: int):
    """(row, byte offset after it, its line) for each stored row from `offset` on (JSON Lines: no newline inside
    a row, so a checkpoint's offset always falls on a row's start)."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *lines, rest = rest.split(b"\n")
        for raw in lines:
            offset += len(raw) + 1
            if raw:
                row = json.loads(raw)
                yield row, offset, int(row["line"])
    if rest.strip():
        offset += len(rest)
        row = json.loads(rest)
        yield row, offset, int(row["line"])


def _take_row(run: Run, found: email_scan.Found) -> None:
    run.report.counts["rows"] += 1
    if not found.emails and not found.invalid:
        run.report.counts["rows_without_email"] += 1
        run.buffer.append({"line": found.line, "outcome": "no_email"})
    for text in found.invalid:
        run.buffer.append({"line": found.line, "text": text, "outcome": "invalid"})
    for email in found.emails:
        if not run.seen.add(email):
            run.buffer.append({"line": found.line, "email": email, "outcome": "duplicate"})
            continue
        run.buffer.append({"line": found.line, "email": email, "outcome": None})
        run.undecided += 1
    if run.undecided >= CHUNK or len(run.buffer) >= BUFFER_ROWS:
        _decide(run)


def _take_stored(run: Run, row: dict) -> None:
    """A reviewed row at send time: the file's own verdicts stay, every email is decided again. Every line of
    the file has at least one stored row (no_email when it has nothing), so its lines are counted again here."""
    outcome, email = row["outcome"], row.get("email") or ""
    if row["line"] != run.line:
        run.line = row["line"]
        run.report.counts["rows"] += 1
        run.report.counts["rows_without_email"] += outcome == "no_email"
    if outcome == "no_email":
        run.buffer.append({"line": row["line"], "outcome": "no_email"})
    elif outcome == "invalid":
        run.buffer.append({"line": row["line"], "text": email, "outcome": "invalid"})
    elif outcome == "duplicate":
        run.buffer.append({"line": row["line"], "email": email, "outcome": "duplicate"})
    else:
        run.buffer.append({"line": row["line"], "email": email, "outcome": None})
        run.undecided += 1
    if run.undecided >= CHUNK or len(run.buffer) >= BUFFER_ROWS:
        _decide(run)


def _decide(run: Run) -> None:
    """One outcome per undecided email of the held rows (_chunk); then the rows are reported in file order.

    Overlapped (the default; PORTAL_BULK_OVERLAP=false runs each chunk after the other): each chunk is one task in
    this invocation's threads, CHUNKS_AT_ONCE at a time, while this thread reads the file on and reports the
    chunks done, in file order. The waits of one chunk's calls overlap the others' (on AWS a call's time is mostly
    waiting). Safe because a chunk's emails are first sightings (SeenEmails): no chunk reads a user another chunk in
    flight writes. `_settle` waits for all of it (before a checkpoint and at the end)."""
    if not run.buffer:
        return
    rows, run.buffer, run.undecided = run.buffer, [], 0
    emails = [r["email"] for r in rows if r["outcome"] is None]
    if not run.overlap:
        _report_chunk(run, *_chunk(run, rows, emails))
        return
    _written_to_report(run, keep=CHUNKS_AT_ONCE - 1)
    run.writing.append(_pool().submit(_chunk, run, rows, emails))


def _chunk(run: Run, rows: list[dict], emails: list[str]) -> tuple[list[dict], dict, int]:
    """A chunk's whole work, everything but the report: two batch reads, the decisions, one transaction for the
    invited users, their audit events (one in each user's trail), their invitations put on the business's bulk
    line (announced later: _announce). One task, so that no task waits on another (a pool shared by several runs
    cannot run dry) and a chunk done is a chunk stored. (rows, decided, invitations put)"""
    if not emails:
        return rows, {}, 0
    decided, written = _decide_emails(run, emails, *_lookup(run, emails))
    if written:  # the per-user trail (GET /v1/portal/users/{id}/audit) shows the bulk invitation
        audit.record_many(run.tenant_id, "portal.invited", [
            {"target": portal_user_id(e), "at": at, "job_id": run.job_id, "bulk": True, "access": decided[e][1]}
            for e, at in written.items()], actor=run.actor, once_per=run.job_id)
    invitations = [invite_message(run.tenant_id, portal_user_id(email),
                                  hashlib.sha256(f"{run.job_id}|{email}".encode()).hexdigest()[:32])
                   for email, (outcome, _) in decided.items() if outcome == "invited"]
    if invitations:
        messaging.put_bulk(run.tenant_id, invitations)
    return rows, decided, len(invitations)


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        config.client("sqs")  # the clients the threads use, made here (boto3's session is not thread-safe)
        config.client("dynamodb")
        connect(AuditEvent, BacklogItem, Counter, PortalUser, RecordEmail)
        _POOL = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="bulk")
    return _POOL


_POOL: ThreadPoolExecutor | None = None
# Chunks in flight at once (overlap): each makes about eight calls one after the other; this many keep moto's
# one core busy on this machine, and hide 10-20 ms a call (bench/bulk.py, BENCHMARKS.md)
CHUNKS_AT_ONCE = 6
ANNOUNCE_EVERY = 500  # invitations put on the line between two touches of its marker (about five chunks)
WORKERS = CHUNKS_AT_ONCE + 2  # and the line's marker being touched


def _count_call(run: Run, name: str, n: int = 1) -> None:
    with _CALLS_LOCK:  # chunks in flight count from several threads at once
        run.calls[name] += n


_CALLS_LOCK = threading.Lock()


def _lookup(run: Run, emails: list[str]) -> tuple[dict, dict]:
    """The record refs and portal users of a chunk's emails: two BatchGetItem."""
    _count_call(run, "batch_get", 2)
    refs = {r.email: set(r.refs or ()) for r in RecordEmail.batch_get([(run.tenant_id, e) for e in emails])}
    users = {u.email: u for u in PortalUser.batch_get([(run.tenant_id, portal_user_id(e)) for e in emails])}
    return refs, users


def _written_to_report(run: Run, keep: int = 0) -> None:
    """The oldest chunks in flight, once done, until `keep` are left: their rows reported in file order."""
    while len(run.writing) > keep:
        _report_chunk(run, *run.writing.pop(0).result())


def _report_chunk(run: Run, rows: list[dict], decided: dict, invitations: int) -> None:
    """A chunk's rows into the report, in file order; the line announced once ANNOUNCE_EVERY invitations wait."""
    for row in rows:
        if row["outcome"] is None:
            row["outcome"], access = decided[row["email"]]
            if access:
                row["access"] = access
        outcome = row["outcome"]
        run.report.counts[outcome] = run.report.counts.get(outcome, 0) + 1
        run.report.row(**row)
    run.unannounced += invitations
    if run.unannounced >= ANNOUNCE_EVERY:
        _announce(run)


def _announce(run: Run) -> None:
    """The business's line marked and the drainer woken for the invitations put since the last time: each put would
    touch the marker and read the drainer's lease, 0.02 DynamoDB calls an email (the bar is 0.1 in all). Always
    before a checkpoint (_settle): what a checkpoint covers is on the line and announced; what a crash loses, the
    resumed run decides again (the same message ids, which the sender drops once sent)."""
    if not run.unannounced:
        return
    run.unannounced = 0
    if not run.overlap:
        messaging.announce_bulk(run.tenant_id)
        return
    while run.announcing and run.announcing[0].done():
        run.announcing.pop(0).result()
    run.announcing.append(_pool().submit(messaging.announce_bulk, run.tenant_id))


def _settle(run: Run) -> None:
    """Waits for every chunk in flight (overlap): all rows reported, every invitation on the line and announced."""
    _written_to_report(run)
    _announce(run)
    while run.announcing:  # each taken off once done: if one failed, _settle_quietly still waits for the rest
        run.announcing[0].result()
        run.announcing.pop(0)


def _settle_quietly(run: Run) -> None:
    """On the way out of a failing invocation: nothing of this run keeps running after it returns, and what its
    chunks put on the line is announced (if this was the queue's last try the job ends failed, and no retry would
    announce the invitations its users were written for)."""
    for pending in [*run.writing, *run.announcing]:
        try:
            pending.result()
        except Exception:  # the invocation fails already; the retry decides the chunk again
            pass
    run.writing, run.announcing = [], []
    try:
        messaging.announce_bulk(run.tenant_id)
    except Exception:  # noqa: BLE001 - best effort: the invocation fails already, with its own error
        logger.warning("bulk run failing: its line could not be announced", extra={"job_id": run.job_id})


def _decide_emails(run: Run, emails: list[str], refs: dict,
                   users: dict) -> tuple[dict[str, tuple[str, str | None]], dict[str, int]]:
    """(outcome and access per email, when each user this job invited was written: those written now, and those an
    earlier try of this job wrote before it was cut off, whose audit event may not have been written)."""
    decided: dict[str, tuple[str, str | None]] = {}
    writes: dict[str, PortalUser] = {}
    earlier: dict[str, int] = {}
    for email in emails:
        outcome, user, access = _outcome(run, email, refs.get(email), users.get(email))
        if run.review and outcome == "invited":
            outcome, user = "will_invite", None
        decided[email] = (outcome, access)
        if user is not None:
            writes[email] = user
        elif outcome == "invited":  # invited by an earlier try of this job (a resumed run)
            earlier[email] = int(users[email].updated_at)
    if run.review:
        return decided, {}
    lost = _write_invited(run, writes)
    written = {e: int(u.updated_at) for e, u in writes.items() if e not in lost} | earlier
    for email in lost:  # lost a race with another writer: decide again, alone
        fresh = PortalUser.get(run.tenant_id, portal_user_id(email), consistent_read=True)
        outcome, user, access = _outcome(run, email, refs.get(email), fresh)
        if user is not None:
            if _write_invited(run, {email: user}) == []:
                written[email] = int(user.updated_at)
            else:
                outcome, access = "skipped_conflict", None
        elif outcome == "invited":  # the stale read missed an earlier try's write
            written[email] = int(fresh.updated_at)
        decided[email] = (outcome, access)
    return decided, written


def _outcome(run: Run, email: str, refs: set | None,
             user: PortalUser | None) -> tuple[str, PortalUser | None, str | None]:
    """The outcome for one email, the user record to write when it is to be invited, and the access its grants
    then give on the records of this email (billing, non_billing or mixed)."""
    allowed = grants_from_refs(refs or set())
    if not allowed:
        return "skipped_not_on_record", None, None
    if user is not None:
        if user.invite_job == run.job_id:
            return "invited", None, _access_of(user, allowed)  # an earlier try of this same job invited it
        if user.delivery_problem:
            return "skipped_bouncing", None, None
        if user.status == "active":
            return "skipped_active", None, None
        if user.status == "disabled":
            return "skipped_disabled", None, None
        if not run.include_invited:
            return "skipped_already_invited", None, None
    else:
        user = PortalUser(run.tenant_id, portal_user_id(email), email=email, status="invited",
                          status_key=status_key(run.tenant_id, "invited"), grants=[], customer_ids=set())
    grants = list(user.grants or [])
    for customer_id, (access, contact_id) in allowed.items():
        capped = min(access, run.access_cap, key=ACCESS_RANK.__getitem__)
        grants = _raised(grants, customer_id, capped, contact_id)
    user.grants, user.customer_ids = grants, {g.customer_id for g in grants}
    user.invite_job, user.updated_at = run.job_id, now()
    return "invited", user, _access_of(user, allowed)


def _raised(grants: list[Grant], customer_id: str, access: str, contact_id: str | None) -> list[Grant]:
    """A bulk run never lowers a grant: an existing grant at least as high stays as it is (its contact and admin
    flag too); a lower one is raised, keeping its admin flag."""
    existing = next((g for g in grants if g.customer_id == customer_id), None)
    if existing is not None and ACCESS_RANK[existing.access] >= ACCESS_RANK[access]:
        return grants
    return merge_grant(grants, customer_id, access, contact_id, admin=bool(existing and existing.admin))


def _access_of(user: PortalUser, allowed: dict) -> str | None:
    levels = {g.access for g in user.grants or [] if g.customer_id in allowed}
    return levels.pop() if len(levels) == 1 else ("mixed" if levels else None)


def _write_invited(run: Run, writes: dict[str, PortalUser]) -> list[str]:
    """Writes the invited users in one transaction (their versions guard against lost updates). Returns the
    emails whose write lost a race; the rest are written."""
    lost: list[str] = []
    while writes:
        items = list(writes.items())
        try:
            with transaction() as tx:
                for _, user in items:
                    tx.save(user)
            _count_call(run, "transact_write")
            return lost
        except TransactWriteError as exc:
            _count_call(run, "transact_write")
            reasons = getattr(exc, "cancellation_reasons", None) or []
            failed = [email for (email, _), r in zip(items, reasons) if r and r.code == "ConditionalCheckFailed"]
            if not failed:
                raise  # throttling or another transient error: the queue retries the whole run
            lost += failed
            for email in failed:  # a cancelled transaction wrote nothing: retry the others without these
                del writes[email]
    return lost
