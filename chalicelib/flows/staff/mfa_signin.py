"""The second step of a staff sign-in: POST /v1/staff/sign-in/mfa {mfa_token, code | passkey}.

The `mfa_token` (mfa.challenge) is the only way here: it is issued only after a right password, is bound to that
person and that password step (a new password, a disable or a sign-out-everywhere in between kills it), lives 5
minutes and gives one session: it is spent by a conditional write once a factor is accepted. `code` is an
authenticator code (6 digits) or a recovery code; `passkey` is what navigator.credentials.get() answered for the
`passkey_options` of the mfa_required answer (or of `passkey_options` here: a new challenge for the same token,
after a failed try). Every wrong code or passkey counts towards the person's sign-in lockout (the same counter as
wrong passwords, which a right password does not reset while a factor is pending) and towards the per-IP guess
limit. What follows the factor is what follows a password alone (staff_signin.after_factor): a forced change, or
the session."""
from typing import Annotated

from pydantic import Field, model_validator

from chalicelib.core import audit, lockout, tenants
from chalicelib.core.errors import Conflict, Error, Unauthenticated
from chalicelib.core.models import Person, Token, now
from chalicelib.core.schema import Strict
from chalicelib.core.security.tokens import token_hash
from chalicelib.core.text import OneLine
from chalicelib.flows.staff import mfa, mfa_recovery, mfa_totp, passkey_ceremony, staff_signin
from chalicelib.flows.staff.passkey_ceremony import AssertionCredential, PasskeyOptions


class MfaSignIn(Strict):
    mfa_token: Annotated[OneLine, Field(min_length=1, max_length=128)]
    # one of the two: an authenticator or recovery code, or a passkey's assertion
    code: Annotated[OneLine, Field(min_length=1, max_length=32)] | None = None
    passkey: AssertionCredential | None = None
    # optional: the business the first step named; a token of another business's person is then refused outright
    tenant_id: Annotated[OneLine, Field(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def _one_answer(self):
        if (self.code is None) == (self.passkey is None):
            raise ValueError("send either code or passkey")
        return self


class MfaPasskeyOptions(Strict):
    mfa_token: Annotated[OneLine, Field(min_length=1, max_length=128)]
    tenant_id: Annotated[OneLine, Field(min_length=1, max_length=64)] | None = None


def token_refused() -> Error:
    return Unauthenticated("mfa_token_invalid", "This sign-in step has expired or was already used; sign in again.")


def wrong_code() -> Error:
    return Unauthenticated("invalid_code", "The code is not right.")


def wrong_passkey() -> Error:
    return Unauthenticated("passkey_invalid", "This passkey was not accepted. Try again, or use another way to "
                           "sign in.")


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


def _pending(mfa_token: str, tenant_id: str | None) -> tuple[Token, dict, Person, object]:
    """The token of a sign-in waiting for its factor, its data, its person and business; token_refused when the
    token is not one, or the person or the password step it was bound to has changed since."""
    record = _token(mfa_token, tenant_id)
    data = record.data.as_dict() if hasattr(record.data, "as_dict") else dict(record.data or {})
    tenant = tenants.active(record.tenant_id)
    try:
        person = Person.get(record.tenant_id, record.subject_id, consistent_read=True)
    except Person.DoesNotExist:
        raise token_refused() from None
    if tenant is None or person.account_status not in ("active", "invited") \
            or data.get("bnd") != mfa.binding(person) or not mfa.has_factor(person):
        raise token_refused()
    return record, data, person, tenant


def passkey_options(body: MfaPasskeyOptions) -> PasskeyOptions:
    """A new passkey challenge for a sign-in waiting for its factor (the mfa_required answer carries the first):
    for this mfa_token and this person's passkeys only. 409 no_passkey when the person has none."""
    _, _, person, _ = _pending(body.mfa_token, body.tenant_id)
    if not passkey_ceremony.stored(person):
        raise Conflict("no_passkey", "This account has no passkey: enter a code instead.")
    return PasskeyOptions(options=passkey_ceremony.factor_options(person, body.mfa_token),
                          expires_in=passkey_ceremony.CHALLENGE_SECONDS)


def _passkey_accepted(person: Person, mfa_token: str, credential: AssertionCredential) -> bool:
    """The assertion answers a challenge issued for this person and this mfa_token, and verifies."""
    try:
        record, challenge = passkey_ceremony.take(credential.response.clientDataJSON, "factor")
        if (record.tenant_id, record.subject_id) != (person.tenant_id, person.person_id) \
                or passkey_ceremony.data_of(record).get("mfa") != token_hash(mfa_token):
            return False
        passkey_ceremony.verify_assertion(person, credential, challenge, user_verification=False)
    except passkey_ceremony.Refused:
        return False
    return True


@lockout.limit_guesses_per_ip("staff-mfa", ("invalid_code", "passkey_invalid"))
def complete(body: MfaSignIn, ip: str | None, user_agent: str | None = None, *,
             session_seconds: int | None = None) -> dict:
    record, data, person, tenant = _pending(body.mfa_token, body.tenant_id)
    lock_key = person.username or person.person_id
    counted = lockout.attempt("staff", person.tenant_id, lock_key)  # 423 while locked, before any code is checked
    if body.passkey is not None:
        method = "passkey"
        accepted = _passkey_accepted(person, body.mfa_token, body.passkey)
    else:
        code = body.code or ""
        method = "totp" if mfa_totp.normalise(code) else "recovery_code"
        accepted = mfa_totp.accept(person, code) if method == "totp" else mfa_recovery.spend(person, code)
    if not accepted:
        locked_for = lockout.failed(counted)
        audit.record(person.tenant_id, "staff.mfa_failed", actor=person.person_id, ip=ip, method=method)
        if locked_for:
            audit.record(person.tenant_id, "staff.locked", actor=person.person_id, ip=ip, seconds=locked_for)
        raise wrong_passkey() if method == "passkey" else wrong_code()
    from chalicelib.core import single_use
    try:  # one session per token: of two right answers at once (a code and a recovery code), one goes on
        single_use.spend(record)
    except Error:
        lockout.release(counted)
        raise token_refused() from None
    lockout.clear("staff", person.tenant_id, lock_key)
    details: dict = {"recovery_codes_left": mfa_recovery.remaining(person)} if method == "recovery_code" else {}
    audit.record(person.tenant_id, "staff.mfa_passed", actor=person.person_id, ip=ip, method=method, **details)
    amr = {"totp": ["pwd", "otp"], "passkey": mfa.AMR_PASSKEY_FACTOR}.get(method, ["pwd", "rc"])
    return staff_signin.after_factor(person, tenant, ip, user_agent,
                                     to_change_password=data.get("purpose") == "change",
                                     session_seconds=session_seconds, amr=amr)
