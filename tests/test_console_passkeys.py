"""Passkeys in the console (issue 18), without a browser: the forms carry the server's options, and the tests answer
them with the software authenticator of passkey_helpers (real bytes), as the page's script would. Sign in with a
passkey, the factor page's Use a passkey, the required setup's Add a passkey, and a person's own Passkeys (add,
rename, remove, the recent sign-in); CSRF, no JavaScript, another business, words for every refusal. Chromium
itself: tests/test_console_browser_passkeys.py."""
import html
import json
import re

from console_helpers import SIGN_IN, ConsoleClient, admin_console, console, location, text, visible_text  # noqa: F401
from passkey_helpers import SoftAuthenticator, register
from staff_helpers import PASSWORD, staff_member

PASSKEY = "/console/sign-in/passkey"
FACTOR = "/console/sign-in/factor"
SETUP = "/console/mfa-setup"


def options_on(page: str, ceremony: str) -> dict:
    found = re.search(r'data-passkey="' + ceremony + r'"\s+data-passkey-options="([^"]*)"', page)
    assert found, page
    return json.loads(html.unescape(found.group(1)))


def sign_in_with_passkey(console, device, **typed):
    page = text(console.get(PASSKEY))
    answer = device.get(options_on(page, "get"))
    return console.post(PASSKEY, {"step": "passkey", "credential": json.dumps(answer), **typed})


def test_sign_in_with_a_passkey_and_no_password(http, console, tenant):
    person, token = staff_member(tenant, kind="employee", permissions=["directory:manage"])
    device, _ = register(http, token)
    page = text(console.get(SIGN_IN))
    assert 'href="/console/sign-in/passkey"' in page and "Sign in with a passkey" in visible_text(page)
    page = text(console.get(PASSKEY))
    assert "A passkey needs JavaScript" in page and 'src="/assets/passkeys.js"' in page
    assert "<script>" not in page  # the one first-party script, nothing inline
    r = sign_in_with_passkey(console, device)
    assert r.status_code == 303 and location(r) == "/console" and console.cookies.get("pa_console")
    assert console.follow().status_code == 200


def test_the_passkey_page_names_the_business_and_person_when_typed(http, console, tenant, other_tenant):
    person, token = staff_member(tenant, kind="employee", permissions=["directory:manage"])
    device, _ = register(http, token)
    r = sign_in_with_passkey(console, device, tenant_id=other_tenant.id)
    assert r.status_code == 400 and "This passkey was not accepted" in visible_text(text(r))
    assert "pa_console" not in console.cookies
    r = sign_in_with_passkey(console, device, tenant_id=tenant.id, username="someone-else")
    assert r.status_code == 400 and "This passkey was not accepted" in visible_text(text(r))
    r = sign_in_with_passkey(console, device, tenant_id=tenant.id, username=person.username)
    assert r.status_code == 303 and console.cookies.get("pa_console")


def test_the_passkey_page_without_an_answer_or_csrf_does_nothing(http, console, tenant):
    _, token = staff_member(tenant, kind="employee", permissions=["directory:manage"])
    device, _ = register(http, token)
    console.get(PASSKEY)
    r = console.post(PASSKEY, {"step": "passkey", "credential": ""})  # no JavaScript: nothing was sent
    assert r.status_code == 400 and "A passkey needs JavaScript in this browser" in visible_text(text(r))
    r = console.post(PASSKEY, {"step": "passkey", "credential": "{not json"})
    assert r.status_code == 400
    answer = device.get(options_on(text(console.get(PASSKEY)), "get"))
    r = console.post(PASSKEY, {"step": "passkey", "credential": json.dumps(answer)}, csrf=False)
    assert r.status_code == 400 and "pa_console" not in console.cookies
    # the answer was not used up by the refused post: it still signs in once
    console.get(PASSKEY)
    assert console.post(PASSKEY, {"step": "passkey", "credential": json.dumps(answer)}).status_code == 303


def test_a_person_without_the_console_is_told_so(http, console, tenant):
    _, token = staff_member(tenant, kind="technician")
    device, _ = register(http, token)
    r = sign_in_with_passkey(console, device)
    assert r.status_code == 400 and "This account cannot use the admin console" in visible_text(text(r))
    assert "pa_console" not in console.cookies


def test_the_factor_page_offers_the_passkey(http, console, tenant):
    person, token = staff_member(tenant, kind="employee", permissions=["directory:manage"])
    device, _ = register(http, token)
    r = console.sign_in(tenant.id, person.username, PASSWORD)
    assert location(r) == FACTOR
    page = text(console.get(FACTOR))
    assert "Use a passkey" in visible_text(page) and "Authenticator code or recovery code" in page
    options = options_on(page, "get")
    assert [c["id"] for c in options["allowCredentials"]] == [device.id]
    impostor = SoftAuthenticator()
    impostor.credential_id = device.credential_id
    r = console.post(FACTOR, {"step": "passkey", "credential": json.dumps(impostor.get(options))})
    assert r.status_code == 400 and "This passkey was not accepted. Try again, or enter a code." \
        in visible_text(text(r))
    r = console.post(FACTOR, {"step": "passkey", "credential": json.dumps(device.get(options_on(text(r), "get")))})
    assert r.status_code == 303 and console.cookies.get("pa_console")


def test_a_person_without_passkeys_sees_only_the_code(http, console, tenant, monkeypatch):
    from mfa_helpers import CodeClock, set_up_totp

    from chalicelib.flows.staff import mfa_totp
    clock = CodeClock()
    monkeypatch.setattr(mfa_totp, "_clock", clock)
    person, token = staff_member(tenant, kind="employee", permissions=["directory:manage"])
    set_up_totp(http, token, clock)
    console.sign_in(tenant.id, person.username, PASSWORD)
    page = text(console.get(FACTOR))
    assert "data-passkey" not in page and "Use a passkey" not in page


def test_the_required_setup_takes_a_passkey(http, console, tenant):
    assert http.call("PUT", "/v1/staff/mfa/policy", {"staff_mfa": "required_for_admins"},
                     token=tenant.admin_token)[0] == 200
    r = console.sign_in(tenant.id, tenant.admin_username, tenant.admin_password)
    assert location(r) == SETUP
    page = text(console.get(SETUP))
    assert "Add a passkey" in visible_text(page) and "Or set up an authenticator app" in visible_text(page)
    device = SoftAuthenticator()
    answer = device.create(options_on(page, "create"))
    r = console.post(SETUP, {"step": "passkey", "name": "", "credential": json.dumps(answer)})
    assert r.status_code == 400 and "Name this passkey" in visible_text(text(r))
    answer = device.create(options_on(text(r), "create"))
    r = console.post(SETUP, {"step": "passkey", "name": "Office laptop", "credential": json.dumps(answer)})
    shown = visible_text(text(r))
    assert r.status_code == 200 and "Your passkey is added." in shown and "Save your recovery codes" in shown
    assert len(re.findall(r"<li><code>", text(r))) == 10 and console.cookies.get("pa_console")
    assert console.follow(console.get("/console")).status_code == 200
    # signed in, the same address lists it
    assert "Office laptop" in visible_text(text(console.get(SETUP)))


def test_own_passkeys_add_rename_remove(app, http, admin_console, tenant):
    token = tenant.admin_token  # before the passkey: then a sign-in asks for it
    page = text(admin_console.get(SETUP))
    shown = visible_text(page)
    assert "Your sign-in methods" in shown and "Passkeys" in shown and "You have no passkey yet." in shown
    assert "Sign-in methods" in shown  # the header's link, on every console page
    device = SoftAuthenticator()
    r = admin_console.post(SETUP, {"step": "passkey", "name": "Work phone",
                                   "credential": json.dumps(device.create(options_on(page, "create")))})
    assert r.status_code == 200 and "Your passkey is added." in visible_text(text(r))  # the first: its codes once
    second = SoftAuthenticator()
    page = text(admin_console.get(SETUP))
    r = admin_console.post(SETUP, {"step": "passkey", "name": "Laptop",
                                   "credential": json.dumps(second.create(options_on(page, "create")))})
    assert r.status_code == 303 and "done=added" in location(r)
    page = text(admin_console.follow())
    assert "Passkey added." in visible_text(page)
    rows = re.findall(r'<th scope="row">([^<]+)', page)
    assert rows == ["Work phone", "Laptop"]
    ids = re.findall(r'name="passkey_id" value="([^"]+)"', page)
    laptop = ids[2]
    r = admin_console.post(SETUP, {"step": "rename", "passkey_id": laptop, "name": "Home laptop"})
    assert r.status_code == 303 and "Home laptop" in visible_text(text(admin_console.follow()))
    r = admin_console.post(SETUP, {"step": "rename", "passkey_id": laptop, "name": ""})
    assert r.status_code == 400 and "Enter the passkey's new name." in visible_text(text(r))
    r = admin_console.post(SETUP, {"step": "remove", "passkey_id": laptop})
    assert r.status_code == 303
    page = visible_text(text(admin_console.follow()))
    assert "Passkey removed" in page and "Home laptop" not in page
    r = admin_console.post(SETUP, {"step": "remove", "passkey_id": laptop})
    assert r.status_code == 400 and "That passkey was removed already." in visible_text(text(r))
    items = http.get("/v1/staff/passkeys", token=token)[1]["items"]
    assert [p["name"] for p in items] == ["Work phone"]
    activity = visible_text(text(admin_console.get("/console/activity")))
    assert "Added a passkey" in activity and "Removed a passkey" in activity


def test_own_passkeys_refusals(http, admin_console, tenant, other_tenant, monkeypatch):
    _, stranger = staff_member(other_tenant, kind="employee")
    _, theirs = register(http, stranger)
    page = text(admin_console.get(SETUP))
    # no CSRF: nothing happens
    r = admin_console.post(SETUP, {"step": "passkey", "name": "X", "credential": json.dumps(
        SoftAuthenticator().create(options_on(page, "create")))}, csrf=False)
    assert r.status_code == 400 and http.get("/v1/staff/passkeys", token=tenant.admin_token)[1]["items"] == []
    # another business's person's passkey id: not theirs to rename or remove
    admin_console.get(SETUP)
    r = admin_console.post(SETUP, {"step": "remove", "passkey_id": theirs["passkey"]["id"]})
    assert r.status_code == 400 and "That passkey was removed already." in visible_text(text(r))
    r = admin_console.post(SETUP, {"step": "rename", "passkey_id": theirs["passkey"]["id"], "name": "Mine"})
    assert r.status_code == 400
    assert http.get("/v1/staff/passkeys", token=stranger)[1]["items"][0]["name"] == "Passkey 1"
    # a name that is not one line
    page = text(admin_console.get(SETUP))
    r = admin_console.post(SETUP, {"step": "passkey", "name": "Bad\nname", "credential": json.dumps(
        SoftAuthenticator().create(options_on(page, "create")))})
    assert r.status_code == 400 and "Bad" not in visible_text(text(r)).split("There is a problem")[1][:200]
    # no answer at all (no JavaScript)
    r = admin_console.post(SETUP, {"step": "passkey", "name": "Phone", "credential": ""})
    assert r.status_code == 400 and "A passkey needs JavaScript" in visible_text(text(r))
    # a sign-in older than 10 minutes: Sign in again instead of the form, and it leads back here
    from chalicelib.flows.staff import mfa
    real_now = mfa.now
    monkeypatch.setattr(mfa, "now", lambda: real_now() + 11 * 60)
    page = text(admin_console.get(SETUP))
    assert "Sign in again" in visible_text(page) and 'data-passkey="create"' not in page
    monkeypatch.setattr(mfa, "now", real_now)
    r = admin_console.post(SETUP, {"step": "reauth"})
    assert r.status_code == 303 and location(r) == "/console/sign-in?next=%2Fconsole%2Fmfa-setup"
    assert location(admin_console.get("/console/customers")).startswith(SIGN_IN)  # that session is over


def test_own_passkeys_need_a_console_sign_in(client, console, tenant):
    assert location(console.get(SETUP)).startswith(SIGN_IN)
    technician, _ = staff_member(tenant, kind="technician")
    assert console.sign_in(tenant.id, technician.username, PASSWORD).status_code == 400  # no console at all


def test_the_script_is_served_like_the_pages_script(client):
    r = client.http.get("/assets/passkeys.js")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/javascript")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "navigator.credentials.create" in text(r) and "navigator.credentials.get" in text(r)


def test_reset_second_factor_in_people_removes_passkeys(http, admin_console, tenant):
    person, token = staff_member(tenant, kind="employee")
    device, _ = register(http, token)
    here = f"/console/people/{person.person_id}"
    assert "Second factor Set up" in visible_text(text(admin_console.get(here)))
    r = admin_console.post(here, {"do": "reset_mfa"})
    assert r.status_code == 303
    assert "Second factor Not set up" in visible_text(text(admin_console.follow()))
    assert http.get("/v1/staff/passkeys", token=token)[1]["items"] == []
    other = ConsoleClient(admin_console.client)
    assert sign_in_with_passkey(other, device).status_code == 400  # the passkey no longer signs in
