"""Customer portal invitations (DESIGN rules 1-4): individual, from contacts, resend, corrected emails, bounces."""
import json
from urllib.parse import parse_qs, urlparse

import pytest
from conftest import LambdaContext, drain, links_to, outbox_for

from chalicelib.core import single_use
from chalicelib.core.errors import Error, Gone
from chalicelib.core.models import PortalUser, Token
from chalicelib.core.security.tokens import token_hash


def token_of(link):
    return parse_qs(urlparse(link).query)["token"][0]


@pytest.fixture
def household(http, tenant):
    t = tenant.admin_token
    c = http.post("/v1/customers", {"name": "Harper", "emails": [f"owner@{tenant.id}.example"]}, token=t)[1]
    loc = http.post(f"/v1/customers/{c['customer_id']}/locations",
                    {"address": "12 Elm", "emails": [f"renter@{tenant.id}.example"]}, token=t)[1]
    return {"token": t, "customer_id": c["customer_id"], "location_id": loc["location_id"],
            "owner": f"owner@{tenant.id}.example", "renter": f"renter@{tenant.id}.example"}


def test_invite_sends_a_register_link(app, http, tenant, household):
    h = household
    status, user = http.post("/v1/portal/invitations", {"customer_id": h["customer_id"], "email": h["owner"],
                                                        "access": "billing"}, token=h["token"])
    assert status == 202, user
    assert user["status"] == "invited" and user["grants"] == [{"customer_id": h["customer_id"], "access": "billing",
                                                               "admin": False}]
    drain(app)
    [mail] = outbox_for(h["owner"])
    assert "Test Plumbing" in mail["subject"] and "Register" in mail["html"] and "<img" not in mail["html"]
    [link] = mail["links"]
    assert link.startswith("http://portal.test/register?token=")
    record = single_use.look_up(token_of(link), "portal_invitation")
    assert record.subject_id == user["user_id"]
    # only the hash is stored
    assert Token.get(token_hash(token_of(link))).token_hash != token_of(link)
    status, listed = http.get("/v1/portal/users?status=invited", token=h["token"])
    assert [u["email"] for u in listed["items"]] == [h["owner"]] and listed["items"][0]["last_sent_at"]


def test_only_emails_on_the_record_and_location_emails_get_at_most_non_billing(http, household):
    h = household
    status, body = http.post("/v1/portal/invitations", {"customer_id": h["customer_id"], "email": "stranger@x.example",
                                                        "access": "billing"}, token=h["token"])
    assert status == 400 and body["error"]["code"] == "email_not_on_record"
    status, body = http.post("/v1/portal/invitations", {"location_id": h["location_id"], "email": h["renter"],
                                                        "access": "billing"}, token=h["token"])
    assert status == 400 and body["error"]["code"] == "access_not_allowed"
    status, body = http.post("/v1/portal/invitations", {"location_id": h["location_id"], "email": h["renter"],
                                                        "access": "non_billing"}, token=h["token"])
    assert status == 202 and body["grants"][0]["access"] == "non_billing"
    status, body = http.post("/v1/portal/invitations", {"email": h["owner"], "access": "billing"}, token=h["token"])
    assert status == 400 and body["error"]["code"] == "invalid_request"


def test_resend_replaces_the_link_and_an_active_account_is_409(app, http, tenant, household):
    h = household
    body = {"customer_id": h["customer_id"], "email": h["owner"], "access": "billing"}
    http.post("/v1/portal/invitations", body, token=h["token"])
    drain(app)
    user_id = http.post("/v1/portal/invitations", body, token=h["token"])[1]["user_id"]
    drain(app)
    first, second = links_to(h["owner"], "/register")
    with pytest.raises(Error) as err:
        single_use.look_up(token_of(first), "portal_invitation")
    assert isinstance(err.value, Gone) and err.value.code == "invitation_replaced"
    assert single_use.look_up(token_of(second), "portal_invitation")
    # resend by user id works the same
    assert http.post(f"/v1/portal/users/{user_id}/resend-invitation", token=h["token"])[0] == 202
    drain(app)
    with pytest.raises(Error):
        single_use.look_up(token_of(second), "portal_invitation")
    PortalUser.get(tenant.id, user_id).update(actions=[PortalUser.status.set("active")])
    status, err_body = http.post("/v1/portal/invitations", body, token=h["token"])
    assert status == 409 and err_body["error"]["code"] == "already_active"


def test_an_expired_invitation_says_so(app, http, household, monkeypatch):
    h = household
    http.post("/v1/portal/invitations", {"customer_id": h["customer_id"], "email": h["owner"]}, token=h["token"])
    drain(app)
    [link] = links_to(h["owner"], "/register")
    import chalicelib.core.single_use as su
    later = su.now() + 7 * 24 * 3600 + 1
    monkeypatch.setattr(su, "now", lambda: later)
    with pytest.raises(Error) as err:
        su.look_up(token_of(link), "portal_invitation", expired_code="invitation_expired")
    assert err.value.code == "invitation_expired"


def test_contact_with_send_portal_invite(app, http, tenant, household):
    h = household
    cid = h["customer_id"]
    status, body = http.post(f"/v1/customers/{cid}/contacts", {"name": "No Mail", "send_portal_invite": True},
                             token=h["token"])
    assert status == 400 and body["error"]["code"] == "email_required"
    assert http.get(f"/v1/customers/{cid}/contacts", token=h["token"])[1]["items"] == []  # nothing half-way
    status, body = http.post(f"/v1/customers/{cid}/contacts", {"name": "Bookkeeper", "email": "Books@X.example",
                                                                "send_portal_invite": True}, token=h["token"])
    assert status == 201 and body["portal_invite"] == "invited"
    assert body["portal_user"]["grants"] == [{"customer_id": cid, "access": "non_billing",
                                              "contact_id": body["contact_id"], "admin": False}]
    drain(app)
    assert links_to("books@x.example", "/register?token=")


def test_corrected_email_moves_the_invitation(app, http, tenant, household):
    h = household
    http.post("/v1/portal/invitations", {"customer_id": h["customer_id"], "email": h["owner"]}, token=h["token"])
    drain(app)
    [old_link] = links_to(h["owner"], "/register")
    fixed = f"owner.fixed@{tenant.id}.example"
    assert http.patch(f"/v1/customers/{h['customer_id']}", {"emails": [fixed]}, token=h["token"])[0] == 200
    with pytest.raises(Error) as err:
        single_use.look_up(token_of(old_link), "portal_invitation")
    assert err.value.code == "invitation_revoked"
    status, user = http.post("/v1/portal/invitations", {"customer_id": h["customer_id"], "email": fixed},
                             token=h["token"])
    assert status == 202
    drain(app)
    assert links_to(fixed, "/register")
    assert len(links_to(h["owner"], "/register")) == 1  # nothing more went to the wrong address


def test_list_filters_patch_and_disable(app, http, tenant, household):
    h = household
    t = h["token"]
    http.post("/v1/portal/invitations", {"customer_id": h["customer_id"], "email": h["owner"]}, token=t)
    other = http.post("/v1/customers", {"name": "Other", "emails": [f"o@{tenant.id}.example"]}, token=t)[1]
    http.post("/v1/portal/invitations", {"customer_id": other["customer_id"], "email": f"o@{tenant.id}.example"},
              token=t)
    items = http.get(f"/v1/portal/users?customer_id={h['customer_id']}", token=t)[1]["items"]
    assert [u["email"] for u in items] == [h["owner"]]
    page = http.get("/v1/portal/users?limit=1", token=t)[1]
    assert len(page["items"]) == 1 and page["next_cursor"]
    user_id = items[0]["user_id"]
    status, body = http.patch(f"/v1/portal/users/{user_id}", {"grants": [
        {"customer_id": h["customer_id"], "access": "non_billing"}]}, token=t)
    assert status == 200 and body["grants"][0]["access"] == "non_billing"
    status, body = http.patch(f"/v1/portal/users/{user_id}", {"grants": [
        {"customer_id": other["customer_id"], "access": "billing"}]}, token=t)
    assert status == 400 and body["error"]["code"] == "email_not_on_record"
    status, body = http.patch(f"/v1/portal/users/{user_id}", {"status": "disabled"}, token=t)
    assert status == 200 and body["status"] == "disabled"
    assert http.get("/v1/portal/users?status=disabled", token=t)[1]["items"][0]["user_id"] == user_id
    assert http.get("/v1/portal/users?status=weird", token=t)[0] == 400


def test_ses_bounce_marks_the_user_bouncing(app, http, tenant, household):
    h = household
    user_id = http.post("/v1/portal/invitations", {"customer_id": h["customer_id"], "email": h["owner"]},
                        token=h["token"])[1]["user_id"]
    notification = {"eventType": "Bounce", "mail": {"tags": {"tenant": [tenant.id]}},
                    "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": h["owner"].upper()}]}}
    sns_event = {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn:x",
                              "Sns": {"Type": "Notification", "MessageId": "1", "TopicArn": "arn:x", "Subject": None,
                                      "Message": json.dumps(notification), "Timestamp": "2026-01-01T00:00:00Z",
                                      "MessageAttributes": {}}}]}
    assert app.on_ses_event(sns_event, LambdaContext()) == {"marked": 1}
    assert http.get(f"/v1/portal/users/{user_id}", token=h["token"])[1]["delivery_problem"] == "bouncing"


def test_other_tenants_cannot_see_or_invite(http, household, other_tenant):
    h = household
    b = other_tenant.admin_token
    status, _ = http.post("/v1/portal/invitations", {"customer_id": h["customer_id"], "email": h["owner"]}, token=b)
    assert status == 404
    assert http.get("/v1/portal/users", token=b)[1]["items"] == []


def test_invite_by_location_when_the_email_is_also_on_another_customer(http, tenant, household):
    """The email is the owner's on one customer and a renter's on another customer's location: inviting it by that
    location grants that location's customer only (once a 500: two customers matched)."""
    h = household
    other = http.post("/v1/customers", {"name": "Ortega", "emails": []}, token=h["token"])[1]
    loc = http.post(f"/v1/customers/{other['customer_id']}/locations",
                    {"address": "3 Oak", "emails": [h["owner"].upper()]}, token=h["token"])[1]
    status, user = http.post("/v1/portal/invitations", {"location_id": loc["location_id"], "email": h["owner"],
                                                        "access": "non_billing"}, token=h["token"])
    assert status == 202, user
    assert user["grants"] == [{"customer_id": other["customer_id"], "access": "non_billing", "admin": False}]
    status, body = http.post("/v1/portal/invitations", {"location_id": loc["location_id"], "email": h["owner"],
                                                        "access": "billing"}, token=h["token"])
    assert status == 400 and body["error"]["code"] == "access_not_allowed", body


def test_a_disabled_invitee_enabled_again_is_invited_and_gets_a_new_link(app, http, tenant, household):
    """Disabling an invitee kills their link; enabling them (they never registered) makes them invited again,
    and a resend gives a link that registers them. Once a dead end: enable said not_registered, resend said
    disabled."""
    h = household
    user = http.post("/v1/portal/invitations", {"customer_id": h["customer_id"], "email": h["owner"],
                                                "access": "billing"}, token=h["token"])[1]
    drain(app)
    [first] = outbox_for(h["owner"])
    path = f"/v1/portal/users/{user['user_id']}"
    assert http.patch(path, {"status": "disabled"}, token=h["token"])[0] == 200
    status, body = http.post(f"{path}/resend-invitation", {}, token=h["token"])
    assert status == 409 and body["error"]["code"] == "user_disabled"
    status, body = http.patch(path, {"status": "active"}, token=h["token"])
    assert status == 200 and body["status"] == "invited", body
    assert http.post(f"{path}/resend-invitation", {}, token=h["token"])[0] == 202
    drain(app)
    second = outbox_for(h["owner"])[-1]
    old_token, new_token = token_of(first["links"][0]), token_of(second["links"][0])
    assert old_token != new_token
    status, body = http.post("/v1/portal/register", {"token": old_token, "password": "Correct-Horse-9"})
    assert status in (400, 410) and body["error"]["code"].startswith("invitation_"), body
    status, body = http.post("/v1/portal/register", {"token": new_token, "password": "Correct-Horse-9"})
    assert status == 200, body
