"""Partner portals (DESIGN rules 18-21): permissions visible enabled or not, enabling needs the current agreement
accepted, a disable stops the next partner call, permissions and tenants bound every partner call."""
import json
import logging
import sys
import threading
import uuid

import pytest

from chalicelib.core.errors import Error
from chalicelib.core.models import AuditEvent, PartnerEnablement
from chalicelib.flows import partners
from ops import partner_portals

AGREEMENT = "Partner agreement, first edition.\n"


def make_portal(perms=("view_customer", "view_location"), version="v1"):
    """A fresh portal per test (the portal tables are shared by every tenant of the test process)."""
    pid = "p-" + uuid.uuid4().hex[:10]
    portal, secret = partner_portals.create_portal(f"Portal {pid}", list(perms), version, AGREEMENT, portal_id=pid)
    return portal, secret


def enable(http, tenant, portal_id, version="v1"):
    body = {"accept": True, "agreement_version": version}
    return http.post(f"/v1/partner-portals/{portal_id}/enable", body, token=tenant.admin_token)


def partner_token(http, portal, secret, tenant_id):
    return http.post("/v1/partner/token", {"client_id": portal.client_id, "client_secret": secret,
                                           "tenant_id": tenant_id})


def enabled_partner(http, tenant, perms=("view_customer", "view_location")):
    portal, secret = make_portal(perms)
    assert enable(http, tenant, portal.portal_id)[0] == 200
    status, body = partner_token(http, portal, secret, tenant.id)
    assert status == 200, body
    return portal, secret, body["access_token"]


def test_permissions_are_visible_whether_enabled_or_not(http, tenant):
    portal, _ = make_portal(["view_alerts", "view_customer_statement", "access_settings"])
    admin = tenant.admin_token
    status, listing = http.get("/v1/partner-portals", token=admin)
    assert status == 200
    mine = next(p for p in listing["items"] if p["portal_id"] == portal.portal_id)
    assert mine["enabled"] is False and "enablement" not in mine  # None fields are left out
    assert mine["permissions"] == [{"key": "view_alerts", "label": "View Alerts"},
                                   {"key": "view_customer_statement", "label": "View Customer Statement"},
                                   {"key": "access_settings", "label": "Access Settings"}]
    status, one = http.get(f"/v1/partner-portals/{portal.portal_id}", token=admin)
    assert status == 200 and one == mine
    status, agreement = http.get(f"/v1/partner-portals/{portal.portal_id}/agreement", token=admin)
    assert status == 200 and agreement == {"portal_id": portal.portal_id, "version": "v1", "text": AGREEMENT}
    for bad in ("nope", "x" * 3000, "Caf%C3%A9"):
        status, body = http.get(f"/v1/partner-portals/{bad}", token=admin)
        assert status == 404 and body["error"]["code"] == "partner_portal_not_found"


@pytest.mark.parametrize("body", [{}, {"accept": False, "agreement_version": "v1"}, {"accept": True},
                                  {"accept": True, "agreement_version": "v0"}])
def test_enable_needs_the_current_agreement_accepted(http, tenant, body):
    portal, _ = make_portal()
    status, answer = http.post(f"/v1/partner-portals/{portal.portal_id}/enable", body, token=tenant.admin_token)
    assert status == 400 and answer["error"]["code"] == "agreement_not_accepted"
    assert answer["error"]["agreement_version"] == "v1"
    assert http.get(f"/v1/partner-portals/{portal.portal_id}", token=tenant.admin_token)[1]["enabled"] is False


@pytest.mark.parametrize("body", [{"accept": "yes", "agreement_version": "v1"}, {"accept": True, "x": 1},
                                  {"accept": True, "agreement_version": 1}])
def test_bad_enable_bodies_are_400_envelopes(http, tenant, body):
    portal, _ = make_portal()
    status, answer = http.post(f"/v1/partner-portals/{portal.portal_id}/enable", body, token=tenant.admin_token)
    assert status == 400 and set(answer) == {"error"} and answer["error"]["code"] == "invalid_request"


def test_acceptance_is_stored(http, tenant):
    portal, _ = make_portal()
    admin = tenant.admin_token
    me = http.get("/v1/staff/me", token=admin)[1]
    status, body = http.call("POST", f"/v1/partner-portals/{portal.portal_id}/enable",
                             {"accept": True, "agreement_version": "v1"}, token=admin,
                             headers={"User-Agent": "Browser/1.0"})
    assert status == 200 and body["enabled"] is True
    e = body["enablement"]
    assert e["accepted_by"] == me["person_id"] and e["accepted_by_email"] == tenant.admin_username
    assert e["agreement_version"] == "v1" and e["user_agent"] == "Browser/1.0" and e["ip"]
    assert e["accepted_at"].endswith("Z") and "disabled_at" not in e
    stored = PartnerEnablement.get(tenant.id, portal.portal_id)
    assert stored.agreement_sha256 == partners._digest(AGREEMENT)
    # the disable keeps the acceptance on record and says who disabled
    status, body = http.post(f"/v1/partner-portals/{portal.portal_id}/disable", token=admin)
    assert status == 200 and body["enabled"] is False
    assert body["enablement"]["disabled_by"] == me["person_id"] and body["enablement"]["accepted_by"]
    actions = [i["action"] for i in http.get(f"/v1/partner-portals/{portal.portal_id}/audit", token=admin)[1]["items"]]
    assert actions == ["partner.disabled", "partner.enabled"]


def test_a_new_agreement_version_needs_acceptance_again(http, tenant):
    portal, _ = make_portal()
    admin = tenant.admin_token
    assert enable(http, tenant, portal.portal_id)[0] == 200
    partner_portals.update_portal(portal.portal_id, agreement_version="v2", agreement_text="Second edition.\n")
    # still enabled on the acceptance of v1, and the tenant can see a newer version waits
    got = http.get(f"/v1/partner-portals/{portal.portal_id}", token=admin)[1]
    assert got["enabled"] and got["agreement_version"] == "v2" and got["enablement"]["agreement_version"] == "v1"
    assert http.post(f"/v1/partner-portals/{portal.portal_id}/disable", token=admin)[0] == 200
    status, body = enable(http, tenant, portal.portal_id, "v1")
    assert status == 400 and body["error"]["code"] == "agreement_not_accepted"
    status, body = enable(http, tenant, portal.portal_id, "v2")
    assert status == 200 and body["enablement"]["agreement_version"] == "v2"


def test_an_agreement_published_during_the_enable_is_not_accepted_by_it(http, tenant, monkeypatch):
    portal, _ = make_portal()
    real_get_portal = partners.get_portal
    calls = []

    def get_portal_then_publish(portal_id):
        found = real_get_portal(portal_id)
        if not calls:  # the operator publishes v2 right after the enable read v1
            calls.append(1)
            partner_portals.update_portal(portal_id, agreement_version="v2", agreement_text="Second edition.\n")
        return found
    monkeypatch.setattr(partners, "get_portal", get_portal_then_publish)
    status, body = enable(http, tenant, portal.portal_id, "v1")
    assert status == 400 and body["error"]["code"] == "agreement_not_accepted"
    assert PartnerEnablement.count(tenant.id, PartnerEnablement.portal_id == portal.portal_id) == 0


def test_disable_cuts_off_the_very_next_partner_call(http, tenant):
    portal, secret, token = enabled_partner(http, tenant)
    assert http.get("/v1/partner/customers", token=token)[0] == 200
    assert http.post(f"/v1/partner-portals/{portal.portal_id}/disable", token=tenant.admin_token)[0] == 200
    status, body = http.get("/v1/partner/customers", token=token)
    assert status == 403 and body["error"]["code"] == "partner_access_disabled"
    status, body = partner_token(http, portal, secret, tenant.id)
    assert status == 403 and body["error"]["code"] == "partner_access_disabled"
    # disabling again is a no-op, and re-enabling restores access with a fresh token
    assert http.post(f"/v1/partner-portals/{portal.portal_id}/disable", token=tenant.admin_token)[0] == 200
    assert enable(http, tenant, portal.portal_id)[0] == 200
    assert http.get("/v1/partner/customers", token=partner_token(http, portal, secret, tenant.id)[1]
                    ["access_token"])[0] == 200


def test_calls_outside_the_permissions_are_refused(http, tenant):
    portal, _, token = enabled_partner(http, tenant, perms=["view_customer"])
    status, body = http.get("/v1/partner/locations", token=token)
    assert status == 403 and body["error"]["code"] == "permission_not_granted"
    assert body["error"]["permission"] == "view_location"
    status, scope = http.get("/v1/partner/permissions", token=token)
    assert status == 200 and scope["tenant_id"] == tenant.id
    assert scope["permissions"] == [{"key": "view_customer", "label": "View Customer"}]
    # a permission withdrawn by the operator stops working at once, whatever the token says
    partner_portals.update_portal(portal.portal_id, permissions=["view_location"])
    assert http.get("/v1/partner/customers", token=token)[1]["error"]["code"] == "permission_not_granted"
    assert http.get("/v1/partner/locations", token=token)[0] == 200


def test_a_partner_of_tenant_a_never_sees_tenant_b(http, tenant, other_tenant):
    a_admin, b_admin = tenant.admin_token, other_tenant.admin_token
    a_customer = http.post("/v1/customers", {"name": "A Household"}, token=a_admin)[1]
    b_customer = http.post("/v1/customers", {"name": "B Household"}, token=b_admin)[1]
    b_location = http.post(f"/v1/customers/{b_customer['customer_id']}/locations", {"address": "1 B Road"},
                           token=b_admin)[1]
    http.post(f"/v1/customers/{a_customer['customer_id']}/locations", {"address": "1 A Road"}, token=a_admin)
    portal, secret, token = enabled_partner(http, tenant)

    names = [c["name"] for c in http.get("/v1/partner/customers", token=token)[1]["items"]]
    assert names == ["A Household"]
    assert http.get(f"/v1/partner/customers/{a_customer['customer_id']}", token=token)[0] == 200
    status, body = http.get(f"/v1/partner/customers/{b_customer['customer_id']}", token=token)
    assert status == 404 and body["error"]["code"] == "customer_not_found"
    assert [loc["address"] for loc in http.get("/v1/partner/locations", token=token)[1]["items"]] == ["1 A Road"]
    assert http.get(f"/v1/partner/locations?customer_id={b_customer['customer_id']}", token=token)[0] == 404
    assert b_location["location_id"]
    # B has not enabled the portal: no token for B
    status, body = partner_token(http, portal, secret, other_tenant.id)
    assert status == 403 and body["error"]["code"] == "partner_access_disabled"
    # and a tenant that does not exist answers the same
    assert partner_token(http, portal, secret, "no-such-tenant")[1] == body
    # once B enables it too, A's token still only reaches A
    assert enable(http, other_tenant, portal.portal_id)[0] == 200
    assert http.get(f"/v1/partner/customers/{b_customer['customer_id']}", token=token)[0] == 404
    # B's disable does not touch A, and A's disable does not touch B
    b_token = partner_token(http, portal, secret, other_tenant.id)[1]["access_token"]
    assert http.post(f"/v1/partner-portals/{portal.portal_id}/disable", token=a_admin)[0] == 200
    assert http.get("/v1/partner/customers", token=token)[0] == 403
    assert [c["name"] for c in http.get("/v1/partner/customers", token=b_token)[1]["items"]] == ["B Household"]


def test_token_errors_say_nothing_about_which_part_was_wrong(http, tenant, monkeypatch):
    portal, secret = make_portal()
    assert enable(http, tenant, portal.portal_id)[0] == 200
    wrong_secret = partner_token(http, portal, "not-the-secret-at-all", tenant.id)
    unknown = http.post("/v1/partner/token", {"client_id": "nobody", "client_secret": secret, "tenant_id": tenant.id})
    assert wrong_secret == unknown
    assert unknown[0] == 401 and unknown[1]["error"]["code"] == "invalid_client"
    status, body = http.post("/v1/partner/token", {"client_id": portal.client_id})
    assert status == 400 and body["error"]["code"] == "invalid_request"
    status, body = http.post("/v1/partner/token", raw="{nope")
    assert status == 400 and body["error"]["code"] == "malformed_json"
    # a partner token is no staff token, and a staff token is no partner token
    token = partner_token(http, portal, secret, tenant.id)[1]["access_token"]
    assert http.get("/v1/partner-portals", token=token)[1]["error"]["code"] == "forbidden"
    assert http.get("/v1/partner/customers", token=tenant.admin_token)[1]["error"]["code"] == "forbidden"


def test_token_requests_are_rate_limited_per_client(http, tenant, monkeypatch):
    portal, secret = make_portal()
    monkeypatch.setattr(partners, "TOKEN_LIMIT_PER_CLIENT", 3)
    answers = [partner_token(http, portal, "wrong-secret-123456", tenant.id)[0] for _ in range(4)]
    assert answers == [401, 401, 401, 429]
    status, body = partner_token(http, portal, secret, tenant.id)  # the right secret waits too
    assert status == 429 and body["error"]["code"] == "too_many_requests" and body["error"]["retry_after"] > 0


def test_rotating_the_secret_ends_tokens_made_with_the_old_one(http, tenant, monkeypatch):
    portal, secret, token = enabled_partner(http, tenant)
    import time
    monkeypatch.setattr(partner_portals, "now", lambda: int(time.time()) + 1)  # the rotation happens after the token
    new = partner_portals.rotate_secret(portal.portal_id)
    assert http.get("/v1/partner/customers", token=token)[1]["error"]["code"] == "partner_access_disabled"
    assert partner_token(http, portal, secret, tenant.id)[0] == 401
    assert partner_token(http, portal, new, tenant.id)[0] == 200


def test_users_active_by_default_inactive_on_request(http, tenant):
    portal, _ = make_portal()
    partner_portals.add_user(portal.portal_id, "Ada Coach", "Ada@Coach.example")
    partner_portals.add_user(portal.portal_id, "Old Coach", "old@coach.example", status="inactive")
    admin = tenant.admin_token
    status, body = http.get(f"/v1/partner-portals/{portal.portal_id}/users", token=admin)
    assert status == 200 and [(u["email"], u["status"]) for u in body["items"]] == [("ada@coach.example", "active")]
    status, body = http.get(f"/v1/partner-portals/{portal.portal_id}/users?include_inactive=true", token=admin)
    assert sorted(u["email"] for u in body["items"]) == ["ada@coach.example", "old@coach.example"]
    status, body = http.get(f"/v1/partner-portals/{portal.portal_id}/users?include_inactive=maybe", token=admin)
    assert status == 400 and body["error"]["code"] == "invalid_request"
    # pages: one user a page, the cursor leads to the next
    first = http.get(f"/v1/partner-portals/{portal.portal_id}/users?include_inactive=true&limit=1", token=admin)[1]
    second = http.get(f"/v1/partner-portals/{portal.portal_id}/users?include_inactive=true&limit=1"
                      f"&cursor={first['next_cursor']}", token=admin)[1]
    assert len(first["items"]) == len(second["items"]) == 1 and first["items"] != second["items"]
    with pytest.raises(partner_portals.OperatorError, match="already"):
        partner_portals.add_user(portal.portal_id, "Ada Again", "ada@coach.example")


def test_every_partner_call_is_audited(http, tenant, other_tenant):
    portal, _, token = enabled_partner(http, tenant, perms=["view_customer"])
    http.get("/v1/partner/customers", token=token)
    http.get("/v1/partner/customers/nope", token=token)
    http.get("/v1/partner/locations", token=token)
    status, page = http.get(f"/v1/partner-portals/{portal.portal_id}/audit", token=tenant.admin_token)
    assert status == 200
    items = page["items"]  # newest first
    assert [i["action"] for i in items] == ["partner.call"] * 3 + ["partner.token_issued", "partner.enabled"]
    assert [(i["details"]["route"], i["details"]["outcome"]) for i in items[:3]] == [
        ("GET /v1/partner/locations", "permission_not_granted"),
        ("GET /v1/partner/customers/{customer_id}", "allowed"),
        ("GET /v1/partner/customers", "allowed")]
    assert items[1]["details"]["params"] == {"customer_id": "nope"}
    assert all(i["actor"] == f"partner:{portal.portal_id}" for i in items[:4])
    # the other tenant sees none of it
    assert http.get(f"/v1/partner-portals/{portal.portal_id}/audit", token=other_tenant.admin_token)[1]["items"] == []


def test_secrets_never_reach_logs_or_the_audit_trail(http, tenant, capsys, caplog):
    caplog.set_level(logging.INFO)
    portal, secret = make_portal()
    assert enable(http, tenant, portal.portal_id)[0] == 200
    status, body = partner_token(http, portal, secret, tenant.id)
    assert status == 200
    token = body["access_token"]
    partner_token(http, portal, secret + "x", tenant.id)
    http.get("/v1/partner/customers", token=token)
    out = capsys.readouterr()
    lines = out.out + out.err + "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str)
                                          for r in caplog.records)
    trail = json.dumps([e.attribute_values for e in AuditEvent.query(tenant.id)], default=str)
    assert "request served" in lines and "partner.token_issued" in trail
    for value in (secret, secret + "x", token):
        assert value not in lines and value not in trail


def test_concurrent_enables_and_disables_lose_no_update(http, tenant):
    """20 admins toggling at once, 3 times each: every write that succeeded is one step of the item's history (the audit
    revisions are exactly 1..version), and the item is the state of the last step."""
    portal, _ = make_portal()
    person = http.get("/v1/staff/me", token=tenant.admin_token)[1]["person_id"]
    assert enable(http, tenant, portal.portal_id)[0] == 200  # so that disables write too
    results, barrier = [], threading.Barrier(20)
    accept = partners.EnableBody(accept=True, agreement_version="v1")

    def toggle(i):
        barrier.wait()
        for _ in range(3):
            try:
                if i % 2:
                    partners.disable(tenant.id, portal.portal_id, person, "10.0.0.1")
                else:
                    partners.enable(tenant.id, portal.portal_id, accept, person, "10.0.0.1", f"agent-{i}")
                results.append("ok")
            except Error as err:
                results.append(err.code)

    # The moto server runs in this process: a long switch interval keeps each of its requests from being
    # interleaved with another's (DynamoDB applies a conditional write atomically; moto relies on the GIL).
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    try:
        threads = [threading.Thread(target=toggle, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        sys.setswitchinterval(interval)
    assert len(results) == 60 and set(results) <= {"ok", "edit_conflict"} and "ok" in results

    final = PartnerEnablement.get(tenant.id, portal.portal_id, consistent_read=True)
    events = [e for e in AuditEvent.query(tenant.id, consistent_read=True)
              if e.target == portal.portal_id and e.action in ("partner.enabled", "partner.disabled")]
    revisions = sorted(int(e.details["revision"]) for e in events)
    assert revisions == list(range(1, final.version + 1))  # no two writers built on the same version
    last = max(events, key=lambda e: int(e.details["revision"]))
    assert final.enabled == (last.action == "partner.enabled")
    if final.enabled:
        assert final.disabled_by is None and final.accepted_by == person and final.user_agent.startswith("agent-")
    else:
        assert final.disabled_by == person and final.disabled_at


@pytest.fixture
def seed_portals(monkeypatch):
    """The demo portals under ids of this test, so the test can see them created."""
    from ops import seed
    suffix = uuid.uuid4().hex[:8]
    client = f"demo-partner-{suffix}"
    monkeypatch.setattr(seed, "DEMO_PARTNER_CLIENT", client)
    monkeypatch.setattr(seed, "DEMO_PORTALS", [(f"coach-{suffix}", "Blue Collar Coach", client, ["view_customer"]),
                                               (f"calls-{suffix}", "Call Centre", f"cc-{suffix}", ["view_job"])])
    return seed


def test_seed_generates_a_secret_that_works_and_is_idempotent(http, tenant, seed_portals):
    first = seed_portals.seed_partner_portals(None)
    assert first["created"] and len(first["secret"]) >= 40 and first["client_id"].startswith("demo-partner-")
    again = seed_portals.seed_partner_portals(None)
    assert again["created"] is False and again["secret"] is None
    assert enable(http, tenant, first["portal_id"], "2024-01")[0] == 200
    status, _ = http.post("/v1/partner/token", {"client_id": first["client_id"], "client_secret": first["secret"],
                                                "tenant_id": tenant.id})
    assert status == 200
    listing = http.get("/v1/partner-portals", token=tenant.admin_token)[1]["items"]
    perms = {p["portal_id"]: [x["key"] for x in p["permissions"]] for p in listing}
    assert perms[first["portal_id"]] != perms[seed_portals.DEMO_PORTALS[1][0]]


def test_seed_takes_the_secret_from_the_environment_and_never_returns_it(http, tenant, seed_portals):
    given = "Given-Partner-Secret-0123456789"
    seeded = seed_portals.seed_partner_portals(given)
    assert seeded["created"] and seeded["secret"] is None
    assert enable(http, tenant, seeded["portal_id"], "2024-01")[0] == 200
    assert http.post("/v1/partner/token", {"client_id": seeded["client_id"], "client_secret": given,
                                           "tenant_id": tenant.id})[0] == 200
    from ops.local import stack
    text = stack.banner("http://127.0.0.1:8000", {"admin_username": "a", "tenant_id": "demo", "partner": seeded},
                        "Pw-123456789", False, 1.0)
    assert given not in text and "from $PORTAL_DEMO_PARTNER_SECRET" in text
    generated = dict(seeded, secret="Generated-Secret-42")
    text = stack.banner("http://127.0.0.1:8000", {"admin_username": "a", "tenant_id": "demo", "partner": generated},
                        "Pw-123456789", False, 1.0)
    assert "Generated-Secret-42" in text and seeded["client_id"] in text


def test_seed_refuses_any_stage_but_local(monkeypatch):
    from ops import seed
    monkeypatch.setenv("PORTAL_STAGE", "prod")
    with pytest.raises(SystemExit, match="refusing"):
        seed.seed_partner_portals(None)
