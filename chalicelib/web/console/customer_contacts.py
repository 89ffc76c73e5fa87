"""New Contact on a customer's page (directory:manage): name, email, phone and, for staff who may invite
(portal:manage, the rule the API follows too), Send invite to customer portal. The same flow as
POST /v1/customers/{id}/contacts: invitations.create_contact, which checks everything before writing anything."""
from chalice import Response

from chalicelib.core.errors import Error, Forbidden
from chalicelib.web.api import status_of
from chalicelib.web.console.customers import DIRECTORY, PORTAL, customer_or_404, not_found
from chalicelib.web.console.shell import Console, console_page, forbidden
from chalicelib.web.lazy import lazy
from chalicelib.web.pages.forms import Errors, explain, require

pydantic = lazy("pydantic")

FIELDS = {"name": "name", "email": "email", "phone": "phone", "send_portal_invite": "send_portal_invite"}
NOTICES = {"invited": "contact_invited", "granted_to_existing_account": "contact_granted", None: "contact_added"}


@console_page("/console/customers/{customer_id}/contacts/new", DIRECTORY)
def new_contact(c: Console, customer_id: str) -> Response:
    """Add a contact to a customer, inviting them to the customer portal if asked."""
    from chalicelib.flows.directory import ContactCreate
    from chalicelib.flows.portal import invitations
    record = customer_or_404(c, customer_id)
    if record is None:
        return not_found(c)
    errors, status = Errors(), 200
    values = {k: c.form.get(k, "").strip() for k in ("name", "email", "phone")}
    invite = c.form.get("send_portal_invite") == "yes"
    if c.posted():
        require(c.form, errors, {"name": "Enter the contact's name."})
        if invite and not values["email"]:
            errors.add("email", "Enter the contact's email to send an invite to the customer portal.")
        if not errors:
            try:
                body = ContactCreate(name=values["name"], email=values["email"] or None,
                                     phone=values["phone"] or None, send_portal_invite=invite)
                out = invitations.create_contact(c.tenant_id, customer_id, body, c.principal.subject, c.ip,
                                                 permissions=c.principal.permissions)
            except Forbidden:  # Send invite to customer portal without portal:manage (the box is not shown then)
                return forbidden(c.page, c.principal, c.tenant_name)
            except pydantic.ValidationError as exc:
                explain(exc, errors, FIELDS)
            except Error as err:
                explain(err, errors, FIELDS)
                status = status_of(err)
            else:
                return c.done(f"/console/customers/{customer_id}", NOTICES[out.portal_invite])
        status = status if status != 200 else 400
    return c.html("console/customer-new-contact.html", status=status, title=f"New Contact: {record.name}",
                  customer=record, errors=errors, values=values, invite=invite, can_invite=c.can(PORTAL))
