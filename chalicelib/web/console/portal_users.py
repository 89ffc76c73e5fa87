"""Customer Portal → User Management (portal:manage): the portal users, searched by email and filtered by status,
with their customer records and access; a user's page with Send Invite / Resend Invite, Disable / Enable, Sign out
everywhere, the access on each customer record, and their Activity in words.

Every action calls the flow function of the JSON API route that does the same (chalicelib/web/routes/portal.py),
with the signed-in staff member as the actor: list_users / user_search.search, get_user, resend, patch_user,
sign_out_user, user_audit."""
from chalice import Response

from chalicelib.core.errors import Error, NotFound
from chalicelib.web.console import words
from chalicelib.web.console.shell import Console, console_page
from chalicelib.web.lazy import lazy
from chalicelib.web.pages.forms import Errors, explain
from chalicelib.web.pages.render import url

directory = lazy("chalicelib.flows.directory")
invitations = lazy("chalicelib.flows.portal.invitations")
portal_access = lazy("chalicelib.flows.portal.portal_access")
portal_sessions = lazy("chalicelib.flows.portal.portal_sessions")
pydantic = lazy("pydantic")
user_search = lazy("chalicelib.flows.portal.user_search")

PORTAL = "portal:manage"
PAGE_SIZE = 25
ACTIVITY_PAGE = 20
STATUS_WORDS = {"invited": "Invited", "active": "Active", "disabled": "Disabled"}
STATUS_FILTER = (("", "All statuses"), ("invited", "Invited"), ("active", "Active"), ("disabled", "Disabled"))
ACCESS_CHOICES = (("billing", "Billing Access"), ("non_billing", "Non-Billing Access"), ("none", "No Access"))
DELIVERY_WORDS = {"bouncing": "Emails to this address bounce: check the address on the customer record.",
                  "complained": "This person marked our email as spam: no more emails are sent to them."}

# The flows' refusals that name codes or ids (access_not_allowed: "At most non_billing access on customer c-…"),
# in the words of this page.
REFUSALS = {
    "access_not_allowed": "This email is only on a location or contact of that customer, so it can get "
                          "Non-Billing Access at most there.",
}


def customer_names(tenant_id: str, customer_ids: set[str]) -> dict[str, str]:
    """The names of the customer records a page mentions (one batch read)."""
    from chalicelib.core.models import Customer
    if not customer_ids:
        return {}
    return {c.customer_id: c.name for c in Customer.batch_get([(tenant_id, i) for i in sorted(customer_ids)])}


def grant_rows(grants, names: dict[str, str]) -> list[dict]:
    return [{"customer_id": g.customer_id, "customer": names.get(g.customer_id, g.customer_id),
             "access": g.access, "access_words": words.ACCESS_WORDS.get(g.access, g.access),
             "contact_limited": bool(g.contact_id)} for g in grants]


@console_page("/console/portal/users", PORTAL, form=False)
def users(c: Console) -> Response:
    """Portal users, searched by email (the start of it) and filtered by status, a page at a time."""
    q, status = c.query.get("q", "").strip(), c.query.get("status", "")
    query = {"limit": str(PAGE_SIZE), "cursor": c.query.get("cursor"), "status": status or None}
    query = {k: v for k, v in query.items() if v is not None}
    errors = Errors()
    try:  # the same two flows as GET /v1/portal/users (with q, the email search)
        found = user_search.search(c.tenant_id, q, query) if q else invitations.list_users(c.tenant_id, query)
    except Error as exc:
        explain(exc, errors, {"q": "q", "status": "status", "cursor": "q"})
        found = {"items": [], "next_cursor": None}
    items = found["items"]
    names = customer_names(c.tenant_id, {g.customer_id for u in items for g in u.grants})
    rows = [{"user": u, "status_words": STATUS_WORDS.get(u.status, u.status),
             "grants": grant_rows(u.grants, names), "sent": words.when(u.last_sent_at),
             "problem": DELIVERY_WORDS.get(u.delivery_problem or "")} for u in items]
    more = url("/console/portal/users", q=q or None, status=status or None, cursor=found["next_cursor"]) \
        if found["next_cursor"] else None
    return c.html("console/portal-users.html", title="User Management", status=400 if errors else 200,
                  rows=rows, q=q, status_filter=status, statuses=STATUS_FILTER, errors=errors, more=more,
                  subnav_current="users")


@console_page("/console/portal/users/{user_id}", PORTAL)
def user(c: Console, user_id: str) -> Response:
    """One portal user: status, invitation, access per customer record, the actions, and their activity."""
    errors = Errors()
    if c.posted():
        try:
            notice = act(c, user_id)
            return c.done(f"/console/portal/users/{user_id}", notice)
        except NotFound:
            return not_found(c)
        except (Error, pydantic.ValidationError) as exc:
            if isinstance(exc, Error) and exc.code in REFUSALS:
                errors.add(None, REFUSALS[exc.code])
            else:
                explain(exc, errors, {"access": "", "grants": "", "status": "", "email": ""})
    try:
        record = invitations.get_user(c.tenant_id, user_id)  # GET /v1/portal/users/{user_id}
    except NotFound:
        return not_found(c)
    out = invitations.user_out(record)
    backed = invitations.grants_from_refs(directory.records_for_email(c.tenant_id, record.email))
    names = customer_names(c.tenant_id, {g.customer_id for g in out.grants})
    grants = grant_rows(out.grants, names)
    for g in grants:  # an email only on a location or a contact offers no Billing Access (rule 2)
        most = backed.get(g["customer_id"], ("none", None))[0]
        rank = invitations.ACCESS_RANK
        g["choices"] = [(v, label) for v, label in ACCESS_CHOICES if rank[v] <= rank[most] or v == g["access"]]
        g["on_record"] = g["customer_id"] in backed
    try:
        trail = portal_access.user_audit(c.tenant_id, user_id, {"limit": str(ACTIVITY_PAGE),
                                                                **({"cursor": c.query["cursor"]}
                                                                   if c.query.get("cursor") else {})})
    except Error:  # a cursor that is not one we gave out: the first page
        trail = portal_access.user_audit(c.tenant_id, user_id, {"limit": str(ACTIVITY_PAGE)})
    events = trail["items"]
    who = words.names_for(c.tenant_id, events)
    activity = [{"when": words.when(e.at), "what": words.describe(e, who)} for e in events]
    older = url(f"/console/portal/users/{user_id}", cursor=trail["next_cursor"]) if trail["next_cursor"] else None
    return c.html("console/portal-user.html", title=out.email, status=400 if errors else 200, u=out,
                  status_words=STATUS_WORDS.get(out.status, out.status), registered=bool(record.password_hash),
                  sent=words.when(out.last_sent_at), expires=words.when(out.invitation_expires_at), since=words.when(out.created_at),
                  problem=DELIVERY_WORDS.get(out.delivery_problem or ""), grants=grants, activity=activity,
                  older=older, errors=errors, subnav_current="users")


user.notices = {
    "invite_sent": "The invitation is on its way. Any earlier invitation link stops working.",
    "disabled": "The user is disabled and signed out everywhere. They cannot sign in until enabled.",
    "enabled": "The user is enabled and can sign in again.",
    "enabled_invited": "The user is enabled and invited again: Send Invite sends them a new link.",
    "signed_out": "The user is signed out everywhere. They can sign in again.",
    "access_changed": "Access changed.",
}


def act(c: Console, user_id: str) -> str:
    """The action a button on the user's page posted, through the flow of its API route; the notice to show."""
    action, actor = c.form.get("action", ""), c.principal.subject
    if action == "invite":  # POST /v1/portal/users/{user_id}/resend-invitation
        invitations.resend(c.tenant_id, user_id, actor, c.ip)
        return "invite_sent"
    if action in ("disable", "enable"):  # PATCH /v1/portal/users/{user_id} {status}
        status = "disabled" if action == "disable" else "active"
        out = invitations.patch_user(c.tenant_id, user_id,
                                     invitations.PortalUserPatch.model_validate({"status": status}), actor, c.ip)
        return {"disabled": "disabled", "active": "enabled", "invited": "enabled_invited"}[out.status]
    if action == "sign_out":  # POST /v1/portal/users/{user_id}/sign-out
        portal_sessions.sign_out_user(c.tenant_id, user_id, actor, c.ip)
        return "signed_out"
    if action == "access":  # PATCH /v1/portal/users/{user_id} {grants}: the other records keep theirs
        return change_access(c, user_id, c.form.get("customer_id", ""), c.form.get("access", ""), actor)
    from chalicelib.core.errors import Invalid
    raise Invalid("invalid_request", "That action is not one this page offers.")


def change_access(c: Console, user_id: str, customer_id: str, access: str, actor: str) -> str:
    from chalicelib.core.errors import Invalid
    if access not in invitations.ACCESS_RANK:
        raise Invalid("invalid_request", "Choose Billing Access, Non-Billing Access or No Access.", field="access")
    current = invitations.get_user(c.tenant_id, user_id).grants or []
    if customer_id not in {g.customer_id for g in current}:
        raise Invalid("invalid_request", "This user has no access on that customer record.", field="access")
    # contact_id left out keeps each grant's contact limit; admin is kept as it is
    grants = [{"customer_id": g.customer_id, "admin": bool(g.admin),
               "access": access if g.customer_id == customer_id else g.access} for g in current]
    invitations.patch_user(c.tenant_id, user_id, invitations.PortalUserPatch.model_validate({"grants": grants}),
                           actor, c.ip)
    return "access_changed"


def not_found(c: Console) -> Response:
    return c.html("console/portal-not-found.html", title="Portal user not found", status=404,
                  subnav_current="users")
