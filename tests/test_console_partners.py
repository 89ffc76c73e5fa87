"""The console's Partner Portals (issue 16): every portal with its permissions and its Access switch; switching on
opens the Legal Agreement (Grant Access refused in words until the box is checked), switching off disables at
once; a portal's page with its users (active by default, Show inactive / Hide inactive) and its activity. Every
action is checked through the JSON API afterwards. Portals are made the way operators make them (ops)."""
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
from staff_helpers import PASSWORD, staff_member

from ops import partner_portals

AGREEMENT = "PARTNER ACCESS AGREEMENT\n\n1. The partner reads your customers.\n2. Nothing else.\nLast line: the end.\n"
LIST = "/console/partner-portals"


def make_portal(perms=("view_customer", "view_location"), version="v1", name=None):
    pid = "p-" + uuid.uuid4().hex[:10]
    portal, secret = partner_portals.create_portal(name or f"Portal {pid}", list(perms), version, AGREEMENT,
                                                   portal_id=pid)
    return portal, secret


def api_portal(http, tenant, portal_id):
    status, body = http.get(f"/v1/partner-portals/{portal_id}", token=tenant.admin_token)
    assert status == 200, body
    return body


def row_of(page: str, portal_id: str) -> str:
    """The table row of one portal on the list page."""
    match = re.search(rf'<tr>\s*<th scope="row" id="portal-{re.escape(portal_id)}">.*?</tr>', page, re.S)
    assert match, portal_id
    return match.group(0)


def switch_on(c, portal_id, path=LIST):
    c.get(path)
    return c.post(path, {"portal_id": portal_id, "access": "on"})


def grant(c, portal_id):
    """Access on, through the agreement, as a person does it."""
    r = switch_on(c, portal_id)
    assert r.status_code == 303 and location(r) == f"{LIST}/{portal_id}/agreement"
    c.follow()
    r = c.post(f"{LIST}/{portal_id}/agreement", {"accept": "true", "agreement_version": "v1"})
    assert r.status_code == 303, text(r)
    return r


def test_every_portal_with_its_permissions_and_view_enabled_or_not(admin_console, http, tenant):
    off, _ = make_portal(["view_alerts", "view_customer_statement", "access_settings"])
    on, _ = make_portal(["view_job", "book_job"])
    assert http.post(f"/v1/partner-portals/{on.portal_id}/enable", {"accept": True, "agreement_version": "v1"},
                     token=tenant.admin_token)[0] == 200
    r = admin_console.get(LIST)
    assert r.status_code == 200
    page = text(r)
    off_row, on_row = visible_text(row_of(page, off.portal_id)), visible_text(row_of(page, on.portal_id))
    assert "View Alerts View Customer Statement Access Settings" in off_row and "Off" in off_row
    assert "View Job Book Job" in on_row and "On" in on_row
    assert 'aria-pressed="false"' in row_of(page, off.portal_id) and 'aria-pressed="true"' in row_of(page, on.portal_id)
    assert ">Access</button>" in row_of(page, off.portal_id)
    # View opens a portal whether enabled or not
    for portal in (off, on):
        assert f'href="{LIST}/{portal.portal_id}"' in row_of(page, portal.portal_id)
        r = admin_console.get(f"{LIST}/{portal.portal_id}")
        assert r.status_code == 200 and portal.name in visible_text(text(r))
    assert "Access Settings" in visible_text(text(admin_console.get(f"{LIST}/{off.portal_id}")))


def test_switching_on_opens_the_agreement_and_grant_access_needs_the_box(admin_console, http, tenant):
    portal, secret = make_portal()
    r = switch_on(admin_console, portal.portal_id)
    assert r.status_code == 303 and location(r) == f"{LIST}/{portal.portal_id}/agreement"
    assert api_portal(http, tenant, portal.portal_id)["enabled"] is False  # nothing yet
    r = admin_console.follow()
    words = visible_text(text(r))
    assert r.status_code == 200 and "Legal Agreement" in words
    assert "1. The partner reads your customers." in text(r) and "Last line: the end." in text(r)  # the full text
    assert ("I agree and accept these terms and consent to Partner's access to my account and data"
            in visible_text(text(r)))
    assert ">Grant Access</button>" in text(r) and ">Cancel</a>" in text(r)
    # refused in words until the box is checked
    r = admin_console.post(f"{LIST}/{portal.portal_id}/agreement", {"agreement_version": "v1"})
    assert r.status_code == 400
    assert "Check the box to agree to these terms" in visible_text(text(r))
    assert api_portal(http, tenant, portal.portal_id)["enabled"] is False
    r = admin_console.post(f"{LIST}/{portal.portal_id}/agreement", {"accept": "yes", "agreement_version": "v1"})
    assert r.status_code == 400 and api_portal(http, tenant, portal.portal_id)["enabled"] is False
    # checked: granted (the same flow as POST .../enable: who, when, which version, IP)
    r = admin_console.post(f"{LIST}/{portal.portal_id}/agreement", {"accept": "true", "agreement_version": "v1"})
    assert r.status_code == 303 and location(r).startswith(f"{LIST}?done=granted")
    r = admin_console.follow()
    assert f"Access granted to {portal.name}." in visible_text(text(r))
    assert 'aria-pressed="true"' in row_of(text(r), portal.portal_id)
    body = api_portal(http, tenant, portal.portal_id)
    assert body["enabled"] is True and body["enablement"]["agreement_version"] == "v1"
    assert body["enablement"]["accepted_by_email"] == tenant.admin_username
    # the partner can now get a token for this business
    status, _ = http.post("/v1/partner/token", {"client_id": portal.client_id, "client_secret": secret,
                                                "tenant_id": tenant.id})
    assert status == 200
    # the agreement page now says so, and offers no second acceptance
    r = admin_console.get(f"{LIST}/{portal.portal_id}/agreement")
    assert "Access is on" in visible_text(text(r)) and "Grant Access" not in text(r)
    # pressing "on" again (a second tab) changes nothing
    r = switch_on(admin_console, portal.portal_id)
    assert r.status_code == 303 and api_portal(http, tenant, portal.portal_id)["enabled"] is True


def test_cancel_leaves_access_off(admin_console, http, tenant):
    portal, _ = make_portal()
    switch_on(admin_console, portal.portal_id)
    page = text(admin_console.follow())
    cancel = re.search(r'<a class="button secondary" href="([^"]+)">Cancel</a>', page).group(1)
    r = admin_console.get(cancel.replace("&amp;", "&"))
    assert r.status_code == 200 and f"Access to {portal.name} was not granted." in visible_text(text(r))
    assert api_portal(http, tenant, portal.portal_id)["enabled"] is False


def test_switching_off_disables_at_once(admin_console, http, tenant):
    portal, secret = make_portal()
    grant(admin_console, portal.portal_id)
    admin_console.get(LIST)
    r = admin_console.post(LIST, {"portal_id": portal.portal_id, "access": "off"})
    assert r.status_code == 303
    assert f"Access switched off for {portal.name}." in visible_text(text(admin_console.follow()))
    body = api_portal(http, tenant, portal.portal_id)
    assert body["enabled"] is False and body["enablement"]["disabled_by"]
    status, err = http.post("/v1/partner/token", {"client_id": portal.client_id, "client_secret": secret,
                                                  "tenant_id": tenant.id})
    assert status == 403 and err["error"]["code"] == "partner_access_disabled"
    # pressed again (a stale tab): already off, nothing written
    admin_console.get(LIST)
    r = admin_console.post(LIST, {"portal_id": portal.portal_id, "access": "off"})
    assert "was already off" in visible_text(text(admin_console.follow(r)))
    events = http.get(f"/v1/partner-portals/{portal.portal_id}/audit", token=tenant.admin_token)[1]["items"]
    assert [e["action"] for e in events] == ["partner.disabled", "partner.enabled"]


def test_the_switch_on_a_portal_page_works_too(admin_console, http, tenant):
    portal, _ = make_portal()
    path = f"{LIST}/{portal.portal_id}"
    admin_console.get(path)
    r = switch_on(admin_console, portal.portal_id, path)
    assert location(r) == f"{path}/agreement"
    grant(admin_console, portal.portal_id)
    admin_console.get(path)
    r = admin_console.post(path, {"portal_id": portal.portal_id, "access": "off"})
    assert r.status_code == 303 and location(r).startswith(f"{path}?done=switched_off")
    assert api_portal(http, tenant, portal.portal_id)["enabled"] is False
    # a switch naming another portal than the page's changes nothing
    other, _ = make_portal()
    grant(admin_console, other.portal_id)
    admin_console.get(path)
    r = admin_console.post(path, {"portal_id": other.portal_id, "access": "off"})
    assert r.status_code == 400 and api_portal(http, tenant, other.portal_id)["enabled"] is True


def test_an_agreement_published_while_reading_is_not_accepted(admin_console, http, tenant):
    portal, _ = make_portal()
    admin_console.get(f"{LIST}/{portal.portal_id}/agreement")
    partner_portals.update_portal(portal.portal_id, agreement_version="v2", agreement_text="Second edition.\n")
    r = admin_console.post(f"{LIST}/{portal.portal_id}/agreement", {"accept": "true", "agreement_version": "v1"})
    assert r.status_code == 400
    words = visible_text(text(r))
    assert "A new version of this agreement was published" in words and "Second edition." in words
    assert api_portal(http, tenant, portal.portal_id)["enabled"] is False
    r = admin_console.post(f"{LIST}/{portal.portal_id}/agreement", {"accept": "true", "agreement_version": "v2"})
    assert r.status_code == 303
    assert api_portal(http, tenant, portal.portal_id)["enablement"]["agreement_version"] == "v2"


def test_a_portal_page_lists_active_users_then_inactive_and_its_activity(admin_console, http, tenant):
    portal, _ = make_portal()
    partner_portals.add_user(portal.portal_id, "Ada Coach", "ada@coach.example")
    partner_portals.add_user(portal.portal_id, "Old Coach", "old@coach.example", status="inactive")
    grant(admin_console, portal.portal_id)
    path = f"{LIST}/{portal.portal_id}"
    page = text(admin_console.get(path))
    words = visible_text(page)
    assert "ada@coach.example" in words and "old@coach.example" not in words
    assert ">Show inactive</a>" in page
    show = re.search(r'<a href="([^"]+)">Show inactive</a>', page).group(1).replace("&amp;", "&")
    page = text(admin_console.get(show))
    assert "ada@coach.example" in page and "old@coach.example" in page and ">Hide inactive</a>" in page
    hide = re.search(r'<a href="([^"]+)">Hide inactive</a>', page).group(1).replace("&amp;", "&")
    assert "old@coach.example" not in text(admin_console.get(hide))
    # its activity, in words: who granted access, with the agreement
    words = visible_text(text(admin_console.get(path)))
    assert "Access granted by Admin (agreement accepted)" in words
    assert "partner.enabled" not in words
    assert f"Agreement accepted by {tenant.admin_username}" in words


def test_users_and_activity_page_with_next_page(admin_console, http, tenant):
    portal, secret = make_portal()
    for i in range(27):
        partner_portals.add_user(portal.portal_id, f"User {i:02d}", f"user{i:02d}@coach.example")
    grant(admin_console, portal.portal_id)
    for _ in range(13):  # token requests: 13 events, + the enable = 14
        assert http.post("/v1/partner/token", {"client_id": portal.client_id, "client_secret": secret,
                                               "tenant_id": tenant.id})[0] == 200
    for _ in range(12):
        http.get("/v1/partner/permissions", token="x")  # refused before the portal: no event
    path = f"{LIST}/{portal.portal_id}"
    page = text(admin_console.get(path))
    first = set(re.findall(r"user\d\d@coach.example", page))
    assert len(first) == 25
    links = re.findall(r'<a href="([^"]+)" aria-describedby="users-title">Next page</a>', page)
    assert len(links) == 1
    page2 = text(admin_console.get(links[0].replace("&amp;", "&")))
    second = set(re.findall(r"user\d\d@coach.example", page2))
    assert len(second) == 2 and not first & second
    assert page.count("Partner signed in to the API") >= 11  # activity, 25 a page (eventually consistent index)
    # a cursor that is not ours: words, not a 500
    r = admin_console.get(f"{path}?users=nonsense")
    assert r.status_code == 400 and "could not be found" in visible_text(text(r))


def test_other_businesses_and_unknown_portals(admin_console, http, tenant, other_tenant, client):
    portal, _ = make_portal()
    grant(admin_console, portal.portal_id)
    # another business sees the portal, with its own decision: off, and none of this business's activity
    other = ConsoleClient(client)
    assert other.sign_in(other_tenant.id, other_tenant.admin_username, other_tenant.admin_password).status_code == 303
    page = text(other.get(LIST))
    assert 'aria-pressed="false"' in row_of(page, portal.portal_id)
    words = visible_text(text(other.get(f"{LIST}/{portal.portal_id}")))
    assert tenant.admin_username not in words and "Access granted by" not in words
    # the other business switching off changes nothing here
    other.get(LIST)
    other.post(LIST, {"portal_id": portal.portal_id, "access": "off"})
    assert api_portal(http, tenant, portal.portal_id)["enabled"] is True
    # unknown ids, other spellings: 404 in the console's words
    for bad in ("nope-" + uuid.uuid4().hex[:6], portal.portal_id.upper(), "x" * 300, "..", "%2e%2e"):
        for path in (f"{LIST}/{bad}", f"{LIST}/{bad}/agreement"):
            r = admin_console.get(path)
            assert r.status_code == 404, (path, r.status_code)
            assert "Partner portal not found" in visible_text(text(r))
    admin_console.get(LIST)
    r = admin_console.post(LIST, {"portal_id": "nope", "access": "off"})
    assert r.status_code == 404
    admin_console.get(LIST)
    r = admin_console.post(LIST, {"portal_id": "nope", "access": "on"})
    assert r.status_code == 404


@pytest.mark.parametrize("fields", [{"access": "maybe"}, {"access": ""}, {}])
def test_bad_switch_input_is_answered_in_words(admin_console, http, tenant, fields):
    portal, _ = make_portal()
    admin_console.get(LIST)
    r = admin_console.post(LIST, {"portal_id": portal.portal_id, **fields})
    assert r.status_code == 400 and "Choose whether access should be on or off." in visible_text(text(r))
    assert api_portal(http, tenant, portal.portal_id)["enabled"] is False


def test_without_csrf_nothing_happens(admin_console, http, tenant):
    portal, _ = make_portal()
    grant(admin_console, portal.portal_id)
    r = admin_console.post(LIST, {"portal_id": portal.portal_id, "access": "off", "csrf_token": "forged"},
                           csrf=False)
    assert r.status_code == 200 and "nothing was done" in visible_text(text(r))
    assert api_portal(http, tenant, portal.portal_id)["enabled"] is True
    second, _ = make_portal()
    r = admin_console.post(f"{LIST}/{second.portal_id}/agreement", {"accept": "true", "agreement_version": "v1"},
                           csrf=False)
    assert r.status_code == 200 and api_portal(http, tenant, second.portal_id)["enabled"] is False
    # a token made for another form does not work here either
    page = text(admin_console.get(f"{LIST}/{second.portal_id}"))
    token = csrf_for(page, "/console/sign-out")
    admin_console.post(f"{LIST}/{second.portal_id}/agreement", {"accept": "true", "agreement_version": "v1",
                                                                 "csrf_token": token}, csrf=False)
    assert api_portal(http, tenant, second.portal_id)["enabled"] is False


def test_staff_without_partners_manage_are_refused(http, client, tenant):
    portal, _ = make_portal()
    person, _ = staff_member(tenant, kind="employee", permissions=["audit:read", "directory:manage"])
    c = ConsoleClient(client)
    assert c.sign_in(tenant.id, person.username, PASSWORD).status_code == 303
    page = text(c.get("/console/activity"))
    assert "Partner Portals" not in visible_text(page)
    for path in (LIST, f"{LIST}/{portal.portal_id}", f"{LIST}/{portal.portal_id}/agreement"):
        assert c.get(path).status_code == 403
        r = c.post(path, {"portal_id": portal.portal_id, "access": "off", "accept": "true",
                          "agreement_version": "v1", "csrf_token": "x"}, csrf=False)
        assert r.status_code == 403, path
    assert api_portal(http, tenant, portal.portal_id)["enabled"] is False
