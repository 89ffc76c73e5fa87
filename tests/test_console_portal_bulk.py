"""Admin console → Customer Portal → Bulk invite users (issue 16): Upload File (a real CSV file, posted multipart as a
browser does), Include emails in the list that are in Invited status, the access, Upload List → the review of every
line in file order with its outcome in words and the counts, paged and filtered → Invite (once, however often and
however concurrently it is pressed) → the progress, the final report and Download report. Each step is checked
through the JSON API; bad files and bad bodies answer 400 in words; another business's job and odd ids answer 404,
staff without portal:manage 403, a POST without its CSRF token does nothing."""
import csv
import io
import re
import secrets
import urllib.parse

import pytest
from conftest import drain, outbox_for
from console_helpers import ConsoleClient, admin_console, console, csrf_for, location, text, visible_text  # noqa: F401
from staff_helpers import PASSWORD, run_together, staff_member, threaded_app
from test_bulk_review import run_bulk_queue

from chalicelib.core.models import Job, PortalUser, now
from chalicelib.flows.portal import bulk_review
from chalicelib.web.console import portal_bulk
from chalicelib.web.pages import serve

BULK = "/console/portal/bulk"


@pytest.fixture(autouse=True)
def bulk_queue_left_empty(app):
    """A console upload's S3 notification reaches the bulk queue after its in-process review (and replays as
    nothing): hand it over after each test, so later tests in this worker find only their own messages."""
    yield
    run_bulk_queue(app)


@pytest.fixture
def shop(http, tenant):
    """owner@ on Harper's customer record, renter@ only on its location, active@ with an active account, invited@
    invited and not registered yet."""
    t, d = tenant.admin_token, tenant.id
    harper = http.post("/v1/customers", {"name": "Harper Household", "emails": [f"owner@{d}.example"]}, token=t)[1]
    http.post(f"/v1/customers/{harper['customer_id']}/locations", {"address": "12 Elm",
                                                                   "emails": [f"renter@{d}.example"]}, token=t)
    users = {}
    for name in ("active", "invited"):
        cid = http.post("/v1/customers", {"name": name.title(), "emails": [f"{name}@{d}.example"]},
                        token=t)[1]["customer_id"]
        status, body = http.post("/v1/portal/invitations", {"customer_id": cid, "email": f"{name}@{d}.example"},
                                 token=t)
        assert status == 202, body
        users[name] = body["user_id"]
    PortalUser.get(d, users["active"]).update(actions=[PortalUser.status.set("active"),
                                                       PortalUser.status_key.set(f"{d}#active")])
    drain(app_module())
    return {"d": d, "token": t}


def app_module():
    import app
    return app


def csv_file(tmp_path, rows, name="march.csv") -> tuple[str, bytes]:
    """A real CSV file, written with the csv module as a spreadsheet would save it; its name and bytes."""
    path = tmp_path / name
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return name, path.read_bytes()


def tricky(tmp_path, d, name="march.csv"):
    return csv_file(tmp_path, [
        ["Name", "Email", "Phone"],
        ["Owner", f"OWNER@{d}.example", "555-0101"],         # another spelling of an email on a record
        ["Renter", f"renter@{d}.example", ""],               # only on a location
        ["Stranger", f"stranger@{d}.example", ""],           # on no record
        ["Owner again", f"owner@{d}.example", ""],           # a duplicate
        ["Active", f"active@{d}.example", ""],               # already has an active account
        ["Invited", f"invited@{d}.example", ""],             # already invited
        ["Bad", f"bad@@{d}.example", ""],                    # invalid
    ], name)


def multipart(fields: dict, files: dict) -> tuple[str, bytes]:
    """A multipart/form-data body as a browser sends it: (content type, body)."""
    boundary = "----WebKitFormBoundary" + secrets.token_hex(8)
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data, ctype) in files.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                  f'Content-Type: {ctype}\r\n\r\n'.encode() + data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", out.getvalue()


def upload(c: ConsoleClient, filename, data, *, include_invited=False, access="billing", csrf=True,
           content_type=None, body=None, ctype="text/csv"):
    """Upload File → Upload List, the way the page's form posts it."""
    fields = {}
    if csrf:
        fields["csrf_token"] = csrf_for(text(c.get(BULK)), BULK)
    if include_invited:
        fields["include_invited"] = "on"
    fields["access"] = access
    files = {"file": (filename, data, ctype)} if filename is not None else {}
    made_type, made_body = multipart(fields, files)
    headers = c._headers({"Content-Type": content_type or made_type})
    c.last = c._keep(c.client.http.post(BULK, headers=headers, body=made_body if body is None else body))
    return c.last


def job_id_of(response) -> str:
    where = location(response)
    assert where.startswith(BULK + "/") and where.endswith("?done=uploaded"), where
    return where[len(BULK) + 1:].split("?")[0]


def api_job(http, shop, job_id):
    status, body = http.get(f"/v1/portal/bulk-invites/{job_id}", token=shop["token"])
    assert status == 200, body
    return body


def sent_to(d, *names):
    return {n: len(outbox_for(f"{n}@{d}.example")) for n in names}


def rows_of(page: str) -> list[tuple[str, str, str]]:
    """(line, email, outcome) of each row of the review table."""
    table = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    out = []
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        cells = [visible_text(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        out.append((cells[0], cells[1], cells[2]))
    return out


# --- upload, review, invite, report ---------------------------------------------------------------------------

def test_upload_review_invite_and_download_the_report(app, admin_console, http, shop, tmp_path):
    d = shop["d"]
    r = admin_console.get(BULK)
    assert r.status_code == 200, text(r)
    page = visible_text(text(r))
    for label in ("Bulk invite users", "Upload File", "Include emails in the list that are in Invited status",
                  "Billing Access", "Non-Billing Access", "Upload List", "No list has been uploaded yet."):
        assert label in page, label
    assert 'enctype="multipart/form-data"' in text(r) and 'accept=".csv,text/csv"' in text(r)
    assert 'value="billing" checked' in text(r)  # Billing Access by default
    assert 'aria-current="page">Bulk invite users' in text(r)

    name, data = tricky(tmp_path, d)
    r = upload(admin_console, name, data)
    assert r.status_code == 303, text(r)
    job_id = job_id_of(r)
    job = api_job(http, shop, job_id)
    assert job["status"] == "ready" and job["review"] is True and job["access"] == "billing"
    drain(app)
    assert sent_to(d, "owner", "renter") == {"owner": 0, "renter": 0}  # a review sends nothing

    r = admin_console.follow()
    assert r.status_code == 200
    page = text(r)
    words = visible_text(page)
    assert "The file was read and nothing has been sent." in words
    assert "Bulk invite: march.csv" in words and "Reviewed: nothing sent yet" in words
    assert rows_of(page) == [
        ("1", "No email on this line", "skipped: no email on this line"),
        ("2", f"owner@{d}.example", "will be invited"),
        ("3", f"renter@{d}.example", "will be invited"),
        ("4", f"stranger@{d}.example", "skipped: not on a customer or location record"),
        ("5", f"owner@{d}.example", "duplicate"),
        ("6", f"active@{d}.example", "skipped: already has an active account"),
        ("7", f"invited@{d}.example", "skipped: already invited"),
        ("8", f"bad@@{d}.example", "invalid"),
    ]
    assert "Billing Access" in page.split(f"owner@{d}.example", 1)[1].split("</tr>")[0]
    assert "Non-Billing Access" in page.split(f"renter@{d}.example", 1)[1].split("</tr>")[0]
    counts = words.split("What the review found", 1)[1].split("Show", 1)[0]
    for line in ("2 will be invited", "1 skipped: not on a customer or location record", "1 skipped: already invited",
                 "1 skipped: already has an active account", "1 invalid", "1 duplicate"):
        assert line in counts, line
    assert "2 emails will be invited." in words and 'aria-describedby="invite-count"' in page
    assert "data-reload-seconds" not in page  # nothing moving: no refresh
    assert "Download report" not in words

    # the filter by outcome
    r = admin_console.get(f"{BULK}/{job_id}?outcome=will_invite")
    assert [row[0] for row in rows_of(text(r))] == ["2", "3"]
    r = admin_console.get(f"{BULK}/{job_id}?outcome=skipped_disabled")
    assert r.status_code == 200 and "No line of the file has this outcome." in visible_text(text(r))

    # the upload page lists the job
    r = admin_console.get(BULK)
    assert f'href="/console/portal/bulk/{job_id}"' in text(r)
    assert "march.csv" in visible_text(text(r)) and "2 will be invited" in visible_text(text(r))

    # Invite: the send is queued; the page shows the progress and refreshes itself while sending
    admin_console.get(f"{BULK}/{job_id}")
    r = admin_console.post(f"{BULK}/{job_id}", {})
    assert r.status_code == 303 and location(r) == f"{BULK}/{job_id}?done=sending"
    page = text(admin_console.follow())
    assert "the invitations are being sent" in visible_text(page) and "Sending the invitations" in visible_text(page)
    assert 'data-reload-seconds="3"' in page and "Refresh now" in visible_text(page)
    assert api_job(http, shop, job_id)["status"] == "sending"
    assert 'name="csrf_token"' in page and ">Invite</button>" not in page

    before = sent_to(d, "owner", "renter", "stranger", "active", "invited")
    assert run_bulk_queue(app)  # the bulk queue's run (and S3's notification of the upload, a replay)
    drain(app)
    after = sent_to(d, "owner", "renter", "stranger", "active", "invited")
    assert {k: after[k] - before[k] for k in after} == {
        "owner": 1, "renter": 1, "stranger": 0, "active": 0, "invited": 0}
    job = api_job(http, shop, job_id)
    assert job["status"] == "done" and job["counts"]["invited"] == 2

    r = admin_console.get(f"{BULK}/{job_id}")
    page, words = text(r), visible_text(text(r))
    assert "Done" in words and "This is the final report" in words and "data-reload-seconds" not in page
    assert "2 invited" in words.split("Report", 1)[1]
    assert ("2", f"owner@{d}.example", "invited") in rows_of(page)
    assert f'href="/console/portal/bulk/{job_id}/report.csv"' in page and "Download report" in words

    r = admin_console.get(f"{BULK}/{job_id}/report.csv")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert r.headers["Content-Disposition"] == 'attachment; filename="march-report.csv"'
    assert r.headers["Cache-Control"] == "no-store"
    table = list(csv.reader(io.StringIO(r.body.decode())))
    assert table[0] == ["line", "email", "outcome", "access"]
    assert table[1:] == [["1", "", "no_email", ""], ["2", f"owner@{d}.example", "invited", "billing"],
                         ["3", f"renter@{d}.example", "invited", "non_billing"],
                         ["4", f"stranger@{d}.example", "skipped_not_on_record", ""],
                         ["5", f"owner@{d}.example", "duplicate", ""],
                         ["6", f"active@{d}.example", "skipped_active", ""],
                         ["7", f"invited@{d}.example", "skipped_already_invited", ""],
                         ["8", f"bad@@{d}.example", "invalid", ""]]

    # Invite again (a second tab, the back button): nothing is sent again
    token = admin_token_for(admin_console, f"{BULK}/{job_id}")
    r = admin_console.post(f"{BULK}/{job_id}", {"csrf_token": token}, csrf=False)
    assert r.status_code == 303 and location(r) == f"{BULK}/{job_id}?done=already_sent"
    assert "This list was already sent, so nothing was sent again." in visible_text(text(admin_console.follow()))
    assert run_bulk_queue(app) == []
    drain(app)
    assert sent_to(d, "owner", "renter") == {"owner": 1, "renter": 1}


def admin_token_for(c, path):
    """This browser's CSRF token for a form posting to `path` (the page that had it was left meanwhile)."""
    from chalicelib.web.pages.serve import _csrf_keys, _csrf_mac
    return _csrf_mac(_csrf_keys()[0], c.cookies["pa_csrf"], path)


def test_include_invited_and_non_billing_access(app, admin_console, http, shop, tmp_path):
    d = shop["d"]
    name, data = csv_file(tmp_path, [[f"invited@{d}.example"], [f"owner@{d}.example"]], "resend.csv")
    r = upload(admin_console, name, data, include_invited=True, access="non_billing")
    job_id = job_id_of(r)
    job = api_job(http, shop, job_id)
    assert job["include_invited"] is True and job["access"] == "non_billing"
    words = visible_text(text(admin_console.follow()))
    assert "Emails in Invited status Invited again" in words and "Non-Billing Access" in words
    page = text(admin_console.get(f"{BULK}/{job_id}"))
    assert [r[2] for r in rows_of(page)] == ["will be invited", "will be invited"]
    admin_console.post(f"{BULK}/{job_id}", {})
    run_bulk_queue(app)
    drain(app)
    assert sent_to(d, "invited", "owner") == {"invited": 2, "owner": 1}  # include_invited: a resend
    grants = http.get(f"/v1/portal/users?q=owner@{d}.example", token=shop["token"])[1]["items"][0]["grants"]
    assert [g["access"] for g in grants] == ["non_billing"]


def test_the_review_pages_with_next_page(admin_console, shop, tmp_path):
    d = shop["d"]
    name, data = csv_file(tmp_path, [[f"person{i:03d}@{d}.example"] for i in range(120)], "many.csv")
    job_id = job_id_of(upload(admin_console, name, data))
    seen, path = [], f"{BULK}/{job_id}"
    while path:
        page = text(admin_console.get(path))
        seen += [int(row[0]) for row in rows_of(page)]
        more = [a.split('"')[0] for a in page.split('href="')[1:] if "cursor=" in a.split('"')[0]]
        assert "Next page" in visible_text(page) or not more
        path = more[0].replace("&amp;", "&") if more else None
    assert seen == list(range(1, 121))
    # the filter keeps its outcome on the next page
    page = text(admin_console.get(f"{BULK}/{job_id}?outcome=skipped_not_on_record"))
    assert len(rows_of(page)) == 50
    href = next(a.split('"')[0] for a in page.split('href="')[1:] if "cursor=" in a.split('"')[0])
    assert "outcome=skipped_not_on_record" in href
    # an outcome or a cursor typed by hand: words, 400
    r = admin_console.get(f"{BULK}/{job_id}?outcome=everything")
    assert r.status_code == 400 and "outcome must be one of" in visible_text(text(r))
    r = admin_console.get(f"{BULK}/{job_id}?cursor=garbage")
    assert r.status_code == 400 and "The cursor is not one this API gave out." in visible_text(text(r))
    assert "Traceback" not in text(r)


# --- Invite: once, concurrently too; expired ---------------------------------------------------------------------

def test_concurrent_invites_send_once(app, admin_console, http, shop, tmp_path):
    d = shop["d"]
    name, data = tricky(tmp_path, d)
    job_id = job_id_of(upload(admin_console, name, data))
    path = f"{BULK}/{job_id}"
    admin_console.get(path)
    headers = admin_console._headers({"Content-Type": "application/x-www-form-urlencoded"})
    body = urllib.parse.urlencode({"csrf_token": admin_token_for(admin_console, path)})
    with threaded_app(app):
        results = run_together(6, lambda i: admin_console.client.http.post(path, headers=headers, body=body))
    assert [r.status_code for r in results] == [303] * 6, results
    assert {location(r).split("?done=")[1] for r in results} <= {"sending", "already_sent"}
    sends = [e for e in run_bulk_queue_events() if "bulk_send" in e["Records"][0]["body"]]
    assert len(sends) == 1  # one send queued, whoever pressed first
    for event in sends:
        assert app.on_bulk_invite_upload(event, _context()) == {"batchItemFailures": []}
    drain(app)
    assert sent_to(d, "owner", "renter") == {"owner": 1, "renter": 1}
    assert api_job(http, shop, job_id)["status"] == "done"


def run_bulk_queue_events():
    from test_bulk_invites import bulk_events
    return bulk_events()


def _context():
    from conftest import LambdaContext
    return LambdaContext()


def test_an_expired_review_offers_no_invite(app, admin_console, http, shop, tmp_path):
    d = shop["d"]
    name, data = tricky(tmp_path, d)
    job_id = job_id_of(upload(admin_console, name, data))
    path = f"{BULK}/{job_id}"
    page = text(admin_console.get(path))  # open before it expires
    Job.get(d, job_id).update(actions=[Job.expires_at.set(now() - 1)])
    r = admin_console.get(path)
    words = visible_text(text(r))
    assert "Expired: not sent within 24 hours" in words and "can no longer be sent" in words
    assert ">Invite</button>" not in text(r)
    r = admin_console.post(path, {}, page=page)  # the button of the page opened before
    assert r.status_code == 410
    assert "This review is over 24 hours old and can no longer be sent" in visible_text(text(r))
    assert run_bulk_queue(app) in ([], [{"batchItemFailures": []}])
    drain(app)
    assert sent_to(d, "owner")["owner"] == 0
    assert api_job(http, shop, job_id)["status"] == "expired"


# --- bad files and bad bodies: words, 400, never a 500 ------------------------------------------------------------

def jobs_of(shop):
    return bulk_review.list_jobs(shop["d"], {})["items"]


def test_no_file_an_empty_file_and_files_that_are_not_csv(admin_console, shop):
    r = upload(admin_console, None, None)
    assert r.status_code == 400 and "Choose the CSV file to upload." in visible_text(text(r))
    r = upload(admin_console, "", b"", ctype="application/octet-stream")  # the field left empty by a browser
    assert r.status_code == 400 and "Choose the CSV file to upload." in visible_text(text(r))
    assert jobs_of(shop) == []
    cases = [
        ("empty.csv", b"", "The file is empty."),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "This file is binary, not text."),
        ("book.xlsx", b"PK\x03\x04" + b"\x00" * 200, "This is a zip or Excel workbook, not a CSV"),
        ("scan.pdf", b"%PDF-1.7\n" + b"x" * 100, "This is a PDF or an old Office file, not a CSV."),
    ]
    for filename, data, message in cases:
        r = upload(admin_console, filename, data, ctype="application/octet-stream")
        assert r.status_code == 400, (filename, text(r))
        assert message in visible_text(text(r)), (filename, visible_text(text(r)))
        assert "There is a problem" in visible_text(text(r))
    r = upload(admin_console, "a.csv", b"x@example.com\n", access="everything")
    assert r.status_code == 400 and "Choose Billing Access or Non-Billing Access." in visible_text(text(r))


def test_bodies_the_page_cannot_read(admin_console, shop, monkeypatch):
    admin_console.get(BULK)
    # multipart without its boundary
    r = upload(admin_console, "a.csv", b"a@example.com", content_type="multipart/form-data")
    assert r.status_code == 400
    assert "The form was not sent as a file upload the page can read." in visible_text(text(r))
    assert "This form was open too long" not in visible_text(text(r))  # not called a stale form: it was unreadable
    # cut short: no closing boundary
    content_type, body = multipart({"csrf_token": "x"}, {"file": ("a.csv", b"a@example.com\n", "text/csv")})
    r = upload(admin_console, None, None, content_type=content_type, body=body[:-30])
    assert r.status_code == 400 and "The form arrived incomplete" in visible_text(text(r))
    # a file over the console's limit (made small here; the body itself is under the page's limit)
    monkeypatch.setattr(portal_bulk, "MAX_FILE_BYTES", 1000)
    r = upload(admin_console, "big.csv", b"someone@example.com\n" * 60)
    assert r.status_code == 400 and "The file is over 2 MB: split it into smaller files." in visible_text(text(r))
    monkeypatch.undo()
    assert jobs_of(shop) == []
    assert "Traceback" not in text(r) and "Something went wrong" not in text(r)


def test_a_body_over_the_limit_is_refused_unread(admin_console, shop):
    """A real body over the console's limit (2 MB of file and the form around it): refused before it is parsed.
    Larger lists go through the API's upload URL with review: true (up to 100 MB) and show in the console's list."""
    data = b"someone@example.com\n" * ((serve.MAX_UPLOAD_BYTES // 20) + 1)
    assert len(data) > serve.MAX_FILE_BYTES
    r = upload(admin_console, "huge.csv", data)
    assert r.status_code == 400 and "The file is over 2 MB: split it into smaller files." in visible_text(text(r))
    assert jobs_of(shop) == []


# --- attackers -------------------------------------------------------------------------------------------------

def test_without_the_csrf_token_nothing_is_done(app, admin_console, http, shop, tmp_path):
    name, data = tricky(tmp_path, shop["d"])
    r = upload(admin_console, name, data, csrf=False)
    assert r.status_code == 200 and "nothing was done" in visible_text(text(r))
    assert jobs_of(shop) == []
    job_id = job_id_of(upload(admin_console, name, data))
    path = f"{BULK}/{job_id}"
    admin_console.get(path)
    r = admin_console.post(path, {"csrf_token": "forged"}, csrf=False)
    assert r.status_code == 200 and "nothing was done" in visible_text(text(r))
    r = admin_console.post(path, {"csrf_token": admin_token_for(admin_console, BULK)}, csrf=False)  # another form's
    assert "nothing was done" in visible_text(text(r))
    assert api_job(http, shop, job_id)["status"] == "ready"


def test_another_tenants_job_and_odd_ids_are_not_found(app, admin_console, http, other_tenant, tmp_path):
    from chalicelib.core.principal import Principal
    theirs = Principal("staff", other_tenant.id, "p-theirs", frozenset({"portal:manage"}))
    job_id = bulk_review.upload_for_review(theirs, "theirs.csv", f"x@{other_tenant.id}.example\n".encode(), False,
                                           None)
    for path in (f"{BULK}/{job_id}", f"{BULK}/{job_id}/report.csv"):
        r = admin_console.get(path)
        assert r.status_code == 404 and "Bulk upload not found" in visible_text(text(r)), path
        assert "theirs" not in text(r)
    r = admin_console.post(f"{BULK}/{job_id}", {"csrf_token": admin_token_for(admin_console, f"{BULK}/{job_id}")},
                           csrf=False)
    assert r.status_code == 404
    assert bulk_review.get_job(other_tenant.id, job_id).status == "ready"
    assert job_id not in text(admin_console.get(BULK))
    for odd in (job_id.upper(), "x" * 300, "..%2F..%2Fetc", "0" * 24, "%20" + job_id):
        assert admin_console.get(f"{BULK}/{odd}").status_code == 404, odd
        assert admin_console.get(f"{BULK}/{odd}/report.csv").status_code == 404, odd


def test_staff_without_portal_manage_are_refused(client, tenant, shop, tmp_path, admin_console, http):
    name, data = tricky(tmp_path, shop["d"])
    job_id = job_id_of(upload(admin_console, name, data))
    person, _ = staff_member(tenant, kind="employee", role="office")
    c = ConsoleClient(client)
    assert c.sign_in(tenant.id, person.username, PASSWORD).status_code == 303
    for path in (BULK, f"{BULK}/{job_id}", f"{BULK}/{job_id}/report.csv"):
        r = c.get(path)
        assert r.status_code == 403 and "You cannot open this page" in visible_text(text(r)), path
    for path in (BULK, f"{BULK}/{job_id}"):
        r = c.post(path, {"csrf_token": admin_token_for(c, path)}, csrf=False)
        assert r.status_code == 403, path
    r = upload(c, name, data, csrf=False)
    assert r.status_code == 403
    assert api_job(http, shop, job_id)["status"] == "ready"
    assert len(jobs_of(shop)) == 1


def test_the_multipart_parser_keeps_a_files_bytes_exactly():
    from chalicelib.web.pages.forms import parse_multipart
    data = bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n\r\n"
    content_type, body = multipart({"csrf_token": "t", "access": "non_billing", "name": "Zoë"},
                                   {"file": ("Kundenliste März.csv", data, "text/csv")})
    fields, files = parse_multipart(body, content_type, len(body))
    assert fields == {"csrf_token": "t", "access": "non_billing", "name": "Zoë"}
    assert files["file"].filename == "Kundenliste März.csv" and files["file"].data == data
