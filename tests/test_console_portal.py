"""Admin console → Customer Portal (issue 16): User Management (search by email, status, records and access; a user's
page with Send Invite / Resend Invite, Disable / Enable, Sign out everywhere, access per record, Activity in words)
and Permissions (Self sign-up, Continue with Google, Continue with Microsoft; a provider not set up cannot be
switched on). Each action is checked through the JSON API afterwards; other tenants' ids answer 404, staff without
portal:manage 403, a POST without its CSRF token does nothing, bad input answers 400 in words."""
import urllib.parse

import pytest
from conftest import drain, links_to
from console_helpers import ConsoleClient, admin_console, console, google_only, location, text, visible_text  # noqa: F401
from staff_helpers import PASSWORD, staff_member

from chalicelib.web.console import words

PORTAL_PASSWORD = "Portal-Customer-Pass-47"


@pytest.fixture
def shop(http, tenant):
    """Two customers: Harper (owner@ on the customer, renter@ only on a location) and Quinn (owner@ too)."""
    t = tenant.admin_token
    owner, renter = f"owner@{tenant.id}.example", f"renter@{tenant.id}.example"
    harper = http.post("/v1/customers", {"name": "Harper Household", "emails": [owner]}, token=t)[1]
    http.post(f"/v1/customers/{harper['customer_id']}/locations", {"address": "12 Elm", "emails": [renter]}, token=t)
    quinn = http.post("/v1/customers", {"name": "Quinn Bakery", "emails": [owner]}, token=t)[1]
    invited = {}
    for email, cid, access in ((owner, harper["customer_id"], "billing"), (owner, quinn["customer_id"], "billing"),
                               (renter, harper["customer_id"], "non_billing")):
        status, user = http.post("/v1/portal/invitations", {"customer_id": cid, "email": email, "access": access},
                                 token=t)
        assert status == 202, user
        invited[email] = user["user_id"]
    return {"token": t, "owner": owner, "renter": renter, "harper": harper["customer_id"],
            "quinn": quinn["customer_id"], "owner_id": invited[owner], "renter_id": invited[renter]}


def register(app, http, email):
    """The invitee registers with the link of their invitation email."""
    drain(app)
    link = links_to(email, "/register")[-1]
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]
    status, body = http.post("/v1/portal/register", {"token": token, "password": PORTAL_PASSWORD})
    assert status == 200, body
    return body


def api_user(http, shop, user_id):
    status, body = http.get(f"/v1/portal/users/{user_id}", token=shop["token"])
    assert status == 200, body
    return body


# --- User Management ------------------------------------------------------------------------------------------

def test_the_list_shows_status_records_and_access_and_searches_by_email(admin_console, shop):
    r = admin_console.get("/console/portal/users")
    assert r.status_code == 200, text(r)
    page = visible_text(text(r))
    for label in ("User Management", "Bulk invite users", "Permissions", "Search by email", "Status"):
        assert label in page
    assert shop["owner"] in page and shop["renter"] in page
    assert "Harper Household: Billing Access" in page and "Quinn Bakery: Billing Access" in page
    assert "Harper Household: Non-Billing Access" in page and "Invited" in page
    # search by the start of the email (the API's q, any case)
    r = admin_console.get("/console/portal/users?q=RENTER")
    page = visible_text(text(r))
    assert shop["renter"] in page and shop["owner"] not in page
    r = admin_console.get("/console/portal/users?q=nobody-here")
    assert "No portal user matches this search." in visible_text(text(r))
    r = admin_console.get("/console/portal/users?status=active")
    assert shop["owner"] not in visible_text(text(r))


def test_the_list_pages_with_next_page(admin_console, http, tenant):
    t = tenant.admin_token
    emails = [f"p{i:02d}@{tenant.id}.example" for i in range(27)]
    cid = http.post("/v1/customers", {"name": "Many", "emails": emails[:20]}, token=t)[1]["customer_id"]
    http.post(f"/v1/customers/{cid}/locations", {"address": "1 Way", "emails": emails[20:]}, token=t)
    for email in emails:
        assert http.post("/v1/portal/invitations", {"customer_id": cid, "email": email,
                                                    "access": "non_billing"}, token=t)[0] == 202
    seen = set()
    for path in ("/console/portal/users", "/console/portal/users?q=p"):
        r = admin_console.get(path)
        first = set(e for e in emails if e in text(r))
        assert len(first) == 25 and "Next page" in visible_text(text(r))
        href = next(a for a in text(r).split('href="')[1:] if "cursor=" in a).split('"')[0]
        r = admin_console.get(href.replace("&amp;", "&"))
        rest = set(e for e in emails if e in text(r))
        assert first | rest == set(emails) and not first & rest, path
        seen |= rest
    r = admin_console.get("/console/portal/users?cursor=garbage")
    assert r.status_code == 400 and "The cursor is not one this API gave out." in visible_text(text(r))


def test_resend_invite_disable_enable_and_sign_out_everywhere(app, admin_console, http, shop):
    path = f"/console/portal/users/{shop['owner_id']}"
    r = admin_console.get(path)
    assert r.status_code == 200
    page = visible_text(text(r))
    assert "Send Invite" in page and "Resend Invite" not in page  # queued, not delivered yet
    drain(app)
    page = visible_text(text(admin_console.get(path)))
    assert "Resend Invite" in page and "Sign out everywhere" not in page and "Enable" not in page
    before = len(links_to(shop["owner"], "/register"))
    r = admin_console.post(path, {"action": "invite"})
    assert r.status_code == 303 and location(r) == f"{path}?done=invite_sent"
    assert "The invitation is on its way." in visible_text(text(admin_console.follow()))
    drain(app)
    assert len(links_to(shop["owner"], "/register")) == before + 1

    register(app, http, shop["owner"])
    session = http.post("/v1/portal/sign-in", {"tenant_id": http_tenant(shop), "email": shop["owner"],
                                               "password": PORTAL_PASSWORD})[1]
    page = visible_text(text(admin_console.get(path)))
    assert "Active" in page and "Sign out everywhere" in page and "Resend Invite" not in page
    admin_console.post(path, {"action": "sign_out"})
    assert "signed out everywhere" in visible_text(text(admin_console.follow()))
    status, _ = http.post("/v1/portal/token/refresh", {"refresh_token": session["refresh_token"]})
    assert status == 401

    admin_console.post(path, {"action": "disable"})
    assert "The user is disabled" in visible_text(text(admin_console.follow()))
    assert api_user(http, shop, shop["owner_id"])["status"] == "disabled"
    admin_console.post(path, {"action": "enable"})
    page = visible_text(text(admin_console.follow()))
    assert "The user is enabled" in page and "Disable" in page
    assert api_user(http, shop, shop["owner_id"])["status"] == "active"

    # the Activity, in words, newest first
    activity = page.split("Activity", 1)[1]
    for line in ("Invited by Admin to Harper Household (Billing Access)", "Invitation sent again by Admin",
                 "Registered and chose a password", "Signed in", "Signed out everywhere by Admin",
                 "Disabled by Admin (signed out everywhere)", "Changed by Admin: status"):
        assert line in activity, line
    assert "portal." not in activity and "session." not in activity


def http_tenant(shop):
    return shop["owner"].split("@")[1].removesuffix(".example")


def test_change_access_per_record_keeps_the_others(admin_console, http, shop):
    path = f"/console/portal/users/{shop['owner_id']}"
    r = admin_console.get(path)
    page = text(r)
    assert "Access to Harper Household" in visible_text(page) and "Access to Quinn Bakery" in visible_text(page)
    r = admin_console.post(path, {"action": "access", "customer_id": shop["harper"], "access": "non_billing"})
    assert r.status_code == 303 and "Access changed." in visible_text(text(admin_console.follow()))
    grants = {g["customer_id"]: g["access"] for g in api_user(http, shop, shop["owner_id"])["grants"]}
    assert grants == {shop["harper"]: "non_billing", shop["quinn"]: "billing"}
    admin_console.post(path, {"action": "access", "customer_id": shop["quinn"], "access": "none"})
    admin_console.follow()
    grants = {g["customer_id"]: g["access"] for g in api_user(http, shop, shop["owner_id"])["grants"]}
    assert grants == {shop["harper"]: "non_billing", shop["quinn"]: "none"}


def test_an_email_only_on_a_location_is_offered_no_billing_access_and_is_refused_it(admin_console, http, shop):
    path = f"/console/portal/users/{shop['renter_id']}"
    page = text(admin_console.get(path))
    options = page.split('name="access"', 1)[1].split("</select>")[0]
    assert "Non-Billing Access" in options and "No Access" in options and ">Billing Access<" not in options
    r = admin_console.post(path, {"action": "access", "customer_id": shop["harper"], "access": "billing"})
    assert r.status_code == 400
    assert "There is a problem" in visible_text(text(r)) and "Non-Billing Access at most" in visible_text(text(r))
    assert api_user(http, shop, shop["renter_id"])["grants"][0]["access"] == "non_billing"
    for bad in ({"action": "access", "customer_id": shop["harper"], "access": "everything"},
                {"action": "access", "customer_id": "c-not-theirs", "access": "none"},
                {"action": "explode"}):
        r = admin_console.post(path, bad, page=page)
        assert r.status_code == 400 and "There is a problem" in visible_text(text(r)), bad
        assert "Traceback" not in text(r)


def test_a_disabled_invitee_is_enabled_back_to_invited_and_invited_again(admin_console, http, shop):
    """Someone disabled before they registered: the invite is refused in words (status 400, nothing sent); Enable
    makes them invited again and Send Invite then works."""
    path = f"/console/portal/users/{shop['renter_id']}"
    admin_console.get(path)
    admin_console.post(path, {"action": "disable"})
    page = visible_text(text(admin_console.follow()))
    assert "was disabled before they registered" in page and "Enable" in page.split("Actions", 1)[1][:80]
    r = admin_console.post(path, {"action": "invite"})
    assert r.status_code == 400 and "disabled" in visible_text(text(r))
    r = admin_console.post(path, {"action": "enable"})
    assert r.status_code == 303
    assert "invited again" in visible_text(text(admin_console.follow()))
    assert api_user(http, shop, shop["renter_id"])["status"] == "invited"
    r = admin_console.post(path, {"action": "invite"})
    assert r.status_code == 303
    assert "The invitation is on its way" in visible_text(text(admin_console.follow()))


def test_a_post_without_its_csrf_token_does_nothing(admin_console, http, shop):
    path = f"/console/portal/users/{shop['owner_id']}"
    admin_console.get(path)
    r = admin_console.post(path, {"action": "disable", "csrf_token": "forged"}, csrf=False)
    assert r.status_code == 200 and "nothing was done" in visible_text(text(r))
    assert api_user(http, shop, shop["owner_id"])["status"] == "invited"
    admin_console.get("/console/portal/permissions")
    r = admin_console.post("/console/portal/permissions", {"self_signup": "on"}, csrf=False)
    assert "nothing was done" in visible_text(text(r))
    assert http.get("/v1/portal/settings", token=shop["token"])[1]["self_signup"] is False


def test_another_tenants_user_is_not_found(admin_console, http, other_tenant):
    t = other_tenant.admin_token
    email = f"theirs@{other_tenant.id}.example"
    cid = http.post("/v1/customers", {"name": "Theirs", "emails": [email]}, token=t)[1]["customer_id"]
    user_id = http.post("/v1/portal/invitations", {"customer_id": cid, "email": email}, token=t)[1]["user_id"]
    path = f"/console/portal/users/{user_id}"
    r = admin_console.get(path)
    assert r.status_code == 404 and "Portal user not found" in visible_text(text(r))
    assert email not in text(r)
    admin_console.get("/console/portal/users")  # a page of ours: a real token for our own form
    for action in ("disable", "sign_out", "invite"):
        r = admin_console.post(path, {"action": action, "csrf_token": admin_console_token(admin_console, path)},
                               csrf=False)
        assert r.status_code == 404, action
    status, body = http.get(f"/v1/portal/users/{user_id}", token=t)
    assert body["status"] == "invited"
    assert "theirs@" not in text(admin_console.get("/console/portal/users?q=theirs"))
    r = admin_console.get("/console/portal/users/pu_" + "0" * 32)
    assert r.status_code == 404


def admin_console_token(c, path):
    """A valid CSRF token of this browser for `path` (as if a form of ours posted there: the gate and the flow,
    not the token, must refuse another business's id)."""
    from chalicelib.web.pages.serve import _csrf_keys, _csrf_mac
    return _csrf_mac(_csrf_keys()[0], c.cookies["pa_csrf"], path)


def test_staff_without_portal_manage_are_refused_every_action(client, tenant, shop, http):
    person, _ = staff_member(tenant, kind="employee", role="office")
    c = ConsoleClient(client)
    assert c.sign_in(tenant.id, person.username, PASSWORD).status_code == 303
    for path in (f"/console/portal/users/{shop['owner_id']}", "/console/portal/permissions"):
        assert c.get(path).status_code == 403
        r = c.post(path, {"action": "disable", "self_signup": "on", "csrf_token": "x"}, csrf=False)
        assert r.status_code == 403 and "You cannot open this page" in visible_text(text(r))
    assert api_user(http, shop, shop["owner_id"])["status"] == "invited"
    assert http.get("/v1/portal/settings", token=shop["token"])[1]["self_signup"] is False


# --- Permissions -------------------------------------------------------------------------------------------------

def test_permissions_are_saved_through_the_settings_flow(admin_console, http, tenant, google_only):
    r = admin_console.get("/console/portal/permissions")
    assert r.status_code == 200
    page = visible_text(text(r))
    for label in ("Self sign-up", "Continue with Google", "Continue with Microsoft", "Save"):
        assert label in page
    assert "Cannot be switched on: sign-in with Microsoft is not set up for this service." in page
    assert 'id="microsoft" name="microsoft" value="on" disabled' in text(r)
    r = admin_console.post("/console/portal/permissions", {"self_signup": "on", "google": "on"})
    assert r.status_code == 303 and "Permissions saved." in visible_text(text(admin_console.follow()))
    assert http.get("/v1/portal/settings", token=tenant.admin_token)[1] == {"self_signup": True,
                                                                           "third_party_signin": ["google"]}
    # a hand-made POST cannot switch on the provider that is not set up
    r = admin_console.post("/console/portal/permissions", {"self_signup": "on", "google": "on", "microsoft": "on"})
    assert r.status_code == 400
    assert "Continue with Microsoft cannot be switched on: it is not set up for this service." in \
        visible_text(text(r))
    assert http.get("/v1/portal/settings", token=tenant.admin_token)[1]["third_party_signin"] == ["google"]
    # everything off: invitation only
    admin_console.post("/console/portal/permissions", {})
    admin_console.follow()
    assert http.get("/v1/portal/settings", token=tenant.admin_token)[1] == {"self_signup": False,
                                                                           "third_party_signin": []}


def test_a_provider_on_but_not_set_up_can_be_switched_off(admin_console, http, tenant, google_only):
    # on while not set up (it was set up when switched on; the API refuses to switch it on now)
    from chalicelib.core.models import Tenant
    Tenant(tenant.id).update(actions=[Tenant.third_party_signin.set(["microsoft"])])
    r = admin_console.get("/console/portal/permissions")
    assert "Not set up for this service: customers cannot use it even while it is on." in visible_text(text(r))
    assert 'id="microsoft" name="microsoft" value="on" checked aria' in text(r)
    r = admin_console.post("/console/portal/permissions", {"microsoft": "on"})  # kept on: allowed, it was on
    assert r.status_code == 303
    admin_console.follow()
    admin_console.post("/console/portal/permissions", {})
    admin_console.follow()
    assert http.get("/v1/portal/settings", token=tenant.admin_token)[1]["third_party_signin"] == []


# --- words.py ------------------------------------------------------------------------------------------------------

def test_activity_words_never_show_a_code():
    names = {"p1": "Dana", "c1": "Harper Household"}
    assert words.describe({"action": "portal.invited", "actor": "p1",
                           "details": {"customer_id": "c1", "access": "billing"}}, names) == \
        "Invited by Dana to Harper Household (Billing Access)"
    assert words.describe({"action": "portal.signed_in", "actor": "pu_1", "details": {}}) == "Signed in"
    assert words.describe({"action": "portal.signed_in", "actor": "pu_1",
                           "details": {"provider": "microsoft"}}) == "Signed in with Microsoft"
    assert words.describe({"action": "session.ended_all", "actor": "p9",
                           "details": {"reason": "admin_sign_out"}}) == "Signed out everywhere by an administrator"
    assert words.describe({"action": "staff.invited", "actor": None, "details": {}}) == \
        "Sent an account invite by the system"
    assert words.describe({"action": "portal.something_new", "details": {}}) == "Something new"
    assert words.when("2026-03-04T15:07:00Z") == "4 Mar 2026, 15:07 UTC"
