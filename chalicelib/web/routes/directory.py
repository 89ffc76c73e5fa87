"""The business's directory (admins with directory:manage): customers, locations, contacts."""
from chalice import Blueprint

from chalicelib.web.api import PAGING, Admin, Api
from chalicelib.web.lazy import lazy

customer_search = lazy("chalicelib.flows.customer_search")
directory = lazy("chalicelib.flows.directory")
invitations = lazy("chalicelib.flows.portal.invitations")

DIRECTORY = Admin("directory:manage")

routes = Blueprint(__name__)
api = Api(routes)


@api.route("/v1/customers", "POST", DIRECTORY, body=directory.shape("CustomerCreate"),
           response=directory.shape("CustomerOut"), status=201)
def create_customer(call):
    """Create a customer record."""
    return directory.create_customer(call.tenant_id, call.body)


@api.route("/v1/customers", "GET", DIRECTORY, response=directory.shape("CustomerPage"),
           query={**PAGING, "q": "search: an email (exact, any case; also on the customer's locations and "
                                 "contacts), a phone (any common spelling; also contacts'), or the start of words "
                                 "of the name (2 letters or more)"},
           errors=("query_too_short",))
def list_customers(call):
    """List customers, a page at a time; with q, those matching a search."""
    if call.query.get("q", "").strip():
        return customer_search.search(call.tenant_id, call.query["q"], call.query)
    return directory.list_customers(call.tenant_id, call.query)


@api.route("/v1/customers/{customer_id}", "GET", DIRECTORY, response=directory.shape("CustomerOut"))
def get_customer(call, customer_id):
    """One customer."""
    return directory.customer_out(directory.get_customer(call.tenant_id, customer_id))


@api.route("/v1/customers/{customer_id}", "PATCH", DIRECTORY, body=directory.shape("CustomerPatch"),
           response=directory.shape("CustomerOut"))
def patch_customer(call, customer_id):
    """Change a customer's name, emails, phones or billing address."""
    return invitations.patch_customer(call.tenant_id, customer_id, call.body)


@api.route("/v1/customers/{customer_id}/locations", "POST", DIRECTORY, body=directory.shape("LocationCreate"),
           response=directory.shape("LocationOut"), status=201)
def create_location(call, customer_id):
    """Add a service location to a customer."""
    return directory.create_location(call.tenant_id, customer_id, call.body)


@api.route("/v1/customers/{customer_id}/locations", "GET", DIRECTORY, response=directory.shape("LocationPage"),
           query=PAGING)
def list_locations(call, customer_id):
    """A customer's locations."""
    return directory.list_locations(call.tenant_id, customer_id, call.query)


@api.route("/v1/locations/{location_id}", "GET", DIRECTORY, response=directory.shape("LocationOut"))
def get_location(call, location_id):
    """One location."""
    return directory.location_out(directory.get_location(call.tenant_id, location_id))


@api.route("/v1/locations/{location_id}", "PATCH", DIRECTORY, body=directory.shape("LocationPatch"),
           response=directory.shape("LocationOut"))
def patch_location(call, location_id):
    """Change a location's name, address or emails."""
    return invitations.patch_location(call.tenant_id, location_id, call.body)


@api.route("/v1/customers/{customer_id}/contacts", "POST", DIRECTORY, body=directory.shape("ContactCreate"),
           response=invitations.shape("ContactWithInvite"), status=201)
def create_contact(call, customer_id):
    """Add a contact to a customer; with send_portal_invite (which needs portal:manage), invite them too."""
    return invitations.create_contact(call.tenant_id, customer_id, call.body, call.actor, call.ip,
                                      permissions=call.principal.permissions)


@api.route("/v1/customers/{customer_id}/contacts", "GET", DIRECTORY, response=directory.shape("ContactPage"),
           query=PAGING)
def list_contacts(call, customer_id):
    """A customer's contacts."""
    return directory.list_contacts(call.tenant_id, customer_id, call.query)


@api.route("/v1/contacts/{contact_id}", "GET", DIRECTORY, response=directory.shape("ContactOut"))
def get_contact(call, contact_id):
    """One contact."""
    return directory.contact_out(directory.get_contact(call.tenant_id, contact_id))


@api.route("/v1/contacts/{contact_id}", "PATCH", DIRECTORY, body=directory.shape("ContactPatch"),
           response=directory.shape("ContactOut"))
def patch_contact(call, contact_id):
    """Change a contact's name, email or phone."""
    return invitations.patch_contact(call.tenant_id, contact_id, call.body)
