"""The console's People section (issue 16), over HTTP: Employees and Technicians with their account status and the
status filter; Actions (Send Account Invite / Send Password Reset) on the rows ticked or on "All on this page",
through a confirmation that says who is left out and why, then Send and the run's result; Add employee / Add
technician; a person's page with New Account Status and Profile Actions; and the refusals: another tenant's ids
answer 404, staff without accounts:manage 403, a POST without its CSRF token does nothing, bad input has words."""
import re
import uuid

import pytest
from console_helpers import (  # noqa: F401
    ConsoleClient,
    admin_console,
    console,
    csrf_for,
    location,
    text,
    visible_text,
)
from staff_helpers import PASSWORD, create_person, staff_member, unique_email, unique_mobile


def ids_on(page: str) -> list[str]:
    return re.findall(r'name="pick-\d+" value="([0-9a-f]+)"', page)


def add(c, which, **fields):
    c.get(f"/console/people/{which}/new")
    r = c.post(f"/console/people/{which}/new", fields)
    assert r.status_code == 303, visible_text(text(r))
    return location(r).split("?")[0].rsplit("/", 1)[1]


@pytest.fixture
def crew(tenant):
    """Two employees without an account, one with an account, one disabled, one technician with only a mobile."""
    token = tenant.admin_token
    out = {
        "new1": create_person(tenant.http, token, kind="employee", name="Nia New", email=unique_email()),
        "new2": create_person(tenant.http, token, kind="employee", name="Ned New", email=unique_email()),
        "sms": create_person(tenant.http, token, kind="technician", name="Tia Text", mobile=unique_mobile()),
    }
    active, _ = staff_member(tenant, kind="employee")
    out["active"] = {"person_id": active.person_id, "name": active.name, "username": active.username}
    gone = create_person(tenant.http, token, kind="employee", name="Dee Disabled", email=unique_email())
    status, body = tenant.http.patch(f"/v1/people/{gone['person_id']}", {"status": "disabled"}, token=token)
    assert status == 200, body
    out["disabled"] = gone
    return out


# --- the lists ---------------------------------------------------------------------------------------------

def test_employees_and_technicians_list_with_account_status_and_filter(admin_console, crew):
    r = admin_console.get("/console/people/employees")
    assert r.status_code == 200
    words = visible_text(text(r))
    for label in ("Employees", "Technicians", "Account status", "Email or mobile", "Username", "Add employee",
                  "Nia New", "No account", "Disabled", "Active", "All on this page", "Send Account Invite",
                  "Send Password Reset", "Filter"):
        assert label in words, label
    assert "Tia Text" not in words  # a technician
    assert 'aria-current="page">Employees' in text(r)
    r = admin_console.get("/console/people/employees?status=disabled")
    words = visible_text(text(r))
    assert "Dee Disabled" in words and "Nia New" not in words
    r = admin_console.get("/console/people/technicians")
    words = visible_text(text(r))
    assert "Tia Text" in words and crew["sms"]["mobile"] in words and "Nia New" not in words
    assert "Add technician" in words


def test_a_status_or_cursor_typed_by_hand_shows_everyone_with_words(admin_console, crew):
    for query in ("status=sleeping", "cursor=%%%"):
        r = admin_console.get(f"/console/people/employees?{query}")
        assert r.status_code == 400
        words = visible_text(text(r))
        assert "not one this list offers" in words and "Nia New" in words


def test_lists_page_with_next_page(admin_console, tenant):
    token = tenant.admin_token
    for i in range(22):
        create_person(tenant.http, token, kind="technician", name=f"Tech {i:02}", mobile=unique_mobile())
    r = admin_console.get("/console/people/technicians")
    first = ids_on(text(r))
    assert len(first) == 20
    more = re.search(r'href="([^"]+)">Next page', text(r)).group(1).replace("&amp;", "&")
    second = ids_on(text(admin_console.get(more)))
    assert second and not set(first) & set(second)


# --- Actions: confirm, send, result ----------------------------------------------------------------------

def test_send_account_invite_confirms_who_is_left_out_then_sends(app, admin_console, crew, tenant):
    from conftest import drain
    page = text(admin_console.get("/console/people/employees"))
    rows = ids_on(page)
    picks = {f"pick-{rows.index(crew[k]['person_id']) + 1}": crew[k]["person_id"]
             for k in ("new1", "active", "disabled")}
    r = admin_console.post("/console/people/confirm", {"action": "invite", "list": "employees",
                                                      "rows": " ".join(rows), **picks})
    assert r.status_code == 200
    words = visible_text(text(r))
    assert "Will get it" in words and "Nia New" in words and "By email" in words
    assert "Left out" in words and "They already have an account." in words and "Their account is disabled." in words
    assert "Ned New" not in words  # not ticked
    # nothing was sent yet
    status, body = tenant.http.get(f"/v1/people/{crew['new1']['person_id']}", token=tenant.admin_token)
    assert body["status"] == "no_account"
    r = admin_console.post("/console/people/send", {"run": uuid.uuid4().hex, "action": "invite", "list": "employees",
                                                   "ids": crew["new1"]["person_id"]})
    assert r.status_code == 303 and location(r).startswith("/console/people/jobs/")
    job_id = location(r).split("?")[0].rsplit("/", 1)[1]
    r = admin_console.follow()
    words = visible_text(text(r))
    assert "Send Account Invite: result" in words and "Sent by email" in words and "Nia New" in words
    status, body = tenant.http.get(f"/v1/people/{crew['new1']['person_id']}", token=tenant.admin_token)
    assert body["status"] == "invited"
    status, job = tenant.http.get(f"/v1/people/bulk-jobs/{job_id}", token=tenant.admin_token)
    assert status == 200 and job["counts"] == {"sent": 1}
    drain(app)


def test_all_on_this_page_is_honoured_without_javascript(admin_console, crew):
    page = text(admin_console.get("/console/people/employees?status=no_account"))
    rows = ids_on(page)
    assert {crew["new1"]["person_id"], crew["new2"]["person_id"]} <= set(rows)
    r = admin_console.post("/console/people/confirm", {"action": "invite", "list": "employees",
                                                      "status": "no_account", "all": "page", "rows": " ".join(rows)})
    assert r.status_code == 200
    words = visible_text(text(r))
    assert "Nia New" in words and "Ned New" in words and "Dee Disabled" not in words


def test_send_pressed_twice_or_at_once_sends_once(app, admin_console, crew, tenant):
    """The confirmation's run id: the same Send posted again, or four at once, contacts the person once and every
    answer shows that one run."""
    import threading

    from conftest import drain, outbox_for
    admin_console.get("/console/people/employees")
    r = admin_console.post("/console/people/confirm", {"action": "invite", "list": "employees",
                                                      "pick-1": crew["new1"]["person_id"]})
    run = re.search(r'name="run" value="([0-9a-f]{32})"', text(r)).group(1)
    form = {"action": "invite", "list": "employees", "ids": crew["new1"]["person_id"], "run": run,
            "csrf_token": csrf_for(text(r), "/console/people/send")}
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(
        admin_console.post("/console/people/send", form, csrf=False))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    again = admin_console.post("/console/people/send", form, csrf=False)
    jobs = {location(a).split("?")[0] for a in answers + [again]}
    assert [a.status_code for a in answers + [again]] == [303] * 5 and jobs == {f"/console/people/jobs/{run}"}
    drain(app)
    email = tenant.http.get(f"/v1/people/{crew['new1']['person_id']}", token=tenant.admin_token)[1]["email"]
    assert len(outbox_for(email)) == 1


def test_send_password_reset_leaves_out_people_without_an_account(app, admin_console, crew, tenant):
    from conftest import drain
    ids = [crew["active"]["person_id"], crew["new2"]["person_id"]]
    admin_console.get("/console/people/employees")
    r = admin_console.post("/console/people/confirm", {"action": "password_reset", "list": "employees",
                                                      "pick-1": ids[0], "pick-2": ids[1]})
    words = visible_text(text(r))
    assert "Send Password Reset" in words and "They have no account yet" in words
    r = admin_console.post("/console/people/send", {"run": uuid.uuid4().hex, "action": "password_reset", "list": "employees",
                                                   "ids": crew["active"]["person_id"]})
    r = admin_console.follow(r)
    assert "Send Password Reset: result" in visible_text(text(r))
    assert "Sent" in visible_text(text(r))
    drain(app)


def test_confirm_without_anyone_ticked_or_without_an_action_says_so(admin_console, crew):
    admin_console.get("/console/people/employees")
    r = admin_console.post("/console/people/confirm", {"action": "invite", "list": "employees"})
    assert r.status_code == 400 and "Tick at least one person" in visible_text(text(r))
    admin_console.get("/console/people/employees")
    r = admin_console.post("/console/people/confirm", {"action": "explode", "list": "employees",
                                                      "pick-1": crew["new1"]["person_id"]})
    assert r.status_code == 400 and "Choose an action." in visible_text(text(r))
    assert 'checked><label for="pick-' in text(r) or "checked" in text(r)  # the ticks are kept


def test_only_everyone_left_out_offers_no_send(admin_console, crew):
    admin_console.get("/console/people/employees")
    r = admin_console.post("/console/people/confirm", {"action": "invite", "list": "employees",
                                                      "pick-1": crew["disabled"]["person_id"]})
    words = visible_text(text(r))
    assert "No one you chose can get this" in words and ">Send</button>" not in text(r)


def test_other_tenants_people_are_not_found_in_bulk(app, admin_console, other_tenant, crew):
    from conftest import drain
    theirs = create_person(other_tenant.http, other_tenant.admin_token, kind="employee", name="Outsider",
                           email=unique_email())
    admin_console.get("/console/people/employees")
    r = admin_console.post("/console/people/confirm", {"action": "invite", "list": "employees",
                                                      "pick-1": theirs["person_id"],
                                                      "pick-2": crew["new1"]["person_id"]})
    words = visible_text(text(r))
    assert "Outsider" not in words and "Not found in this business." in words
    # a forged Send naming the other tenant's person too: not found there either
    r = admin_console.post("/console/people/send", {"run": uuid.uuid4().hex, "action": "invite", "list": "employees",
                                                   "ids": f"{theirs['person_id']} {crew['new1']['person_id']}"})
    words = visible_text(text(admin_console.follow(r)))
    assert "Unknown person Not found in this business" in words and "Outsider" not in words
    drain(app)
    status, body = other_tenant.http.get(f"/v1/people/{theirs['person_id']}", token=other_tenant.admin_token)
    assert body["status"] == "no_account"


def test_a_job_of_another_tenant_or_none_answers_404(admin_console, other_tenant, crew):
    status, body = other_tenant.http.post("/v1/people/bulk-invite", {"all": True, "type": "send"},
                                          token=other_tenant.admin_token)
    assert status == 200
    for job_id in (body["job_id"], "nope"):
        r = admin_console.get(f"/console/people/jobs/{job_id}")
        assert r.status_code == 404 and "This run was not found" in visible_text(text(r))


def test_a_bulk_post_without_csrf_sends_nothing(admin_console, crew, tenant):
    admin_console.get("/console/people/employees")
    r = admin_console.post("/console/people/send", {"run": uuid.uuid4().hex, "action": "invite", "list": "employees",
                                                   "ids": crew["new1"]["person_id"], "csrf_token": "forged"}, csrf=False)
    assert r.status_code == 400 and "nothing was done" in visible_text(text(r))
    status, body = tenant.http.get(f"/v1/people/{crew['new1']['person_id']}", token=tenant.admin_token)
    assert body["status"] == "no_account"


# --- Add employee / Add technician ---------------------------------------------------------------------------

def test_add_employee_and_technician_then_they_are_in_the_api(admin_console, tenant):
    email = unique_email()
    person_id = add(admin_console, "employees", name="Eve Employee", email=email, role="office")
    r = admin_console.follow()
    words = visible_text(text(r))
    assert "Eve Employee" in words and "New Account Status" in words and "Added." in words
    status, body = tenant.http.get(f"/v1/people/{person_id}", token=tenant.admin_token)
    assert body["email"] == email and body["role"] == "office" and body["kind"] == "employee"
    mobile = unique_mobile()
    person_id = add(admin_console, "technicians", name="Theo Tech", mobile=mobile, mobile_access="yes")
    status, body = tenant.http.get(f"/v1/people/{person_id}", token=tenant.admin_token)
    assert body["mobile"] == mobile and body["mobile_access"] is True and body["kind"] == "technician"


def test_add_with_bad_input_says_what_is_wrong(admin_console, tenant, crew):
    admin_console.get("/console/people/employees/new")
    r = admin_console.post("/console/people/employees/new", {"name": "", "email": "", "role": "staff"})
    assert r.status_code == 400
    assert "There is a problem" in visible_text(text(r))
    r = admin_console.post("/console/people/employees/new", {"name": "No Mail", "email": "", "role": "staff"})
    assert r.status_code == 400 and "An employee needs an email address." in visible_text(text(r))
    r = admin_console.post("/console/people/technicians/new", {"name": "T", "email": "", "mobile": "12"},
                           page=text(admin_console.get("/console/people/technicians/new")))
    assert r.status_code == 400 and "country code" in visible_text(text(r))
    admin_console.get("/console/people/technicians/new")
    r = admin_console.post("/console/people/technicians/new", {"name": "T", "email": "", "mobile": ""})
    assert r.status_code == 400 and "email address or a mobile number" in visible_text(text(r))
    admin_console.get("/console/people/technicians/new")
    r = admin_console.post("/console/people/technicians/new", {"name": "Dup", "mobile": crew["sms"]["mobile"]})
    assert r.status_code == 400 and "already has this mobile" in visible_text(text(r))


# --- a person's page ------------------------------------------------------------------------------------------

def test_new_account_status_invite_by_sms(app, admin_console, crew, tenant):
    from conftest import drain
    here = f"/console/people/{crew['sms']['person_id']}"
    words = visible_text(text(admin_console.get(here)))
    for label in ("New Account Status", "Create an account later", "Send invitation via email or SMS",
                  "Create a username and password", "Profile Actions", "Activity"):
        assert label in words, label
    r = admin_console.post(here, {"do": "account", "account": "invite", "channel": "sms"})
    assert r.status_code == 303
    assert "Invitation sent" in visible_text(text(admin_console.follow()))
    status, body = tenant.http.get(f"/v1/people/{crew['sms']['person_id']}", token=tenant.admin_token)
    assert body["status"] == "invited"
    drain(app)


def test_new_account_status_later_and_username_and_password(admin_console, crew, tenant):
    here = f"/console/people/{crew['new1']['person_id']}"
    admin_console.get(here)
    r = admin_console.post(here, {"do": "account", "account": "later"})
    assert "No account for now" in visible_text(text(admin_console.follow(r)))
    r = admin_console.post(here, {"do": "account", "account": "password", "username": "nia.new", "password": "short"})
    assert r.status_code == 400 and "at least 10 characters" in visible_text(text(r))
    r = admin_console.post(here, {"do": "account", "account": "password", "username": "nia.new",
                                  "password": "Fresh-Start-Pass-42"})
    assert r.status_code == 303
    status, body = tenant.http.get(f"/v1/people/{crew['new1']['person_id']}", token=tenant.admin_token)
    assert body["username"] == "nia.new" and body["status"] in ("active", "password_expired")
    status, body = tenant.sign_in("nia.new", "Fresh-Start-Pass-42")
    assert status == 403 and body["error"]["code"] == "password_change_required"  # the password works: new ones next


def test_invite_with_a_channel_they_do_not_have_says_so(admin_console, crew):
    here = f"/console/people/{crew['new1']['person_id']}"
    admin_console.get(here)
    r = admin_console.post(here, {"do": "account", "account": "invite", "channel": "sms"})
    assert r.status_code == 400 and "no mobile to send to" in visible_text(text(r))


def test_set_temporary_password_is_shown_once_and_works(admin_console, crew, tenant):
    here = f"/console/people/{crew['active']['person_id']}"
    admin_console.get(here)
    r = admin_console.post(here, {"do": "temporary"})
    assert r.status_code == 200  # the POST's own answer: no redirect, no password in any URL
    assert r.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="temporary-password">([A-Za-z0-9]+)<', text(r)).group(1)
    assert "It will not be shown again." in visible_text(text(r))
    status, body = tenant.sign_in(crew["active"]["username"], password)
    assert status == 403 and body["error"]["code"] == "password_change_required"  # it works, then a new one
    page = text(admin_console.get(here))
    assert password not in page


def test_profile_actions_reset_disable_enable_sign_out_activity(app, admin_console, crew, tenant):
    from conftest import drain
    person_id = crew["active"]["person_id"]
    here = f"/console/people/{person_id}"
    admin_console.get(here)
    r = admin_console.post(here, {"do": "reset"})
    assert "Password reset link sent" in visible_text(text(admin_console.follow(r)))
    r = admin_console.post(here, {"do": "sign_out"})
    assert "Signed out everywhere" in visible_text(text(admin_console.follow(r)))
    r = admin_console.post(here, {"do": "disable"})
    page = text(admin_console.follow(r))
    assert "Disabled:" in visible_text(page) and ">Enable</button>" in page
    status, body = tenant.http.get(f"/v1/people/{person_id}", token=tenant.admin_token)
    assert body["status"] == "disabled"
    r = admin_console.post(here, {"do": "enable"})
    assert "Enabled:" in visible_text(text(admin_console.follow(r)))
    status, body = tenant.http.get(f"/v1/people/{person_id}", token=tenant.admin_token)
    assert body["status"] == "active"
    r = admin_console.get(f"{here}/activity")
    words = visible_text(text(r))
    assert r.status_code == 200 and "Activity: A employee" in words
    assert "Sent a password reset by Admin (by email)" in words and "Signed out everywhere by Admin" in words
    assert "Disabled by Admin" in words  # who did it, by name
    assert admin_console.get(f"{here}/activity?cursor=%%%").status_code == 200  # a cursor typed by hand: page 1
    drain(app)


def test_unlock_ends_a_lockout(admin_console, tenant):
    from chalicelib.core import lockout
    person, _ = staff_member(tenant, kind="employee")
    for _ in range(12):
        status, _ = tenant.sign_in(person.username, "wrong-password-1A")
        if status == 423 or lockout.locked_until("staff", tenant.id, [person.username]).get(person.username):
            break
    here = f"/console/people/{person.person_id}"
    page = text(admin_console.get(here))
    assert "Locked" in visible_text(page) and ">Unlock</button>" in page
    r = admin_console.post(here, {"do": "unlock"})
    assert "Unlocked" in visible_text(text(admin_console.follow(r)))
    status, body = tenant.sign_in(person.username, PASSWORD)
    assert status == 200, body
    assert "Unlocked by Admin" in visible_text(text(admin_console.get(f"{here}/activity")))


def test_refusals_are_in_words_not_500(admin_console, crew, tenant):
    # no account: the reset and temporary password are refused in words
    here = f"/console/people/{crew['new1']['person_id']}"
    admin_console.get(here)
    r = admin_console.post(here, {"do": "temporary"})
    assert r.status_code == 409 and "no account yet" in visible_text(text(r))
    r = admin_console.post(here, {"do": "explode"})
    assert r.status_code == 400 and "Choose one of the actions." in visible_text(text(r))
    r = admin_console.post(here, {"do": "account"})
    assert r.status_code == 400 and "Choose what to do about their account." in visible_text(text(r))
    # one's own account: no Disable offered, and the flow refuses it anyway
    me = text(admin_console.get("/console/people/employees"))
    admin_id = re.search(r'href="/console/people/([0-9a-f]+)">Admin<', me).group(1)
    page = text(admin_console.get(f"/console/people/{admin_id}"))
    assert ">Disable</button>" not in page
    r = admin_console.post(f"/console/people/{admin_id}", {"do": "disable"}, page=page)
    assert r.status_code == 403 and "ask another admin" in visible_text(text(r))


def test_cannot_manage_someone_who_holds_more(client, tenant):
    """A holder of accounts:manage alone may not reset an admin's password (the flow's rule, in words)."""
    manager, _ = staff_member(tenant, kind="employee", permissions=("accounts:manage",))
    boss, _ = staff_member(tenant, kind="employee", role="admin")
    c = ConsoleClient(client)
    assert c.sign_in(tenant.id, manager.username, PASSWORD).status_code == 303
    here = f"/console/people/{boss.person_id}"
    c.get(here)
    r = c.post(here, {"do": "temporary"})
    assert r.status_code == 403 and "holds permissions you do not" in visible_text(text(r))


def test_another_tenants_person_answers_404(admin_console, other_tenant):
    theirs = create_person(other_tenant.http, other_tenant.admin_token, kind="employee", name="Outsider",
                           email=unique_email())
    for path in (f"/console/people/{theirs['person_id']}", f"/console/people/{theirs['person_id']}/activity",
                 "/console/people/nobody"):
        r = admin_console.get(path)
        assert r.status_code == 404 and "This person was not found" in visible_text(text(r))
        assert "Outsider" not in text(r)
    admin_console.get("/console/people/employees")
    r = admin_console.post(f"/console/people/{theirs['person_id']}", {"do": "disable", "csrf_token": "x"},
                           csrf=False)
    assert r.status_code == 404
    status, body = other_tenant.http.get(f"/v1/people/{theirs['person_id']}", token=other_tenant.admin_token)
    assert body["status"] == "no_account"


def test_person_action_without_csrf_does_nothing(admin_console, crew, tenant):
    here = f"/console/people/{crew['active']['person_id']}"
    admin_console.get(here)
    r = admin_console.post(here, {"do": "disable"}, csrf=False)
    assert r.status_code == 400 and "nothing was done" in visible_text(text(r))
    status, body = tenant.http.get(f"/v1/people/{crew['active']['person_id']}", token=tenant.admin_token)
    assert body["status"] == "active"


def test_staff_without_accounts_manage_get_403_on_every_people_post(client, tenant, crew):
    office, _ = staff_member(tenant, kind="employee", role="office")
    c = ConsoleClient(client)
    assert c.sign_in(tenant.id, office.username, PASSWORD).status_code == 303
    target = crew["active"]["person_id"]
    posts = [("/console/people/confirm", {"action": "invite", "pick-1": crew["new1"]["person_id"]}),
             ("/console/people/send", {"action": "invite", "ids": crew["new1"]["person_id"]}),
             ("/console/people/employees/new", {"name": "X", "email": unique_email()}),
             ("/console/people/technicians/new", {"name": "X", "mobile": unique_mobile()}),
             (f"/console/people/{target}", {"do": "disable"}),
             (f"/console/people/{target}", {"do": "temporary"})]
    for path, fields in posts:
        r = c.get(path)
        assert r.status_code == 403, path
        r = c.post(path, {**fields, "csrf_token": "x"}, csrf=False)
        assert r.status_code == 403, path
    status, body = tenant.http.get(f"/v1/people/{crew['new1']['person_id']}", token=tenant.admin_token)
    assert body["status"] == "no_account"
    status, body = tenant.http.get(f"/v1/people/{target}", token=tenant.admin_token)
    assert body["status"] == "active"
