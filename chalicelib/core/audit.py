"""The audit trail: one item per security-relevant action. Details must never carry a secret."""
import hashlib
import secrets
import time
from typing import Any

from chalicelib.core.models import AuditEvent
from chalicelib.core.paging import iso_at, make_cursor, page_args
from chalicelib.core.schema import Shape

FORBIDDEN_DETAIL_KEYS = {"password", "new_password", "token", "code", "secret", "client_secret"}


def record(tenant_id: str, action: str, *, actor: str | None = None, target: str | None = None,
           ip: str | None = None, **details) -> None:
    assert not FORBIDDEN_DETAIL_KEYS & set(details), "secrets never go into the audit trail"
    now_ms = int(time.time() * 1000)
    # Each subject's trail is its own key (the by-trail and by-actor indexes), so reading one is a query.
    AuditEvent(tenant_id, f"{now_ms:013d}#{secrets.token_hex(4)}", at=now_ms // 1000, action=action,
               actor=actor, target=target, ip=ip, details=details,
               trail_key=f"{tenant_id}#{target}" if target else None,
               actor_key=f"{tenant_id}#{actor}" if actor and actor != target else None).save()


TRANSACTION_ITEMS = 100  # DynamoDB's most per transaction


def record_many(tenant_id: str, action: str, events: list[dict], *, actor: str | None = None,
                once_per: str | None = None) -> None:
    """One event per item ({"target": ..., **details}), written 100 per TransactWriteItems of puts: a bulk run puts
    one event in each invited user's trail without one PutItem per user. Not BatchWriteItem: IAM cannot tell its
    puts from its deletes, and no function may delete from the trail (each put of a transaction is authorised as
    a PutItem).

    With `once_per` (a bulk job's id) each item says when it happened (`at`, seconds) and its event id derives from
    that time, `once_per` and the target: a run resumed after a crash writes the events of the chunk it decides
    again once more, and each lands on the same item (a put replaces it) instead of a second event."""
    from chalicelib.core.models import transaction
    now_ms = int(time.time() * 1000)
    for start in range(0, len(events), TRANSACTION_ITEMS):
        with transaction() as writes:
            for item in events[start:start + TRANSACTION_ITEMS]:
                details = {k: v for k, v in item.items() if k not in ("target", "at")}
                assert not FORBIDDEN_DETAIL_KEYS & set(details), "secrets never go into the audit trail"
                target = item["target"]
                at_ms, tag = now_ms, secrets.token_hex(4)
                if once_per is not None:
                    at_ms = int(item["at"]) * 1000
                    tag = hashlib.sha256(f"{once_per}|{target}".encode()).hexdigest()[:24]  # 96 bits: no two meet
                writes.save(AuditEvent(tenant_id, f"{at_ms:013d}#{tag}", at=at_ms // 1000,
                                       action=action, actor=actor, target=target, details=details,
                                       trail_key=f"{tenant_id}#{target}",
                                       actor_key=f"{tenant_id}#{actor}" if actor and actor != target else None))


# --- reading the trail (admins' audit views of a person, a portal user, a partner portal) ------------------------

class AuditEntry(Shape):
    at: str
    action: str
    actor: str | None = None
    target: str | None = None
    ip: str | None = None
    details: dict = {}


class AuditPage(Shape):
    items: list[AuditEntry]
    next_cursor: str | None = None


def trail(tenant_id: str, subject_id: str, query: dict, *, as_actor: bool = True) -> dict:
    """Events by (when as_actor) or about one subject, newest first, a page at a time: a query of the subject's
    key on by-trail (about it) and, when as_actor, one on by-actor (by it, about another), each of one page plus
    one item, merged by event_id. Every page is full; the cursor is the last event_id shown. The indexes are
    eventually consistent: an event recorded a moment ago may show a moment later."""
    limit, start = page_args(query)
    older = AuditEvent.event_id < start if start else None
    found: dict[str, AuditEvent] = {}
    indexes: list[tuple[Any, str]] = [(AuditEvent.by_trail, f"{tenant_id}#{subject_id}")]
    if as_actor:
        indexes.append((AuditEvent.by_actor, f"{tenant_id}#{subject_id}"))
    for index, key in indexes:
        for event in index.query(key, older, scan_index_forward=False, limit=limit + 1):
            found[event.event_id] = event
    ordered = sorted(found.values(), key=lambda e: e.event_id, reverse=True)
    items, more = ordered[:limit], len(ordered) > limit
    return {"items": [AuditEntry(at=iso_at(e.at), action=e.action, actor=e.actor, target=e.target, ip=e.ip,
                                 details=e.details.as_dict() if e.details else {}) for e in items],
            "next_cursor": make_cursor({"event_id": {"S": items[-1].event_id}}, "event_id") if more else None}
