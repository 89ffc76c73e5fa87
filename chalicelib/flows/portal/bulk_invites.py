"""Bulk portal invitations from a CSV put at `bulk-invites/<tenant_id>/<name>` in the uploads bucket
(DESIGN rule 3 and Events). S3 notifies the bulk queue; the handler streams the object through email_scan,
decides one outcome per distinct email in chunks of 100 (two BatchGetItem, one TransactWriteItems), queues the
invitations ten per SendMessageBatch, and writes the report to `bulk-invite-reports/<tenant_id>/<name>.json`.

Exactly once: the job id is derived from bucket + key + version (or ETag), so every delivery of the same upload
is the same job. Each invited user records the job that invited them (a conditional write), and each invitation
message id is derived from job + email, so a redelivered or resumed run re-decides nothing and the sender's
idempotency drops messages already sent."""
import hashlib
import json
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError
from pynamodb.expressions.update import Action

from chalicelib.core import audit, config, messaging, observability, tenants
from chalicelib.core.errors import NotFound
from chalicelib.core.models import Job, PortalUser, RecordEmail, now, transaction
from chalicelib.core.observability import logger
from chalicelib.core.paging import iso_at, make_cursor, page_args
from chalicelib.core.text import OneLine
from chalicelib.flows.portal import email_scan
from chalicelib.flows.portal.invitations import (
    ACCESS_RANK,
    grants_from_refs,
    invite_message,
    merge_grant,
    portal_user_id,
    status_key,
)

PREFIX = "bulk-invites/"
REPORT_PREFIX = "bulk-invite-reports/"
MAX_BYTES = 100 * 1024 * 1024
CHUNK = 100  # BatchGetItem's limit; one TransactWriteItems holds up to 100 items too
READ_BYTES = 256 * 1024
JOB_KIND = "portal_bulk_invite"
MAX_RECEIVES = 5  # the queue's maxReceiveCount: on the last try a failing job is marked failed
OUTCOMES = ("invited", "skipped_not_on_record", "skipped_already_invited", "skipped_active", "skipped_bouncing",
            "skipped_disabled", "invalid")


@dataclass
class Upload:
    bucket: str
    key: str
    version: str | None
    etag: str | None
    size: int | None

    @property
    def job_id(self) -> str:
        return hashlib.sha256(f"{self.bucket}/{self.key}#{self.version or self.etag}".encode()).hexdigest()[:24]


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
                          obj.get("eTag"), obj.get("size")))
    return out


# --- one run -----------------------------------------------------------------------------------------------------

@dataclass
class Run:
    tenant_id: str
    job_id: str
    include_invited: bool
    access_cap: str
    report: "Report"
    seen: "SeenEmails" = field(default_factory=lambda: SeenEmails())
    pending: list = field(default_factory=list)  # (line, email) of distinct emails not yet decided
    messages: list = field(default_factory=list)
    calls: dict = field(default_factory=lambda: {"batch_get": 0, "transact_write": 0, "put": 0})


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


def _report_transfer():
    from boto3.s3.transfer import TransferConfig
    # From a file name, boto3 reads each 8 MB part from disk as it sends it (from a file object it would hold up
    # to 10 parts in memory); two parts in flight keep a 500k-row report's upload to ~16 MB.
    return TransferConfig(max_concurrency=2, multipart_chunksize=8 * 1024 * 1024)


class Report:
    """Row outcomes streamed to a temporary file (memory stays flat), counts kept aside; uploaded at the end."""

    def __init__(self):
        self.rows = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.counts = {o: 0 for o in OUTCOMES} | {"duplicate": 0, "rows": 0, "rows_without_email": 0}
        self._first = True

    def row(self, **entry) -> None:
        self.rows.write(("" if self._first else ",\n") + json.dumps(entry))
        self._first = False

    def upload(self, bucket: str, key: str, header: dict) -> None:
        with tempfile.NamedTemporaryFile("w+b", suffix=".json") as out:
            head = json.dumps({**header, "counts": self.counts})[:-1]
            out.write((head + ', "rows": [\n').encode())
            self.rows.seek(0)
            while block := self.rows.read(1 << 20):
                out.write(block.encode())
            out.write(b"\n]}\n")
            out.flush()
            config.client("s3").upload_file(out.name, bucket, key, ExtraArgs={"ContentType": "application/json"},
                                            Config=_report_transfer())
        self.rows.close()


def handle(upload: Upload, receive_count: int = 1) -> dict:
    """Processes one uploaded file. Bad files end in a report with an error code and send nothing; only
    transient failures raise (the queue retries them; the last try marks the job failed)."""
    key_parts = upload.key.split("/")
    if not upload.key.startswith(PREFIX) or len(key_parts) < 3 or not key_parts[1] or not key_parts[-1]:
        logger.warning("bulk upload outside bulk-invites/<tenant_id>/<name>: ignored", extra={"key": upload.key})
        return {"status": "failed", "error": "outside_prefix"}
    tenant_id, name = key_parts[1], "/".join(key_parts[2:])
    report_key = f"{REPORT_PREFIX}{tenant_id}/{name}.json"
    header = {"job_id": upload.job_id, "tenant_id": tenant_id, "source": f"s3://{upload.bucket}/{upload.key}"}
    if tenants.find(tenant_id) is None:
        # No tenant to hold a job: the report under that prefix and the log say why nothing was sent.
        Report().upload(upload.bucket, report_key, {**header, "status": "failed", "error": "unknown_tenant",
                                                    "message": f"There is no business {tenant_id!r}."})
        logger.warning("bulk upload for an unknown tenant", extra={"key": upload.key})
        return {"status": "failed", "error": "unknown_tenant"}

    job = _start_job(tenant_id, upload, report_key)
    if job.status in ("done", "failed"):
        return {"status": job.status, "job_id": job.job_id, "replayed": True}
    try:
        result = _run(upload, tenant_id, job, report_key, header)
    except Exception as exc:
        if receive_count >= MAX_RECEIVES:  # the queue gives up after this try: say so on the job
            _finish(job, "failed", error="processing_failed", message=type(exc).__name__)
        raise
    return result


def _start_job(tenant_id: str, upload: Upload, report_key: str) -> Job:
    job = Job(tenant_id, upload.job_id, kind=JOB_KIND, status="running", source=upload.key, attempts=1,
              summary={"report_key": report_key, "name": upload.key.split("/", 2)[2]})
    try:
        job.save(condition=Job.job_id.does_not_exist())
        audit.record(tenant_id, "portal.bulk_invite_started", target=job.job_id, source=upload.key)
        return job
    except PutError:
        job = Job.get(tenant_id, upload.job_id, consistent_read=True)
        if job.status == "running":  # a redelivery of a run that was cut off: resume it
            job.update(actions=[Job.attempts.add(1), Job.updated_at.set(now())])
        return job


def _finish(job: Job, status: str, *, error: str | None = None, message: str | None = None,
            counts: dict | None = None) -> None:
    summary = job.summary.as_dict() if job.summary else {}
    if counts is not None:
        summary["counts"] = counts
    if message:
        summary["message"] = message
    actions: list[Action] = [Job.status.set(status), Job.summary.set(summary), Job.updated_at.set(now())]
    job.update(actions=actions + ([Job.error.set(error)] if error else []))
    audit.record(job.tenant_id, f"portal.bulk_invite_{status}", target=job.job_id, error=error)
    rows = int((counts or {}).get("rows", 0))
    if status == "failed":
        observability.count("BulkJobsFailed")
        observability.count("BulkRowsFailed", rows)  # the rows of a failed run (its report says what each got)
    else:
        observability.count("BulkRowsProcessed", rows)


def _run(upload: Upload, tenant_id: str, job: Job, report_key: str, header: dict) -> dict:
    s3 = config.client("s3")
    version = {"VersionId": upload.version} if upload.version else {}
    head = s3.head_object(Bucket=upload.bucket, Key=upload.key, **version)
    metadata = {k.lower(): v.strip().lower() for k, v in (head.get("Metadata") or {}).items()}
    access = metadata.get("access")
    run = Run(tenant_id, job.job_id, metadata.get("include-invited") == "true",
              access if access in ("billing", "non_billing") else "billing", Report())
    try:
        if head["ContentLength"] > MAX_BYTES:
            raise email_scan.BadFile("file_too_large", "The file is over 100 MB: split it into smaller files.")
        body = s3.get_object(Bucket=upload.bucket, Key=upload.key, **version)["Body"]
        for found in email_scan.scan(body.iter_chunks(READ_BYTES)):
            _take_row(run, found)
        _decide(run)
    except email_scan.BadFile as bad:
        run.report.upload(upload.bucket, report_key, {**header, "status": "failed", "error": bad.code,
                                                      "message": bad.message})
        _finish(job, "failed", error=bad.code, message=bad.message, counts=run.report.counts)
        return {"status": "failed", "error": bad.code, "job_id": job.job_id}
    run.report.upload(upload.bucket, report_key, {**header, "status": "done",
                                                  "include_invited": run.include_invited})
    _finish(job, "done", counts=run.report.counts)
    logger.info("bulk invite done", extra={"job_id": job.job_id, "counts": run.report.counts, "calls": run.calls})
    return {"status": "done", "job_id": job.job_id, "counts": run.report.counts, "calls": run.calls}


def _take_row(run: Run, found: email_scan.Found) -> None:
    run.report.counts["rows"] += 1
    if not found.emails and not found.invalid:
        run.report.counts["rows_without_email"] += 1
        run.report.row(line=found.line, outcome="no_email")
    for text in found.invalid:
        run.report.counts["invalid"] += 1
        run.report.row(line=found.line, text=text, outcome="invalid")
    for email in found.emails:
        if not run.seen.add(email):
            run.report.counts["duplicate"] += 1
            run.report.row(line=found.line, email=email, outcome="duplicate")
            continue
        run.pending.append((found.line, email))
        if len(run.pending) >= CHUNK:
            _decide(run)


def _decide(run: Run) -> None:
    """One outcome per pending email: two batch reads, one transaction for the invitations, queued messages."""
    if not run.pending:
        return
    chunk, run.pending = run.pending, []
    emails = [e for _, e in chunk]
    refs = {r.email: set(r.refs or ()) for r in RecordEmail.batch_get([(run.tenant_id, e) for e in emails])}
    users = {u.email: u for u in PortalUser.batch_get([(run.tenant_id, portal_user_id(e)) for e in emails])}
    run.calls["batch_get"] += 2
    outcomes: dict[str, str] = {}
    writes: dict[str, PortalUser] = {}
    for email in emails:
        outcome, user = _outcome(run, email, refs.get(email), users.get(email))
        outcomes[email] = outcome
        if user is not None:
            writes[email] = user
    for email in _write_invited(run, writes):  # lost a race with another writer: decide again, alone
        fresh = PortalUser.get(run.tenant_id, portal_user_id(email), consistent_read=True)
        outcome, user = _outcome(run, email, refs.get(email), fresh)
        outcomes[email] = outcome if user is None or _write_invited(run, {email: user}) == [] else "skipped_conflict"
    for line, email in chunk:
        outcome = outcomes[email]
        run.report.counts[outcome] = run.report.counts.get(outcome, 0) + 1
        run.report.row(line=line, email=email, outcome=outcome)
        if outcome == "invited":
            message_id = hashlib.sha256(f"{run.job_id}|{email}".encode()).hexdigest()[:32]
            run.messages.append(invite_message(run.tenant_id, portal_user_id(email), message_id))
    if run.messages:
        messaging.enqueue(run.messages)
        run.messages = []


def _outcome(run: Run, email: str, refs: set | None, user: PortalUser | None) -> tuple[str, PortalUser | None]:
    """The outcome for one email and, when it is to be invited, the user record to write."""
    allowed = grants_from_refs(refs or set())
    if not allowed:
        return "skipped_not_on_record", None
    if user is not None:
        if user.invite_job == run.job_id:
            return "invited", None  # an earlier try of this same job invited it already
        if user.delivery_problem:
            return "skipped_bouncing", None
        if user.status == "active":
            return "skipped_active", None
        if user.status == "disabled":
            return "skipped_disabled", None
        if not run.include_invited:
            return "skipped_already_invited", None
    else:
        user = PortalUser(run.tenant_id, portal_user_id(email), email=email, status="invited",
                          status_key=status_key(run.tenant_id, "invited"), grants=[], customer_ids=set())
    grants = list(user.grants or [])
    for customer_id, (access, contact_id) in allowed.items():
        capped = min(access, run.access_cap, key=ACCESS_RANK.__getitem__)
        grants = merge_grant(grants, customer_id, capped, contact_id)
    user.grants, user.customer_ids = grants, {g.customer_id for g in grants}
    user.invite_job, user.updated_at = run.job_id, now()
    return "invited", user


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
            run.calls["transact_write"] += 1
            return lost
        except TransactWriteError as exc:
            run.calls["transact_write"] += 1
            reasons = getattr(exc, "cancellation_reasons", None) or []
            failed = [email for (email, _), r in zip(items, reasons) if r and r.code == "ConditionalCheckFailed"]
            if not failed:
                raise  # throttling or another transient error: the queue retries the whole run
            lost += failed
            for email in failed:  # a cancelled transaction wrote nothing: retry the others without these
                del writes[email]
    return lost


# --- the API side ----------------------------------------------------------------------------------------------

class UploadUrlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    filename: Annotated[OneLine, Field(min_length=1, max_length=200)]
    include_invited: bool = False
    access: Literal["billing", "non_billing"] = "billing"


class UploadUrl(BaseModel):
    url: str
    method: str
    key: str
    headers: dict[str, str]
    expires_in: int


class BulkJob(BaseModel):
    job_id: str
    status: str
    source: str | None = None
    report_key: str | None = None
    counts: dict[str, int] = {}
    error: str | None = None
    message: str | None = None
    attempts: int = 0
    created_at: str
    updated_at: str


class BulkJobPage(BaseModel):
    items: list[BulkJob]
    next_cursor: str | None = None


def upload_url(tenant_id: str, body: UploadUrlRequest, actor: str) -> dict:
    """A pre-signed PUT whose key binds the caller's tenant: staff cannot drop a file into another tenant."""
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in body.filename).strip(".-") or "upload.csv"
    key = f"{PREFIX}{tenant_id}/{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{safe}"
    headers = {"Content-Type": "text/csv", "x-amz-meta-include-invited": str(body.include_invited).lower(),
               "x-amz-meta-access": body.access}
    url = config.client("s3").generate_presigned_url(
        "put_object", ExpiresIn=900, HttpMethod="PUT",
        Params={"Bucket": config.uploads_bucket(), "Key": key, "ContentType": "text/csv",
                "Metadata": {"include-invited": headers["x-amz-meta-include-invited"], "access": body.access}})
    audit.record(tenant_id, "portal.bulk_invite_upload_url", actor=actor, target=key)
    return {"url": url, "method": "PUT", "key": key, "headers": headers, "expires_in": 900}


def job_out(job: Job) -> BulkJob:
    summary = job.summary.as_dict() if job.summary else {}
    return BulkJob(job_id=job.job_id, status=job.status, source=job.source, report_key=summary.get("report_key"),
                   counts={k: int(v) for k, v in (summary.get("counts") or {}).items()}, error=job.error,
                   message=summary.get("message"), attempts=int(job.attempts or 0), created_at=iso_at(job.created_at),
                   updated_at=iso_at(job.updated_at))


def list_jobs(tenant_id: str, query: dict) -> dict:
    limit, start = page_args(query)
    start_key = {"tenant_id": {"S": tenant_id}, "job_id": {"S": start}} if start else None
    results = Job.query(tenant_id, filter_condition=Job.kind == JOB_KIND, limit=limit, last_evaluated_key=start_key)
    items = sorted((job_out(j) for j in results), key=lambda j: j.created_at, reverse=True)
    return {"items": items, "next_cursor": make_cursor(results.last_evaluated_key, "job_id")}


def get_job(tenant_id: str, job_id: str) -> BulkJob:
    try:
        job = Job.get(tenant_id, job_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound("job_not_found", "No such bulk invitation job in this business.") from None
    if job.kind != JOB_KIND:
        raise NotFound("job_not_found", "No such bulk invitation job in this business.")
    return job_out(job)
