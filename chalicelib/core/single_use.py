"""Single-use tokens behind every emailed or texted link (invitations, resets, staff invites): issued as 256-bit
random values, stored only as SHA-256 with an expiry and a TTL, consumed by one conditional write so that of
many concurrent uses exactly one wins."""
from typing import TypeVar

from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.models import Model

from chalicelib.core.errors import Error, Gone, Invalid
from chalicelib.core.models import Token, now
from chalicelib.core.security.tokens import new_token, token_hash

TTL_GRACE_SECONDS = 7 * 24 * 3600  # keep used/expired tokens a while so their links explain themselves
Holder = TypeVar("Holder", bound=Model)
REVOKED_MESSAGES = {
    "invitation_replaced": "A newer invitation was sent; use the link in the latest email.",
    "invitation_revoked": "This invitation was withdrawn; ask the business to invite you again.",
}


def issue(kind: str, tenant_id: str, subject_id: str, lifetime_seconds: int, **data) -> str:
    token = new_token()
    expires = now() + lifetime_seconds
    Token(token_hash(token), kind=kind, tenant_id=tenant_id, subject_id=subject_id, expires_at=expires,
          ttl=expires + TTL_GRACE_SECONDS, data=data).save(condition=Token.token_hash.does_not_exist())
    return token


def look_up(token: str, kind: str, *, expired_code: str = "token_expired") -> Token:
    """The token if it can still be used; otherwise the error that says why (used, expired, unknown)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise Invalid("token_invalid", "This link is not valid.")
    try:
        record = Token.get(token_hash(token), consistent_read=True)
    except DoesNotExist:
        raise Invalid("token_invalid", "This link is not valid.") from None
    if record.kind != kind:
        raise Invalid("token_invalid", "This link is not valid.")
    if record.revoked:
        raise Gone(record.revoked, REVOKED_MESSAGES.get(record.revoked, "This link no longer works."))
    if record.used_at:
        raise Gone("token_used", "This link was already used.")
    if record.expires_at < now():
        raise Gone(expired_code, "This link has expired; ask for a new one.")
    return record


def look_up_holder(token: str, kind: str, holder: type[Holder], missing: Error, *,
                   expired_code: str = "token_expired") -> tuple[Token, Holder]:
    """The first step of a link that sets a password (an invitation, a reset link): the token if it can still be
    used (look_up) and the record it was issued for (`holder`, keyed by the token's tenant and subject), read
    strongly consistent; `missing` when that record is gone. Nothing is spent: the flow checks the record (its
    state, then that the link is still the one it holds) and spends the token last, so a refused attempt leaves
    the link usable."""
    record = look_up(token, kind, expired_code=expired_code)
    try:
        return record, holder.get(record.tenant_id, record.subject_id, consistent_read=True)
    except DoesNotExist:
        raise missing from None


def consume(token: str, kind: str, *, expired_code: str = "token_expired") -> Token:
    """Marks the token used; exactly one caller gets it, every other gets 410 token_used."""
    return spend(look_up(token, kind, expired_code=expired_code))


def spend(record: Token) -> Token:
    """Marks a token look_up returned used (checks done in between need not read it again): one conditional
    write, so exactly one caller gets it and every other gets 410 token_used."""
    try:
        record.update(actions=[Token.used_at.set(now())],
                      condition=Token.used_at.does_not_exist() & (Token.expires_at >= now()))
    except UpdateError:
        raise Gone("token_used", "This link was already used.") from None
    return record


def revoke(hashed: str | None, reason: str = "token_used") -> None:
    """Kills a token by its stored hash (a resend replaces the previous link); its link then answers `reason`."""
    if not hashed:
        return
    try:
        Token(hashed).update(actions=[Token.revoked.set(reason)],
                             condition=Token.token_hash.exists() & Token.used_at.does_not_exist())
    except UpdateError:
        pass
