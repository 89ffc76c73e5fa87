"""The console's Customers section (issue 16) over HTTP: the search (name, email, phone, paged), a customer's page
(its emails and its locations' emails with portal status, Billing and Invite / Resend Invite; contacts; the secure
access link), New Contact. Each action is checked in the JSON API afterwards; other businesses' ids answer 404;
inviting needs portal:manage (the office role, directory:manage only, sees no invite controls and is refused the
POSTs); a POST without its CSRF token does nothing; bad input answers 400 in words."""
import re
import urllib.parse

import pytest
from conftest import drain, links_to
from console_helpers import ConsoleClient, admin_console, console, csrf_for, location, text, visible_text  # noqa: F401
from staff_helpers import PASSWORD, staff_member

SECTION = "/console/customers"


@pytest.fixture
def harper(http, tenant):
    """A customer with an email and a phone, a location with an email of its own, and a contact."""
    t = tenant.admin_token
    owner, renter = f"owner@{tenant.id}.example", f"renter@{tenant.id}.example"
    status, c = http.post("/v1/customers", {"name": "Harper Household", "emails": [owner],
                                            "phones": ["(415) 555-0134"], "billing_address": "1 Main St"}, token=t)
    assert status == 201, c
    status, loc = http.post(f"/v1/customers/{c['customer_id']}/locations",
                            {"address": "12 Elm Street", "name": "Rental", "emails": [renter]}, token=t)
    assert status == 201, loc
    status, ct = http.post(f"/v1/customers/{c['customer_id']}/contacts",
                           {"name": "Pat Harper", "phone": "+1 415 555 0199"}, token=t)
    assert status == 201, ct
    return {"token": t, "id": c["customer_id"], "location_id": loc["location_id"], "owner": owner, "renter": renter,
            "path": f"{SECTION}/{c['customer_id']}"}


def words(response) -> str:
    return visible_text(text(response))


def portal_user(http, token, email):
    status, body = http.get("/v1/portal/users?q=" + urllib.parse.quote(email), token=token)
    assert status == 200, body
    return next((u for u in body["items"] if u["email"] == email), None)


def office_console(client, tenant) -> ConsoleClient:
    """Signed in as an office employee: directory:manage only (no portal:manage)."""
    person, _ = staff_member(tenant, kind="employee", role="office")
    c = ConsoleClient(client)
    assert c.sign_in(tenant.id, person.username, PASSWORD).status_code == 303
    return c


def token_for(c: ConsoleClient, path: str) -> str:
    """The CSRF token a page of `path` would give this tab (for a POST a page does not offer this person)."""
    from chalicelib.web.pages.serve import _csrf_keys, _csrf_mac, cookie_name
    return _csrf_mac(_csrf_keys()[0], c.cookies[cookie_name("pa_csrf")], path)


def select_options(page: str, email: str) -> list[str]:
    """The Billing options offered on the row of `email`."""
    row = re.search(r"<tr>\s*<th scope=\"row\" id=\"[^\"]+\">" + re.escape(email) + r"</th>(.*?)</tr>", page, re.S)
    assert row, email
    return re.findall(r"<option value=\"[^\"]+\"[^>]*>([^<]+)</option>", row.group(1))


# --- the search --------------------------------------------------------------------------------------------------

def test_search_by_name_email_and_phone(admin_console, harper):
    for q in ("harp", "HOUSEHOLD harper", harper["owner"].upper(), harper["renter"], "415.555.0134",
              "+14155550199"):
        r = admin_console.get(f"{SECTION}?q={urllib.parse.quote(q)}")
        assert r.status_code == 200, q
        assert "Harper Household" in words(r), q
        assert f'href="{SECTION}/{harper["id"]}"' in text(r)
    r = admin_console.get(f"{SECTION}?q=nobody")
    assert r.status_code == 200 and "No customer matches “nobody”" in words(r)
    page = text(admin_console.get(SECTION))
    assert 'label for="q">Search customers' in page and "Harper Household" in visible_text(page)
    assert harper["owner"] in visible_text(page) and "(415) 555-0134" in visible_text(page)


def test_search_pages_with_next_page(admin_console, tenant):
    from chalicelib.flows import directory
    for i in range(27):
        directory.create_customer(tenant.id, directory.CustomerCreate(name=f"Pagewood {i:02d}"))
    r = admin_console.get(f"{SECTION}?q=pagewood")
    first = re.findall(r"Pagewood \d\d", words(r))
    assert len(first) == 25
    more = re.search(r'<a href="([^"]+)">Next page</a>', text(r))
    assert more
    r = admin_console.get(more.group(1).replace("&amp;", "&"))
    second = re.findall(r"Pagewood \d\d", words(r))
    assert r.status_code == 200 and len(second) == 2 and not set(first) & set(second)
    assert "Next page" not in words(r)
    # the whole list pages the same way
    r = admin_console.get(SECTION)
    assert "Next page" in words(r)


def test_bad_searches_answer_400_in_words(admin_console):
    r = admin_console.get(f"{SECTION}?q=a")
    assert r.status_code == 400 and "Type at least 2 letters of a name." in words(r)
    assert 'aria-invalid="true"' in text(r)
    r = admin_console.get(f"{SECTION}?q=" + "x" * 300)
    assert r.status_code == 400 and "at most 200 characters" in words(r)
    r = admin_console.get(f"{SECTION}?cursor=not-a-cursor")
    assert r.status_code == 400 and "out of date" in words(r)


def test_search_finds_only_this_business(admin_console, http, other_tenant):
    t = other_tenant.admin_token
    http.post("/v1/customers", {"name": "Elsewhere Family", "emails": ["else@other.example"]}, token=t)
    for q in ("elsewhere", "else@other.example"):
        assert "Elsewhere" not in words(admin_console.get(f"{SECTION}?q={q}"))


# --- the customer's page -----------------------------------------------------------------------------------------

def test_customer_page_shows_emails_locations_and_contacts(admin_console, harper):
    r = admin_console.get(harper["path"])
    assert r.status_code == 200
    page, shown = text(r), words(r)
    for expected in ("Harper Household", "1 Main St", "(415) 555-0134", harper["owner"], "Rental", "12 Elm Street",
                     harper["renter"], "Pat Harper", "+1 415 555 0199", "New Contact", "Secure access link",
                     "No account"):
        assert expected in shown, expected
    assert select_options(page, harper["owner"]) == ["Billing Access", "Non-Billing Access", "No Access"]
    assert select_options(page, harper["renter"]) == ["Non-Billing Access", "No Access"]  # only on a location
    assert page.count(">Invite</button>") == 2 and "Resend Invite" not in page


def test_invite_then_resend_then_gone_once_active(app, admin_console, harper, http):
    h = harper
    admin_console.get(h["path"])
    r = admin_console.post(h["path"], {"email": h["owner"], "access": "non_billing", "do": "invite"})
    assert r.status_code == 303 and location(r) == f"{h['path']}?done=invited"
    r = admin_console.follow()
    assert "The invitation is on its way." in words(r)
    user = portal_user(http, h["token"], h["owner"])
    assert user["status"] == "invited"
    assert user["grants"] == [{"customer_id": h["id"], "access": "non_billing", "admin": False}]
    drain(app)
    [first] = links_to(h["owner"], "/register")
    page = text(r)
    assert "Resend Invite" in page and page.count(">Invite</button>") == 1  # the location's email still has Invite
    assert "Invited" in words(r)
    # Resend Invite with the access unchanged: the resend flow (a new link; the previous one stops working)
    r = admin_console.post(h["path"], {"email": h["owner"], "access": "non_billing", "do": "resend"})
    assert location(r) == f"{h['path']}?done=resent"
    drain(app)
    assert len(links_to(h["owner"], "/register")) == 2
    status, body = http.post("/v1/portal/register", {"token": first.split("token=")[1], "password": "Harper-Pass-4471"})
    assert status == 410, body
    # Resend Invite with Billing Access chosen: sent again with the new access
    admin_console.get(h["path"])
    r = admin_console.post(h["path"], {"email": h["owner"], "access": "billing", "do": "resend"})
    assert r.status_code == 303
    drain(app)
    assert portal_user(http, h["token"], h["owner"])["grants"][0]["access"] == "billing"
    last = links_to(h["owner"], "/register")[-1]
    status, body = http.post("/v1/portal/register", {"token": last.split("token=")[1], "password": "Harper-Pass-4471"})
    assert status == 200, body
    r = admin_console.get(h["path"])
    shown, page = words(r), text(r)
    assert "Active" in shown and "Resend Invite" not in page and page.count(">Invite</button>") == 1
    assert ">Save</button>" in page


def test_save_changes_an_active_users_access(app, admin_console, harper, http):
    h = harper
    admin_console.get(h["path"])
    admin_console.post(h["path"], {"email": h["owner"], "access": "billing", "do": "invite"})
    drain(app)
    [link] = links_to(h["owner"], "/register")
    assert http.post("/v1/portal/register", {"token": link.split("token=")[1],
                                             "password": "Harper-Pass-4471"})[0] == 200
    admin_console.get(h["path"])
    r = admin_console.post(h["path"], {"email": h["owner"], "access": "none", "do": "save"})
    assert location(r) == f"{h['path']}?done=saved"
    assert "Access saved." in words(admin_console.follow())
    user = portal_user(http, h["token"], h["owner"])
    assert user["status"] == "active" and user["grants"][0]["access"] == "none"
    page = text(admin_console.last)
    assert re.search(r'<option value="none" selected>No Access</option>', page)
    # invite refuses an active account in words
    r = admin_console.post(h["path"], {"email": h["owner"], "access": "billing", "do": "invite"})
    assert r.status_code == 409 and "already has a portal account" in words(r)


def test_location_email_gets_non_billing_and_never_billing(app, admin_console, harper, http):
    h = harper
    admin_console.get(h["path"])
    r = admin_console.post(h["path"], {"email": h["renter"], "location_id": h["location_id"], "access": "billing",
                                       "do": "invite"})
    assert r.status_code == 400 and "at most non_billing" in words(r)
    assert portal_user(http, h["token"], h["renter"]) is None
    # without the location: still only what the records allow
    r = admin_console.post(h["path"], {"email": h["renter"], "access": "billing", "do": "invite"})
    assert r.status_code == 400 and portal_user(http, h["token"], h["renter"]) is None
    r = admin_console.post(h["path"], {"email": h["renter"], "location_id": h["location_id"],
                                       "access": "non_billing", "do": "invite"})
    assert r.status_code == 303
    user = portal_user(http, h["token"], h["renter"])
    assert user["grants"] == [{"customer_id": h["id"], "access": "non_billing", "admin": False}]


def test_bad_access_posts_answer_400_in_words(admin_console, harper, http):
    h = harper
    cases = [({"email": h["owner"], "access": "none", "do": "invite"}, "Choose Billing Access or Non-Billing Access"),
             ({"email": h["owner"], "access": "admin", "do": "invite"}, "not a choice this page offers"),
             ({"email": h["owner"], "access": "billing", "do": "explode"}, "not a choice this page offers"),
             ({"email": "not-an-email", "access": "billing", "do": "invite"}, "reload the page"),
             ({"email": "stranger@x.example", "access": "billing", "do": "invite"}, "not on that customer"),
             ({"email": h["owner"], "access": "billing", "do": "save"}, "no portal account yet")]
    for fields, expected in cases:
        admin_console.get(h["path"])
        r = admin_console.post(h["path"], fields)
        assert r.status_code == 400, fields
        assert expected in words(r), (fields, words(r))
    assert portal_user(http, h["token"], h["owner"]) is None


def test_without_csrf_nothing_happens(admin_console, harper, http):
    h = harper
    admin_console.get(h["path"])
    r = admin_console.post(h["path"], {"email": h["owner"], "access": "billing", "do": "invite",
                                       "csrf_token": "forged"}, csrf=False)
    assert r.status_code == 200 and "nothing was done" in words(r)
    r = admin_console.post(f"{h['path']}/contacts/new", {"name": "Ghost", "csrf_token": ""}, csrf=False)
    assert "nothing was done" in words(r)
    r = admin_console.post(f"{h['path']}/access-link", {"expires_in_days": "30"}, csrf=False)
    assert "nothing was done" in words(r) and "/portal/access?token=" not in text(r)
    assert portal_user(http, h["token"], h["owner"]) is None
    status, contacts = http.get(f"/v1/customers/{h['id']}/contacts", token=h["token"])
    assert [c["name"] for c in contacts["items"]] == ["Pat Harper"]
    assert http.get(f"/v1/customers/{h['id']}/access-link", token=h["token"])[1]["status"] == "none"


def test_other_business_ids_answer_404(admin_console, http, other_tenant):
    t = other_tenant.admin_token
    status, c = http.post("/v1/customers", {"name": "Not Yours", "emails": ["x@other.example"]}, token=t)
    for path in (f"{SECTION}/{c['customer_id']}", f"{SECTION}/{c['customer_id']}/contacts/new",
                 f"{SECTION}/{c['customer_id']}/access-link", f"{SECTION}/nope", f"{SECTION}/{'x' * 300}",
                 f"{SECTION}/{c['customer_id'].upper()}"):
        r = admin_console.get(path)
        assert r.status_code == 404, path
        assert "Customer not found" in words(r) and "Not Yours" not in words(r)


def test_another_customers_or_business_location_is_not_found(admin_console, harper, http, other_tenant, tenant):
    h = harper
    t = other_tenant.admin_token
    c = http.post("/v1/customers", {"name": "Not Yours"}, token=t)[1]
    foreign = http.post(f"/v1/customers/{c['customer_id']}/locations",
                        {"address": "9 Far Road", "emails": [h["renter"]]}, token=t)[1]
    mine = http.post("/v1/customers", {"name": "Second"}, token=h["token"])[1]
    other = http.post(f"/v1/customers/{mine['customer_id']}/locations",
                      {"address": "3 Side St", "emails": ["side@x.example"]}, token=h["token"])[1]
    for location_id, email in ((foreign["location_id"], h["renter"]), (other["location_id"], "side@x.example")):
        admin_console.get(h["path"])
        r = admin_console.post(h["path"], {"email": email, "location_id": location_id, "access": "non_billing",
                                           "do": "invite"})
        assert r.status_code == 404, location_id
    assert portal_user(http, h["token"], "side@x.example") is None
    assert portal_user(http, other_tenant.admin_token, h["renter"]) is None


def test_office_staff_see_no_invite_controls_and_are_refused(client, tenant, harper, http):
    h = harper
    office = office_console(client, tenant)
    r = office.get(h["path"])
    page = text(r)
    assert r.status_code == 200 and h["owner"] in visible_text(page)
    assert "<select" not in page and "Invite</button>" not in page and "Secure access link" not in page
    assert "needs access to Customer Portal" in visible_text(page)
    # a POST made by hand with a valid CSRF token: the 403 page, nothing sent
    fields = {"email": h["owner"], "access": "billing", "do": "invite"}
    r = office.get(f"{h['path']}/contacts/new")
    assert r.status_code == 200 and "Send invite to customer portal" not in words(r)
    good = csrf_for(text(r), f"{h['path']}/contacts/new")
    own = token_for(office, h["path"])
    r = office.post(h["path"], {**fields, "csrf_token": own}, csrf=False)
    assert r.status_code == 403 and "You cannot open this page" in words(r)
    assert portal_user(http, h["token"], h["owner"]) is None
    r = office.post(f"{h['path']}/contacts/new", {"name": "Sneaky", "email": h["owner"], "send_portal_invite": "yes",
                                                  "csrf_token": good}, csrf=False)
    assert r.status_code == 403 and portal_user(http, h["token"], h["owner"]) is None
    status, contacts = http.get(f"/v1/customers/{h['id']}/contacts", token=h["token"])
    assert "Sneaky" not in [c["name"] for c in contacts["items"]]  # nothing half-way
    r = office.get(f"{h['path']}/access-link")
    assert r.status_code == 403
    own = token_for(office, f"{h['path']}/access-link")
    r = office.post(f"{h['path']}/access-link", {"expires_in_days": "30", "csrf_token": own}, csrf=False)
    assert r.status_code == 403 and "/portal/access?token=" not in text(r)
    assert http.get(f"/v1/customers/{h['id']}/access-link", token=h["token"])[1]["status"] == "none"
    # a contact without an invite is theirs to add
    r = office.post(f"{h['path']}/contacts/new", {"name": "Office Added", "phone": "555-0100", "csrf_token": good},
                    csrf=False)
    assert r.status_code == 303 and location(r) == f"{h['path']}?done=contact_added"


def test_staff_without_directory_manage_are_refused_the_posts(client, tenant, harper, http):
    """portal:manage alone does not open Customers: the section's permission is directory:manage."""
    h = harper
    person, _ = staff_member(tenant, kind="employee", permissions=["portal:manage"])
    c = ConsoleClient(client)
    assert c.sign_in(tenant.id, person.username, PASSWORD).status_code == 303
    c.get("/console")
    for path, fields in ((h["path"], {"email": h["owner"], "access": "billing", "do": "invite"}),
                         (f"{h['path']}/contacts/new", {"name": "X"}),
                         (f"{h['path']}/access-link", {"expires_in_days": "30"})):
        r = c.post(path, {**fields, "csrf_token": token_for(c, path)}, csrf=False)
        assert r.status_code == 403, path
    assert portal_user(http, h["token"], h["owner"]) is None


# --- New Contact -------------------------------------------------------------------------------------------------

def test_new_contact_with_an_invite(app, admin_console, harper, http):
    h = harper
    r = admin_console.get(f"{h['path']}/contacts/new")
    assert r.status_code == 200 and "Send invite to customer portal" in words(r)
    email = "sam@harper.example"
    r = admin_console.post(f"{h['path']}/contacts/new", {"name": "Sam Harper", "email": email.upper(),
                                                         "phone": "415 555 0111", "send_portal_invite": "yes"})
    assert r.status_code == 303 and location(r) == f"{h['path']}?done=contact_invited"
    r = admin_console.follow()
    assert "Contact added, and invited to the customer portal." in words(r)
    assert "Sam Harper" in words(r) and email in words(r)
    status, contacts = http.get(f"/v1/customers/{h['id']}/contacts", token=h["token"])
    [sam] = [c for c in contacts["items"] if c["name"] == "Sam Harper"]
    assert sam["email"] == email and sam["phone"] == "415 555 0111"
    user = portal_user(http, h["token"], email)
    assert user["status"] == "invited"
    assert user["grants"] == [{"customer_id": h["id"], "access": "non_billing", "contact_id": sam["contact_id"],
                               "admin": False}]
    drain(app)
    assert links_to(email, "/register")


def test_new_contact_without_an_invite_and_bad_input(admin_console, harper, http):
    h = harper
    path = f"{h['path']}/contacts/new"
    admin_console.get(path)
    r = admin_console.post(path, {"name": "", "email": ""})
    assert r.status_code == 400 and "Enter the contact's name." in words(r)
    r = admin_console.post(path, {"name": "No Mail", "send_portal_invite": "yes"})
    assert r.status_code == 400 and "Enter the contact's email to send an invite" in words(r)
    r = admin_console.post(path, {"name": "Bad Mail", "email": "not an email"})
    assert r.status_code == 400 and "Enter an email address, like name@example.com." in words(r)
    r = admin_console.post(path, {"name": "x" * 300})
    assert r.status_code == 400 and "too long" in words(r)
    r = admin_console.post(path, {"name": "Line\nbreak"})
    assert r.status_code == 400
    status, contacts = http.get(f"/v1/customers/{h['id']}/contacts", token=h["token"])
    assert [c["name"] for c in contacts["items"]] == ["Pat Harper"]
    r = admin_console.post(path, {"name": "Quiet Contact", "email": "quiet@harper.example"})
    assert location(r) == f"{h['path']}?done=contact_added"
    assert portal_user(http, h["token"], "quiet@harper.example") is None


def renter_registered_and_a_second_customer(app, admin_console, h, http):
    """The renter invited from the location (non-billing) and registered; a second customer and its New Contact
    path."""
    admin_console.get(h["path"])
    admin_console.post(h["path"], {"email": h["renter"], "location_id": h["location_id"], "access": "non_billing",
                                   "do": "invite"})
    drain(app)
    [link] = links_to(h["renter"], "/register")
    assert http.post("/v1/portal/register", {"token": link.split("token=")[1],
                                             "password": "Renter-Pass-8812"})[0] == 200
    second = http.post("/v1/customers", {"name": "Second Home"}, token=h["token"])[1]
    return second, f"{SECTION}/{second['customer_id']}/contacts/new"


def test_new_contact_for_an_existing_account_adds_the_customer(app, admin_console, harper, http):
    h = harper
    second, path = renter_registered_and_a_second_customer(app, admin_console, h, http)
    admin_console.get(path)
    r = admin_console.post(path, {"name": "Renter", "email": h["renter"], "send_portal_invite": "yes"})
    assert location(r).endswith("?done=contact_granted")
    user = portal_user(http, h["token"], h["renter"])
    assert {g["customer_id"] for g in user["grants"]} == {h["id"], second["customer_id"]}


# --- the secure access link --------------------------------------------------------------------------------------

def test_create_and_replace_the_access_link(admin_console, harper, http):
    h = harper
    r = admin_console.get(h["path"])
    assert "This customer has no secure access link." in words(r) and ">Create link</button>" in text(r)
    r = admin_console.post(f"{h['path']}/access-link", {"expires_in_days": "30"}, page=text(r))
    assert r.status_code == 200
    page = text(r)
    first = re.search(r'id="new-link" value="([^"]+)" readonly', page).group(1)
    assert "/portal/access?token=" in first and ">Copy</button>" in page and "not shown again" in words(r)
    assert http.get(f"/v1/customers/{h['id']}/access-link", token=h["token"])[1]["status"] == "active"
    token = urllib.parse.parse_qs(urllib.parse.urlparse(first.replace("&amp;", "&")).query)["token"][0]
    status, body = http.post("/v1/portal/access", {"token": token})
    assert status == 200, body
    # shown once: the customer's page and the link's page show the state, never the link
    for path in (h["path"], f"{h['path']}/access-link"):
        r = admin_console.get(path)
        assert token not in text(r) and "The current link works until" in words(r)
        assert ">Replace link</button>" in text(r)
    r = admin_console.post(f"{h['path']}/access-link", {"expires_in_days": "90"})
    second = re.search(r'id="new-link" value="([^"]+)" readonly', text(r)).group(1)
    assert second != first
    status, body = http.post("/v1/portal/access", {"token": token})
    assert status == 410 and body["error"]["code"] == "access_link_rotated"


@pytest.mark.parametrize("days", ["0", "366", "abc", "", "-1", "1.5"])
def test_access_link_days_must_be_1_to_365(admin_console, harper, http, days):
    path = f"{harper['path']}/access-link"
    admin_console.get(path)
    r = admin_console.post(path, {"expires_in_days": days})
    assert r.status_code == 400 and "Enter a number of days from 1 to 365." in words(r)
    assert "/portal/access?token=" not in text(r)
    assert http.get(f"/v1/customers/{harper['id']}/access-link", token=harper["token"])[1]["status"] == "none"


def test_access_link_warns_when_the_customer_has_portal_users(admin_console, harper):
    h = harper
    admin_console.get(h["path"])
    admin_console.post(h["path"], {"email": h["owner"], "access": "billing", "do": "invite"})
    r = admin_console.follow()
    assert "This customer has portal users, so the link asks for their email and password" in words(r)


def test_save_keeps_the_users_other_grants_and_their_contact_limits(app, admin_console, harper, http):
    h = harper
    second, path = renter_registered_and_a_second_customer(app, admin_console, h, http)
    admin_console.get(path)
    admin_console.post(path, {"name": "Renter", "email": h["renter"], "send_portal_invite": "yes"})
    before = {g["customer_id"]: g for g in portal_user(http, h["token"], h["renter"])["grants"]}
    assert before[second["customer_id"]].get("contact_id")
    admin_console.get(h["path"])
    r = admin_console.post(h["path"], {"email": h["renter"], "location_id": h["location_id"], "access": "none",
                                       "do": "save"})
    assert location(r) == f"{h['path']}?done=saved"
    after = {g["customer_id"]: g for g in portal_user(http, h["token"], h["renter"])["grants"]}
    assert after[h["id"]]["access"] == "none" and after[second["customer_id"]] == before[second["customer_id"]]
