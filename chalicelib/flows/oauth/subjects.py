"""Who signs in to an app: a portal user, a staff member, or a secure access link's holder; read live, and the
session, tokens and claims each gets.

An app's tokens live in a session of their own (sessions.py), started when the app redeems its code and bound to
the app (`client_id`), so an app's sign-out, a replayed refresh token or a reused code ends that app's session and
not the browser's sign-in to the hosted pages (the hosted session, hosted.py). The app's session takes the epoch of
the hosted session it came from: a password change or a disable between the sign-in and the code's redemption
ends it too. Access tokens are the product's own (the same claims as the API's sign-in routes give), so the guard
checks them live on every call."""
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.core import sessions
from chalicelib.core.models import Session
from chalicelib.core.security import keys
from chalicelib.core.security.tokens import new_token, token_hash

ACCESS_TOKEN_SECONDS = 15 * 60
# How long an app's sign-in lasts (its refresh tokens rotate within it): a customer stays signed in to the portal
# app for 30 days, as with the API's sign-in; a technician's app for a working day (12 hours), then signs in again.
APP_SESSION_SECONDS = {"portal": sessions.PORTAL_SESSION_SECONDS, "staff": 12 * 3600, "link": 15 * 60}
AUDIENCE_OF = {"portal": "portal", "link": "portal", "staff": "staff"}


@dataclass
class Subject:
    """A signed-in account, as the provider sees it: read live from its session and its record."""
    tenant_id: str
    kind: str  # portal | staff | link
    user_id: str  # the person, the portal user, or "link:<customer_id>"
    record: Any  # Person | PortalUser | Customer
    session: Session  # the hosted session (or, for a refresh, the app's session)
    link: str | None = None  # a link session's link (its hash prefix): the link must still be the customer's

    def get_user_id(self) -> str:
        return self.user_id


def _record(tenant_id: str, kind: str, user_id: str) -> Any:
    model = sessions.SUBJECTS[kind]
    try:
        return model.get(tenant_id, user_id.removeprefix("link:"), consistent_read=True)
    except DoesNotExist:
        return None


def _session(session_id: str) -> Session | None:
    try:
        return Session.get(f"fam#{session_id}", consistent_read=True)
    except DoesNotExist:
        return None


def active(kind: str, record: Any, link: str | None) -> bool:
    if record is None:
        return False
    if kind == "staff":
        return record.account_status == "active"
    if kind == "portal":
        return record.status == "active"
    return sessions.link_current(record, link)


def live(tenant_id: str, kind: str, user_id: str, session_id: str, link: str | None = None) -> Subject | None:
    """The account behind a session, when the session is alive and the account active; else None."""
    from chalicelib.core import tenants
    session = _session(session_id)
    if session is None or session.tenant_id != tenant_id or session.user_id != user_id \
            or session.subject_kind != kind or not tenants.is_active(tenant_id):
        return None
    record = _record(tenant_id, kind, user_id)
    if not active(kind, record, link) or not sessions.alive(session, getattr(record, "session_epoch", None)):
        return None
    return Subject(tenant_id, kind, user_id, record, session, link)


# --- the app's session and tokens ---------------------------------------------------------------------------------

def start_app_session(subject: Subject, client_id: str, scope: str, ip: str | None,
                      user_agent: str | None) -> Session:
    """The app's own session, with the hosted session's epoch and sign-in method; as long as an access token
    unless the app asked for `offline_access` (refresh tokens)."""
    offline = "offline_access" in scope.split()
    seconds = APP_SESSION_SECONDS[subject.kind] if offline else ACCESS_TOKEN_SECONDS
    session = sessions.start(subject.tenant_id, subject.kind, subject.user_id, subject.session.kind, ip=ip,
                             user_agent=user_agent, seconds=seconds, epoch=subject.session.epoch)
    session.update(actions=[Session.client_id.set(client_id), Session.scope.set(scope)])
    return session


def access_token(subject: Subject, session_id: str, client_id: str) -> str:
    """The product's own access token for this subject (what the API's sign-in routes give), naming the app
    (`cid`): the guard refuses it once the app is deleted (sessions.check)."""
    record = subject.record
    if subject.kind == "staff":
        from chalicelib.flows.staff import people
        claims = {"sub": record.person_id, "tid": subject.tenant_id, "typ": "staff", "sid": session_id,
                  "role": record.role, "perms": people.effective_permissions(record), "amr": ["pwd"]}
    elif subject.kind == "portal":
        from chalicelib.flows.portal import portal_sessions
        claims = {"sub": record.user_id, "tid": subject.tenant_id, "typ": "portal", "email": record.email,
                  "sid": session_id, "amr": subject.session.kind, "grants": portal_sessions.grants_claim(record)}
    else:
        claims = {"sub": subject.user_id, "tid": subject.tenant_id, "typ": "portal", "amr": "access_link",
                  "sid": session_id, "lnk": subject.link,
                  "grants": [{"customer_id": record.customer_id, "access": "billing", "contact_id": None,
                              "admin": False}]}
    return keys.sign({**claims, "cid": client_id}, ACCESS_TOKEN_SECONDS)


def new_refresh_token(subject: Subject, session: Session, client_id: str, scope: str) -> str:
    """A refresh token in the app's session, bound to the app and the scope granted."""
    token = new_token()
    Session(f"rt#{token_hash(token)}", tenant_id=subject.tenant_id, user_id=subject.user_id,
            family_id=session.family_id, subject_kind=subject.kind, expires_at=session.expires_at,
            ttl=session.expires_at, kind=session.kind, client_id=client_id, scope=scope,
            link=subject.link).save()
    return token


# --- what an app may know about the subject -----------------------------------------------------------------------

def claims(subject: Subject, scope: str) -> dict:
    """OpenID Connect's standard claims by scope, plus the business (`tenant_id`) and, for portal users, what
    they may see (`grants`)."""
    scopes = set(scope.split())
    record = subject.record
    out: dict = {"sub": subject.user_id, "tenant_id": subject.tenant_id}
    if subject.kind == "staff":
        email, name = record.email, record.name
        out["role"] = record.role
    elif subject.kind == "portal":
        from chalicelib.flows.portal import portal_sessions
        email, name = record.email, getattr(record, "name", None)
        out["grants"] = portal_sessions.grants_claim(record)
    else:
        email, name = None, record.name
        out["grants"] = [{"customer_id": record.customer_id, "access": "billing", "contact_id": None,
                          "admin": False}]
    if "email" in scopes and email:
        out["email"] = email
        # portal emails were proven by the invitation or reset link; staff emails by the invitation they accepted
        out["email_verified"] = subject.kind == "portal" or bool(getattr(record, "password_hash", None))
    if "profile" in scopes and name:
        out["name"] = name
    return out

