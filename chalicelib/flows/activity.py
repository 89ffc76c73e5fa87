"""The business's audit trail, filtered by who it concerns and when (the console's Activity, audit:read).

Every read is a Query, never a Scan. The audit table's own key is (tenant_id, event_id) and event_id starts with
the time in ms, so the whole trail between two dates is one range of the table's key; one subject's events are
one range of its key on by-trail (about it) and by-actor (done by it), as core/audit.trail reads them.
- no subject: the table, tenant_id with event_id between the dates;
- one subject: its index keys with event_id between the dates (what /v1/people/{id}/audit etc. read, bounded);
- two or three subjects (say a person AND a partner portal): the most selective one's index keys (a portal user,
  then a person, then a partner portal, whose every API call is an event), keeping in Python the events that
  also concern the others. No index serves "A and B", so this reads events of the first subject that may not
  match: at most READ_BUDGET per index per page. When the budget runs out before the page fills, the page is
  shorter and its cursor continues from where the reading stopped ("Next page" reads further back), so a page
  never costs more than about READ_BUDGET items per index, however rare the match."""
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Iterable

from chalicelib.core.audit import AuditEntry
from chalicelib.core.errors import Invalid, NotFound
from chalicelib.core.identity import normalise_email
from chalicelib.core.models import AuditEvent
from chalicelib.core.paging import iso_at, make_cursor, page_args

READ_BUDGET = 200  # events read per index per page when several subjects must all match (one Query page)
EVENT_ID = re.compile(r"^\d{13}#[0-9a-f]{8}$")
ORDER = {"portal_user": 0, "person": 1, "partner_portal": 2}  # most selective first


@dataclass(frozen=True)
class Subject:
    kind: str  # person, portal_user, partner_portal
    id: str

    def names(self) -> tuple[str, ...]:
        """What the event's actor or target is when the event concerns this subject."""
        return (self.id, f"partner:{self.id}") if self.kind == "partner_portal" else (self.id,)

    def concerns(self, event: AuditEvent) -> bool:
        return event.actor in self.names() or event.target in self.names()


# --- finding the subjects a person typed ------------------------------------------------------------------------

def person(tenant_id: str, identifier: str) -> Subject:
    """A staff member by username, email or mobile (people.person_id_for: the sign-in's lookups)."""
    from chalicelib.flows.staff import people
    person_id = people.person_id_for(tenant_id, identifier) if identifier.strip() else None
    if person_id is None:
        raise NotFound("person_not_found", "No one in this business has that username, email or mobile number.",
                       field="person")
    return Subject("person", person_id)


def portal_user(tenant_id: str, email: str) -> Subject:
    from chalicelib.flows.portal import invitations
    try:
        user = invitations.find_user(tenant_id, normalise_email(email))
    except ValueError:
        raise Invalid("invalid_email", "Enter the portal user's email address, like name@example.com.",
                      field="portal_user") from None
    if user is None:
        raise NotFound("portal_user_not_found", "No portal user of this business has that email.",
                       field="portal_user")
    return Subject("portal_user", user.user_id)


def partner_portal(portal_id: str) -> Subject:
    from chalicelib.flows import partners
    try:
        return Subject("partner_portal", partners.get_portal(portal_id).portal_id)
    except NotFound:
        raise NotFound("partner_portal_not_found", "No such partner portal.", field="partner_portal") from None


# --- reading ----------------------------------------------------------------------------------------------------

def _ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


def bounds(since: date | None, until: date | None, cursor: str | None) -> tuple[str, str]:
    """The event_id range (both ends included) from the first ms of `since` to the last of `until` (UTC), and
    no later than the cursor (the caller drops the cursor's own event)."""
    if since and until and since > until:
        raise Invalid("invalid_dates", "The From date is after the To date.", field="until")
    for day, field in ((since, "since"), (until, "until")):
        if day is not None and day.year < 1970:  # before the epoch: no event, and no valid key range to ask for
            raise Invalid("invalid_dates", "Choose a date from 1970 on.", field=field)
    low = f"{_ms(since):013d}" if since else "0"
    high = f"{_ms(until) + 86_400_000 - 1:013d}#~" if until else "~"
    if cursor is not None and cursor < high:
        high = cursor
    return low, high


def _reads(tenant_id: str, primary: Subject | None, low: str, high: str, page_size: int) -> list[Iterable]:
    """One newest-first Query per place the primary subject's events are (or the table for no subject)."""
    between = AuditEvent.event_id.between(low, high)
    if primary is None:
        return [AuditEvent.query(tenant_id, between, scan_index_forward=False, page_size=page_size)]
    reads: list[Iterable] = [AuditEvent.by_trail.query(f"{tenant_id}#{primary.id}", between, scan_index_forward=False,
                                       page_size=page_size)]
    if primary.kind != "partner_portal":  # a partner's events are all about its portal: by-trail has them all
        reads.append(AuditEvent.by_actor.query(f"{tenant_id}#{primary.id}", between, scan_index_forward=False,
                                               page_size=page_size))
    return reads


def search(tenant_id: str, subjects: list[Subject], since: date | None, until: date | None, query: dict) -> dict:
    """The events that concern every subject (none: all of them), between the dates, newest first, a page at a
    time (limit, cursor as every list of the API). `searched_to` is set when the read budget ended the page
    early: the time the reading got back to (the next page goes on from there)."""
    limit, cursor = page_args(query)
    if cursor is not None and not EVENT_ID.match(cursor):
        raise Invalid("invalid_cursor", "The cursor is not one this API gave out.", field="cursor")
    low, high = bounds(since, until, cursor)
    if high < low:  # a cursor from before `since`: nothing left (DynamoDB refuses a BETWEEN the wrong way round)
        return {"items": [], "next_cursor": None, "searched_to": None}
    ordered = sorted(subjects, key=lambda s: ORDER[s.kind])
    primary, others = (ordered[0], ordered[1:]) if ordered else (None, [])
    found: dict[str, AuditEvent] = {}
    frontier: str | None = None  # below this, a budget-limited read may have missed events
    for results in _reads(tenant_id, primary, low, high, page_size=limit + 1 if not others else 200):
        matched = read = 0
        for event in results:
            read += 1
            if event.event_id == cursor:
                continue
            if all(s.concerns(event) for s in others):
                found[event.event_id] = event
                matched += 1
                if matched > limit:
                    break
            if others and read >= READ_BUDGET:
                frontier = max(frontier or "", event.event_id)
                break
    ordered_events = sorted((e for e in found.values() if frontier is None or e.event_id >= frontier),
                            key=lambda e: e.event_id, reverse=True)
    items = ordered_events[:limit]
    if len(ordered_events) > limit:
        next_id: str | None = items[-1].event_id
    else:
        next_id = frontier
    return {"items": [entry(e) for e in items],
            "next_cursor": make_cursor({"event_id": {"S": next_id}}, "event_id") if next_id else None,
            "searched_to": iso_at(int(frontier[:13]) / 1000) if frontier and len(ordered_events) <= limit else None}


def entry(e: AuditEvent) -> AuditEntry:
    details: dict[str, Any] = e.details.as_dict() if e.details else {}
    return AuditEntry(at=iso_at(e.at), action=e.action, actor=e.actor, target=e.target, ip=e.ip, details=details)


__all__ = ["READ_BUDGET", "Subject", "bounds", "partner_portal", "person", "portal_user", "search"]
