"""Customers (directory:manage): find a customer by name, email or phone; a customer's page with its emails and
the emails of its locations, each with its portal status, a Billing select and Invite / Resend Invite (those need
portal:manage, the rule inviting follows everywhere), and its contacts. New Contact is customer_contacts.py, the
secure access link customer_links.py.

Every page calls the flow the JSON API calls: customer_search.search (GET /v1/customers?q=), directory.list_*,
invitations.invite / resend / patch_user (POST /v1/portal/invitations, .../resend-invitation, PATCH
/v1/portal/users/{id}), access_links.state."""
import re
from dataclasses import dataclass

from chalice import Response

from chalicelib.core.errors import Error, Forbidden, Invalid, NotFound
from chalicelib.web.api import status_of
from chalicelib.web.console.shell import Console, console_page, forbidden
from chalicelib.web.pages.forms import Errors
from chalicelib.web.pages.render import url

DIRECTORY = "directory:manage"
PORTAL = "portal:manage"  # inviting and changing portal access, as the API's /v1/portal routes need
PAGE_SIZE = 25
RECORDS_PAGE = 50  # locations and contacts shown at once on a customer's page
ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

# The Billing select: (value the flows take, the words the field knows).
ACCESS = (("billing", "Billing Access"), ("non_billing", "Non-Billing Access"), ("none", "No Access"))
ACCESS_WORDS = dict(ACCESS)
STATUS_WORDS = {"no_account": "No account", "invited": "Invited", "active": "Active", "disabled": "Disabled"}


# --- the search --------------------------------------------------------------------------------------------------

@console_page("/console/customers", DIRECTORY, form=False)
def customers(c: Console) -> Response:
    """Find a customer by name, email or phone; without a search, every customer a page at a time."""
    from chalicelib.flows import customer_search, directory
    q = c.query.get("q", "").strip()
    query = {"limit": str(PAGE_SIZE), **({"cursor": c.query["cursor"]} if c.query.get("cursor") else {})}
    errors = Errors()
    found: dict = {"items": [], "next_cursor": None}
    try:
        found = customer_search.search(c.tenant_id, q, query) if q else directory.list_customers(c.tenant_id, query)
    except Error as err:
        errors.add("q" if err.extra.get("field") == "q" else None,
                   "That page of results is out of date; search again." if err.code == "invalid_cursor"
                   else err.message)
    more = url("/console/customers", q=q or None, cursor=found["next_cursor"]) if found["next_cursor"] else None
    return c.html("console/customers.html", status=400 if errors else 200, title="Customers", q=q, errors=errors,
                  items=found["items"], more=more)


# --- a customer's page -------------------------------------------------------------------------------------------

@dataclass
class EmailRow:
    """One email of the customer or of one of its locations, with what the portal knows of it."""
    email: str
    location_id: str | None  # set for an email only on a location: invited through that location
    billing_allowed: bool
    status: str  # STATUS_WORDS' keys
    access: str | None  # the grant on this customer, if any
    last_sent_at: str | None = None

    @property
    def options(self):
        return [(v, w) for v, w in ACCESS if v != "billing" or self.billing_allowed]

    @property
    def selected(self) -> str:
        return self.access or ("billing" if self.billing_allowed else "non_billing")

    @property
    def invite_label(self) -> str | None:
        """Invite; Resend Invite once invited to this customer; none once the account is active (or disabled)."""
        if self.status in ("active", "disabled"):
            return None
        return "Resend Invite" if self.status == "invited" and self.access is not None else "Invite"


def customer_or_404(c: Console, customer_id: str):
    """The customer of this business, or None (the caller answers the not-found page)."""
    from chalicelib.flows import directory
    if not ID.fullmatch(customer_id):
        return None
    try:
        return directory.get_customer(c.tenant_id, customer_id)
    except NotFound:
        return None


def not_found(c: Console) -> Response:
    return c.html("console/customer-not-found.html", status=404, title="Customer not found")


def portal_users(tenant_id: str, emails) -> dict:
    """{email: PortalUser} for the emails on a page, in one BatchGetItem (ids derive from the email)."""
    from chalicelib.core.models import PortalUser
    from chalicelib.flows.portal.invitations import portal_user_id
    keys = [(tenant_id, portal_user_id(e)) for e in dict.fromkeys(emails)]
    return {u.email: u for u in PortalUser.batch_get(keys)} if keys else {}


def email_row(email: str, customer, location_id: str | None, users: dict) -> EmailRow:
    from chalicelib.core.paging import iso
    on_customer = email in (customer.emails or ())
    user = users.get(email)
    grant = next((g for g in (user.grants or []) if g.customer_id == customer.customer_id), None) if user else None
    return EmailRow(email=email, location_id=None if on_customer else location_id, billing_allowed=on_customer,
                    status=user.status if user else "no_account", access=grant.access if grant else None,
                    last_sent_at=iso(user.last_sent_at) if user else None)


@console_page("/console/customers/{customer_id}", DIRECTORY)
def customer(c: Console, customer_id: str) -> Response:
    """A customer: its emails and its locations' emails (portal status, Billing, Invite), contacts, access link."""
    from chalicelib.flows import directory
    from chalicelib.flows.portal import access_links
    record = customer_or_404(c, customer_id)
    if record is None:
        return not_found(c)
    errors, status = Errors(), 200
    if c.posted():
        if not c.can(PORTAL):
            return forbidden(c.page, c.principal, c.tenant_name)
        try:
            return c.done(f"/console/customers/{customer_id}", change_access(c, record, c.form))
        except Forbidden:
            return forbidden(c.page, c.principal, c.tenant_name)
        except NotFound:
            return not_found(c)
        except Error as err:
            errors.add(None, f"{c.form.get('email', '')}: {err.message}")
            status = status_of(err)
        except ValueError:  # pydantic's ValidationError: not an email, or not one of the choices
            errors.add(None, "That email or access is not one this page offers; reload the page and try again.")
            status = 400
        record = customer_or_404(c, customer_id) or record
    try:
        locations = directory.list_locations(c.tenant_id, customer_id, paging(c, "locations"))
        contacts = directory.list_contacts(c.tenant_id, customer_id, paging(c, "contacts"))
    except Invalid:  # a cursor this page did not give out
        locations = directory.list_locations(c.tenant_id, customer_id, {"limit": str(RECORDS_PAGE)})
        contacts = directory.list_contacts(c.tenant_id, customer_id, {"limit": str(RECORDS_PAGE)})
    emails = list(record.emails or []) + [e for loc in locations["items"] for e in loc.emails] \
        + [ct.email for ct in contacts["items"] if ct.email]
    users = portal_users(c.tenant_id, emails)
    rows = [email_row(e, record, None, users) for e in record.emails or []]
    places = [(loc, [email_row(e, record, loc.location_id, users) for e in loc.emails]) for loc in locations["items"]]
    people = [(ct, STATUS_WORDS[users[ct.email].status] if ct.email in users else None) for ct in contacts["items"]]
    has_portal_users = any(u.status in ("invited", "active") and record.customer_id in (u.customer_ids or ())
                           for u in users.values())

    def more(name: str, cursor: str | None) -> str | None:
        return url(f"/console/customers/{customer_id}", **{name: cursor}) if cursor else None

    return c.html("console/customer.html", status=status, title=record.name, customer=record,
                  rows=rows, places=places, contacts=people, errors=errors, can_invite=c.can(PORTAL),
                  link=access_links.state(record), has_portal_users=has_portal_users,
                  link_csrf=c.csrf(f"/console/customers/{customer_id}/access-link"), days=access_links.DEFAULT_DAYS,
                  link_error=None, made=None,
                  more_locations=more("locations", locations["next_cursor"]),
                  more_contacts=more("contacts", contacts["next_cursor"]), status_words=STATUS_WORDS,
                  access_words=ACCESS_WORDS)


customer.notices = {
    "invited": "The invitation is on its way.",
    "resent": "The invitation was sent again; the previous link no longer works.",
    "saved": "Access saved.",
    "contact_added": "Contact added.",
    "contact_invited": "Contact added, and invited to the customer portal.",
    "contact_granted": "Contact added. They already had a portal account, which can now see this customer.",
}


def paging(c: Console, name: str) -> dict:
    cursor = c.query.get(name)
    return {"limit": str(RECORDS_PAGE), **({"cursor": cursor} if cursor else {})}


def change_access(c: Console, record, form: dict) -> str:
    """One email row's button: Invite (invitations.invite), Resend Invite (invitations.resend, or invite again
    when the Billing select was changed: that is the API's resend with a new access) or Save (the portal user's
    grants, as PATCH /v1/portal/users/{id}). Returns the notice to show."""
    from chalicelib.flows import directory
    from chalicelib.flows.portal import invitations
    do, access = form.get("do", ""), form.get("access", "")
    if do not in ("invite", "resend", "save") or access not in ACCESS_WORDS:
        raise Invalid("invalid_request", "That is not a choice this page offers; reload the page and try again.")
    location_id = form.get("location_id") or None
    if location_id is not None:  # only a location of this customer (another's, or another business's: not found)
        if not ID.fullmatch(location_id) or directory.get_location(c.tenant_id, location_id).customer_id \
                != record.customer_id:
            raise NotFound("location_not_found", "No such location.")
    body = invitations.InvitationCreate(email=form.get("email", ""), access=access,
                                        **({"location_id": location_id} if location_id
                                           else {"customer_id": record.customer_id}))
    user = invitations.find_user(c.tenant_id, body.email)
    grant = next((g for g in (user.grants or []) if g.customer_id == record.customer_id), None) if user else None
    actor = c.principal.subject
    if do == "save":
        if user is None:
            raise Invalid("not_invited", "This email has no portal account yet: choose its access and Invite.")
        # every grant as it is (a grant that names no contact keeps its contact limit), this customer's changed
        grants = [{"customer_id": g.customer_id, "access": g.access, "admin": bool(g.admin)}
                  for g in user.grants or [] if g.customer_id != record.customer_id]
        grants.append({"customer_id": record.customer_id, "access": access,
                       "admin": bool(grant.admin) if grant else False})
        patch = invitations.PortalUserPatch.model_validate({"grants": grants})
        invitations.patch_user(c.tenant_id, user.user_id, patch, actor, c.ip)
        return "saved"
    if access == "none":
        raise Invalid("access_required", "Choose Billing Access or Non-Billing Access to send an invite.")
    if do == "resend" and user is not None and grant is not None and grant.access == access:
        invitations.resend(c.tenant_id, user.user_id, actor, c.ip)
        return "resent"
    invitations.invite(c.tenant_id, body, actor, c.ip)
    return "resent" if do == "resend" else "invited"


__all__ = ["ACCESS", "customer", "customer_or_404", "customers", "not_found"]
