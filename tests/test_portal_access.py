"""Customer portal access: register once from the invitation, sign-up without enumeration, sign-in, rotating
refresh tokens with reuse detection, sign-out, reset by emailed link, /me with grants, settings."""
import concurrent.futures
from urllib.parse import parse_qs, urlparse

import pytest
from chalice.test import Client
from conftest import ROOT, Http, drain, links_to, outbox_for

from chalicelib.core import lockout

PASSWORD = "Sunny-Porch-2026"


def token_of(link):
    return parse_qs(urlparse(link).query)["token"][0]


@pytest.fixture
def invited(app, http, tenant):
    t = tenant.admin_token
    email = f"home@{tenant.id}.example"
    c = http.post("/v1/customers", {"name": "Harper Household", "emails": [email]}, token=t)[1]
    http.post("/v1/portal/invitations", {"customer_id": c["customer_id"], "email": email, "access": "billing"},
              token=t)
    drain(app)
    [link] = links_to(email, "/register")
    return {"email": email, "token": token_of(link), "customer_id": c["customer_id"], "admin": t}


def register(http, invited, password=PASSWORD):
    return http.post("/v1/portal/register", {"token": invited["token"], "password": password,
                                             "password_confirm": password})


def test_register_signs_in_and_me_shows_the_grants(http, tenant, invited):
    status, body = http.post("/v1/portal/register", {"token": invited["token"], "password": "short"})
    assert status == 400 and body["error"]["code"] == "password_too_short"
    status, body = http.post("/v1/portal/register", {"token": invited["token"], "password": PASSWORD,
                                                     "password_confirm": PASSWORD + "x"})
    assert status == 400 and body["error"]["code"] == "passwords_differ"
    status, session = register(http, invited)  # the failed tries did not spend the link
    assert status == 200 and session["refresh_token"] and session["expires_in"] <= 900
    status, me = http.get("/v1/portal/me", token=session["access_token"])
    assert status == 200
    assert me["email"] == invited["email"] and me["status"] == "active" and me["tenant_name"] == "Test Plumbing"
    assert me["grants"] == [{"customer_id": invited["customer_id"], "customer_name": "Harper Household",
                             "access": "billing", "admin": False}]
    assert register(http, invited)[1]["error"]["code"] == "token_used"
    users = http.get("/v1/portal/users?status=active", token=invited["admin"])[1]["items"]
    assert [u["email"] for u in users] == [invited["email"]]


def test_twenty_concurrent_registrations_one_winner(app, tenant, invited):
    def attempt(_):
        with Client(app.app, stage_name="local", project_dir=str(ROOT)) as c:
            return Http(c).post("/v1/portal/register", {"token": invited["token"], "password": PASSWORD})
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(attempt, range(20)))
    statuses = sorted(s for s, _ in results)
    assert statuses.count(200) == 1 and statuses.count(410) == 19, statuses
    assert {b["error"]["code"] for s, b in results if s == 410} == {"token_used"}


def test_sign_in_same_answer_and_lockout(http, tenant, invited):
    register(http, invited)
    ok = http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": invited["email"].upper(),
                                          "password": PASSWORD})
    assert ok[0] == 200
    wrong = http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": invited["email"], "password": "Nope-12345"})
    unknown = http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": "ghost@x.example", "password": "Nope-12345"})
    assert wrong == unknown and wrong[0] == 401 and wrong[1]["error"]["code"] == "invalid_credentials"
    for _ in range(4):
        http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": invited["email"], "password": "Nope-12345"})
    status, body = http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": invited["email"],
                                                    "password": PASSWORD})
    assert status == 423 and body["error"]["retry_after"] > 0
    lockout.clear("portal", tenant.id, invited["email"])


def test_refresh_rotates_and_reuse_revokes_the_family(http, tenant, invited):
    session = register(http, invited)[1]
    status, second = http.post("/v1/portal/token/refresh", {"refresh_token": session["refresh_token"]})
    assert status == 200 and second["refresh_token"] != session["refresh_token"]
    assert http.get("/v1/portal/me", token=second["access_token"])[0] == 200
    status, body = http.post("/v1/portal/token/refresh", {"refresh_token": session["refresh_token"]})
    # the same answer as for a token never issued (no oracle for which tokens existed); the reuse is audited
    assert status == 401 and body["error"]["code"] == "invalid_refresh_token"
    # the whole family is dead: the newer refresh token and its access token too
    assert http.post("/v1/portal/token/refresh", {"refresh_token": second["refresh_token"]})[0] == 401
    assert http.get("/v1/portal/me", token=second["access_token"])[1]["error"]["code"] == "session_ended"
    assert http.post("/v1/portal/token/refresh", {"refresh_token": "x" * 43})[1]["error"]["code"] == \
        "invalid_refresh_token"
    from chalicelib.core.models import AuditEvent
    assert "portal.refresh_token_reused" in {e.action for e in AuditEvent.query(tenant.id)}


def test_sign_out_ends_the_session_at_once(http, tenant, invited):
    session = register(http, invited)[1]
    other = http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": invited["email"],
                                             "password": PASSWORD})[1]
    assert http.post("/v1/portal/sign-out", token=session["access_token"])[0] == 204
    assert http.get("/v1/portal/me", token=session["access_token"])[0] == 401
    assert http.post("/v1/portal/token/refresh", {"refresh_token": session["refresh_token"]})[0] == 401
    assert http.get("/v1/portal/me", token=other["access_token"])[0] == 200  # other devices stay signed in


def test_sign_out_answers_204_with_no_body(http, tenant, invited):
    """Found by `make fuzz`: the 204 carried `null`, which a keep-alive client read as the next response's start."""
    session = register(http, invited)[1]
    r = http.client.http.post("/v1/portal/sign-out", headers={"Authorization": f"Bearer {session['access_token']}"})
    assert r.status_code == 204 and r.body == b""


def test_reset_by_link_ends_every_session_and_tells_the_user(app, http, tenant, invited):
    session = register(http, invited)[1]
    same = http.post("/v1/portal/password-reset", {"tenant_id": tenant.id, "email": invited["email"]})
    unknown = http.post("/v1/portal/password-reset", {"tenant_id": tenant.id, "email": "ghost@x.example"})
    assert same == unknown and same[0] == 202
    drain(app)
    [link] = links_to(invited["email"], "/reset-password")
    assert link.startswith("http://portal.test/reset-password?token=")
    token = token_of(link)
    status, body = http.post("/v1/portal/password-reset/complete", {"token": token, "new_password": "Brand-New-2027",
                                                                    "new_password_confirm": "Brand-New-2028"})
    assert status == 400 and body["error"]["code"] == "passwords_differ"
    status, body = http.post("/v1/portal/password-reset/complete", {"token": token, "new_password": "Brand-New-2027",
                                                                    "new_password_confirm": "Brand-New-2027"})
    assert status == 200
    assert http.post("/v1/portal/password-reset/complete", {"token": token, "new_password": "Brand-New-2029",
                                                            "new_password_confirm": "Brand-New-2029"})[1]["error"]["code"] == "token_used"
    assert http.get("/v1/portal/me", token=session["access_token"])[0] == 401
    assert http.post("/v1/portal/token/refresh", {"refresh_token": session["refresh_token"]})[0] == 401
    assert http.post("/v1/portal/sign-in", {"tenant_id": tenant.id, "email": invited["email"],
                                            "password": "Brand-New-2027"})[0] == 200
    drain(app)
    assert any("was changed" in m["subject"] for m in outbox_for(invited["email"]))


def test_reset_link_expires_after_30_minutes(app, http, tenant, invited, monkeypatch):
    register(http, invited)
    http.post("/v1/portal/password-reset", {"tenant_id": tenant.id, "email": invited["email"]})
    drain(app)
    [link] = links_to(invited["email"], "/reset-password")
    import chalicelib.core.single_use as su
    later = su.now() + 31 * 60
    monkeypatch.setattr(su, "now", lambda: later)
    status, body = http.post("/v1/portal/password-reset/complete", {"token": token_of(link), "new_password":
                                                                    "Brand-New-2027", "new_password_confirm": "Brand-New-2027"})
    assert status == 410 and body["error"]["code"] == "token_expired"


def test_a_disabled_users_reset_link_is_refused_without_being_spent(app, http, tenant, invited):
    register(http, invited)
    http.post("/v1/portal/password-reset", {"tenant_id": tenant.id, "email": invited["email"]})
    drain(app)
    [link] = links_to(invited["email"], "/reset-password")
    user_id = http.get("/v1/portal/users", token=invited["admin"])[1]["items"][0]["user_id"]
    reset = {"token": token_of(link), "new_password": "Brand-New-2027", "new_password_confirm": "Brand-New-2027"}
    http.patch(f"/v1/portal/users/{user_id}", {"status": "disabled"}, token=invited["admin"])
    status, body = http.post("/v1/portal/password-reset/complete", reset)
    assert status == 403 and body["error"]["code"] == "account_disabled"
    http.patch(f"/v1/portal/users/{user_id}", {"status": "active"}, token=invited["admin"])
    assert http.post("/v1/portal/password-reset/complete", reset)[0] == 200  # the refusal did not use the link up


def test_sign_up_only_for_emails_on_a_record_and_only_when_allowed(app, http, tenant):
    t = tenant.admin_token
    email = f"selfie@{tenant.id}.example"
    http.post("/v1/customers", {"name": "Selfie", "emails": [email]}, token=t)
    off = http.post("/v1/portal/sign-up", {"tenant_id": tenant.id, "email": email})
    assert off[0] == 202
    drain(app)
    assert outbox_for(email) == []  # the tenant does not allow self sign-up yet
    status, settings = http.call("PUT", "/v1/portal/settings", {"self_signup": True, "third_party_signin": []}, token=t)
    assert status == 200 and settings["self_signup"] is True
    assert http.get("/v1/portal/settings", token=t)[1] == settings
    on = http.post("/v1/portal/sign-up", {"tenant_id": tenant.id, "email": email})
    stranger = http.post("/v1/portal/sign-up", {"tenant_id": tenant.id, "email": "stranger@x.example"})
    assert on == stranger == off  # no account enumeration
    drain(app)
    assert len(links_to(email, "/register")) == 1
    assert outbox_for("stranger@x.example") == []
    for _ in range(3):
        http.post("/v1/portal/sign-up", {"tenant_id": tenant.id, "email": email})
    status, body = http.post("/v1/portal/sign-up", {"tenant_id": tenant.id, "email": email})
    assert status == 429 and body["error"]["code"] == "too_many_requests"


def test_sign_up_with_an_account_is_told_so_by_email(app, http, tenant, invited):
    """The answer does not say the account exists; the mailbox's owner is told, with the way to sign in."""
    register(http, invited)
    http.call("PUT", "/v1/portal/settings", {"self_signup": True, "third_party_signin": []}, token=invited["admin"])
    known = http.post("/v1/portal/sign-up", {"tenant_id": tenant.id, "email": invited["email"]})
    unknown = http.post("/v1/portal/sign-up", {"tenant_id": tenant.id, "email": "nobody@x.example"})
    assert known == unknown and known[0] == 202
    drain(app)
    [notice] = [m for m in outbox_for(invited["email"]) if "already have" in m["subject"]]
    assert notice["links"] == [f"http://portal.test/sign-in?tenant_id={tenant.id}",
                               f"http://portal.test/reset-password?tenant_id={tenant.id}"]
    assert "token" not in " ".join(notice["links"]) and outbox_for("nobody@x.example") == []
    assert http.get("/v1/portal/users?status=active", token=invited["admin"])[1]["items"][0]["status"] == "active"


def test_portal_tokens_open_nothing_of_staff_or_other_tenants(http, tenant, other_tenant, invited):
    session = register(http, invited)[1]
    assert http.get("/v1/customers", token=session["access_token"])[0] == 403
    assert http.get("/v1/portal/users", token=session["access_token"])[0] == 403
    assert http.get("/v1/portal/me", token=other_tenant.admin_token)[0] == 403


def test_admin_reads_a_portal_users_audit_trail(http, tenant, invited):
    session = register(http, invited)[1]
    http.get("/v1/portal/me", token=session["access_token"])
    users = http.get("/v1/portal/users", token=invited["admin"])[1]["items"]
    status, trail = http.get(f"/v1/portal/users/{users[0]['user_id']}/audit", token=invited["admin"])
    assert status == 200
    actions = [e["action"] for e in trail["items"]]
    assert "portal.registered" in actions and "portal.invited" in actions


def test_access_link_works_only_until_the_customer_has_a_portal_user(app, http, tenant):
    t = tenant.admin_token
    c = http.post("/v1/customers", {"name": "Link Only", "emails": [f"link@{tenant.id}.example"]}, token=t)[1]
    status, first = http.post(f"/v1/customers/{c['customer_id']}/access-link", token=t)
    assert status == 201 and "/portal/access?token=" in first["link"]
    status, link = http.post(f"/v1/customers/{c['customer_id']}/access-link", token=t)  # rotate
    old_token, token = first["link"].split("token=", 1)[1], link["link"].split("token=", 1)[1]
    assert http.post("/v1/portal/access", {"token": old_token})[1]["error"]["code"] == "access_link_rotated"
    status, session = http.post("/v1/portal/access", {"token": token})
    assert status == 200 and "refresh_token" not in session
    status, me = http.get("/v1/portal/me", token=session["access_token"])
    assert status == 200 and me["signed_in_with"] == "access_link"
    assert me["grants"][0]["customer_id"] == c["customer_id"]
    http.post("/v1/portal/invitations", {"customer_id": c["customer_id"], "email": f"link@{tenant.id}.example"}, token=t)
    status, body = http.post("/v1/portal/access", {"token": token})
    assert status == 403 and body["error"]["code"] == "password_required"
    assert http.get("/v1/portal/me", token=session["access_token"])[0] == 401  # the open session ends too
    assert http.post("/v1/portal/access", {"token": "x" * 43})[0] == 400


def test_a_password_is_kept_exactly_as_typed_spaces_included(http, tenant, invited):
    spaced = "  Two Words and 2027  "
    assert register(http, invited, password=spaced)[0] == 200
    sign_in = {"tenant_id": tenant.id, "email": f"  {invited['email']} ", "password": spaced}
    assert http.post("/v1/portal/sign-in", sign_in)[0] == 200  # the email is trimmed, the password is not
    assert http.post("/v1/portal/sign-in", {**sign_in, "password": spaced.strip()})[0] == 401


def test_replacing_a_link_someone_else_just_replaced_is_refused_and_theirs_keeps_working(http, tenant, monkeypatch):
    """Two admins press Replace at once: each was about to be shown a link "once", but only one can work. The one
    who loses the race is told so (409 access_link_changed) and the winner's link works."""
    from chalicelib.flows import directory
    from chalicelib.flows.portal import access_links
    t = tenant.admin_token
    c = http.post("/v1/customers", {"name": "Two Admins", "emails": []}, token=t)[1]
    http.post(f"/v1/customers/{c['customer_id']}/access-link", token=t)
    stale = directory.get_customer(tenant.id, c["customer_id"])  # what the slower admin read
    status, winner = http.post(f"/v1/customers/{c['customer_id']}/access-link", token=t)
    assert status == 201
    monkeypatch.setattr(access_links.directory, "get_customer", lambda *_: stale)
    status, body = http.post(f"/v1/customers/{c['customer_id']}/access-link", token=t)
    assert status == 409 and body["error"]["code"] == "access_link_changed", body
    monkeypatch.undo()
    status, session = http.post("/v1/portal/access", {"token": winner["link"].split("token=", 1)[1]})
    assert status == 200, session
