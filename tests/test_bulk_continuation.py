"""Bulk runs longer than one invocation (issue 21): a tiny time budget makes the real handler hand over after every
chunk ({"bulk_continue": ...} on the bulk queue, through the moto server); the continued run must give what one
run gives, survive a kill between a chunk's writes and its checkpoint, run once under double delivery, show its
progress, and be failed by the schedule when it stalls."""
import json
import threading

import pytest
from conftest import SCHEDULED_EVENT, LambdaContext, drain, make_tenant, outbox_for
from console_helpers import admin_console, console, text, visible_text  # noqa: F401
from test_bulk_invites import BUCKET, bulk_events, report, s3

from chalicelib.core.models import Job, now
from chalicelib.flows.portal import bulk_checkpoints, bulk_invites, bulk_rows

ON_RECORD = 260  # emails on a customer record; 40 more are not


def directory(http, tenant, domain):
    emails = [f"p{i}@{domain}" for i in range(ON_RECORD + 40)]
    for start in range(0, ON_RECORD, 20):
        http.post("/v1/customers", {"name": f"C{start}", "emails": emails[start:start + 20]},
                  token=tenant.admin_token)
    return emails


def csv_of(emails):
    """A messy file: a header, quoted cells, invalid and empty lines, and emails again far from their first line
    (so a duplicate's first sighting is in an earlier invocation)."""
    lines = ["name;email"]
    for i, e in enumerate(emails):
        lines.append(f'"Person {i}";"P {i} <{e.upper() if i % 7 == 0 else e}>"' if i % 3 == 0 else f"Person {i};{e}")
        if i % 50 == 25:
            lines += [f"Bad {i};bad{i}@@x.example", ";", f"Again;{emails[i // 5]}"]
    lines += [f"Tied;{emails[0]}", f"Tied;{emails[150]},{emails[299]}"]
    return ("\r\n".join(lines) + "\r\n").encode()


def put(tenant_id, name, data):
    s3().put_object(Bucket=BUCKET, Key=f"bulk-invites/{tenant_id}/{name}", Body=data)
    return [e for e in bulk_events() if "TestEvent" not in e["Records"][0]["body"]]


def run_until_done(app, events):
    """Hands each queued message to the handler as Lambda would, continuations included, until none is left."""
    continuations = 0
    while events:
        for event in events:
            continuations += bulk_checkpoints.CONTINUE_KEY in event["Records"][0]["body"]
            assert app.on_bulk_invite_upload(event, LambdaContext()) == {"batchItemFailures": []}
        events = bulk_events()
    return continuations


def stored(tenant_id, job_id, name):
    at = bulk_rows.prefix(tenant_id, job_id, "run")
    return s3().get_object(Bucket=BUCKET, Key=f"{at}{name}")["Body"].read()


def job_of(tenant_id):
    [job] = [j for j in Job.query(tenant_id) if j.kind == bulk_invites.JOB_KIND]
    return job


@pytest.fixture
def tiny_budget(monkeypatch):
    monkeypatch.setenv("PORTAL_BULK_TIME_BUDGET_SECONDS", "0")  # hand over after every chunk
    monkeypatch.setenv("PORTAL_BULK_CHECKPOINT_SECONDS", "0")


def test_many_continuations_give_what_one_run_gives(app, http, monkeypatch):
    domain = "shared.example"  # the same directory in two businesses: one run in each, compared
    one, many = make_tenant(http), make_tenant(http, name="Other Heating")
    emails = directory(http, one, domain)
    directory(http, many, domain)
    data = csv_of(emails)
    assert run_until_done(app, put(one.id, "list.csv", data)) == 0

    monkeypatch.setenv("PORTAL_BULK_TIME_BUDGET_SECONDS", "0")
    monkeypatch.setenv("PORTAL_BULK_CHECKPOINT_SECONDS", "0")
    continuations = run_until_done(app, put(many.id, "list.csv", data))
    assert continuations >= 3

    single, continued = report(one.id, "list.csv"), report(many.id, "list.csv")
    assert continued["rows"] == single["rows"] and continued["counts"] == single["counts"]
    assert continued["status"] == "done" and continued["counts"]["invited"] == ON_RECORD
    assert continued["counts"]["rows"] == data.count(b"\r\n")
    outcomes = {(r["line"], r.get("email")): r["outcome"] for r in continued["rows"]}
    last = data.count(b"\r\n")
    assert outcomes[(last - 1, emails[0])] == "duplicate"  # tied across invocations: still a duplicate
    assert outcomes[(last, emails[150])] == outcomes[(last, emails[299])] == "duplicate"
    a, b = job_of(one.id), job_of(many.id)
    for name in ("all.jsonl", "invited.jsonl", "duplicate.jsonl", "invalid.jsonl", "report.csv"):
        assert stored(one.id, a.job_id, name) == stored(many.id, b.job_id, name), name
    assert b.status == "done" and int(b.checkpoint["continuations"]) == continuations
    drain(app)
    for e in emails:  # one invitation from each business for those on record, none for the rest
        assert len(outbox_for(e)) == (2 if int(e[1:].split("@")[0]) < ON_RECORD else 0), e


def test_a_run_killed_after_a_chunk_before_its_checkpoint_invites_each_once(app, http, tenant, monkeypatch):
    monkeypatch.setenv("PORTAL_BULK_CHECKPOINT_SECONDS", "0")  # a checkpoint after every chunk, one invocation
    emails = directory(http, tenant, f"{tenant.id}.example")
    data = csv_of(emails)
    real_save, saves = bulk_checkpoints.save, {"n": 0}

    def killed_on_the_third(*args, **kwargs):
        saves["n"] += 1
        if saves["n"] == 3:  # chunk 3 is written and its messages queued: the checkpoint never happens
            raise TimeoutError("Lambda killed here")
        return real_save(*args, **kwargs)
    monkeypatch.setattr(bulk_checkpoints, "save", killed_on_the_third)
    [event] = put(tenant.id, "killed.csv", data)
    result = app.on_bulk_invite_upload(event, LambdaContext())
    assert result["batchItemFailures"]
    job = job_of(tenant.id)
    assert job.status == "running" and len(job.checkpoint["parts"]) == 2
    assert app.on_bulk_invite_upload(event, LambdaContext()) == {"batchItemFailures": []}  # the redelivery
    run_until_done(app, bulk_events())
    r = report(tenant.id, "killed.csv")
    assert r["counts"]["invited"] == ON_RECORD and r["counts"].get("skipped_already_invited", 0) == 0
    assert r["counts"]["rows"] == data.count(b"\r\n") and len({x["line"] for x in r["rows"]}) == r["counts"]["rows"]
    drain(app)
    for e in emails[:ON_RECORD]:
        assert len(outbox_for(e)) == 1, e
        assert len(invited_events(tenant.id, e)) == 1, e  # chunk 3's events, written twice, are there once


def invited_events(tenant_id, email):
    from chalicelib.core.models import AuditEvent
    from chalicelib.flows.portal.invitations import portal_user_id
    return [x for x in AuditEvent.by_trail.query(f"{tenant_id}#{portal_user_id(email)}")
            if x.action == "portal.invited"]


def test_a_continuation_delivered_twice_at_once_runs_once(app, http, tenant, tiny_budget, monkeypatch):
    emails = directory(http, tenant, f"{tenant.id}.example")
    [event] = put(tenant.id, "twice.csv", csv_of(emails))
    assert app.on_bulk_invite_upload(event, LambdaContext()) == {"batchItemFailures": []}
    [continuation] = bulk_events()
    ask = json.loads(continuation["Records"][0]["body"])[bulk_checkpoints.CONTINUE_KEY]
    both_tried = threading.Barrier(2, timeout=30)
    real_take = bulk_checkpoints.take_lease

    def take_then_wait(*args):
        got = real_take(*args)
        both_tried.wait()  # neither goes on before the other asked for the lease
        return got
    monkeypatch.setattr(bulk_checkpoints, "take_lease", take_then_wait)
    results = []

    def deliver():
        results.append(bulk_invites.handle_continue(ask["tenant_id"], ask["job_id"], 1, LambdaContext()))
    threads = [threading.Thread(target=deliver) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(bool(r.get("busy")) for r in results) == [False, True]
    monkeypatch.setattr(bulk_checkpoints, "take_lease", real_take)
    following = bulk_events()
    assert len(following) == 1  # one continuation goes on, not two
    run_until_done(app, following)
    r = report(tenant.id, "twice.csv")
    assert r["counts"]["invited"] == ON_RECORD and r["counts"]["rows"] == len({x["line"] for x in r["rows"]})
    drain(app)
    assert all(len(outbox_for(e)) == 1 for e in emails[:ON_RECORD])


def test_progress_shows_while_it_runs(app, http, tenant, tiny_budget, admin_console):
    emails = directory(http, tenant, f"{tenant.id}.example")
    data = csv_of(emails)
    [event] = put(tenant.id, "progress.csv", data)
    assert app.on_bulk_invite_upload(event, LambdaContext()) == {"batchItemFailures": []}
    job = job_of(tenant.id)
    status, body = http.get(f"/v1/portal/bulk-invites/{job.job_id}", token=tenant.admin_token)
    assert status == 200 and body["status"] == "running"
    p = body["progress"]
    assert p["total_bytes"] == len(data) and 0 < p["bytes_read"] < len(data)
    assert 0 < p["rows_read"] < data.count(b"\r\n") and 0 < p["invited"] <= 100 and p["continuations"] == 1
    assert body["counts"]["rows"] == p["rows_read"]
    assert data[p["bytes_read"] - 2:p["bytes_read"]] == b"\r\n"  # the next read starts at a line
    page = visible_text(text(admin_console.get(f"/console/portal/bulk/{job.job_id}")))
    assert f"File read {100 * p['bytes_read'] // len(data)} % ({p['invited']} invited so far)" in page
    assert "So far" in page and "What the review found" not in page  # an upload, not a review, half read
    run_until_done(app, bulk_events())
    body = http.get(f"/v1/portal/bulk-invites/{job.job_id}", token=tenant.admin_token)[1]
    assert body["status"] == "done" and body["progress"]["bytes_read"] == len(data)


def test_a_stalled_run_continues_from_its_checkpoint_then_is_failed(app, http, tenant, tiny_budget):
    """A run whose continuation was lost (or whose invocation died) is taken up again by the schedule from its
    checkpoint, STALL_RESUMES times; a run that still makes no progress is then failed."""
    emails = directory(http, tenant, f"{tenant.id}.example")
    [event] = put(tenant.id, "stalled.csv", csv_of(emails))
    assert app.on_bulk_invite_upload(event, LambdaContext()) == {"batchItemFailures": []}
    bulk_events()  # its continuation is lost
    job = job_of(tenant.id)
    app.run_schedule(SCHEDULED_EVENT, LambdaContext())
    assert Job.get(tenant.id, job.job_id).status == "running"  # not stalled yet
    for attempt in range(bulk_checkpoints.STALL_RESUMES):
        job = Job.get(tenant.id, job.job_id)
        offset = (job.checkpoint.as_dict() if job.checkpoint else {}).get("offset")
        job.update(actions=[Job.updated_at.set(now() - bulk_checkpoints.stall_seconds() - 1)])
        result = app.run_schedule(SCHEDULED_EVENT, LambdaContext())
        assert result["bulk_resumed"] >= 1 and result["bulk_stalled"] == 0
        [continued] = [e for e in bulk_events() if "bulk_continue" in e["Records"][0]["body"]]
        if attempt == 0:  # the first one really continues (and hands over again: its own continuation is lost)
            assert app.on_bulk_invite_upload(continued, LambdaContext()) == {"batchItemFailures": []}
            bulk_events()
            job = Job.get(tenant.id, job.job_id)
            assert (job.checkpoint.as_dict().get("offset") or 0) > (offset or 0)  # it read on from the checkpoint
    job = Job.get(tenant.id, job.job_id)
    job.update(actions=[Job.updated_at.set(now() - bulk_checkpoints.stall_seconds() - 1)])
    result = app.run_schedule(SCHEDULED_EVENT, LambdaContext())
    assert result["bulk_stalled"] >= 1
    job = Job.get(tenant.id, job.job_id)
    assert job.status == "failed" and job.error == "stalled"
    body = http.get(f"/v1/portal/bulk-invites/{job.job_id}", token=tenant.admin_token)[1]
    assert body["status"] == "failed" and body["error"] == "stalled"


def test_overlapped_chunks_give_what_sequential_steps_give(app, http, monkeypatch):
    """Issue 21 §3: a chunk's reads at once and chunks pipelined (the default) against each step after the other
    (PORTAL_BULK_OVERLAP=false): the same report, stored rows and invitations, in the same calls."""
    domain = "overlap.example"
    seq, over = make_tenant(http), make_tenant(http, name="Other Heating")
    emails = directory(http, seq, domain)
    directory(http, over, domain)
    data = csv_of(emails)
    monkeypatch.setenv("PORTAL_BULK_OVERLAP", "false")
    [event] = put(seq.id, "steps.csv", data)
    assert app.on_bulk_invite_upload(event, LambdaContext()) == {"batchItemFailures": []}
    monkeypatch.setenv("PORTAL_BULK_OVERLAP", "true")
    [event] = put(over.id, "steps.csv", data)
    assert app.on_bulk_invite_upload(event, LambdaContext()) == {"batchItemFailures": []}
    a, b = report(seq.id, "steps.csv"), report(over.id, "steps.csv")
    assert a["rows"] == b["rows"] and a["counts"] == b["counts"] and b["counts"]["invited"] == ON_RECORD
    ja, jb = job_of(seq.id), job_of(over.id)
    assert stored(seq.id, ja.job_id, "report.csv") == stored(over.id, jb.job_id, "report.csv")
    drain(app)
    assert all(len(outbox_for(e)) == 2 for e in emails[:ON_RECORD])


def test_a_hand_upload_naming_another_files_job_is_a_job_of_its_own(app, http, tenant, tiny_budget):
    """`x-amz-meta-job-id` set by hand (the AWS CLI) to a running job of the same business: the file is not read
    from that job's checkpoint into its report; it is a job of its own, and the first job finishes as it was."""
    emails = directory(http, tenant, f"{tenant.id}.example")
    [first] = put(tenant.id, "first.csv", csv_of(emails))
    assert app.on_bulk_invite_upload(first, LambdaContext()) == {"batchItemFailures": []}
    running = job_of(tenant.id)
    assert running.status == "running"  # handed over: its continuation is queued
    queued = bulk_events()
    s3().put_object(Bucket=BUCKET, Key=f"bulk-invites/{tenant.id}/other.csv", Body=b"email\nx@elsewhere.example\n",
                    Metadata={"job-id": running.job_id})
    other = [e for e in bulk_events() if "TestEvent" not in e["Records"][0]["body"]]
    run_until_done(app, other + queued)
    jobs = {j.job_id: j for j in Job.query(tenant.id)}
    assert len(jobs) == 2 and all(j.status == "done" for j in jobs.values())
    assert jobs[running.job_id].source.endswith("first.csv")
    report = json.loads(s3().get_object(Bucket=BUCKET, Key=f"bulk-invite-reports/{tenant.id}/first.csv.json")[
        "Body"].read())
    assert "x@elsewhere.example" not in json.dumps(report)


# --- a reviewed job's send continues too ------------------------------------------------------------------------

def reviewed(app, tenant_id, name, data):
    """A file uploaded for review (metadata review: true, as the upload URL sets it), reviewed in one run."""
    s3().put_object(Bucket=BUCKET, Key=f"bulk-invites/{tenant_id}/{name}", Body=data, Metadata={"review": "true"})
    events = [e for e in bulk_events() if "TestEvent" not in e["Records"][0]["body"]]
    with pytest.MonkeyPatch.context() as m:
        m.delenv("PORTAL_BULK_TIME_BUDGET_SECONDS", raising=False)
        assert run_until_done(app, events) == 0
    job = job_of(tenant_id)
    assert job.status == "ready"
    return job


def send(http, tenant, job):
    status, body = http.post(f"/v1/portal/bulk-invites/{job.job_id}/send", token=tenant.admin_token)
    assert status == 202 and body["status"] == "sending", body
    [event] = bulk_events()
    assert bulk_invites.SEND_KEY in event["Records"][0]["body"]
    return event


def sent(tenant_id, job_id, name):
    at = bulk_rows.prefix(tenant_id, job_id, "sent")
    return s3().get_object(Bucket=BUCKET, Key=f"{at}{name}")["Body"].read()


def test_a_reviewed_send_continues_and_gives_what_one_send_gives(app, http, monkeypatch):
    """A reviewed file of 2M rows takes longer to send than one invocation: the send checkpoints and continues
    as the review does, and gives the report, stored rows and invitations one send gives."""
    domain = "sent.example"
    one, many = make_tenant(http), make_tenant(http, name="Other Heating")
    emails = directory(http, one, domain)
    directory(http, many, domain)
    data = csv_of(emails)
    a, b = reviewed(app, one.id, "list.csv", data), reviewed(app, many.id, "list.csv", data)
    assert run_until_done(app, [send(http, one, a)]) == 0

    monkeypatch.setenv("PORTAL_BULK_TIME_BUDGET_SECONDS", "0")
    monkeypatch.setenv("PORTAL_BULK_CHECKPOINT_SECONDS", "0")
    continuations = run_until_done(app, [send(http, many, b)])
    assert continuations >= 3

    single, continued = report(one.id, "list.csv"), report(many.id, "list.csv")
    assert continued["rows"] == single["rows"] and continued["counts"] == single["counts"]
    assert continued["status"] == "done" and continued["counts"]["invited"] == ON_RECORD
    assert continued["counts"]["rows"] == data.count(b"\r\n") == int(b.summary["counts"]["rows"])
    assert continued["counts"]["rows_without_email"] == int(b.summary["counts"]["rows_without_email"])
    for name in ("all.jsonl", "invited.jsonl", "duplicate.jsonl", "invalid.jsonl", "report.csv"):
        assert sent(one.id, a.job_id, name) == sent(many.id, b.job_id, name), name
    job = Job.get(many.id, b.job_id)
    assert job.status == "done" and int(job.checkpoint["continuations"]) == continuations
    drain(app)
    for e in emails:  # one invitation from each business for those on record, none for the rest
        assert len(outbox_for(e)) == (2 if int(e[1:].split("@")[0]) < ON_RECORD else 0), e


def test_a_send_shows_its_progress_and_a_stalled_send_continues(app, http, tenant, admin_console, monkeypatch):
    emails = directory(http, tenant, f"{tenant.id}.example")
    data = csv_of(emails)
    job = reviewed(app, tenant.id, "progress.csv", data)
    event = send(http, tenant, job)
    monkeypatch.setenv("PORTAL_BULK_TIME_BUDGET_SECONDS", "0")
    monkeypatch.setenv("PORTAL_BULK_CHECKPOINT_SECONDS", "0")
    assert app.on_bulk_invite_upload(event, LambdaContext()) == {"batchItemFailures": []}
    body = http.get(f"/v1/portal/bulk-invites/{job.job_id}", token=tenant.admin_token)[1]
    assert body["status"] == "sending"
    p = body["progress"]
    reviewed_rows = bulk_rows.prefix(tenant.id, job.job_id, "review") + "all.jsonl"
    total = s3().head_object(Bucket=BUCKET, Key=reviewed_rows)["ContentLength"]
    assert p["total_bytes"] == total and 0 < p["bytes_read"] < total and 0 < p["invited"] <= 100
    assert body["counts"]["will_invite"] == ON_RECORD  # the review's counts stay until the send is done
    page = visible_text(text(admin_console.get(f"/console/portal/bulk/{job.job_id}")))
    assert f"Sent {100 * p['bytes_read'] // total} % of the lines ({p['invited']} invited so far)" in page

    bulk_events()  # the continuation is lost: the schedule takes the send up again from its checkpoint
    Job.get(tenant.id, job.job_id).update(actions=[Job.updated_at.set(now() - bulk_checkpoints.stall_seconds() - 1)])
    result = app.run_schedule(SCHEDULED_EVENT, LambdaContext())
    assert result["bulk_resumed"] == 1 and result["bulk_stalled"] == 0
    monkeypatch.delenv("PORTAL_BULK_TIME_BUDGET_SECONDS")
    run_until_done(app, bulk_events())
    body = http.get(f"/v1/portal/bulk-invites/{job.job_id}", token=tenant.admin_token)[1]
    assert body["status"] == "done" and body["counts"]["invited"] == ON_RECORD
    assert body["progress"]["bytes_read"] == total
    drain(app)
    assert all(len(outbox_for(e)) == 1 for e in emails[:ON_RECORD])


def test_a_send_killed_after_a_chunk_before_its_checkpoint_invites_each_once(app, http, tenant, monkeypatch):
    emails = directory(http, tenant, f"{tenant.id}.example")
    job = reviewed(app, tenant.id, "killed.csv", csv_of(emails))
    event = send(http, tenant, job)
    monkeypatch.setenv("PORTAL_BULK_CHECKPOINT_SECONDS", "0")
    real_save, saves = bulk_checkpoints.save, {"n": 0}

    def killed_on_the_second(*args, **kwargs):
        saves["n"] += 1
        if saves["n"] == 2:
            raise TimeoutError("Lambda killed here")
        return real_save(*args, **kwargs)
    monkeypatch.setattr(bulk_checkpoints, "save", killed_on_the_second)
    assert app.on_bulk_invite_upload(event, LambdaContext())["batchItemFailures"]
    assert Job.get(tenant.id, job.job_id).status == "sending"
    assert app.on_bulk_invite_upload(event, LambdaContext()) == {"batchItemFailures": []}  # the redelivery
    run_until_done(app, bulk_events())
    r = report(tenant.id, "killed.csv")
    assert r["status"] == "done" and r["counts"]["invited"] == ON_RECORD
    assert r["counts"].get("skipped_already_invited", 0) == 0
    drain(app)
    assert all(len(outbox_for(e)) == 1 for e in emails[:ON_RECORD])


def test_a_run_cut_off_before_its_audit_write_leaves_one_event_per_invited_user(app, http, tenant, monkeypatch):
    """The users of a chunk are written, then the invocation dies before their audit events are: the resumed run
    decides that chunk again (invited by this job) and writes the events; users whose events were written already
    keep one each (the same event ids)."""
    from chalicelib.core import audit
    monkeypatch.setenv("PORTAL_BULK_CHECKPOINT_SECONDS", "0")
    emails = directory(http, tenant, f"{tenant.id}.example")
    real_record, calls = audit.record_many, {"n": 0}

    def dies_on_the_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise TimeoutError("Lambda killed here")
        return real_record(*args, **kwargs)
    monkeypatch.setattr(audit, "record_many", dies_on_the_second)
    [event] = put(tenant.id, "audit.csv", csv_of(emails))
    assert app.on_bulk_invite_upload(event, LambdaContext())["batchItemFailures"]
    job = job_of(tenant.id)
    assert job.status == "running"
    assert app.on_bulk_invite_upload(event, LambdaContext()) == {"batchItemFailures": []}  # the redelivery
    run_until_done(app, bulk_events())
    assert report(tenant.id, "audit.csv")["counts"]["invited"] == ON_RECORD
    for e in emails[:ON_RECORD]:
        trail = invited_events(tenant.id, e)
        assert len(trail) == 1 and trail[0].details["job_id"] == job.job_id, e


def test_a_lease_runs_to_a_minute_past_the_invocations_end(monkeypatch):
    """Renewed at a checkpoint late in an invocation, the lease still ends a minute after the invocation does
    (it was renewed for the invocation's whole time: a killed run held its job up to 15 minutes longer)."""
    at = [1000.0]
    monkeypatch.setattr(bulk_checkpoints.time, "monotonic", lambda: at[0])

    class Context:
        def get_remaining_time_in_millis(self):
            return 900_000
    clock = bulk_checkpoints.Clock(Context())
    assert clock.lease_seconds == 960
    at[0] += 600  # ten minutes into the invocation
    assert clock.lease_seconds == 360
    at[0] += 1000  # past its end
    assert clock.lease_seconds == 60


def test_the_schedule_keeps_the_marker_of_a_send_started_while_it_looked(app, http, tenant, monkeypatch):
    """The schedule reads a finished review's marker and the job (`ready`); Invite is pressed before it removes the
    marker: the send's marker (written again) stays, so a send that stalls is still found."""
    emails = directory(http, tenant, f"{tenant.id}.example")
    job = reviewed(app, tenant.id, "race.csv", csv_of(emails))
    real_get, pressed = Job.get.__func__, []

    def get_then_invite(cls, tenant_id, job_id, *args, **kwargs):
        got = real_get(cls, tenant_id, job_id, *args, **kwargs)
        if tenant_id == tenant.id and job_id == job.job_id and got.status == "ready" and not pressed:
            pressed.append(True)
            send(http, tenant, job)  # Invite, between the schedule's read and its removal
        return got
    monkeypatch.setattr(Job, "get", classmethod(get_then_invite))
    app.run_schedule(SCHEDULED_EVENT, LambdaContext())
    monkeypatch.undo()
    assert pressed and Job.get(tenant.id, job.job_id).status == "sending"
    assert Job.get(bulk_checkpoints.RUNNING, f"{tenant.id}#{job.job_id}").kind == "bulk_running_marker"


def test_a_run_without_a_lambda_end_renews_its_lease_at_each_checkpoint(monkeypatch):
    """The console's review runs in the API process with no Lambda context: its lease is renewed for 15 minutes
    at each checkpoint (not spent 16 minutes after it began, when another delivery could take the job over)."""
    at = [1000.0]
    monkeypatch.setattr(bulk_checkpoints.time, "monotonic", lambda: at[0])
    clock = bulk_checkpoints.Clock(None)
    at[0] += 3600
    assert clock.lease_seconds == 960
