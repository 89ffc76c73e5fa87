"""Signing in with a passkey and no password (issue 18): POST /v1/staff/sign-in/passkey/options, then POST
/v1/staff/sign-in/passkey with what navigator.credentials.get() answered.

Two ways, one flow: a discoverable credential (nothing typed: the device offers its passkeys for this site, and the
credential names its person through its Claim, passkey_ceremony.owner), or username first (the username, at
the options or with the answer, must then be the passkey's person). Either may name the business (`tenant_id`):
a passkey of another business's person is then refused, whichever business it is valid in.

What is never told: the options are the same for every username, known or not, with passkeys or without (no list
of credentials, nothing read), and every refusal after them is one answer, 401 `passkey_invalid`: an unknown
passkey, another person's, another business's, a wrong signature or a counter gone backwards alike. A wrong
answer for a known person counts towards their sign-in lockout as a wrong password or code does (423 while
locked, before anything is checked), and every wrong answer towards the IP's guess limit.

The passkey required user verification (the device's PIN, fingerprint or face), so it counts as the password and
the second factor (amr ["hwk", "user", "mfa"]); what follows is what follows those two (staff_signin.after_factor):
a forced password change, or the session."""
from typing import Annotated

from pydantic import Field

from chalicelib.core import audit, lockout, tenants
from chalicelib.core.errors import Error, Unauthenticated
from chalicelib.core.models import Person
from chalicelib.core.schema import Strict
from chalicelib.core.text import OneLine
from chalicelib.flows.staff import mfa, passkey_ceremony, people, staff_signin
from chalicelib.flows.staff.passkey_ceremony import ANY, AssertionCredential, PasskeyOptions

TenantId = Annotated[OneLine, Field(min_length=1, max_length=64)]
Username = Annotated[OneLine, Field(min_length=1, max_length=256)]


class PasskeySignInOptions(Strict):
    # both optional: the business (a passkey of another business's person is then refused) and, username first,
    # the person (the passkey must then be theirs); the options are the same whatever they are
    tenant_id: TenantId | None = None
    username: Username | None = None


class PasskeySignIn(Strict):
    credential: AssertionCredential  # what navigator.credentials.get() answered, as JSON
    tenant_id: TenantId | None = None
    username: Username | None = None


def refused() -> Error:
    return Unauthenticated("passkey_invalid", "This passkey was not accepted. Try again, or sign in with your "
                           "password.")


def options(body: PasskeySignInOptions) -> PasskeyOptions:
    """A challenge for a sign-in (5 minutes, single use) bound to what was named, and options with no list of
    credentials: nothing about any person is read, so the answer cannot differ between them."""
    bound = {"username": body.username.strip().lower()} if body.username else {}
    challenge = passkey_ceremony.issue("sign_in", body.tenant_id or ANY, ANY, **bound)
    return PasskeyOptions(options=passkey_ceremony.assertion_options(challenge),
                          expires_in=passkey_ceremony.CHALLENGE_SECONDS)


def _named(tenant_id: str, username: str | None, person_id: str) -> bool:
    """Whether a typed username (or email, as sign-in takes it) is this person's."""
    if not username:
        return True
    found = people.find_by_username(tenant_id, username)
    return found is not None and found.person_id == person_id


@lockout.limit_guesses_per_ip("staff-passkey", "passkey_invalid")
def complete(body: PasskeySignIn, ip: str | None, user_agent: str | None = None, *,
             session_seconds: int | None = None) -> dict:
    """The session (or a forced change) of the passkey's person; 401 passkey_invalid for every refusal."""
    credential = body.credential
    try:
        record, challenge = passkey_ceremony.take(credential.response.clientDataJSON, "sign_in")
        found = passkey_ceremony.owner(passkey_ceremony.unb64(credential.rawId))
    except passkey_ceremony.Refused:
        raise refused() from None
    if found is None:
        raise refused()
    tenant_id, person_id = found
    bound = passkey_ceremony.data_of(record).get("username")
    if record.tenant_id not in (ANY, tenant_id) or (body.tenant_id and body.tenant_id != tenant_id):
        raise refused()  # a passkey of another business's person
    tenant = tenants.active(tenant_id)
    try:
        person = Person.get(tenant_id, person_id, consistent_read=True)
    except Person.DoesNotExist:
        raise refused() from None
    if tenant is None or person.account_status not in ("active", "invited") \
            or not _named(tenant_id, bound, person_id) or not _named(tenant_id, body.username, person_id):
        raise refused()
    lock_key = person.username or person.person_id
    counted = lockout.attempt("staff", tenant_id, lock_key)  # 423 while locked, before the answer is checked
    try:
        passkey_ceremony.verify_assertion(person, credential, challenge, user_verification=True)
    except passkey_ceremony.Refused:
        locked_for = lockout.failed(counted)
        audit.record(tenant_id, "staff.sign_in_failed", actor=person.person_id, ip=ip, method="passkey")
        if locked_for:
            audit.record(tenant_id, "staff.locked", actor=person.person_id, ip=ip, seconds=locked_for)
        raise refused() from None
    lockout.clear("staff", tenant_id, lock_key)
    audit.record(tenant_id, "staff.passkey_sign_in", actor=person.person_id, ip=ip)
    return staff_signin.after_factor(person, tenant, ip, user_agent, session_seconds=session_seconds,
                                     amr=mfa.AMR_PASSKEY)
