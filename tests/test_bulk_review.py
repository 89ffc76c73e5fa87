"""Bulk review (issue 16): an upload with review: true is decided but sends nothing (job `ready`); its rows are
paged in file order with an outcome filter and downloadable as CSV; send sends once however often and however
concurrently it is called; a ready job expires after 24 h. And three fixes found by a new user: the same bytes
uploaded again are a new job, a bulk run never lowers a grant, and each bulk invitation is in the user's trail."""
import csv
import io
import json
import urllib.request

import pytest
from conftest import LambdaContext, drain, outbox_for
from staff_helpers import run_together, staff_member, threaded_app
from test_bulk_invites import BUCKET, bulk_events, directory_of, report, s3, upload  # noqa: F401 - a fixture

from chalicelib.core.models import Job, PortalUser, now
from chalicelib.core.principal import Principal
from chalicelib.flows.portal import bulk_review
from chalicelib.flows.portal.invitations import portal_user_id


def run_bulk_queue(app):
    """Hands what is on the bulk queue (S3 notifications, queued sends) to the handler; returns the results."""
    return [app.on_bulk_invite_upload(e, LambdaContext()) for e in bulk_events()
            if "s3:TestEvent" not in e["Records"][0]["body"]]


def review_upload(app, http, token, data, **options):
    """The API's way: a pre-signed PUT with review: true, then S3's notification runs the review."""
    status, url = http.post("/v1/portal/bulk-invites/upload-url", {"filename": "march.csv", "review": True, **options},
                            token=token)
    assert status == 201, url
    assert url["headers"]["x-amz-meta-review"] == "true"
    req = urllib.request.Request(url["url"], data=data, method="PUT", headers=url["headers"])
    with urllib.request.urlopen(req) as r:
        assert r.status == 200
    assert run_bulk_queue(app) == [{"batchItemFailures": []}]
    jobs = http.get("/v1/portal/bulk-invites", token=token)[1]["items"]
    return next(j for j in jobs if j["source"] == url["key"])


def all_rows(http, token, job_id, outcome=None, limit=3):
    rows, cursor = [], None
    while True:
        q = f"limit={limit}" + (f"&cursor={cursor}" if cursor else "") + (f"&outcome={outcome}" if outcome else "")
        status, page = http.get(f"/v1/portal/bulk-invites/{job_id}/rows?{q}", token=token)
        assert status == 200, page
        rows += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return rows


def sent_to(d, *names):
    return {n: len(outbox_for(f"{n}@{d}.example")) for n in names}


def csv_of(d):
    return (f"name,email\nOwner,OWNER@{d}.example\nRenter,renter@{d}.example\nStranger,stranger@{d}.example\n"
            f"Again,owner@{d}.example\nActive,active@{d}.example\nInvited,invited@{d}.example\n"
            f"Bad,bad@@{d}.example\nBouncing,bouncing@{d}.example\n").encode()


def test_a_reviewed_upload_sends_nothing_and_lists_every_row_in_file_order(app, http, tenant, directory_of):
    d, t = directory_of["domain"], directory_of["token"]
    job = review_upload(app, http, t, csv_of(d))
    assert job["status"] == "ready" and job["review"] is True and job["expires_at"]
    assert job["counts"]["will_invite"] == 2 and job["counts"].get("invited", 0) == 0
    drain(app)
    assert sent_to(d, "owner", "renter") == {"owner": 0, "renter": 0}
    with pytest.raises(PortalUser.DoesNotExist):
        PortalUser.get(d, portal_user_id(f"owner@{d}.example"))

    rows = all_rows(http, t, job["job_id"])
    assert [(r["line"], r["email"], r["outcome"]) for r in rows] == [
        (1, "", "no_email"), (2, f"owner@{d}.example", "will_invite"), (3, f"renter@{d}.example", "will_invite"),
        (4, f"stranger@{d}.example", "skipped_not_on_record"), (5, f"owner@{d}.example", "duplicate"),
        (6, f"active@{d}.example", "skipped_active"), (7, f"invited@{d}.example", "skipped_already_invited"),
        (8, f"bad@@{d}.example", "invalid"), (9, f"bouncing@{d}.example", "skipped_bouncing")]
    assert rows[1]["access"] == "billing" and rows[2]["access"] == "non_billing"
    assert set(bulk_review.OUTCOME_WORDS) >= {r["outcome"] for r in rows}
    assert bulk_review.OUTCOME_WORDS["skipped_not_on_record"] == "skipped: not on a customer or location record"

    only = all_rows(http, t, job["job_id"], outcome="will_invite", limit=1)
    assert [r["line"] for r in only] == [2, 3]
    assert all_rows(http, t, job["job_id"], outcome="skipped_disabled") == []
    status, body = http.get(f"/v1/portal/bulk-invites/{job['job_id']}/rows?outcome=nope", token=t)
    assert status == 400 and body["error"]["code"] == "invalid_request"
    status, body = http.get(f"/v1/portal/bulk-invites/{job['job_id']}/rows?cursor=eyJrIjogIngifQ", token=t)
    assert status == 400 and body["error"]["code"] == "invalid_cursor"
    import base64  # a cursor made up to point inside a row (a byte offset that follows no newline)
    for offset in (1, 5, 17, 40):
        forged = base64.urlsafe_b64encode(json.dumps({"k": str(offset)}).encode()).decode().rstrip("=")
        status, body = http.get(f"/v1/portal/bulk-invites/{job['job_id']}/rows?cursor={forged}", token=t)
        assert status == 400 and body["error"]["code"] == "invalid_cursor", (offset, status, body)

    r = http.client.http.get(f"/v1/portal/bulk-invites/{job['job_id']}/report.csv",
                             headers={"Authorization": f"Bearer {t}"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert 'filename="' in r.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO(r.body.decode())))
    assert table[0] == ["line", "email", "outcome", "access"]
    assert table[2] == ["2", f"owner@{d}.example", "will_invite", "billing"]
    assert [row[0] for row in table[1:]] == ["1", "2", "3", "4", "5", "6", "7", "8", "9"]


def test_send_decides_again_and_sends_once_to_ten_concurrent_calls(app, http, tenant, directory_of):
    d, t = directory_of["domain"], directory_of["token"]
    job = review_upload(app, http, t, csv_of(d))
    # between review and send: the stranger's email is put on a record, the renter becomes active elsewhere
    http.post("/v1/customers", {"name": "Fixed", "emails": [f"stranger@{d}.example"]}, token=t)
    with threaded_app(app):
        results = run_together(10, lambda i: http.post(f"/v1/portal/bulk-invites/{job['job_id']}/send", token=t))
    assert [s for s, _ in results] == [202] * 10, results
    assert {b["status"] for _, b in results} == {"sending"}
    for _ in range(2):  # the queued send, delivered twice
        assert run_bulk_queue(app) in ([{"batchItemFailures": []}], [])
    drain(app)
    assert sent_to(d, "owner", "renter", "stranger", "active", "invited") == {
        "owner": 1, "renter": 1, "stranger": 1, "active": 0, "invited": 1}  # invited: its own first invitation
    status, done = http.get(f"/v1/portal/bulk-invites/{job['job_id']}", token=t)
    assert done["status"] == "done" and done["counts"]["invited"] == 3 and done["sent_by"]
    rows = {r["line"]: r for r in all_rows(http, t, job["job_id"], limit=100)}
    assert rows[4]["outcome"] == "invited" and rows[4]["access"] == "billing"
    assert rows[5]["outcome"] == "duplicate" and rows[8]["outcome"] == "invalid"
    # later calls answer the job and send nothing again
    status, again = http.post(f"/v1/portal/bulk-invites/{job['job_id']}/send", token=t)
    assert status == 202 and again["status"] == "done"
    assert run_bulk_queue(app) == []
    drain(app)
    assert sent_to(d, "owner")["owner"] == 1
    assert report(d, done["name"])["status"] == "done"


def test_a_ready_job_expires_after_24_hours(app, http, tenant, directory_of):
    d, t = directory_of["domain"], directory_of["token"]
    job = review_upload(app, http, t, csv_of(d))
    Job.get(d, job["job_id"]).update(actions=[Job.expires_at.set(now() - 1)])
    assert http.get(f"/v1/portal/bulk-invites/{job['job_id']}", token=t)[1]["status"] == "expired"
    status, body = http.post(f"/v1/portal/bulk-invites/{job['job_id']}/send", token=t)
    assert status == 410 and body["error"]["code"] == "job_expired"
    assert Job.get(d, job["job_id"]).status == "expired"
    status, body = http.post(f"/v1/portal/bulk-invites/{job['job_id']}/send", token=t)
    assert status == 410 and body["error"]["code"] == "job_expired"
    assert run_bulk_queue(app) == []
    drain(app)
    assert sent_to(d, "owner")["owner"] == 0


def test_a_job_not_made_for_review_cannot_be_sent_again(app, http, tenant, directory_of):
    d, t = directory_of["domain"], directory_of["token"]
    upload(app, d, "direct.csv", f"owner@{d}.example\n".encode())
    job = http.get("/v1/portal/bulk-invites", token=t)[1]["items"][0]
    assert job["status"] == "done" and job["review"] is False
    assert all_rows(http, t, job["job_id"]) == [{"line": 1, "email": f"owner@{d}.example", "outcome": "invited",
                                                  "access": "billing"}]
    status, body = http.post(f"/v1/portal/bulk-invites/{job['job_id']}/send", token=t)
    assert status == 409 and body["error"]["code"] == "not_reviewed"


def test_metadata_review_from_the_aws_cli(app, http, tenant, directory_of):
    d, t = directory_of["domain"], directory_of["token"]
    upload(app, d, "cli.csv", f"invited@{d}.example\nowner@{d}.example\n".encode(),
           metadata={"review": "true", "include_invited": "true"})
    job = http.get("/v1/portal/bulk-invites", token=t)[1]["items"][0]
    assert job["status"] == "ready" and job["include_invited"] is True
    assert [r["outcome"] for r in all_rows(http, t, job["job_id"])] == ["will_invite", "will_invite"]
    assert report(d, "cli.csv")["status"] == "ready"
    drain(app)
    assert sent_to(d, "invited", "owner") == {"invited": 1, "owner": 0}
    assert http.post(f"/v1/portal/bulk-invites/{job['job_id']}/send", token=t)[0] == 202
    run_bulk_queue(app)
    drain(app)
    assert sent_to(d, "invited", "owner") == {"invited": 2, "owner": 1}  # include_invited: a resend


def test_upload_for_review_in_process_then_the_notification_replays(app, http, tenant, directory_of):
    d, t = directory_of["domain"], directory_of["token"]
    principal = Principal("staff", d, "p-console-admin", frozenset({"portal:manage"}))
    job_id = bulk_review.upload_for_review(principal, "From the form.csv", f"owner@{d}.example\n".encode(), False,
                                           "203.0.113.9")
    job = bulk_review.get_job(d, job_id)
    assert job.status == "ready" and job.counts["will_invite"] == 1
    assert run_bulk_queue(app) == [{"batchItemFailures": []}]  # S3's notification of the same object
    assert len([j for j in http.get("/v1/portal/bulk-invites", token=t)[1]["items"]
                if j["job_id"] == job_id]) == 1
    assert bulk_review.list_rows(d, job_id, {})["items"][0].outcome == "will_invite"
    assert bulk_review.send(d, job_id, principal.subject).status == "sending"
    run_bulk_queue(app)
    drain(app)
    assert sent_to(d, "owner")["owner"] == 1
    assert b"invited" in bulk_review.report_csv(d, job_id).body
    with pytest.raises(Exception) as refused:
        bulk_review.upload_for_review(Principal("staff", d, "x", frozenset()), "a.csv", b"a@b.example", False, None)
    assert getattr(refused.value, "code", None) == "forbidden"


def test_another_tenants_job_and_odd_ids_are_not_found(app, http, tenant, other_tenant, directory_of):
    d, t = directory_of["domain"], directory_of["token"]
    job = review_upload(app, http, t, csv_of(d))
    other = other_tenant.admin_token
    for method, path in (("GET", ""), ("GET", "/rows"), ("POST", "/send"), ("GET", "/report.csv")):
        status, body = http.call(method, f"/v1/portal/bulk-invites/{job['job_id']}{path}", token=other)
        assert status == 404 and body["error"]["code"] == "job_not_found", (path, body)
    for odd in (job["job_id"].upper(), "x" * 2000, "..%2F..%2Fetc", job["job_id"] + " "):
        status, body = http.get(f"/v1/portal/bulk-invites/{odd}/rows", token=t)
        assert status == 404, (odd, body)
    _, no_perm = staff_member(tenant, kind="employee")
    status, body = http.post(f"/v1/portal/bulk-invites/{job['job_id']}/send", token=no_perm)
    assert status == 403
    assert Job.get(d, job["job_id"]).status == "ready"


# --- the fixes found by a new user --------------------------------------------------------------------------------

def test_the_same_bytes_uploaded_again_are_a_new_job(app, http, tenant, directory_of):
    d, t = directory_of["domain"], directory_of["token"]
    data = f"stranger@{d}.example\n".encode()
    events, _ = upload(app, d, "fix.csv", data)
    assert report(d, "fix.csv")["counts"]["skipped_not_on_record"] == 1
    http.post("/v1/customers", {"name": "Now on record", "emails": [f"stranger@{d}.example"]}, token=t)
    upload(app, d, "fix.csv", data)  # the same bytes to the same key, after fixing the record
    assert report(d, "fix.csv")["counts"]["invited"] == 1
    jobs = [j for j in http.get("/v1/portal/bulk-invites", token=t)[1]["items"] if j["name"] == "fix.csv"]
    assert len(jobs) == 2
    for event in events:  # the first upload's notification again: still nothing more
        assert app.on_bulk_invite_upload(event, LambdaContext()) == {"batchItemFailures": []}
    drain(app)
    assert len(outbox_for(f"stranger@{d}.example")) == 1


def test_a_bulk_resend_never_lowers_a_grant(app, http, tenant, directory_of):
    d, t = directory_of["domain"], directory_of["token"]
    upload(app, d, "first.csv", f"owner@{d}.example\n".encode())
    user_id = portal_user_id(f"owner@{d}.example")
    user = PortalUser.get(d, user_id)
    user.grants[0].admin = True
    user.save()
    upload(app, d, "again.csv", f"owner@{d}.example\n".encode(),
           metadata={"include-invited": "true", "access": "non_billing"})
    [grant] = PortalUser.get(d, user_id).grants
    assert (grant.access, grant.admin) == ("billing", True)
    row = report(d, "again.csv")["rows"][0]
    assert row["outcome"] == "invited" and row["access"] == "billing"
    job = http.get("/v1/portal/bulk-invites", token=t)[1]["items"]
    job = next(j for j in job if j["name"] == "again.csv")
    assert all_rows(http, t, job["job_id"])[0]["access"] == "billing"


def test_a_bulk_invitation_is_in_the_users_trail(app, http, tenant, directory_of):
    d, t = directory_of["domain"], directory_of["token"]
    job = review_upload(app, http, t, f"owner@{d}.example\n".encode())
    assert http.post(f"/v1/portal/bulk-invites/{job['job_id']}/send", token=t)[0] == 202
    run_bulk_queue(app)
    user_id = portal_user_id(f"owner@{d}.example")
    status, trail = http.get(f"/v1/portal/users/{user_id}/audit", token=t)
    assert status == 200
    invited = [e for e in trail["items"] if e["action"] == "portal.invited"]
    assert invited and invited[0]["details"]["job_id"] == job["job_id"] and invited[0]["details"]["bulk"] is True
    assert invited[0]["actor"] == job["uploaded_by"] and invited[0]["actor"]
    # a drop with the AWS CLI: no uploader known, still in the trail with its job
    upload(app, d, "cli2.csv", f"renter@{d}.example\n".encode())
    trail = http.get(f"/v1/portal/users/{portal_user_id(f'renter@{d}.example')}/audit", token=t)[1]
    assert [e["details"]["job_id"] for e in trail["items"] if e["action"] == "portal.invited"]
    assert json.dumps(trail)  # details are plain JSON
