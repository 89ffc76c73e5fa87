"""The audit trail: one item per security-relevant action. Details must never carry a secret."""
import secrets
import time

from pydantic import BaseModel

from chalicelib.models import AuditEvent

FORBIDDEN_DETAIL_KEYS = {"password", "new_password", "token", "code", "secret", "client_secret"}


def record(tenant_id: str, action: str, *, actor: str | None = None, target: str | None = None,
           ip: str | None = None, **details) -> None:
    assert not FORBIDDEN_DETAIL_KEYS & set(details), "secrets never go into the audit trail"
    now_ms = int(time.time() * 1000)
    AuditEvent(tenant_id, f"{now_ms:013d}#{secrets.token_hex(4)}", at=now_ms // 1000, action=action,
               actor=actor, target=target, ip=ip, details=details).save()


# --- reading the trail (admins' audit views of a person, a portal user, a partner portal) ------------------------

class AuditEntry(BaseModel):
    at: str
    action: str
    actor: str | None = None
    target: str | None = None
    ip: str | None = None
    details: dict = {}


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None = None


def trail(tenant_id: str, subject_id: str, query: dict, *, as_actor: bool = True) -> dict:
    """Events by (when as_actor) or about one subject, newest first, a page at a time. The table is keyed by
    tenant and time, so this reads the tenant's events with a filter until the page is full."""
    from chalicelib.directory import iso_at, make_cursor, page_args
    limit, start = page_args(query)
    start_key = {"tenant_id": {"S": tenant_id}, "event_id": {"S": start}} if start else None
    about = AuditEvent.target == subject_id
    results = AuditEvent.query(tenant_id, scan_index_forward=False, last_evaluated_key=start_key, page_size=200,
                               filter_condition=(about | (AuditEvent.actor == subject_id)) if as_actor else about)
    items: list[AuditEvent] = []
    more = False
    for event in results:
        if len(items) >= limit:
            more = True
            break
        items.append(event)
    return {"items": [AuditEntry(at=iso_at(e.at), action=e.action, actor=e.actor, target=e.target, ip=e.ip,
                                 details=e.details.as_dict() if e.details else {}) for e in items],
            "next_cursor": make_cursor({"event_id": {"S": items[-1].event_id}}, "event_id") if more else None}
