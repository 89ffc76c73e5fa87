"""Portal sessions: a short access token (15 minutes, carrying the grants) and a rotating refresh token.

Each sign-in starts a family; every refresh spends the presented refresh token and returns a new one in the
same family. A refresh token presented twice has leaked (or been replayed), so the whole family is revoked, as
OAuth 2.0 Security BCP 4.14 recommends. Portal routes check on every call that the family is alive, so sign-out
and "a reset ends every session" take effect at once, not when the access token expires."""
import uuid

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib import audit
from chalicelib.api import ApiError, Principal
from chalicelib.models import PortalSession, PortalUser, now, now_ms
from chalicelib.security import keys
from chalicelib.security.tokens import new_token, token_hash

ACCESS_TOKEN_SECONDS = 15 * 60
REFRESH_TOKEN_SECONDS = 30 * 24 * 3600
SESSION_ENDED = ApiError(401, "session_ended", "This session has ended; sign in again.")


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
    try:
        family.update(actions=[PortalSession.revoked_at.set(now())], condition=PortalSession.revoked_at.does_not_exist())
    except UpdateError:
        pass


def refresh(refresh_token: str, ip: str | None) -> dict:
    try:
        record = PortalSession.get(f"rt#{token_hash(refresh_token)}", consistent_read=True)
    except DoesNotExist:
        raise ApiError(401, "invalid_refresh_token", "This refresh token is not valid; sign in again.") from None
    family = _family(record.family_id)
    try:  # spend it: of two concurrent refreshes with one token, one wins and the other counts as reuse
        record.update(actions=[PortalSession.used_at.set(now())], condition=PortalSession.used_at.does_not_exist())
    except UpdateError:
        if family is not None:
            _revoke_family(family)
        audit.record(record.tenant_id, "portal.refresh_token_reused", actor=record.user_id, ip=ip,
                     session=record.family_id)
        raise ApiError(401, "refresh_token_reused", "This refresh token was already used; every session it "
                       "belonged to has been ended. Sign in again.") from None
    user = _live_user(record.tenant_id, record.user_id)
    if record.expires_at < now() or family is None or not _family_alive(family, user):
        raise SESSION_ENDED
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
