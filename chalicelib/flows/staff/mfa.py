"""What every part of the second factor shares (issue 18): which factors a person has, the business's policy
`staff_mfa`, the tokens of the steps between the password and a session, the recent sign-in that adding or
removing a factor needs, and the notice sent when one is.

The steps of a staff sign-in, in order: password; then the second factor when the person has one (401
`mfa_required` with an `mfa_token`, sign-in/mfa); then a forced password change (403 `password_change_required` /
`password_expired` with a change token: never before the factor, since a change ends in a session); then, where
the policy requires a factor and the person has none, the setup-only state (403 `mfa_setup_required` with a
`setup_token` that only the authenticator and passkey setup routes take); then the session.

A factor is an authenticator app (mfa_totp) or a passkey (passkeys, passkey_ceremony); a passkey also signs in
without a password (passkey_signin), which counts as both factors."""
import hashlib
from datetime import datetime, timezone
from typing import Literal

from chalicelib.core import audit
from chalicelib.core.errors import Conflict, Forbidden, Unauthenticated
from chalicelib.core.models import Person, Tenant, now
from chalicelib.core.principal import Principal
from chalicelib.core.schema import Shape
from chalicelib.core.security import keys
from chalicelib.flows.staff import passkey_ceremony, people

PolicyValue = Literal["off", "optional", "required_for_admins", "required_for_all"]
DEFAULT_POLICY = "optional"
MFA_TOKEN_SECONDS = 5 * 60
SETUP_TOKEN_SECONDS = 10 * 60
RECENT_SIGN_IN_SECONDS = 10 * 60


class MfaPolicy(Shape):
    """The business's staff second-factor policy. off: nobody can set up a new factor (a factor already set up is
    still asked for: switching the policy off never silently weakens an account); optional: anyone may; required_for_
    admins: anyone holding an admin permission must; required_for_all: everyone must."""
    staff_mfa: PolicyValue


class MfaStatus(Shape):
    """GET /v1/staff/mfa: a staff member's second factors, recovery codes left, the business's policy."""
    methods: list[str]
    recovery_codes_left: int
    policy: str
    required: bool


def policy_of(tenant: Tenant | None) -> str:
    return (tenant.staff_mfa if tenant is not None else None) or DEFAULT_POLICY


# The session's `amr` (RFC 8176) after each way in. A passkey after the password is "hwk" (proof of a key held
# in hardware); a passkey alone required user verification (the device's PIN, fingerprint or face), so it is
# both factors in one step: "mfa", which multi_factor() reads as password and second factor.
AMR_PASSKEY_FACTOR = ["pwd", "hwk"]
AMR_PASSKEY = ["hwk", "user", "mfa"]


def multi_factor(amr: list[str] | None) -> bool:
    """Whether a session's `amr` says two factors: a password and a code, recovery code or passkey, or a passkey
    with user verification (for whoever asks "did this sign-in pass the second factor?", e.g. an OpenID claim)."""
    found = set(amr or ())
    return "mfa" in found or ("pwd" in found and bool(found & {"otp", "rc", "hwk"}))


def has_factor(person: Person) -> bool:
    """A second factor that signs in: an authenticator app or a passkey. Recovery codes alone are not one: they
    stand in for a factor that was lost."""
    return bool(person.totp_secret) or bool(passkey_ceremony.stored(person))


def methods(person: Person) -> list[str]:
    """What the second step accepts for this person."""
    found = ["totp"] if person.totp_secret else []
    if passkey_ceremony.stored(person):
        found.append("passkey")
    if has_factor(person) and person.recovery_codes:
        found.append("recovery_code")
    return found


def required_for(person: Person, tenant: Tenant | None) -> bool:
    """Whether the policy requires this person to have a factor ("admins": anyone holding an admin permission,
    the office role's directory:manage included)."""
    policy = policy_of(tenant)
    return policy == "required_for_all" or (policy == "required_for_admins"
                                            and bool(people.effective_permissions(person)))


def binding(person: Person) -> str:
    """What ties a step's token to the password step it followed: the password (its hash) and the sessions' epoch.
    A new password, a disable, a role change or a sign-out-everywhere in between kills the token."""
    return hashlib.sha256(f"{person.password_hash or ''}#{int(person.session_epoch or 0)}".encode()).hexdigest()[:24]


def reraise_unless_refused(exc: Exception) -> None:
    """A conditional write's refusal is an answer (a replay, a code already used); DynamoDB failing is not."""
    if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
        raise exc


# --- the second step of a sign-in ---------------------------------------------------------------------------------

def challenge(person: Person, purpose: str) -> Unauthenticated:
    """401 mfa_required, after a right password, for a person with a factor: an `mfa_token` (256-bit random, stored
    hashed, single use, 5 minutes) bound to the person and to this password step (binding), and the methods the
    second step takes. `purpose`: what the sign-in was for (a session, or only a change token)."""
    from chalicelib.core import single_use
    token = single_use.issue("staff_mfa", person.tenant_id, person.person_id, MFA_TOKEN_SECONDS,
                             bnd=binding(person), purpose=purpose)
    extra: dict = {}
    if passkey_ceremony.stored(person):  # what navigator.credentials.get() needs, for this token only
        extra["passkey_options"] = passkey_ceremony.factor_options(person, token)
    words = ("Use one of your passkeys, or enter the code from your authenticator app or a recovery code."
             if extra else "Enter the code from your authenticator app, or a recovery code.")
    return Unauthenticated("mfa_required", words, mfa_token=token, methods=methods(person),
                           expires_in=MFA_TOKEN_SECONDS, **extra)


# --- the setup-only state ----------------------------------------------------------------------------------------

def setup_required(person: Person) -> Forbidden:
    """403 mfa_setup_required with a token that only the authenticator setup routes take (kind `mfa_setup`)."""
    token = keys.sign({"sub": person.person_id, "tid": person.tenant_id, "typ": "mfa_setup",
                       "bnd": binding(person)}, SETUP_TOKEN_SECONDS)
    return Forbidden("mfa_setup_required", "Your business requires a second factor: set up an authenticator app "
                     "or a passkey to continue.", setup_token=token, methods=["totp", "passkey"])


def person_of(principal: Principal) -> Person:
    """The person a setup route acts for: a signed-in staff member (the guard read them live), or the holder of a
    setup token, which works only while it is bound to the current password and the person still has no factor."""
    if principal.kind == "staff":
        return principal.live.record
    person = people.get(principal.tenant_id, principal.subject)
    if person.account_status != "active" or principal.claims.get("bnd") != binding(person) or has_factor(person):
        raise Unauthenticated("setup_token_used", "This setup step has ended; sign in again.")
    return person


def require_recent_sign_in(principal: Principal) -> None:
    """Adding or removing a factor needs a sign-in in the last 10 minutes (the session's start; a setup token is
    younger than that by construction), so a session left open on a shared computer cannot change them."""
    if principal.kind == "mfa_setup":
        return
    started = int(principal.live.session.created_ms // 1000)
    if now() - started > RECENT_SIGN_IN_SECONDS:
        raise Forbidden("recent_sign_in_required", "Sign in again to change how you sign in (for your safety, "
                        "this needs a sign-in in the last 10 minutes).")


def require_enabled(tenant: Tenant | None) -> None:
    if policy_of(tenant) == "off":
        raise Forbidden("mfa_off", "Your business has switched second factors off.")


def keep_required(person: Person, tenant: Tenant | None,
                  instead: str = "set up a new authenticator app instead (it replaces this one)") -> None:
    """Removing the last factor where the policy requires one is refused (the person would be sent to set one up
    at the next sign-in): replace it instead, or ask an admin to reset it."""
    if required_for(person, tenant):
        raise Conflict("mfa_required_by_policy", f"Your business requires a second factor: {instead}, or ask "
                       "your administrator.")


# --- telling the person ------------------------------------------------------------------------------------------

CHANGES = {
    "added": "A new sign-in method was added to your account: {what}.",
    "removed": "A sign-in method was removed from your account: {what}.",
    "recovery_codes": "New recovery codes were made for your account; the old ones no longer work.",
    "reset": "An administrator reset the second factor of your account: {what}.",
}


def notify(person: Person, change: str, what: str = "an authenticator app") -> None:
    """On the channel the person has (email first, SMS for a technician with only a mobile): a change they did not
    make does not go unnoticed. The notice carries no secret."""
    when = datetime.fromtimestamp(now(), timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    people.send(person, "mfa-changed", [], what=CHANGES[change].format(what=what), when=when)


def record(person: Person, action: str, *, actor: str | None = None, ip: str | None = None, **details) -> None:
    audit.record(person.tenant_id, action, actor=actor or person.person_id, target=person.person_id, ip=ip,
                 **details)
