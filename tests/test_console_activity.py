"""The console's Activity (issue 16): the business's audit trail in words, filtered by person, portal user,
partner portal and date, a page at a time; read through the table's key and the subject indexes, never a scan."""
import re
import secrets
import urllib.parse
import uuid
from datetime import datetime, timezone

import pytest
from console_helpers import ConsoleClient, admin_console, console, location, text, visible_text  # noqa: F401
from staff_helpers import PASSWORD, staff_member

from chalicelib.core.models import AuditEvent
from chalicelib.flows import activity as activity_flow
from ops import partner_portals

PATH = "/console/activity"


def past_event(tenant_id, when, action, actor=None, target=None, **details):
    """An event recorded at `when` (core/audit.record's shape, with a chosen time)."""
    ms = int(when.timestamp() * 1000)
    AuditEvent(tenant_id, f"{ms:013d}#{secrets.token_hex(4)}", at=ms // 1000, action=action, actor=actor,
               target=target, details=details, trail_key=f"{tenant_id}#{target}" if target else None,
               actor_key=f"{tenant_id}#{actor}" if actor and actor != target else None).save()


def utc(*parts):
    return datetime(*parts, tzinfo=timezone.utc)


def admin_id(tenant):
    from chalicelib.flows.staff import people
    return people.person_id_for(tenant.id, tenant.admin_username)


def page_of(c, **query):
    r = c.get(PATH + ("?" + urllib.parse.urlencode(query) if query else ""))
    return r, text(r)


def rows(page):
    """(when, what happened, done by, about) of each row of the activity table."""
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.S)
    if not body:
        return []
    return [tuple(visible_text(cell) for cell in re.findall(r"<td>(.*?)</td>", row, re.S))[:4]
            for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)]


def next_page(page):
    match = re.search(r'<a href="([^"]+)">Next page</a>', page)
    return match.group(1).replace("&amp;", "&") if match else None


def make_portal():
    pid = "p-" + uuid.uuid4().hex[:10]
    portal, secret = partner_portals.create_portal(f"Portal {pid}", ["view_customer"], "v1", "Terms.\n",
                                                   portal_id=pid)
    return portal, secret


def invite(http, tenant, email):
    token = tenant.admin_token
    customer = http.post("/v1/customers", {"name": "Harper Home", "emails": [email]}, token=token)[1]
    status, user = http.post("/v1/portal/invitations", {"customer_id": customer["customer_id"], "email": email},
                             token=token)
    assert status in (200, 201, 202), user
    return user


def test_the_trail_in_words_newest_first(admin_console, http, tenant):
    person, _ = staff_member(tenant, kind="employee")
    invite(http, tenant, f"owner@{tenant.id}.example")
    r, page = page_of(admin_console)
    assert r.status_code == 200
    found = rows(page)
    whats = [what for _, what, _, _ in found]
    assert any(w.startswith("Invited by Admin to Harper Home") for w in whats)
    assert ("Signed in" in whats) and all("." not in w.split(" ")[0] for w in whats)
    assert not re.search(r"\b(staff|portal|partner|session)\.[a-z_]+\b", visible_text(page))  # no raw codes
    times = re.findall(r'<time datetime="([^"]+)">', page)
    assert times == sorted(times, reverse=True)
    assert any(about == "A employee" and by == "A employee" for _, what, by, about in found if what == "Signed in")


def test_filter_by_person_username_or_email(admin_console, http, tenant):
    person, _ = staff_member(tenant, kind="employee")
    invite(http, tenant, f"owner@{tenant.id}.example")
    for value in (person.username, person.email.upper()):
        r, page = page_of(admin_console, person=value)
        assert r.status_code == 200
        found = rows(page)
        assert found and all("A employee" in (by, about) for _, _, by, about in found), found
        assert value in page  # the filter stays filled in
    r, page = page_of(admin_console, person="nobody-" + uuid.uuid4().hex[:6])
    assert r.status_code == 400
    assert "No one in this business has that username, email or mobile number." in visible_text(page)
    assert "<tbody>" not in page


def test_filter_by_portal_user(admin_console, http, tenant):
    email = f"owner@{tenant.id}.example"
    invite(http, tenant, email)
    invite(http, tenant, f"other@{tenant.id}.example")
    r, page = page_of(admin_console, portal_user=email.upper())
    assert r.status_code == 200
    found = rows(page)
    assert len(found) == 1 and found[0][1].startswith("Invited by Admin to Harper Home") and found[0][3] == email
    r, page = page_of(admin_console, portal_user="nobody@nowhere.example")
    assert r.status_code == 400 and "No portal user of this business has that email." in visible_text(page)
    r, page = page_of(admin_console, portal_user="not an email")
    assert r.status_code == 400 and "Enter the portal user's email address" in visible_text(page)


def test_filter_by_partner_portal_alone_and_with_a_person(admin_console, http, tenant):
    portal, secret = make_portal()
    other, _ = make_portal()
    assert http.post(f"/v1/partner-portals/{portal.portal_id}/enable", {"accept": True, "agreement_version": "v1"},
                     token=tenant.admin_token)[0] == 200
    assert http.post(f"/v1/partner-portals/{other.portal_id}/enable", {"accept": True, "agreement_version": "v1"},
                     token=tenant.admin_token)[0] == 200
    token = http.post("/v1/partner/token", {"client_id": portal.client_id, "client_secret": secret,
                                            "tenant_id": tenant.id})[1]["access_token"]
    http.get("/v1/partner/locations", token=token)  # not granted: refused, and audited
    r, page = page_of(admin_console, partner_portal=portal.portal_id)
    assert r.status_code == 200
    assert f'<option value="{portal.portal_id}" selected>' in page
    found = rows(page)
    assert [what for _, what, _, _ in found] == [
        "Partner listed service locations (refused: the portal does not have that permission)",
        "Partner signed in to the API", "Access granted by Admin (agreement accepted)"]
    assert all(about == portal.name for *_, about in found)
    assert found[0][2] == portal.name  # done by the partner
    # the portal AND a person: what that person did to it
    r, page = page_of(admin_console, partner_portal=portal.portal_id, person=tenant.admin_username)
    assert [what for _, what, _, _ in rows(page)] == ["Access granted by Admin (agreement accepted)"]
    r, page = page_of(admin_console, partner_portal="no-such-portal")
    assert r.status_code == 400 and "No such partner portal." in visible_text(page)


def test_filter_by_dates_whole_days_in_utc(admin_console, tenant):
    me = admin_id(tenant)
    past_event(tenant.id, utc(2025, 3, 1, 23, 59, 59), "staff.person_updated", actor=me, target="x1")
    past_event(tenant.id, utc(2025, 3, 2, 0, 0, 0), "staff.unlocked", actor=me, target="x2")
    past_event(tenant.id, utc(2025, 3, 2, 23, 59, 59), "staff.invited", actor=me, target="x3", channel="email")
    past_event(tenant.id, utc(2025, 3, 3, 0, 0, 0), "tenant.enabled")
    r, page = page_of(admin_console, since="2025-03-02", until="2025-03-02")
    assert r.status_code == 200
    assert [what for _, what, _, _ in rows(page)] == ["Sent an account invite by Admin (by email)", "Unlocked by Admin"]
    assert [when for when, *_ in rows(page)] == ["2 Mar 2025, 23:59 UTC", "2 Mar 2025, 00:00 UTC"]
    assert len(rows(page_of(admin_console, since="2025-03-02", until="2025-03-03")[1])) == 3
    assert len(rows(page_of(admin_console, until="2025-03-01")[1])) == 1
    # with a person too: the person's index, between the dates
    found = rows(page_of(admin_console, person=tenant.admin_username, since="2025-03-01", until="2025-03-02")[1])
    assert len(found) == 3
    r, page = page_of(admin_console, since="2025-03-03", until="2025-03-02")
    assert r.status_code == 400 and "The From date is after the To date." in visible_text(page)
    r, page = page_of(admin_console, since="March 2nd")
    assert r.status_code == 400 and "Enter a date like 2026-12-04" in visible_text(page)


def test_pages_with_next_page_and_no_repeats(admin_console, tenant):
    me = admin_id(tenant)
    for i in range(120):
        past_event(tenant.id, utc(2025, 5, 1, 8, 0, i % 60, i * 1000 % 1_000_000), "staff.person_updated", actor=me,
                   target=f"someone-{i}")
    seen = []
    href = PATH + "?since=2025-05-01&until=2025-05-01"
    for _ in range(4):
        page = text(admin_console.get(href))
        seen += re.findall(r'<time datetime="([^"]+)">', page)
        href = next_page(page)
        if not href:
            break
        assert "since=2025-05-01" in href  # the filters go on to the next page
    assert len(seen) == 120 and href is None


def test_several_filters_read_a_bounded_number_of_events_per_page(admin_console, tenant, monkeypatch):
    """Person AND portal: no index has both, so the person's events are read and the portal's kept; with a read
    budget a page stops early and says how far back it looked, and Next page goes on from there."""
    monkeypatch.setattr(activity_flow, "READ_BUDGET", 10)
    portal, _ = make_portal()
    me = admin_id(tenant)
    past_event(tenant.id, utc(2025, 6, 1, 9), "partner.enabled", actor=me, target=portal.portal_id)
    for i in range(35):  # newer events of the same person, about other things
        past_event(tenant.id, utc(2025, 6, 2, 9, i), "staff.person_updated", actor=me, target=f"someone-{i}")
    href = PATH + "?" + urllib.parse.urlencode({"person": tenant.admin_username, "partner_portal": portal.portal_id,
                                                "until": "2025-06-30"})
    pages = 0
    while href:
        page = text(admin_console.get(href))
        pages += 1
        found = rows(page)
        if found:
            assert [what for _, what, _, _ in found] == ["Access granted by Admin (agreement accepted)"]
            break
        assert "Looked through events back to" in visible_text(page)
        href = next_page(page)
    assert 2 <= pages <= 5 and found


def test_other_businesses_never_show(admin_console, http, tenant, other_tenant):
    email = f"owner@{other_tenant.id}.example"
    invite(http, other_tenant, email)
    theirs, _ = staff_member(other_tenant, kind="employee")
    page = text(admin_console.get(PATH))
    assert email not in page and theirs.username not in page
    r, page = page_of(admin_console, portal_user=email)
    assert r.status_code == 400
    r, page = page_of(admin_console, person=theirs.username)
    assert r.status_code == 400


def test_every_filter_is_a_query_never_a_scan(admin_console, tenant, monkeypatch):
    from chalicelib.core.models import Person, PortalUser

    def refuse(*args, **kwargs):
        raise AssertionError("a scan")
    for model in (AuditEvent, Person, PortalUser):
        monkeypatch.setattr(model, "scan", refuse)
    portal, _ = make_portal()
    for query in ({}, {"person": tenant.admin_username}, {"partner_portal": portal.portal_id},
                  {"since": "2025-01-01", "until": "2026-12-31"},
                  {"person": tenant.admin_username, "partner_portal": portal.portal_id, "since": "2025-01-01"}):
        r, _ = page_of(admin_console, **query)
        assert r.status_code == 200, query


@pytest.mark.parametrize("query, words", [
    ({"cursor": "bm9wZQ"}, "The cursor is not one this API gave out."),
    ({"cursor": "eyJrIjogIngifQ"}, "The cursor is not one this API gave out."),  # {"k": "x"}
    ({"person": "x" * 300}, "This is too long."),
    ({"since": "2025-02-30"}, "Enter a date like"),
    ({"until": "0026-01-01"}, "Choose a date from 1970 on."),  # a typo for 2026: no key range below the epoch
])
def test_bad_input_is_answered_in_words(admin_console, query, words):
    r, page = page_of(admin_console, **query)
    assert r.status_code == 400 and words in visible_text(page)


def test_staff_without_audit_read_are_refused(client, tenant):
    person, _ = staff_member(tenant, kind="employee", permissions=["partners:manage"])
    c = ConsoleClient(client)
    assert c.sign_in(tenant.id, person.username, PASSWORD).status_code == 303
    assert c.get(PATH).status_code == 403
    assert "Activity" not in visible_text(text(c.get("/console/partner-portals")))
    # and with it, the section is there
    reader, _ = staff_member(tenant, kind="employee", permissions=["audit:read"])
    c = ConsoleClient(client)
    assert c.sign_in(tenant.id, reader.username, PASSWORD).status_code == 303
    r = c.follow(c.get("/console"))
    assert r.status_code == 200 and "<h1>Activity</h1>" in text(r)


def test_every_action_the_flows_record_has_words():
    """An action recorded under a name the console does not know would show as its raw code in Activity. Every
    string literal shaped like an action ("area.verb", an area the trail knows) counts: some are kept in tables."""
    import pathlib

    from chalicelib.web.console.words import ACTIVITY_WORDS
    areas = "|".join(sorted({action.split(".")[0] for action in ACTIVITY_WORDS}))
    shaped = re.compile(rf'"((?:{areas})\.[a-z_]+(?:\{{status\}})?)"')
    recorded = set()
    for source in pathlib.Path("chalicelib").rglob("*.py"):
        if "console" not in source.parts:
            recorded |= set(shaped.findall(source.read_text()))
    # bulk_invites records f"portal.bulk_invite_{status}" for the job's end
    actions = {a.replace("{status}", s) for a in recorded for s in ("done", "failed")}
    assert {"staff.bulk_invite", "portal.invited", "partner.enabled"} <= actions
    assert sorted(a for a in actions if a not in ACTIVITY_WORDS) == []


def test_a_cursor_from_before_the_from_date_is_an_empty_page_not_a_reversed_range(tenant, monkeypatch):
    """DynamoDB refuses a BETWEEN whose upper bound is below its lower one (moto does not): never ask it."""
    from datetime import date

    from chalicelib.core.paging import make_cursor
    asked = []
    real = activity_flow._reads
    monkeypatch.setattr(activity_flow, "_reads", lambda *a, **k: asked.append(a) or real(*a, **k))
    cursor = make_cursor({"event_id": {"S": "1700000000000#abcdef12"}}, "event_id")
    found = activity_flow.search(tenant.id, [], date(2030, 1, 1), None, {"cursor": cursor})
    assert found["items"] == [] and found["next_cursor"] is None and asked == []
