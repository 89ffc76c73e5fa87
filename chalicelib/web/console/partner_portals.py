"""Partner Portals (partners:manage): every portal with its permissions and an Access switch; switching it on opens
the Legal Agreement (Grant Access only once its box is checked), switching it off disables at once; a portal's
page with its permissions, the acceptance on record, its users (active by default) and its activity.

The same flows as /v1/partner-portals (flows/partners.py), called in-process with the signed-in admin as actor."""
from chalice import Response

from chalicelib.core.errors import Error, NotFound
from chalicelib.web.api import status_of
from chalicelib.web.console.activity import rows
from chalicelib.web.console.words import when
from chalicelib.web.console.shell import Console, console_page
from chalicelib.web.pages.forms import Errors
from chalicelib.web.pages.render import url

PARTNERS = "partners:manage"
LIST = "/console/partner-portals"
PAGE_SIZE = "25"
AGREE = "Check the box to agree to these terms. Access is granted only after you agree."
NEWER = "A new version of this agreement was published while you were reading it. Read it below, then agree again."
NOTICES = {
    "granted": "Access granted to {portal}. The partner can now sign in for {business}.",
    "switched_off": "Access switched off for {portal}. The partner's next call is refused.",
    "already_off": "Access to {portal} was already off.",
    "cancelled": "Access to {portal} was not granted.",
}


def portal_path(portal_id: str, *rest: str) -> str:
    from urllib.parse import quote
    return "/".join((LIST, quote(portal_id, safe=""), *rest))


def not_found(c: Console) -> Response:
    return c.html("console/partner-not-found.html", status=404, title="Partner portal not found")


def named_notices(c: Console, name: str | None) -> None:
    """The notice after a redirect names the portal the action was about."""
    c.notices = {k: v.format(portal=name or "the partner portal", business=c.tenant_name)
                 for k, v in c.notices.items()}


def switch(c: Console, back: str) -> Response:
    """An Access switch was pressed: on → the Legal Agreement; off → disabled now (POST .../disable's flow)."""
    from chalicelib.flows import partners
    portal_id, wanted = c.form.get("portal_id", ""), c.form.get("access", "")
    try:
        portal = partners.get_for_tenant(c.tenant_id, portal_id)
    except NotFound:
        return not_found(c)
    if wanted == "on":
        return c.page.redirect(url(portal_path(portal_id, "agreement")))
    if wanted != "off":
        return problem(c, back, "Choose whether access should be on or off.", 400)
    if not portal.enabled:
        return c.done(back, "already_off", portal=portal_id)
    try:
        partners.disable(c.tenant_id, portal_id, c.principal.subject, c.ip)
    except Error as err:  # edit_conflict: someone switched it at the same moment
        return problem(c, back, err.message, status_of(err))
    return c.done(back, "switched_off", portal=portal_id)


def problem(c: Console, back: str, words: str, status: int) -> Response:
    """The page the switch was on again, saying what went wrong."""
    errors = Errors().add(None, words)
    if back == LIST:
        return listing(c, errors, status)
    return portal_page(c, back.rpartition("/")[2], errors, status)


def listing(c: Console, errors: Errors, status: int = 200) -> Response:
    from chalicelib.flows import partners
    portals = partners.list_for_tenant(c.tenant_id)["items"]
    named_notices(c, next((p.name for p in portals if p.portal_id == c.query.get("portal")), None))
    return c.html("console/partner-portals.html", status=status, title="Partner Portals", portals=portals,
                  errors=errors, path=portal_path)


@console_page(LIST, PARTNERS)
def portals(c: Console) -> Response:
    """Every partner portal with its permissions (enabled or not) and its Access switch."""
    if c.posted():
        return switch(c, LIST)
    return listing(c, Errors())


portals.notices = NOTICES  # type: ignore[attr-defined]


@console_page("/console/partner-portals/{portal_id}/agreement", PARTNERS)
def agreement(c: Console, portal_id: str) -> Response:
    """The Legal Agreement: its full text, the box to check, Cancel and Grant Access (POST .../enable's flow)."""
    from chalicelib.flows import partners
    try:
        portal = partners.get_for_tenant(c.tenant_id, portal_id)
        terms = partners.agreement(portal_id)
    except NotFound:
        return not_found(c)
    errors = Errors()
    status = 200
    if c.posted():
        if c.form.get("accept") != "true":
            errors.add("accept", AGREE)
        else:
            try:
                body = partners.EnableBody(accept=True, agreement_version=c.form.get("agreement_version") or None)
                partners.enable(c.tenant_id, portal_id, body, c.principal.subject, c.ip, c.page.user_agent)
            except ValueError:  # pydantic: a version that is not one short line
                errors.add(None, NEWER)
            except Error as err:
                errors.add(None, NEWER if err.code == "agreement_not_accepted" else err.message)
                status = status_of(err)
                portal, terms = partners.get_for_tenant(c.tenant_id, portal_id), partners.agreement(portal_id)
            else:
                return c.done(LIST, "granted", portal=portal_id)
        status = status if status != 200 else 400
    in_force = portal.enabled and portal.enablement is not None \
        and portal.enablement.agreement_version == portal.agreement_version
    return c.html("console/partner-agreement.html", status=status, title=f"Legal Agreement: {portal.name}",
                  portal=portal, terms=terms, errors=errors, in_force=in_force, accepted=accepted(portal),
                  cancel=url(LIST, done="cancelled", portal=portal_id), back=portal_path(portal_id),
                  action=portal_path(portal_id, "agreement"))


def accepted(portal) -> dict | None:
    """The acceptance on record, in words."""
    e = portal.enablement
    if e is None or not e.accepted_at:
        return None
    return {"by": e.accepted_by_email or "an administrator", "when": when(e.accepted_at),
            "version": e.agreement_version, "ip": e.ip or "",
            "off_when": when(e.disabled_at) if e.disabled_at else None}


def portal_page(c: Console, portal_id: str, errors: Errors, status: int = 200) -> Response:
    from chalicelib.flows import partners
    try:
        portal = partners.get_for_tenant(c.tenant_id, portal_id)
    except NotFound:
        return not_found(c)
    named_notices(c, portal.name)
    inactive = c.query.get("inactive") == "1"
    users_query = {"limit": PAGE_SIZE, "include_inactive": "true" if inactive else "false"}
    audit_query = {"limit": PAGE_SIZE}
    if c.query.get("users"):
        users_query["cursor"] = c.query["users"]
    if c.query.get("events"):
        audit_query["cursor"] = c.query["events"]
    users: dict = {"items": [], "next_cursor": None}
    events: dict = {"items": [], "next_cursor": None}
    try:
        users = partners.list_users(portal_id, users_query)
        events = partners.portal_audit(c.tenant_id, portal_id, audit_query)
    except Error as err:  # a cursor that is not one of ours
        errors.add(None, "That page of the list could not be found. Start again from the first page.")
        status = status_of(err)
    here = portal_path(portal_id)
    keep = {"inactive": "1" if inactive else None}
    return c.html("console/partner-portal.html", status=status, title=portal.name, portal=portal, errors=errors,
                  path=portal_path,
                  accepted=accepted(portal), inactive=inactive, users=users["items"],
                  events=rows(c.tenant_id, events["items"], {portal.portal_id: portal.name}),
                  toggle_inactive=url(here, inactive=None if inactive else "1"),
                  more_users=url(here, **keep, users=users["next_cursor"], events=c.query.get("events") or None)
                  if users["next_cursor"] else None,
                  more_events=url(here, **keep, users=c.query.get("users") or None, events=events["next_cursor"])
                  if events["next_cursor"] else None,
                  first_events=not c.query.get("events"), first_users=not c.query.get("users"))


@console_page("/console/partner-portals/{portal_id}", PARTNERS)
def portal(c: Console, portal_id: str) -> Response:
    """One portal: permissions, the acceptance on record, its users and its activity (GET .../users, .../audit)."""
    if c.posted():
        if c.form.get("portal_id") != portal_id:
            return problem(c, portal_path(portal_id), "This switch is for another portal. Reload the page.", 400)
        return switch(c, portal_path(portal_id))
    return portal_page(c, portal_id, Errors())


portal.notices = NOTICES  # type: ignore[attr-defined]
