"""One rule for inviting to the customer portal: it needs portal:manage, whether through
POST /v1/portal/invitations or a new contact with send_portal_invite (office staff hold directory:manage only)."""
import pytest
from staff_helpers import staff_member


@pytest.fixture
def office(tenant):
    _, token = staff_member(tenant, kind="employee", role="office")
    return token


@pytest.fixture
def customer(http, tenant):
    status, body = http.post("/v1/customers", {"name": "Rule Co", "emails": ["owner@rule.example"]},
                             token=tenant.admin_token)
    assert status == 201
    return body["customer_id"]


def contacts(http, tenant, customer):
    return http.get(f"/v1/customers/{customer}/contacts", token=tenant.admin_token)[1]["items"]


def test_office_cannot_invite_through_a_new_contact_and_nothing_is_written(http, tenant, office, customer):
    from chalicelib.flows import directory
    status, body = http.post(f"/v1/customers/{customer}/contacts",
                             {"name": "Pat", "email": "pat@rule.example", "send_portal_invite": True}, token=office)
    assert status == 403, body
    assert body["error"]["code"] == "forbidden"
    assert "manage the customer portal" in body["error"]["message"]
    assert contacts(http, tenant, customer) == []
    assert directory.records_for_email(tenant.id, "pat@rule.example") == set()
    assert http.get("/v1/portal/users", token=tenant.admin_token)[1]["items"] == []
    # the same as the invitations route answers the office
    status, body = http.post("/v1/portal/invitations", {"customer_id": customer, "email": "owner@rule.example",
                                                       "access": "billing"}, token=office)
    assert (status, body["error"]["code"]) == (403, "forbidden")


def test_office_still_adds_contacts_without_an_invite(http, tenant, office, customer):
    status, body = http.post(f"/v1/customers/{customer}/contacts",
                             {"name": "Pat", "email": "pat@rule.example", "send_portal_invite": False}, token=office)
    assert status == 201, body
    assert body.get("portal_invite") is None
    assert [c["name"] for c in contacts(http, tenant, customer)] == ["Pat"]


def test_an_admin_still_invites_through_a_new_contact(http, tenant, customer):
    status, body = http.post(f"/v1/customers/{customer}/contacts",
                             {"name": "Pat", "email": "pat@rule.example", "send_portal_invite": True},
                             token=tenant.admin_token)
    assert status == 201, body
    assert body["portal_invite"] == "invited"
    assert body["portal_user"]["email"] == "pat@rule.example"


def test_office_given_portal_manage_may_invite(http, tenant, customer):
    _, token = staff_member(tenant, kind="employee", role="office", permissions=["portal:manage"])
    status, body = http.post(f"/v1/customers/{customer}/contacts",
                             {"name": "Pat", "email": "pat@rule.example", "send_portal_invite": True}, token=token)
    assert (status, body["portal_invite"]) == (201, "invited")


def test_the_flow_refuses_too_when_called_in_process(tenant, customer):
    from chalicelib.core.errors import Forbidden
    from chalicelib.flows.directory import ContactCreate
    from chalicelib.flows.portal import invitations
    body = ContactCreate(name="Pat", email="pat@rule.example", send_portal_invite=True)
    with pytest.raises(Forbidden):
        invitations.create_contact(tenant.id, customer, body, "someone", None, permissions={"directory:manage"})
