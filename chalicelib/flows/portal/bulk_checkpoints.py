"""A bulk run that outlives one Lambda invocation (issue 21): a 100 MB file is ~2M rows, more than 15 minutes.
Two kinds of run work this way: reading an uploaded file (job `running`) and sending a reviewed job (`sending`,
which reads the review's stored rows instead of the file; its parts under `parts-sent/`).

The run saves a checkpoint at the end of a decided chunk (at most every PORTAL_BULK_CHECKPOINT_SECONDS, and always
before it hands over): the rows decided since the last checkpoint go to S3 as one numbered *part* under the job's
prefix (report rows, stored rows, CSV rows), and the job item records where the next unread line starts (byte offset
and line number, with the codec the first read detected: email_scan reads lines, not CSV columns, so nothing else of
the header is needed), the counts, and the parts so far. When the invocation's time runs low it queues
{"bulk_continue": {"tenant_id", "job_id"}} on the bulk queue and returns; the next invocation resumes there. The
last one joins the parts (streamed through temporary files: memory stays flat) into the same report and stored rows
a single run writes.

The distinct-email set (SeenEmails, SQLite in /tmp) is rebuilt from the parts' stored rows, not kept in DynamoDB:
one conditional write per email would double the calls per email; reading the parts back costs a few GETs per
continuation whatever the file size.

A redelivery (the upload's message or a continuation) resumes at the last checkpoint; a chunk decided but not
checkpointed is decided again, and its emails come out `invited` by this same job (users record invite_job) with
the same message ids (the sender drops the second). A lease on the job item (owner + expiry, conditional writes)
lets one invocation work on a job at a time; another delivery exits without work. The schedule fails a running job
whose checkpoints stopped for PORTAL_BULK_STALL_SECONDS (`stalled`): it finds them without a scan, through one
marker item per running or sending job in the jobs table (tenant `#running`)."""
import json
import os
import time
import uuid
from dataclasses import dataclass, field

from pynamodb.exceptions import DeleteError, DoesNotExist, UpdateError
from pynamodb.expressions.update import Action

from chalicelib.core import audit, config, messaging, observability
from chalicelib.core.models import Job, now
from chalicelib.core.observability import logger
from chalicelib.flows.portal import bulk_rows

CONTINUE_KEY = "bulk_continue"
RUNNING = "#running"  # the jobs-table partition holding one marker per running bulk job (the schedule's list)
DISTINCT = frozenset(bulk_rows.OUTCOMES) - {"duplicate", "invalid", "no_email"}  # rows that are a first sighting


def _setting(name: str, default: float | None) -> float | None:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def margin_seconds() -> float:
    """Time kept back at the end of an invocation: the chunk under way, the checkpoint, the continuation."""
    return _setting("PORTAL_BULK_TIME_MARGIN_SECONDS", 120.0) or 0.0


def checkpoint_seconds() -> float:
    return _setting("PORTAL_BULK_CHECKPOINT_SECONDS", 30.0) or 0.0


def stall_seconds() -> float:
    return _setting("PORTAL_BULK_STALL_SECONDS", 1800.0) or 1800.0


class LeaseLost(Exception):
    """Another invocation took the job over (this one's lease ran out): stop without writing anything more."""


class Clock:
    """When this invocation must hand over: the Lambda's remaining time less the margin, or sooner when
    PORTAL_BULK_TIME_BUDGET_SECONDS says so (tests and the local stack force many continuations with it)."""

    def __init__(self, context=None):
        self.started = self._last_save = time.monotonic()
        remaining = None
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            remaining = context.get_remaining_time_in_millis() / 1000
        limit = None if remaining is None else remaining - margin_seconds()
        budget = _setting("PORTAL_BULK_TIME_BUDGET_SECONDS", None)
        if budget is not None:
            limit = budget if limit is None else min(limit, budget)
        self.deadline = None if limit is None else self.started + limit
        self._ends = None if remaining is None else self.started + remaining  # Lambda's own end

    @property
    def lease_seconds(self) -> int:
        """The lease runs to a minute past this invocation's end, whenever it is taken or renewed: a killed run's
        job is free again soon after, never a whole invocation's time after its last checkpoint. A run with no
        Lambda end (the console's review in the API process) renews it for 15 minutes at each checkpoint."""
        left = 900 if self._ends is None else max(0, int(self._ends - time.monotonic()))
        return left + 60

    def out(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def checkpoint_due(self) -> bool:
        return time.monotonic() - self._last_save >= checkpoint_seconds()

    def saved(self) -> None:
        self._last_save = time.monotonic()


@dataclass
class State:
    """Where a run stands: the job item's `checkpoint`."""
    total_bytes: int
    offset: int = 0  # the byte where the next unread line starts
    line: int = 0  # lines read
    codec: str | None = None  # None until the first read detected it
    counts: dict = field(default_factory=dict)
    parts: list = field(default_factory=list)  # [{"id": "00003-<owner>", "files": ["all", "invited", ...]}]
    continuations: int = 0

    @classmethod
    def of(cls, job: Job, total_bytes: int) -> "State":
        saved = job.checkpoint.as_dict() if job.checkpoint else {}
        if not saved:
            return cls(total_bytes)
        return cls(int(saved["total_bytes"]), int(saved["offset"]), int(saved["line"]), saved.get("codec"),
                   {k: int(v) for k, v in (saved.get("counts") or {}).items()},
                   [{"id": p["id"], "files": list(p["files"])} for p in saved.get("parts") or []],
                   int(saved.get("continuations") or 0))

    def as_map(self) -> dict:
        return {"total_bytes": self.total_bytes, "offset": self.offset, "line": self.line, "codec": self.codec,
                "counts": dict(self.counts), "parts": self.parts, "continuations": self.continuations}


def parts_prefix(tenant_id: str, job_id: str, phase: str = "run") -> str:
    """Where a run's parts go: a reviewed job's send (phase `sent`) has its own, beside the review's."""
    return f"{bulk_rows.REPORT_PREFIX}{tenant_id}/.jobs/{job_id}/{'parts-sent' if phase == 'sent' else 'parts'}/"


# --- the lease ---------------------------------------------------------------------------------------------------

WORKING = ("running", "sending")  # the statuses of a job a run works on: reading its file, sending a review


def take_lease(job: Job, owner: str, seconds: int) -> bool:
    """True when this invocation may work on the job until now + seconds (no one holds it, or it ran out), the
    job still in the status it was read in."""
    at = now()
    try:
        job.update(actions=[Job.lease_owner.set(owner), Job.lease_until.set(at + seconds)],
                   condition=(Job.status == job.status) & (Job.lease_until.does_not_exist() | (Job.lease_until < at)
                                                           | (Job.lease_owner == owner)))
        return True
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise


def save(job: Job, owner: str, state: State, lease_seconds: int, *, release: bool = False) -> None:
    """Records the checkpoint (the parts are already in S3), and renews the lease or gives it up; only while this
    invocation still holds the lease."""
    actions: list[Action] = [Job.checkpoint.set(state.as_map()), Job.updated_at.set(now()),
               Job.lease_until.set(0 if release else now() + lease_seconds)]
    try:
        job.update(actions=actions, condition=(Job.lease_owner == owner) & (Job.status == job.status))
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise LeaseLost(job.job_id) from None
        raise


def release(job: Job, owner: str) -> None:
    """Gives the lease up (best effort) when this invocation stops on an error."""
    try:
        job.update(actions=[Job.lease_until.set(0)], condition=Job.lease_owner == owner)
    except Exception:  # the lease runs out by itself
        logger.warning("bulk lease not released", extra={"job_id": job.job_id})


# --- the continuation message ------------------------------------------------------------------------------------

def queue_continuation(tenant_id: str, job_id: str) -> None:
    sqs = config.client("sqs")
    url = sqs.get_queue_url(QueueName=config.queue_name("bulk-invites"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({CONTINUE_KEY: {"tenant_id": tenant_id,
                                                                         "job_id": job_id}}))


def continues_in(sqs_body: str) -> list[tuple[str, str]]:
    """(tenant_id, job_id) of the run a bulk-queue message asks to continue."""
    message = json.loads(sqs_body)
    ask = message.get(CONTINUE_KEY) if isinstance(message, dict) else None
    return [(ask["tenant_id"], ask["job_id"])] if isinstance(ask, dict) else []


# --- parts in S3 -------------------------------------------------------------------------------------------------

def rebuild_seen(bucket: str, tenant_id: str, job_id: str, state: State, seen) -> None:
    """The distinct emails of the rows already decided, from the parts' stored rows (one GET per part)."""
    s3 = config.client("s3")
    for part in state.parts:
        body = s3.get_object(Bucket=bucket, Key=f"{parts_prefix(tenant_id, job_id)}{part['id']}/all.jsonl")["Body"]
        batch = []
        for line in body.iter_lines():
            if line:
                row = json.loads(line)
                if row["outcome"] in DISTINCT:
                    batch.append(row["email"])
            if len(batch) >= 5000:
                seen.add_many(batch)
                batch = []
        seen.add_many(batch)


# --- the running-job list and the schedule -----------------------------------------------------------------------

def mark_running(tenant_id: str, job_id: str) -> None:
    # source holds a nonce: the schedule removes only the marker it read (a send's marker, written again over a
    # finished review's, must survive a removal that read the review's)
    Job(RUNNING, f"{tenant_id}#{job_id}", kind="bulk_running_marker", status="running",
        source=uuid.uuid4().hex).save()


STALL_RESUMES = 3  # restarts from the checkpoint before a stalled run is given up


def fail_stalled() -> dict:
    """The schedule's step: a running (or sending) bulk job without a checkpoint for longer than
    PORTAL_BULK_STALL_SECONDS (its invocation was killed, or failed and its message waits out the queue's 90-minute
    visibility) continues from its checkpoint, STALL_RESUMES times; then it is marked failed (`stalled`). No live
    invocation can hold it then: one checkpoints at least every PORTAL_BULK_CHECKPOINT_SECONDS and lives 15 minutes
    at most. Markers of jobs no longer running or sending are removed."""
    failed = cleared = resumed = 0
    limit = now() - stall_seconds()
    for marker in Job.query(RUNNING):
        tenant_id, _, job_id = marker.job_id.partition("#")
        try:
            job = Job.get(tenant_id, job_id, consistent_read=True)
        except DoesNotExist:
            job = None
        if job is not None and job.status in WORKING:
            if (job.updated_at or 0) >= limit:
                continue
            if (job.stall_resumes or 0) < STALL_RESUMES:
                try:
                    job.update(actions=[Job.stall_resumes.add(1), Job.updated_at.set(now()), Job.lease_until.set(0)],
                               condition=(Job.status == job.status) & (Job.updated_at == job.updated_at))
                except UpdateError:
                    continue
                queue_continuation(tenant_id, job_id)
                logger.warning("bulk job stalled: continued from its checkpoint", extra={"job_id": job_id})
                resumed += 1
                continue
            try:
                job.update(actions=[Job.status.set("failed"), Job.error.set("stalled"), Job.updated_at.set(now()),
                                    Job.lease_until.set(0)],
                           condition=(Job.status == job.status) & (Job.updated_at == job.updated_at))
            except UpdateError:  # it moved on since the read: look again next time
                continue
            audit.record(tenant_id, "portal.bulk_invite_failed", target=job_id, error="stalled")
            messaging.announce_bulk(tenant_id)  # what its killed invocation put on the line and did not announce
            observability.count("BulkJobsFailed")
            logger.warning("bulk job stalled: marked failed", extra={"job_id": job_id})
            failed += 1
        try:
            marker.delete(condition=Job.source == marker.source if marker.source else Job.source.does_not_exist())
            cleared += 1
        except DeleteError:  # written again since it was read: the job runs again
            pass
    return {"bulk_stalled": failed, "bulk_resumed": resumed, "bulk_markers_cleared": cleared}
