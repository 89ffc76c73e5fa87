"""The business's directory (admins with directory:manage): customers, locations, contacts."""
from chalice import Blueprint

from chalicelib.flows import customer_search, directory
from chalicelib.flows.directory import (
    ContactCreate,
    ContactOut,
    ContactPage,
    ContactPatch,
    CustomerCreate,
    CustomerOut,
    CustomerPage,
    CustomerPatch,
    LocationCreate,
    LocationOut,
    LocationPage,
    LocationPatch,
)
from chalicelib.flows.portal import invitations
from chalicelib.web.api import PAGING, Admin, Api

DIRECTORY = Admin("directory:manage")

routes = Blueprint(__name__)
api = Api(routes)


@api.route("/v1/customers", "POST", DIRECTORY, body=CustomerCreate, response=CustomerOut, status=201)
def create_customer(call):
    """Create a customer record."""
    return directory.create_customer(call.tenant_id, call.body)


@api.route("/v1/customers", "GET", DIRECTORY, response=CustomerPage,
           query={**PAGING, "q": "search: an email (exact, any case; also on the customer's locations and "
                                 "contacts), a phone (any common spelling; also contacts'), or the start of words "
                                 "of the name (2 letters or more)"},
           errors=("query_too_short",))
def list_customers(call):
    """List customers, a page at a time; with q, those matching a search."""
    if call.query.get("q", "").strip():
        return customer_search.search(call.tenant_id, call.query["q"], call.query)
    return directory.list_customers(call.tenant_id, call.query)


@api.route("/v1/customers/{customer_id}", "GET", DIRECTORY, response=CustomerOut)
def get_customer(call, customer_id):
    """One customer."""
    return directory.customer_out(directory.get_customer(call.tenant_id, customer_id))


@api.route("/v1/customers/{customer_id}", "PATCH", DIRECTORY, body=CustomerPatch, response=CustomerOut)
def patch_customer(call, customer_id):
    """Change a customer's name, emails, phones or billing address."""
    return invitations.patch_customer(call.tenant_id, customer_id, call.body)


@api.route("/v1/customers/{customer_id}/locations", "POST", DIRECTORY, body=LocationCreate,
           response=LocationOut, status=201)
def create_location(call, customer_id):
    """Add a service location to a customer."""
    return directory.create_location(call.tenant_id, customer_id, call.body)


@api.route("/v1/customers/{customer_id}/locations", "GET", DIRECTORY, response=LocationPage, query=PAGING)
def list_locations(call, customer_id):
    """A customer's locations."""
    return directory.list_locations(call.tenant_id, customer_id, call.query)


@api.route("/v1/locations/{location_id}", "GET", DIRECTORY, response=LocationOut)
def get_location(call, location_id):
    """One location."""
    return directory.location_out(directory.get_location(call.tenant_id, location_id))


@api.route("/v1/locations/{location_id}", "PATCH", DIRECTORY, body=LocationPatch, response=LocationOut)
def patch_location(call, location_id):
    """Change a location's name, address or emails."""
    return invitations.patch_location(call.tenant_id, location_id, call.body)


@api.route("/v1/customers/{customer_id}/contacts", "POST", DIRECTORY, body=ContactCreate,
           response=invitations.ContactWithInvite, status=201)
def create_contact(call, customer_id):
    """Add a contact to a customer; with send_portal_invite (which needs portal:manage), invite them too."""
    return invitations.create_contact(call.tenant_id, customer_id, call.body, call.actor, call.ip,
                                      permissions=call.principal.permissions)


@api.route("/v1/customers/{customer_id}/contacts", "GET", DIRECTORY, response=ContactPage, query=PAGING)
def list_contacts(call, customer_id):
    """A customer's contacts."""
    return directory.list_contacts(call.tenant_id, customer_id, call.query)


@api.route("/v1/contacts/{contact_id}", "GET", DIRECTORY, response=ContactOut)
def get_contact(call, contact_id):
    """One contact."""
    return directory.contact_out(directory.get_contact(call.tenant_id, contact_id))


@api.route("/v1/contacts/{contact_id}", "PATCH", DIRECTORY, body=ContactPatch, response=ContactOut)
def patch_contact(call, contact_id):
    """Change a contact's name, email or phone."""
    return invitations.patch_contact(call.tenant_id, contact_id, call.body)
