"""Bulk invitations and resets of staff accounts (DESIGN rule 15): up to 1,000 people in one request, each
skipped with a reason or contacted once, as a job with an outcome per person."""
import uuid
from typing import Annotated, Literal

from pydantic import Field, model_validator
from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.core import audit
from chalicelib.core.errors import Error, Invalid, NotFound
from chalicelib.core.models import Job, Person, now
from chalicelib.core.paging import iso
from chalicelib.core.principal import Principal
from chalicelib.core.schema import Shape, Strict
from chalicelib.core.text import OneLine
from chalicelib.flows.staff import admin_passwords, people, staff_accounts, staff_invitations

BULK_MAX_IDS = 1000
BACKLOG_BATCH = 100  # messages written to the bulk lane at a time (four BatchWriteItem calls)



class BulkRequest(Strict):
    person_ids: Annotated[list[Annotated[OneLine, Field(min_length=1, max_length=64)]],
                          Field(min_length=1, max_length=BULK_MAX_IDS)] | None = None
    all: bool = False
    type: Literal["dry_run", "send"] = Field("dry_run", description="dry_run lists who would be contacted")
    channel: staff_invitations.Channel | None = None

    @model_validator(mode="after")
    def one_selection(self):
        if bool(self.person_ids) == bool(self.all):
            raise ValueError("give either person_ids or all: true")
        return self


class BulkOutcome(Shape):
    person_id: str
    name: str | None = None
    outcome: str  # would_send | sent | skipped | not_found | failed
    reason: str | None = None
    channel: str | None = None


class BulkOut(Shape):
    job_id: str | None = None
    kind: str
    type: str
    status: str
    counts: dict[str, int]
    outcomes: list[BulkOutcome]
    created_at: str | None = None


# --- bulk invitations and resets (rule 15) ------------------------------------------------------------------

def _resettable(person: Person) -> str | None:
    if person.account_status == "disabled":
        return "disabled"
    if not person.username or person.account_status != "active":
        return "no_account"
    if people.channel_for(person) is None:
        return "no_contact"
    return None


BULK = {  # kind → (who is skipped and why, how one person is contacted, audit action)
    "invite": (staff_invitations.invitable, staff_invitations.send_invitation, "staff.bulk_invite"),
    "password_reset": (_resettable, admin_passwords.deliver_reset_link, "staff.bulk_password_reset"),
}


def _selected(tenant_id: str, body: BulkRequest) -> tuple[list[Person], list[str]]:
    if body.all:
        return list(Person.query(tenant_id)), []
    wanted = list(dict.fromkeys(body.person_ids or []))  # (given whenever `all` is not)
    found = {p.person_id: p for p in Person.batch_get([(tenant_id, pid) for pid in wanted])}
    return [found[pid] for pid in wanted if pid in found], [pid for pid in wanted if pid not in found]


def bulk(caller: Principal, kind: str, body: BulkRequest, ip: str | None, run_id: str | None = None) -> dict:
    """A dry run lists who would be contacted and who is skipped; a real run contacts them through the bulk
    lane (messaging.enqueue_bulk) and keeps a Job with every person's outcome. `run_id` (the console's confirmation
    page makes one) makes a send happen once: a second send with it (a double click, a resubmitted form) contacts
    nobody and answers the first run."""
    from chalicelib.core import messaging
    skip_reason, contact, action = BULK[kind]
    persons, missing = _selected(caller.tenant_id, body)
    dry = body.type == "dry_run"
    to_contact = sum(1 for person in persons if not skip_reason(person))
    if not dry and to_contact > BULK_MAX_IDS:
        # A run contacts everyone within this one request: past this many it would outlive API Gateway's 29 s.
        raise Invalid("too_many_people", f"{to_contact} people would be contacted; a run contacts at most "
                       f"{BULK_MAX_IDS}: list them with a dry run and send by person_ids, {BULK_MAX_IDS} at a time.",
                       count=to_contact, limit=BULK_MAX_IDS)
    job_id = None if dry else (run_id or uuid.uuid4().hex)
    if job_id:
        try:
            Job(caller.tenant_id, job_id, kind=f"staff_bulk_{kind}", status="running").save(
                condition=Job.job_id.does_not_exist())
        except PutError:
            return get_bulk_job(caller.tenant_id, job_id)  # this run was sent already (or is being sent)
    outcomes: list[dict] = []
    outbox: list[dict] = []
    for person in persons:
        reason = skip_reason(person) or (None if staff_accounts.may_manage(caller, person) else "not_permitted")
        channel = people.channel_for(person, body.channel)
        row = {"person_id": person.person_id, "name": person.name}
        if reason or channel is None:  # (skip_reason already skips a person with no channel)
            outcomes.append({**row, "outcome": "skipped", "reason": reason or "no_contact"})
            continue
        if dry:
            outcomes.append({**row, "outcome": "would_send", "channel": channel})
            continue
        try:
            contact(person, channel, caller.subject, ip, outbox, job_id)
            outcomes.append({**row, "outcome": "sent", "channel": channel})
        except Error as err:  # e.g. changed at the same moment: report it, carry on with the others
            outcomes.append({**row, "outcome": "failed", "reason": err.code})
        if len(outbox) >= BACKLOG_BATCH:
            messaging.enqueue_bulk(caller.tenant_id, outbox)
            outbox = []
    messaging.enqueue_bulk(caller.tenant_id, outbox)  # the bulk lane: a run never delays anyone's reset code
    outcomes += [{"person_id": pid, "outcome": "not_found"} for pid in missing]
    counts: dict[str, int] = {}
    for row in outcomes:
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
    result = {"job_id": job_id, "kind": kind, "type": body.type, "status": "done", "counts": counts,
              "outcomes": outcomes}
    if job_id:
        job = Job(caller.tenant_id, job_id)
        job.update(actions=[Job.status.set("done"), Job.updated_at.set(now()),
                            Job.summary.set({"type": body.type, "counts": counts, "outcomes": outcomes})])
        audit.record(caller.tenant_id, action, actor=caller.subject, ip=ip, job_id=job_id, counts=counts)
        result["created_at"] = iso(job.created_at)
    return result


def get_bulk_job(tenant_id: str, job_id: str) -> dict:
    try:
        job = Job.get(tenant_id, job_id, consistent_read=True)
    except DoesNotExist:
        job = None
    if job is None or not job.kind.startswith("staff_bulk_"):
        raise NotFound("job_not_found", "No such bulk run in this business.")
    summary = job.summary.as_dict() if hasattr(job.summary, "as_dict") else dict(job.summary or {})
    return {"job_id": job.job_id, "kind": job.kind.removeprefix("staff_bulk_"), "type": summary.get("type", "send"),
            "status": job.status, "counts": summary.get("counts", {}), "outcomes": summary.get("outcomes", []),
            "created_at": iso(job.created_at)}
