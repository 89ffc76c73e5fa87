"""Portal sessions: a short access token (15 minutes, carrying the grants) and a rotating refresh token.

Each sign-in starts a family; every refresh spends the presented refresh token and returns a new one in the
same family. A refresh token presented twice has leaked (or been replayed), so the whole family is revoked, as
OAuth 2.0 Security BCP 4.14 recommends. Portal routes check on every call that the family is alive, so sign-out
and "a reset ends every session" take effect at once, not when the access token expires."""
import uuid
from functools import lru_cache

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from chalicelib import audit, lockout
from chalicelib.api import ApiError, Principal
from chalicelib.models import AuditEvent, PortalSession, PortalUser, now, now_ms
from chalicelib.security import keys
from chalicelib.security.tokens import new_token, token_hash

ACCESS_TOKEN_SECONDS = 15 * 60
REFRESH_TOKEN_SECONDS = 30 * 24 * 3600
SESSION_ENDED = ApiError(401, "session_ended", "This session has ended; sign in again.")
INVALID_REFRESH = ApiError(401, "invalid_refresh_token", "This refresh token is not valid; sign in again.")
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


def start(user: PortalUser, kind: str = "password") -> dict:
    family_id = uuid.uuid4().hex
    PortalSession(f"fam#{family_id}", tenant_id=user.tenant_id, user_id=user.user_id, family_id=family_id,
                  expires_at=now() + REFRESH_TOKEN_SECONDS, ttl=now() + REFRESH_TOKEN_SECONDS, kind=kind).save()
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
    if record is None or not spent or record.expires_at < now() or family is None or user is None \
            or user.status != "active" or not _family_alive(family, user):
        _refused(record, family, spent, ip)
        raise INVALID_REFRESH
    return {"access_token": _access_token(user, family.family_id, family.kind), "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_SECONDS, "refresh_token": _new_refresh(user, family.family_id, family.kind),
            "refresh_expires_in": REFRESH_TOKEN_SECONDS}


def _live_user(tenant_id: str, user_id: str) -> PortalUser:
    try:
        user = PortalUser.get(tenant_id, user_id, consistent_read=True)
    except DoesNotExist:
        raise SESSION_ENDED from None
    if user.status != "active":
        raise SESSION_ENDED
    return user


def _family_alive(family: PortalSession, user: PortalUser | None) -> bool:
    if family.revoked_at or family.expires_at < now():
        return False
    return not (user is not None and user.sessions_valid_after and family.created_ms < user.sessions_valid_after)


def current_user(principal: Principal) -> PortalUser:
    """The signed-in portal user, checked live: their session not ended, their account still active."""
    user = _live_user(principal.tenant_id, principal.subject)
    family = _family(principal.claims.get("sid", ""))
    if family is None or family.user_id != user.user_id or not _family_alive(family, user):
        raise SESSION_ENDED
    return user


def sign_out(principal: Principal, ip: str | None) -> None:
    family = _family(principal.claims.get("sid", ""))
    if family is not None and family.user_id == principal.subject:
        _revoke_family(family)
    audit.record(principal.tenant_id, "portal.signed_out", actor=principal.subject, ip=ip)


def end_all_sessions(user: PortalUser) -> None:
    """After a password reset: every refresh token and access token issued before now stops working."""
    user.update(actions=[PortalUser.sessions_valid_after.set(now_ms())], add_version_condition=False)
