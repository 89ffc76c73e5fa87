"""The second step of a staff sign-in: POST /v1/staff/sign-in/mfa {mfa_token, code}.

The `mfa_token` (mfa.challenge) is the only way here: it is issued only after a right password, is bound to that
person and that password step (a new password, a disable or a sign-out-everywhere in between kills it), lives 5
minutes and gives one session: it is spent by a conditional write once a code is accepted. `code` is an
authenticator code (6 digits) or a recovery code; a passkey assertion will be a third kind of answer (issue 18's
passkeys). Every wrong code counts towards the person's sign-in lockout (the same counter as wrong passwords, which
a right password does not reset while a factor is pending) and towards the per-IP guess limit. What follows the
factor is what follows a password alone (staff_signin.after_factor): a forced change, or the session."""
from typing import Annotated

from pydantic import Field

from chalicelib.core import audit, lockout, tenants
from chalicelib.core.errors import Error, Unauthenticated
from chalicelib.core.models import Person, Token, now
from chalicelib.core.schema import Strict
from chalicelib.core.security.tokens import token_hash
from chalicelib.core.text import OneLine
from chalicelib.flows.staff import mfa, mfa_recovery, mfa_totp, staff_signin


class MfaSignIn(Strict):
    mfa_token: Annotated[OneLine, Field(min_length=1, max_length=128)]
    code: Annotated[OneLine, Field(min_length=1, max_length=32)]
    # optional: the business the first step named; a token of another business's person is then refused outright
    tenant_id: Annotated[OneLine, Field(min_length=1, max_length=64)] | None = None


def token_refused() -> Error:
    return Unauthenticated("mfa_token_invalid", "This sign-in step has expired or was already used; sign in again.")


def wrong_code() -> Error:
    return Unauthenticated("invalid_code", "The code is not right.")


def _token(value: str, tenant_id: str | None) -> Token:
    if not 20 <= len(value) <= 100:
        raise token_refused()
    try:
        record = Token.get(token_hash(value), consistent_read=True)
    except Token.DoesNotExist:
        raise token_refused() from None
    if record.kind != "staff_mfa" or record.used_at or record.revoked or record.expires_at < now() \
            or (tenant_id is not None and tenant_id != record.tenant_id):
        raise token_refused()
    return record


@lockout.limit_guesses_per_ip("staff-mfa", "invalid_code")
def complete(body: MfaSignIn, ip: str | None, user_agent: str | None = None, *,
             session_seconds: int | None = None) -> dict:
    record = _token(body.mfa_token, body.tenant_id)
    data = record.data.as_dict() if hasattr(record.data, "as_dict") else dict(record.data or {})
    tenant = tenants.active(record.tenant_id)
    try:
        person = Person.get(record.tenant_id, record.subject_id, consistent_read=True)
    except Person.DoesNotExist:
        raise token_refused() from None
    if tenant is None or person.account_status not in ("active", "invited") \
            or data.get("bnd") != mfa.binding(person) or not mfa.has_factor(person):
        raise token_refused()
    lock_key = person.username or person.person_id
    counted = lockout.attempt("staff", person.tenant_id, lock_key)  # 423 while locked, before any code is checked
    method = "totp" if mfa_totp.normalise(body.code) else "recovery_code"
    accepted = mfa_totp.accept(person, body.code) if method == "totp" else mfa_recovery.spend(person, body.code)
    if not accepted:
        locked_for = lockout.failed(counted)
        audit.record(person.tenant_id, "staff.mfa_failed", actor=person.person_id, ip=ip, method=method)
        if locked_for:
            audit.record(person.tenant_id, "staff.locked", actor=person.person_id, ip=ip, seconds=locked_for)
        raise wrong_code()
    from chalicelib.core import single_use
    try:  # one session per token: of two right answers at once (a code and a recovery code), one goes on
        single_use.spend(record)
    except Error:
        lockout.release(counted)
        raise token_refused() from None
    lockout.clear("staff", person.tenant_id, lock_key)
    details: dict = {"recovery_codes_left": mfa_recovery.remaining(person)} if method == "recovery_code" else {}
    audit.record(person.tenant_id, "staff.mfa_passed", actor=person.person_id, ip=ip, method=method, **details)
    amr = ["pwd", "otp"] if method == "totp" else ["pwd", "rc"]
    return staff_signin.after_factor(person, tenant, ip, user_agent,
                                     to_change_password=data.get("purpose") == "change",
                                     session_seconds=session_seconds, amr=amr)
