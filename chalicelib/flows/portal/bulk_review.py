"""Bulk invitations as the API and the console see them: the upload URL, a reviewed upload posted through a form
(upload_for_review), the jobs, their rows (bulk_rows), the CSV report, and sending a reviewed job.

A reviewed upload (`review: true`) makes a job in `ready` that has sent nothing; its rows say what each email
would get (`will_invite`, skipped_…, invalid, duplicate). `send` moves it to `sending` with one conditional write
(only one caller ever can, however many call at once) and queues one {"bulk_send": …} message on the bulk queue;
that run (bulk_invites.handle_send) decides every email again, then invites. A `ready` job can be sent for 24 h:
the send checks the time itself (the job's expires_at), marks the job `expired` and answers 410 `job_expired`;
listings show a ready job past its time as `expired` whether or not anyone tried to send it."""
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, ValidationError
from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.core import audit, config
from chalicelib.core.errors import Conflict, Forbidden, Gone, Invalid, NotFound, TooLarge
from chalicelib.core.models import Job, now
from chalicelib.core.observability import logger
from chalicelib.core.paging import iso, iso_at, make_cursor, page_args
from chalicelib.core.principal import Principal
from chalicelib.core.schema import Shape
from chalicelib.core.text import OneLine
from chalicelib.flows.portal import bulk_checkpoints, bulk_invites, bulk_rows
from chalicelib.flows.portal.bulk_invites import JOB_KIND, MAX_BYTES, PREFIX

OUTCOME_WORDS = bulk_rows.OUTCOME_WORDS  # machine outcome -> the words the console shows
BulkRow = bulk_rows.BulkRow
BulkRowPage = bulk_rows.BulkRowPage
_JOB_ID = re.compile(r"[0-9a-f]{24}")


class UploadUrlRequest(Shape):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    filename: Annotated[OneLine, Field(min_length=1, max_length=200)]
    include_invited: bool = Field(False, description="Invite again the emails whose portal user is still "
                                  "invited (a resend); otherwise they are skipped_already_invited.")
    access: Literal["billing", "non_billing"] = "billing"
    review: bool = Field(False, description="Decide only: the job waits in `ready` for "
                         "POST /v1/portal/bulk-invites/{job_id}/send (24 h), sending nothing before.")


class UploadUrl(Shape):
    url: str
    method: str
    key: str
    headers: dict[str, str]
    expires_in: int


class BulkProgress(Shape):
    """How far a run has read (at its last checkpoint; a long file is read across several invocations). While a
    reviewed job is `sending`, how far the send is through the reviewed rows (bytes of the stored rows)."""
    rows_read: int
    bytes_read: int
    total_bytes: int
    invited: int  # invited so far (will_invite, for a reviewed upload being read)
    continuations: int = 0


class BulkJob(Shape):
    job_id: str
    status: str  # running | ready | sending | done | failed | expired
    source: str | None = None
    name: str | None = None
    report_key: str | None = None
    review: bool = False
    include_invited: bool = False
    access: str | None = None
    counts: dict[str, int] = {}
    error: str | None = None
    message: str | None = None
    attempts: int = 0
    uploaded_by: str | None = None
    sent_by: str | None = None
    expires_at: str | None = None  # a ready job can be sent until then
    progress: BulkProgress | None = None  # while a long run reads its file (and after)
    created_at: str
    updated_at: str


class BulkJobPage(Shape):
    items: list[BulkJob]
    next_cursor: str | None = None


def _key(tenant_id: str, filename: str, tag: str = "") -> str:
    """The object key for an upload: under the caller's tenant, whatever the file was called."""
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in filename).strip(".-") or "upload.csv"
    return f"{PREFIX}{tenant_id}/{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{tag}{safe}"


def _metadata(body: UploadUrlRequest, actor: str) -> dict[str, str]:
    return {"include-invited": str(body.include_invited).lower(), "access": body.access,
            "review": str(body.review).lower(), "uploaded-by": actor}


def upload_url(tenant_id: str, body: UploadUrlRequest, actor: str) -> dict:
    """A pre-signed PUT whose key binds the caller's tenant: staff cannot drop a file into another tenant. The
    options go into the object's metadata (signed: the PUT must send these headers as they are)."""
    key = _key(tenant_id, body.filename)
    metadata = _metadata(body, actor)
    headers = {"Content-Type": "text/csv", **{f"x-amz-meta-{k}": v for k, v in metadata.items()}}
    url = config.client("s3").generate_presigned_url(
        "put_object", ExpiresIn=900, HttpMethod="PUT",
        Params={"Bucket": config.uploads_bucket(), "Key": key, "ContentType": "text/csv", "Metadata": metadata})
    audit.record(tenant_id, "portal.bulk_invite_upload_url", actor=actor, target=key, review=body.review)
    return {"url": url, "method": "PUT", "key": key, "headers": headers, "expires_in": 900}


def upload_for_review(principal: Principal, filename: str, data: bytes, include_invited: bool, ip: str | None,
                      access: str = "billing") -> str:
    """The console's reviewed upload (a file posted through a form): puts the object at the caller's tenant's
    key with review metadata naming the job, then runs the review in this process and returns the job id; the
    job is `ready` on return (or `failed` for a bad file). S3's notification of the same object later finds the
    job done (a replay). Should the run fail here, the notification's run takes it up."""
    if principal.kind != "staff" or "portal:manage" not in principal.permissions:
        raise Forbidden("forbidden", "You need permission to manage the customer portal.")
    try:
        body = UploadUrlRequest.model_validate({"filename": filename, "include_invited": include_invited,
                                                "access": access, "review": True})
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        raise Invalid("invalid_request", f"{'.'.join(map(str, first['loc']))}: {first['msg']}",
                      field=str(first["loc"][0])) from None
    if len(data) > MAX_BYTES:
        raise TooLarge("file_too_large", "The file is over 100 MB: split it into smaller files.")
    tenant_id = principal.tenant_id
    job_id = secrets.token_hex(12)
    key = _key(tenant_id, body.filename, tag=f"{job_id[:8]}-")  # two uploads in one second get two keys
    bucket = config.uploads_bucket()
    put = config.client("s3").put_object(Bucket=bucket, Key=key, Body=data, ContentType="text/csv",
                                         Metadata={**_metadata(body, principal.subject), "job-id": job_id})
    audit.record(tenant_id, "portal.bulk_invite_uploaded", actor=principal.subject, target=job_id, ip=ip,
                 source=key, review=True)
    try:
        bulk_invites.handle(bulk_invites.Upload(bucket, key, put.get("VersionId"), put.get("ETag"), len(data)))
    except Exception:  # the job stays `running`; the upload's notification runs it again (resumes)
        logger.exception("reviewing an uploaded file failed here; the bulk queue will retry it",
                         extra={"job_id": job_id})
    return job_id


# --- jobs --------------------------------------------------------------------------------------------------------

def _expired(job: Job) -> bool:
    return job.status == "ready" and job.expires_at is not None and job.expires_at <= now()


def _progress(job: Job) -> BulkProgress | None:
    saved = job.checkpoint.as_dict() if job.checkpoint else {}
    if not saved:
        return None
    counts = saved.get("counts") or {}
    return BulkProgress(rows_read=int(counts.get("rows", 0)), bytes_read=int(saved.get("offset", 0)),
                        total_bytes=int(saved.get("total_bytes", 0)),
                        invited=int(counts.get("invited", 0)) + int(counts.get("will_invite", 0)),
                        continuations=int(saved.get("continuations", 0)))


def job_out(job: Job) -> BulkJob:
    summary = job.summary.as_dict() if job.summary else {}
    progress = _progress(job)
    counts = summary.get("counts") or (job.checkpoint.as_dict().get("counts") if progress else None) or {}
    return BulkJob(job_id=job.job_id, status="expired" if _expired(job) else job.status, source=job.source,
                   name=summary.get("name"), report_key=summary.get("report_key"),
                   review=bool(summary.get("review")), include_invited=bool(summary.get("include_invited")),
                   access=summary.get("access"),
                   counts={k: int(v) for k, v in counts.items()}, error=job.error, progress=progress,
                   message=summary.get("message"), attempts=int(job.attempts or 0),
                   uploaded_by=summary.get("actor"), sent_by=summary.get("sent_by"),
                   expires_at=iso(job.expires_at) if job.status in ("ready", "expired") else None,
                   created_at=iso_at(job.created_at), updated_at=iso_at(job.updated_at))


def list_jobs(tenant_id: str, query: dict) -> dict:
    limit, start = page_args(query)
    start_key = {"tenant_id": {"S": tenant_id}, "job_id": {"S": start}} if start else None
    results = Job.query(tenant_id, filter_condition=Job.kind == JOB_KIND, limit=limit, last_evaluated_key=start_key)
    items = sorted((job_out(j) for j in results), key=lambda j: j.created_at, reverse=True)
    return {"items": items, "next_cursor": make_cursor(results.last_evaluated_key, "job_id")}


def _job(tenant_id: str, job_id: str) -> Job:
    """This tenant's bulk job, or 404 (another tenant's id, a staff bulk job's, or no id of ours at all)."""
    missing = NotFound("job_not_found", "No such bulk invitation job in this business.")
    if not _JOB_ID.fullmatch(job_id or ""):
        raise missing
    try:
        job = Job.get(tenant_id, job_id, consistent_read=True)
    except DoesNotExist:
        raise missing from None
    if job.kind != JOB_KIND:
        raise missing
    return job


def get_job(tenant_id: str, job_id: str) -> BulkJob:
    return job_out(_job(tenant_id, job_id))


def list_rows(tenant_id: str, job_id: str, query: dict) -> dict:
    """Every row of the file in file order (line, email, outcome, access), a page at a time; `outcome` filters.
    A ready job's rows say what sending would do; once sent, what it did."""
    job = _job(tenant_id, job_id)
    at = (job.summary.as_dict() if job.summary else {}).get("rows_prefix")
    if not at:
        page_args(query)  # a bad limit or cursor is still a 400
        if job.status == "running":
            raise Conflict("rows_not_ready", "The file is still being read; its rows are there in a moment.")
        return {"items": [], "next_cursor": None}
    return bulk_rows.page(config.uploads_bucket(), at, query)


@dataclass
class ReportCsv:
    filename: str
    body: bytes | None  # the CSV (line,email,outcome,access), or None when it is fetched from url instead
    url: str | None = None  # a pre-signed GET, for a report over 5 MB


def report_csv(tenant_id: str, job_id: str) -> ReportCsv:
    job = _job(tenant_id, job_id)
    summary = job.summary.as_dict() if job.summary else {}
    if not summary.get("rows_prefix"):
        raise Conflict("rows_not_ready", "The file is still being read; its report is there in a moment.")
    body, url = bulk_rows.report_csv(config.uploads_bucket(), summary["rows_prefix"])
    # a header value: only safe characters of the file's name (an object key may hold quotes or line ends)
    name = re.sub(r"[^A-Za-z0-9._-]", "-", str(summary.get("name") or "").rsplit("/", 1)[-1]).strip(".-")
    return ReportCsv(f"{name.rsplit('.', 1)[0] or job_id}-report.csv", body, url)


def send(tenant_id: str, job_id: str, actor: str, ip: str | None = None) -> BulkJob:
    """Sends a reviewed job, once: the first call moves it from ready to sending and queues its run; every other
    call, at the same time or later, gets the job as it is and sends nothing."""
    job = _job(tenant_id, job_id)
    if not (job.summary and job.summary.as_dict().get("review")):
        raise Conflict("not_reviewed", "This upload was not made for review: it was sent when it was read.")
    summary = job.summary.as_dict()
    try:
        # The send is a run of its own: its checkpoint, lease and stall count start afresh (the review's are done).
        job.update(actions=[Job.status.set("sending"), Job.summary.set({**summary, "sent_by": actor}),
                            Job.updated_at.set(now()), Job.checkpoint.remove(), Job.lease_until.set(0),
                            Job.stall_resumes.set(0)],
                   condition=(Job.status == "ready") & (Job.expires_at > now()))
    except UpdateError as exc:
        if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
            raise
        job = _job(tenant_id, job_id)
        if job.status in ("sending", "done"):
            return job_out(job)  # sent already (by this caller or another): nothing is sent again
        if job.status in ("ready", "expired"):
            _mark_expired(job)
            raise Gone("job_expired", "This review is over 24 hours old and can no longer be sent; upload the "
                       "file again.") from None
        raise Conflict("job_not_ready", f"This job is {job.status}: only a reviewed job that is ready can be "
                       "sent.", status=job.status) from None
    try:
        bulk_checkpoints.mark_running(tenant_id, job_id)  # the schedule resumes a send that stalls
        _queue_send(tenant_id, job_id)
    except Exception:  # not queued: let the next call send it
        job.update(actions=[Job.status.set("ready"), Job.summary.set(summary)], condition=Job.status == "sending")
        raise
    audit.record(tenant_id, "portal.bulk_invite_sent", actor=actor, target=job_id, ip=ip)
    return job_out(job)


def _queue_send(tenant_id: str, job_id: str) -> None:
    sqs = config.client("sqs")
    url = sqs.get_queue_url(QueueName=config.queue_name("bulk-invites"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({bulk_invites.SEND_KEY: {"tenant_id": tenant_id,
                                                                                   "job_id": job_id}}))


def _mark_expired(job: Job) -> None:
    if job.status != "ready":
        return
    try:
        job.update(actions=[Job.status.set("expired"), Job.updated_at.set(now())],
                   condition=(Job.status == "ready") & (Job.expires_at <= now()))
        audit.record(job.tenant_id, "portal.bulk_invite_expired", target=job.job_id)
    except UpdateError:
        pass  # marked by another caller meanwhile
