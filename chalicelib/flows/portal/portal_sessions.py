"""Portal sessions: a short access token (15 minutes, carrying the grants) and a rotating refresh token.

Each sign-in starts a session (sessions.py; its id is the family of its refresh tokens); every refresh spends
the presented refresh token and returns a new one in the same session. A refresh token presented twice has
leaked (or been replayed), so the whole session ends, as OAuth 2.0 Security BCP 4.14 recommends. The guard checks
on every call that the session is alive (sessions.check), so sign-out and "a reset ends every session" take
effect at once, not when the access token expires."""
from functools import lru_cache

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from chalicelib.core import audit, lockout, sessions
from chalicelib.core.errors import Error, Unauthenticated
from chalicelib.core.models import AuditEvent, PortalUser, now
from chalicelib.core.models import Session as PortalSession
from chalicelib.core.security import keys
from chalicelib.core.security.tokens import new_token, token_hash

ACCESS_TOKEN_SECONDS = 15 * 60
REFRESH_TOKEN_SECONDS = sessions.PORTAL_SESSION_SECONDS


def invalid_refresh() -> Error:
    return Unauthenticated("invalid_refresh_token", "This refresh token is not valid; sign in again.")


NOBODY = "-"  # a key no session or user has: read in place of a missing one, so both cost the same


def grants_claim(user: PortalUser) -> list[dict]:
    return [{"customer_id": g.customer_id, "access": g.access, "contact_id": g.contact_id, "admin": bool(g.admin)}
            for g in user.grants or [] if g.access != "none"]


def _access_token(user: PortalUser, family_id: str, kind: str) -> str:
    return keys.sign({"sub": user.user_id, "tid": user.tenant_id, "typ": "portal", "email": user.email,
                      "sid": family_id, "amr": kind, "grants": grants_claim(user)}, ACCESS_TOKEN_SECONDS)


def _new_refresh(user: PortalUser, family_id: str, kind: str) -> str:
    token = new_token()
    expires = now() + REFRESH_TOKEN_SECONDS
    PortalSession(f"rt#{token_hash(token)}", tenant_id=user.tenant_id, user_id=user.user_id, family_id=family_id,
                  expires_at=expires, ttl=expires, kind=kind).save()
    return token


def start(user: PortalUser, kind: str = "password", ip: str | None = None, user_agent: str | None = None) -> dict:
    """A new session for the user (kind: how it started: password, invitation, google, microsoft)."""
    family_id = sessions.start(user.tenant_id, "portal", user.user_id, kind, ip=ip, user_agent=user_agent,
                               seconds=REFRESH_TOKEN_SECONDS, epoch=user.session_epoch).family_id
    return {"access_token": _access_token(user, family_id, kind), "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_SECONDS, "refresh_token": _new_refresh(user, family_id, kind),
            "refresh_expires_in": REFRESH_TOKEN_SECONDS}


def _family(family_id: str) -> PortalSession | None:
    try:
        return PortalSession.get(f"fam#{family_id}", consistent_read=True)
    except DoesNotExist:
        return None


def _revoke_family(family: PortalSession) -> None:
    """Ends a family (an ended one keeps the time it ended): one write that succeeds whenever the family exists,
    so revoking a live, an ended and the decoy family cost the same."""
    try:
        family.update(actions=[PortalSession.revoked_at.set(PortalSession.revoked_at | now())],
                      condition=PortalSession.pk.exists())
    except UpdateError:
        pass


DECOY_EVENT = "0000000000000#decoy"


@lru_cache(maxsize=1)
def _decoys() -> None:
    """An ended family and a disabled user under keys no real one has (tenant "-"): a refresh token that was
    never issued reads and writes these, so its refusal costs what a known token's does, as password checks
    verify an unknown account against a dummy hash. Written once per process if missing."""
    at = now()
    for item, key in ((PortalSession(f"fam#{NOBODY}", tenant_id=NOBODY, user_id=NOBODY, family_id=NOBODY,
                                     expires_at=at, ttl=at + 10 * 365 * 24 * 3600, revoked_at=at), PortalSession.pk),
                      (PortalUser(NOBODY, NOBODY, email=NOBODY, status="disabled",
                                  status_key=f"{NOBODY}#disabled"), PortalUser.user_id)):
        try:
            item.save(condition=key.does_not_exist())
        except PutError:
            pass


def _refused(record: PortalSession | None, family: PortalSession | None, spent: bool, ip: str | None) -> None:
    """After a refused refresh, the same two writes whatever the token was. The family is revoked (a used token
    presented again has leaked or been replayed, so its whole family ends; any other dead token's family is
    ended already). The refusal goes into the audit trail; for a token never issued, whose tenant is unknown,
    the decoy event is written over instead, so nothing accumulates."""
    _revoke_family(family or PortalSession(f"fam#{NOBODY}"))
    if record is None:
        AuditEvent(NOBODY, DECOY_EVENT, at=now(), action="decoy").save()  # one item, overwritten each time
        return
    action = "portal.refresh_token_reused" if not spent else "portal.refresh_refused"
    audit.record(record.tenant_id, action, actor=record.user_id, ip=ip, session=record.family_id)


def _session(key: str) -> PortalSession | None:
    try:
        return PortalSession.get(key, consistent_read=True)
    except DoesNotExist:
        return None


def _user(tenant_id: str, user_id: str) -> PortalUser | None:
    try:
        return PortalUser.get(tenant_id, user_id, consistent_read=True)
    except DoesNotExist:
        return None


@lockout.limit_guesses_per_ip("portal-refresh", "invalid_refresh_token")
def refresh(refresh_token: str, ip: str | None) -> dict:
    """One answer for every refresh token that does not work, as OAuth's `invalid_grant`: never issued, already
    used, expired, or its session ended. And the same work behind it: the token, its family and its user are
    read (the decoys when the token is unknown), spending the token is tried with one conditional write, and a
    refusal makes the same two writes (_refused)."""
    key = f"rt#{token_hash(refresh_token)}"
    record = _session(key)
    if record is None:
        _decoys()
    family = _family(record.family_id if record else NOBODY)
    user = _user(record.tenant_id, record.user_id) if record else _user(NOBODY, NOBODY)
    try:  # spend it: of two concurrent refreshes with one token, one wins and the other counts as reuse
        PortalSession(key).update(actions=[PortalSession.used_at.set(now())],
                                  condition=PortalSession.pk.exists() & PortalSession.used_at.does_not_exist())
        spent = True
    except UpdateError:
        spent = False
    # an app's refresh token (chalicelib/flows/oauth) is the app's, redeemed at /oauth2/token only
    if record is None or not spent or record.client_id or record.expires_at < now() or family is None or user is None \
            or user.status != "active" or not sessions.alive(family, user.session_epoch):
        _refused(record, family, spent, ip)
        raise invalid_refresh()
    return {"access_token": _access_token(user, family.family_id, family.kind), "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_SECONDS, "refresh_token": _new_refresh(user, family.family_id, family.kind),
            "refresh_expires_in": REFRESH_TOKEN_SECONDS}


def sign_out_user(tenant_id: str, user_id: str, actor: str, ip: str | None) -> None:
    """An admin ends every session of a portal user (another tenant's user id is not found)."""
    from chalicelib.flows.portal import invitations
    sessions.end_all(invitations.get_user(tenant_id, user_id), actor=actor, reason="admin_sign_out", ip=ip)
