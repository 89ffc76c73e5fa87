"""portal-access: the Chalice app. Each handler parses, calls one flow in chalicelib/, and shapes the answer;
`api.route` declares who may call it (the guard) and what it accepts (the models behind /v1/openapi.json)."""
from typing import Annotated

from chalice import Chalice, Rate
from pydantic import BaseModel, ConfigDict, Field

from chalicelib import config, directory, observability, openapi, staff_signin
from chalicelib.api import Admin, Api, PasswordChange, Public, Staff, chalice_error_to_envelope
from chalicelib.directory import (ContactCreate, ContactOut, ContactPage, ContactPatch, CustomerCreate,
                                  CustomerOut, CustomerPage, CustomerPatch, LocationCreate, LocationOut,
                                  LocationPage, LocationPatch)

app = Chalice(app_name="portal-access")
app.register_middleware(chalice_error_to_envelope, "http")
observability.register(app)
api = Api(app)

DIRECTORY = Admin("directory:manage")
PAGING = {"limit": "Page size, 1-100 (default 50)", "cursor": "next_cursor of the previous page"}
Short = Annotated[str, Field(min_length=1, max_length=256)]


class StaffSignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_id: Annotated[str, Field(min_length=1, max_length=64)]
    username: Short
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class ChangePassword(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: Annotated[str, Field(max_length=1024)] | None = None
    new_password: Annotated[str, Field(min_length=1, max_length=1024)]
    new_username: Short | None = None


class AccessToken(BaseModel):
    access_token: str
    token_type: str
    expires_in: int


class StaffMe(BaseModel):
    person_id: str
    tenant_id: str
    role: str
    permissions: list[str]


# --- public -------------------------------------------------------------------------------------------------

@api.route("/v1/health", "GET", Public())
def health(call):
    """Liveness of the API."""
    return {"status": "ok", "stage": config.stage()}


@api.route("/v1/openapi.json", "GET", Public())
def openapi_document(call):
    """This API, as OpenAPI 3.1."""
    return openapi.document(api)


@api.route("/.well-known/jwks.json", "GET", Public())
def jwks(call):
    """Public keys that verify access tokens (every key not yet retired)."""
    from chalicelib.security import keys
    return keys.jwks()


# --- staff --------------------------------------------------------------------------------------------------

@api.route("/v1/staff/sign-in", "POST", Public(), body=StaffSignIn, response=AccessToken)
def staff_sign_in(call):
    """Staff sign-in with username and password."""
    b = call.body
    return staff_signin.sign_in(b.tenant_id, b.username, b.password, call.ip)


@api.route("/v1/staff/change-password", "POST", PasswordChange(), body=ChangePassword, response=AccessToken)
def staff_change_password(call):
    """Change one's password (signed in, or with the change token of a forced change)."""
    b = call.body
    return staff_signin.change_password(call.principal, b.current_password, b.new_password, b.new_username,
                                        call.ip)


@api.route("/v1/staff/me", "GET", Staff(), response=StaffMe)
def staff_me(call):
    """The signed-in staff member."""
    p = call.principal
    return {"person_id": p.subject, "tenant_id": p.tenant_id, "role": p.claims.get("role", "staff"),
            "permissions": sorted(p.permissions)}


# --- directory (admin) --------------------------------------------------------------------------------------

@api.route("/v1/customers", "POST", DIRECTORY, body=CustomerCreate, response=CustomerOut, status=201)
def create_customer(call):
    """Create a customer record."""
    return directory.create_customer(call.tenant_id, call.body)


@api.route("/v1/customers", "GET", DIRECTORY, response=CustomerPage, query=PAGING)
def list_customers(call):
    """List customers, a page at a time."""
    return directory.list_customers(call.tenant_id, call.query)


@api.route("/v1/customers/{customer_id}", "GET", DIRECTORY, response=CustomerOut)
def get_customer(call, customer_id):
    """One customer."""
    return directory.customer_out(directory.get_customer(call.tenant_id, customer_id))


@api.route("/v1/customers/{customer_id}", "PATCH", DIRECTORY, body=CustomerPatch, response=CustomerOut)
def patch_customer(call, customer_id):
    """Change a customer's name, emails, phones or billing address."""
    return directory.patch_customer(call.tenant_id, customer_id, call.body)


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
    return directory.patch_location(call.tenant_id, location_id, call.body)


@api.route("/v1/customers/{customer_id}/contacts", "POST", DIRECTORY, body=ContactCreate, response=ContactOut,
           status=201)
def create_contact(call, customer_id):
    """Add a contact to a customer."""
    return directory.contact_out(directory.create_contact(call.tenant_id, customer_id, call.body))


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
    return directory.patch_contact(call.tenant_id, contact_id, call.body)


# --- customer portal: invitations, bulk invitations, portal users (admin) ----------------------------------

# --- staff accounts: people, invitations, admin-set and temporary passwords, recovery -----------------------

api.add_method_not_allowed()


# --- events -------------------------------------------------------------------------------------------------

@app.on_sqs_message(queue=config.queue_name("send"), batch_size=10)
def on_send_message(event):
    from chalicelib import sender
    return sender.handle_batch(event.to_dict(), event.context)


@app.schedule(Rate(15, unit=Rate.MINUTES))
def run_schedule(event):
    from chalicelib import expiry
    return expiry.run()
