"""One session model for staff, portal users and access-link holders, checked live on every authenticated call.

A sign-in (password, invitation, Google, Microsoft, access link) starts a session: an item in the sessions table
whose id every access token of that sign-in carries as `sid`. The guard (api.Api._invoke) reads, in ONE
BatchGetItem, the caller's tenant, the session and the account behind it (the staff person, the portal user or the
customer of an access link), and refuses the call with 401 `session_ended` when:

- the session was ended (signed out, ended by an admin, its refresh token replayed) or has expired;
- the account is gone, disabled, or not active;
- the session's epoch is not the account's `session_epoch` any more: what ends every session at once without
  touching each one (a password change or reset, a new temporary password, a disable, a role or permission
  change, "sign out everywhere") adds one to it. A session takes the epoch its sign-in read before the password
  was checked, so a sign-in that overlaps such an end cannot outlive it;
- it is an app's session (flows/oauth) and the app is no longer registered: an app's access tokens name it
  (`cid`), and the same BatchGetItem reads it.

A staff caller's permissions are those of the live person, never only those of the token. No cache: a change is in
force on the very next call, on every container (tests/test_sessions.py; cost in BENCHMARKS.md)."""
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from chalicelib.core import audit
from chalicelib.core.errors import Error, NotFound, Unauthenticated
from chalicelib.core.models import App, Customer, Person, PortalUser, Session, Tenant, _transaction_connection, now
from chalicelib.core.principal import Principal
from chalicelib.core.schema import Shape

STAFF_SESSION_SECONDS = 15 * 60  # as long as its access token: staff have no refresh token (yet)
PORTAL_SESSION_SECONDS = 30 * 24 * 3600  # as long as its refresh tokens
LINK_SESSION_SECONDS = 15 * 60
LAST_USED_EVERY_SECONDS = 60  # last_used_at is written at most once a minute per session, not on every call
LIST_LIMIT = 100

# The subject records by kind of session, and whether each is an active account.
SUBJECTS: dict[str, Any] = {"staff": Person, "portal": PortalUser, "link": Customer}


def session_ended(message: str = "This session has ended; sign in again.") -> Error:
    return Unauthenticated("session_ended", message)


class SessionOut(Shape):
    session_id: str
    created_at: str
    last_used_at: str
    ip: str | None = None
    user_agent: str | None = None
    method: str  # how it started: password | invitation | google | microsoft | access_link
    current: bool


class SessionList(Shape):
    sessions: list[SessionOut]


def subject_kind_of(principal: Principal) -> str:
    return "link" if principal.kind == "portal" and principal.subject.startswith("link:") else principal.kind


def _user_key(tenant_id: str, subject_kind: str, user_id: str) -> str:
    return f"{tenant_id}#{subject_kind}#{user_id}"


def start(tenant_id: str, subject_kind: str, user_id: str, method: str, *, ip: str | None,
          user_agent: str | None, seconds: int, epoch: float | None = None) -> Session:
    """A new session (its id goes into every access token of this sign-in as `sid`)."""
    session_id = uuid.uuid4().hex
    expires = now() + seconds
    session = Session(f"fam#{session_id}", tenant_id=tenant_id, user_id=user_id, family_id=session_id,
                      subject_kind=subject_kind, user_key=_user_key(tenant_id, subject_kind, user_id),
                      expires_at=expires, ttl=expires + 24 * 3600, kind=method, ip=ip, epoch=int(epoch or 0),
                      user_agent=(user_agent or "")[:256] or None)
    session.save()
    return session


def alive(session: Session | None, epoch: float | None) -> bool:
    """Not ended, not expired, and of the account's current epoch."""
    if session is None or session.revoked_at or session.expires_at < now():
        return False
    return int(session.epoch or 0) == int(epoch or 0)


def _account_active(principal: Principal, subject_kind: str, record: Any) -> bool:
    if subject_kind == "staff":
        return record.account_status == "active"
    if subject_kind == "portal":
        return record.status == "active"
    return link_current(record, principal.claims.get("lnk"))


def link_expired(customer: Customer) -> bool:
    return customer.access_link_expires_at is None or customer.access_link_expires_at <= now()


def link_current(customer: Customer, link_claim: object) -> bool:
    """Whether a link session's link (the token's `lnk`) is still the customer's link and not expired: asked on
    every call of a link session, on the customer record the guard has already read."""
    return (customer.access_link_hash or "")[:16] == link_claim and not link_expired(customer)


# --- the live check ---------------------------------------------------------------------------------------------

@dataclass
class Live:
    """What the guard read for an authenticated call: the tenant's state, the session and the account."""
    tenant_active: bool
    session: Session | None
    record: Any
    app: App | None = None  # an app's session: the app, when still registered


def _record_key(subject_kind: str, tenant_id: str, user_id: str) -> dict:
    range_name = {"staff": "person_id", "portal": "user_id", "link": "customer_id"}[subject_kind]
    return {"tenant_id": {"S": tenant_id}, range_name: {"S": user_id.removeprefix("link:")}}


def read(principal: Principal) -> Live:
    """One BatchGetItem: the session and the account (strongly consistent, so an end or a disable is seen by the
    very next call), and the tenant only when this container's cache of it is stale (tenants.py: a tenant's disable
    reaches every container within tenants.CACHE_SECONDS)."""
    from chalicelib.core import tenants as tenants_
    subject_kind = subject_kind_of(principal)
    model = SUBJECTS[subject_kind]
    sid = principal.claims.get("sid")
    sid = sid if isinstance(sid, str) and sid else "-"
    request: dict[str, dict] = {
        Session.Meta.table_name: {"Keys": [{"pk": {"S": f"fam#{sid}"}}], "ConsistentRead": True},
    }
    tenant_active = tenants_.cached_active(principal.tenant_id)
    if tenant_active is None:
        request[Tenant.Meta.table_name] = {"Keys": [{"tenant_id": {"S": principal.tenant_id}}]}
    request[model.Meta.table_name] = {"Keys": [_record_key(subject_kind, principal.tenant_id, principal.subject)],
                                      "ConsistentRead": True}
    client_id = principal.claims.get("cid")
    if isinstance(client_id, str) and 0 < len(client_id) <= 64:
        request[App.Meta.table_name] = {"Keys": [{"client_id": {"S": client_id}}], "ConsistentRead": True}
    found: dict[str, list] = {}
    client = _transaction_connection().client
    for attempt in range(8):  # DynamoDB may leave keys unprocessed when throttled: ask again, backing off
        answer = client.batch_get_item(RequestItems=request)
        for table, items in answer.get("Responses", {}).items():
            found.setdefault(table, []).extend(items)
        request = answer.get("UnprocessedKeys") or {}
        if not request:
            break
        time.sleep(min(0.5, 0.02 * 2 ** attempt))
    else:
        raise RuntimeError("the session check's reads stayed unprocessed")
    tenants = found.get(Tenant.Meta.table_name) or []
    sessions = found.get(Session.Meta.table_name) or []
    records = found.get(model.Meta.table_name) or []
    apps = found.get(App.Meta.table_name) or []
    if tenant_active is None:
        tenant = Tenant.from_raw_data(tenants[0]) if tenants else None
        tenant_active = tenants_.remember(principal.tenant_id, tenant is not None and tenant.status == "active")
    return Live(tenant_active=tenant_active,
                session=Session.from_raw_data(sessions[0]) if sessions else None,
                record=model.from_raw_data(records[0]) if records else None,
                app=App.from_raw_data(apps[0]) if apps else None)


def check(principal: Principal, live: Live) -> None:
    """Refuses a call whose session has ended; records when the session was last used (once a minute)."""
    subject_kind = subject_kind_of(principal)
    session, record = live.session, live.record
    if session is None or record is None or session.tenant_id != principal.tenant_id \
            or session.user_id != principal.subject or session.subject_kind != subject_kind:
        raise session_ended()
    if not _account_active(principal, subject_kind, record) \
            or not alive(session, getattr(record, "session_epoch", None)):
        raise session_ended()
    if session.client_id and (live.app is None or live.app.client_id != session.client_id
                              or live.app.tenant_id != session.tenant_id):
        raise session_ended("The app this session belongs to was removed; sign in again.")
    at = now()
    if at - int(session.last_used_at or session.created_ms // 1000) >= LAST_USED_EVERY_SECONDS:
        session.update(actions=[Session.last_used_at.set(at)])


# --- seeing and ending sessions ----------------------------------------------------------------------------------

def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


def _out(session: Session, current_sid: str | None) -> SessionOut:
    created = int(session.created_ms // 1000)
    return SessionOut(session_id=session.family_id, created_at=_iso(created),
                      last_used_at=_iso(int(session.last_used_at or created)), ip=session.ip,
                      user_agent=session.user_agent, method=session.kind, current=session.family_id == current_sid)


def _of(tenant_id: str, subject_kind: str, user_id: str, epoch: int | None) -> list[Session]:
    """The account's live sessions, newest first."""
    found = Session.by_user.query(_user_key(tenant_id, subject_kind, user_id), scan_index_forward=False)
    return [s for s in found if alive(s, epoch)][:LIST_LIMIT]


def listing(tenant_id: str, subject_kind: str, user_id: str, record: Any,
            current_sid: str | None = None) -> SessionList:
    return SessionList(sessions=[_out(s, current_sid)
                                 for s in _of(tenant_id, subject_kind, user_id, getattr(record, "session_epoch", None))])


def own(principal: Principal) -> SessionList:
    """The caller's sessions. An access-link session sees only itself: a link is shared by whoever has it, and
    one holder must not see where the others are."""
    live = principal.live
    sid = principal.claims.get("sid")
    if subject_kind_of(principal) == "link":
        return SessionList(sessions=[_out(live.session, sid)])
    return listing(principal.tenant_id, principal.kind, principal.subject, live.record, sid)


def end(session: Session, *, actor: str, reason: str, ip: str | None) -> None:
    """Ends one session (and so every refresh token in it); idempotent; audited with who ended it."""
    at = now()
    session.update(actions=[Session.revoked_at.set(Session.revoked_at | at),
                            Session.ended_by.set(Session.ended_by | actor)])
    audit.record(session.tenant_id, "session.ended", actor=actor, target=session.user_id, ip=ip,
                 session=session.family_id, reason=reason)


def end_own(principal: Principal, session_id: str, ip: str | None) -> None:
    """Ends one of the caller's own sessions by id; another account's session id is simply not found."""
    own_sid = principal.claims.get("sid")
    session = principal.live.session if session_id == own_sid else _get(session_id) if len(session_id) <= 64 else None
    if session is None or session.tenant_id != principal.tenant_id or session.user_id != principal.subject \
            or session.subject_kind != subject_kind_of(principal):
        raise NotFound("session_not_found", "You have no such session.")
    end(session, actor=principal.subject, reason="signed_out", ip=ip)


def sign_out(principal: Principal, ip: str | None) -> None:
    end(principal.live.session, actor=principal.subject, reason="signed_out", ip=ip)


def _get(session_id: str) -> Session | None:
    try:
        return Session.get(f"fam#{session_id}", consistent_read=True)
    except Session.DoesNotExist:
        return None


def end_all(record: Person | PortalUser, *, actor: str, reason: str, ip: str | None) -> None:
    """Every session of the account ends at once: one write on the account (its session_epoch moves on)."""
    model = type(record)
    record.update(actions=[model.session_epoch.add(1)], add_version_condition=False)
    subject = record.person_id if isinstance(record, Person) else record.user_id
    audit.record(record.tenant_id, "session.ended_all", actor=actor, target=subject, ip=ip, reason=reason)


def sign_out_everywhere(principal: Principal, ip: str | None) -> None:
    if subject_kind_of(principal) == "link":  # a link holder has only this one session to end
        sign_out(principal, ip)
        return
    end_all(principal.live.record, actor=principal.subject, reason="signed_out_everywhere", ip=ip)
