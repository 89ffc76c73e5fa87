"""Activity (audit:read): the business's audit trail in words, filtered by person, portal user, partner portal and
date (a GET form: every filter is in the address, so a filtered view can be bookmarked or sent), a page at a time
with Next page. flows/activity.py reads it through the table's key and its indexes, never a scan.

Also the rows every activity table of the console shows (`rows`): when, what happened, by whom, about whom."""
from datetime import date

from chalice import Response

from chalicelib.core.errors import Error
from chalicelib.web.console.shell import Console, console_page
from chalicelib.web.console.words import actor_words, describe, names_for, when
from chalicelib.web.pages.forms import Errors, explain
from chalicelib.web.pages.render import url

AUDIT = "audit:read"
PAGE_SIZE = "50"
MAX_FILTER = 254  # the longest email address

# A partner's API calls (core: partner.call's route and outcome), in words.
PARTNER_ROUTES = {
    "GET /v1/partner/permissions": "read its permissions",
    "GET /v1/partner/customers": "listed customers",
    "GET /v1/partner/customers/{customer_id}": "looked at a customer",
    "GET /v1/partner/locations": "listed service locations",
}
PARTNER_OUTCOMES = {
    "allowed": "",
    "permission_not_granted": "refused: the portal does not have that permission",
    "partner_access_disabled": "refused: access is switched off",
    "session_ended": "refused: its sign-in was from before access was switched off",
}


def event_words(event, names: dict) -> str:
    text = describe(event, names)
    if event.action == "partner.call":
        details = event.details or {}
        route = details.get("route", "")
        did = PARTNER_ROUTES.get(route, "made a call")
        refused = PARTNER_OUTCOMES.get(details.get("outcome", "allowed"), "refused")
        text = f"Partner {did}" + (f" ({refused})" if refused else "")
    return text


def about(event, names: dict) -> str:
    """Whom the event concerns: its target, or who acted on their own account (a sign-in)."""
    if event.action.startswith("tenant."):
        return "The business"
    who = event.target or event.actor
    if not who:
        return ""
    if who.startswith("partner:"):
        who = who.partition(":")[2]
    return names.get(who, "")


def rows(tenant_id: str, items: list, portal_names: dict[str, str]) -> list[dict]:
    """A page of audit entries as table rows, names read in a few batch reads (words.names_for)."""
    names = {**names_for(tenant_id, items), **portal_names}
    return [{"at": e.at, "when": when(e.at), "what": event_words(e, names), "by": actor_words(e.actor, names),
             "about": about(e, names), "ip": e.ip or ""} for e in items]


def _date(value: str, name: str, errors: Errors) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.add(name, "Enter a date like 2026-12-04 (year, month, day).")
        return None


@console_page("/console/activity", AUDIT, form=False)
def activity(c: Console) -> Response:
    """The audit trail, filtered, newest first."""
    from chalicelib.flows import activity as trail
    from chalicelib.flows import partners
    q = {k: (c.query.get(k) or "").strip() for k in ("person", "portal_user", "partner_portal", "since", "until")}
    errors = Errors()
    for name, value in q.items():
        if len(value) > MAX_FILTER:
            errors.add(name, "This is too long.")
    portals = partners.list_for_tenant(c.tenant_id)["items"]
    portal_names = {p.portal_id: p.name for p in portals}
    subjects: list = []
    if not errors:
        for name, find in (("person", lambda v: trail.person(c.tenant_id, v)),
                           ("portal_user", lambda v: trail.portal_user(c.tenant_id, v)),
                           ("partner_portal", trail.partner_portal)):
            if q[name]:
                try:
                    subjects.append(find(q[name]))
                except Error as err:
                    explain(err, errors, {name: name})
    since, until = _date(q["since"], "since", errors), _date(q["until"], "until", errors)
    page: dict = {"items": [], "next_cursor": None, "searched_to": None}
    if not errors:
        try:
            page = trail.search(c.tenant_id, subjects, since, until,
                                {"limit": PAGE_SIZE, **({"cursor": c.query["cursor"]} if "cursor" in c.query else {})})
        except Error as err:
            explain(err, errors, {"since": "since", "until": "until"})
    filters = {k: v for k, v in q.items() if v}
    more = url("/console/activity", **filters, cursor=page["next_cursor"]) if page["next_cursor"] else None
    return c.html("console/activity.html", status=400 if errors else 200, title="Activity", errors=errors,
                  filters=q, portals=portals, events=rows(c.tenant_id, page["items"], portal_names), more=more,
                  searched_to=when(page["searched_to"]) if page["searched_to"] else None,
                  filtered=bool(filters), first_page="cursor" not in c.query)
