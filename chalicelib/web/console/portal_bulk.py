"""Customer Portal → Bulk invite users (portal:manage): Upload File (a CSV) with Include emails in the list that are
in Invited status and the access the invitations give, Upload List → a review of every email found, in file order,
with its outcome in words and the counts → Invite → the same job page with the progress, then the final report and
Download report (CSV).

Every step is the flow of the JSON API (chalicelib/web/routes/portal.py, bulk-invites), in-process, as the signed-in
staff member: bulk_review.upload_for_review (the review runs in this request; nothing is sent), get_job / list_jobs,
list_rows (paged, filtered by outcome), send (conditional: sends once however often or concurrently it is called;
the bulk queue does the sending) and report_csv."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from chalice import Response

from chalicelib.core.errors import Error, NotFound
from chalicelib.web.console import words
from chalicelib.web.console.shell import Console, console_page
from chalicelib.web.lazy import lazy
from chalicelib.web.pages.forms import Errors, explain
from chalicelib.web.pages.render import url
from chalicelib.web.pages.serve import MAX_FILE_BYTES

if TYPE_CHECKING:
    from chalicelib.flows.portal.bulk_review import BulkJob

bulk_review = lazy("chalicelib.flows.portal.bulk_review")

# as the page says when the whole body is over its limit (forms.parse_multipart)
FILE_TOO_BIG = f"The file is over {MAX_FILE_BYTES // (1024 * 1024)} MB: split it into smaller files."

PORTAL = "portal:manage"
ROWS_PAGE = 50
JOBS_PAGE = 25
# While a job is being read or sent, its page loads itself again this often (pages.js, with Stop refreshing). Not a
# <meta http-equiv="refresh">: a timed refresh that cannot be turned off fails WCAG 2.2.1 (axe-core: meta-refresh).
REFRESH_SECONDS = 3
ACCESS_CHOICES = (("billing", "Billing Access"), ("non_billing", "Non-Billing Access"))
STATUS_WORDS = {
    "running": "Reading the file",
    "ready": "Reviewed: nothing sent yet",
    "sending": "Sending the invitations",
    "done": "Done",
    "failed": "Failed",
    "expired": "Expired: not sent within 24 hours",
}
STATUS_CLASS = {"ready": "invited", "sending": "invited", "running": "invited", "done": "active",
                "failed": "disabled", "expired": "inactive"}


def _status(job: BulkJob) -> dict:
    return {"key": STATUS_CLASS.get(job.status, job.status), "words": STATUS_WORDS.get(job.status, job.status)}


def _file_name(job: BulkJob) -> str:
    """The name the file had (its key's last part, less the time and job prefix upload_for_review adds)."""
    name = (job.name or "").rsplit("/", 1)[-1]
    stamp, _, rest = name.partition("-")
    if stamp.endswith("Z") and rest.startswith(job.job_id[:8] + "-"):
        rest = rest[len(job.job_id[:8]) + 1:]
    return rest or name or "Bulk upload"


def _counts(job: BulkJob) -> list[dict]:
    return [{"outcome": o, "words": bulk_review.OUTCOME_WORDS[o], "count": job.counts[o]}
            for o in bulk_review.OUTCOME_WORDS if o != "no_email" and job.counts.get(o)]


@console_page("/console/portal/bulk", PORTAL)
def bulk(c: Console) -> Response:
    """Upload a CSV of emails for review; below, the bulk uploads of this business."""
    errors = Errors()
    include_invited, access = False, "billing"
    status = 400 if c.form_problem else 200
    if c.posted():
        include_invited, access = c.form.get("include_invited") == "on", c.form.get("access", "billing")
        upload = c.files.get("file")
        if access not in dict(ACCESS_CHOICES):
            errors.add("access", "Choose Billing Access or Non-Billing Access.")
            access = "billing"
        if upload is None or not (upload.filename or upload.data):
            errors.add("file", "Choose the CSV file to upload.")
        elif len(upload.data) > MAX_FILE_BYTES:
            errors.add("file", FILE_TOO_BIG)
        if not errors and upload is not None:
            try:  # the review runs now, in this request; nothing is sent
                job_id = bulk_review.upload_for_review(c.principal, (upload.filename or "upload.csv")[:200],
                                                       upload.data, include_invited, c.ip, access=access)
                job = bulk_review.get_job(c.tenant_id, job_id)
                if job.status != "failed":
                    return c.done(f"/console/portal/bulk/{job_id}", "uploaded")
                errors.add("file", job.message or "This file could not be read as a list of emails.")
            except Error as exc:
                explain(exc, errors, {"filename": "file", "access": "access", "include_invited": "include_invited"})
        status = 400
    try:
        found = bulk_review.list_jobs(c.tenant_id, {"limit": str(JOBS_PAGE),
                                                    **({"cursor": c.query["cursor"]} if c.query.get("cursor") else {})})
    except Error:  # a cursor typed by hand: the first page
        found = bulk_review.list_jobs(c.tenant_id, {"limit": str(JOBS_PAGE)})
    jobs = [{"job": j, "file": _file_name(j), "status": _status(j), "when": words.when(j.created_at),
             "will_invite": j.counts.get("will_invite", 0), "invited": j.counts.get("invited", 0)}
            for j in found["items"]]
    more = url("/console/portal/bulk", cursor=found["next_cursor"]) if found["next_cursor"] else None
    return c.html("console/portal-bulk.html", title="Bulk invite users", status=status, errors=errors,
                  include_invited=include_invited, access=access, access_choices=ACCESS_CHOICES, jobs=jobs, more=more,
                  subnav_current="bulk")


def _missing(c: Console) -> Response:
    return c.html("console/portal-bulk-missing.html", title="Bulk upload not found", status=404,
                  subnav_current="bulk")


@console_page("/console/portal/bulk/{job_id}", PORTAL)
def job(c: Console, job_id: str) -> Response:
    """One bulk upload: its status and counts, every email in file order with its outcome, Invite while it is
    ready, the progress while sending, and Download report when done."""
    errors = Errors()
    status = 200
    try:
        found = bulk_review.get_job(c.tenant_id, job_id)
    except NotFound:
        return _missing(c)
    if c.posted():
        before = found.status
        try:  # POST /v1/portal/bulk-invites/{job_id}/send: only the first call ever sends
            bulk_review.send(c.tenant_id, job_id, c.principal.subject, c.ip)
            return c.done(f"/console/portal/bulk/{job_id}", "sending" if before == "ready" else "already_sent")
        except NotFound:
            return _missing(c)
        except Error as exc:
            errors.add(None, exc.message)
            status = 410 if exc.code == "job_expired" else 409
            found = bulk_review.get_job(c.tenant_id, job_id)
    outcome = c.query.get("outcome") or None
    query = {"limit": str(ROWS_PAGE), **({"cursor": c.query["cursor"]} if c.query.get("cursor") else {}),
             **({"outcome": outcome} if outcome else {})}
    try:
        rows = bulk_review.list_rows(c.tenant_id, job_id, query)
    except Error as exc:  # an outcome or cursor typed by hand, or the file still being read
        if exc.code != "rows_not_ready":
            errors.add("outcome" if exc.extra.get("field") == "outcome" else None, exc.message)
            status = 400
        rows = {"items": [], "next_cursor": None}
        outcome = outcome if outcome in bulk_review.OUTCOME_WORDS else None
    items = [{"line": r.line, "email": r.email, "outcome": r.outcome,
              "words": bulk_review.OUTCOME_WORDS.get(r.outcome, r.outcome),
              "access": words.ACCESS_WORDS.get(r.access or "", "")} for r in rows["items"]]
    more = url(f"/console/portal/bulk/{job_id}", outcome=outcome, cursor=rows["next_cursor"]) \
        if rows["next_cursor"] else None
    counts = _counts(found)
    shown = [("", "Every line of the file")] + [(o["outcome"], f"{o['words']} ({o['count']})") for o in counts]
    if outcome and outcome not in {o for o, _ in shown}:
        shown.append((outcome, bulk_review.OUTCOME_WORDS[outcome]))
    busy = found.status in ("running", "sending")
    return c.html("console/portal-bulk-job.html", title=f"Bulk invite: {_file_name(found)}", status=status,
                  job=found, file=_file_name(found), job_status=_status(found), counts=counts,
                  rows_read=found.counts.get("rows", 0), will_invite=found.counts.get("will_invite", 0),
                  uploaded=words.when(found.created_at), expires=words.when(found.expires_at),
                  uploaded_by=_person(c, found.uploaded_by), access_words=words.ACCESS_WORDS.get(found.access or "",
                                                                                               "Billing Access"),
                  rows=items, more=more, outcome=outcome or "", shown=shown, errors=errors,
                  refresh=REFRESH_SECONDS if busy else None, subnav_current="bulk")


job.notices = {  # type: ignore[attr-defined]
    "uploaded": "The file was read and nothing has been sent. Check what will happen to each email, then press "
                "Invite.",
    "sending": "Invite pressed: the invitations are being sent. This page shows the progress.",
    "already_sent": "This list was already sent, so nothing was sent again.",
}


def _person(c: Console, person_id: str | None) -> str:
    if not person_id:
        return "a file dropped in storage"
    return words.names_for(c.tenant_id, [{"actor": person_id}]).get(person_id, "a staff member")


@console_page("/console/portal/bulk/{job_id}/report.csv", PORTAL, form=False)
def report(c: Console, job_id: str) -> Response:
    """The report as CSV (line, email, outcome, access; rows in file order), as the API serves it."""
    try:
        out = bulk_review.report_csv(c.tenant_id, job_id)
        found = bulk_review.get_job(c.tenant_id, job_id)
    except NotFound:
        return _missing(c)
    except Error:  # the file is still being read: the job page says so
        return c.page.redirect(url(f"/console/portal/bulk/{job_id}"))
    if out.body is None:  # over 5 MB: a 5-minute link to the report in S3, as the API does
        return c.page.redirect(out.url or url(f"/console/portal/bulk/{job_id}"))
    # named after the file as it was chosen (march.csv -> march-report.csv), safe characters only (a header value)
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", _file_name(found)).strip(".-").rsplit(".", 1)[0]
    return c.page.download(out.body, f"{stem}-report.csv" if stem else out.filename, "text/csv; charset=utf-8")
