"""The authenticator app (TOTP, RFC 6238: 30-second steps, 6 digits, HMAC-SHA-1, as every app expects), with pyotp.

Set up in two steps: `start` makes a new secret, kept sealed (core/security/sealed.py) beside the person as a
pending one, and answers it as an otpauth URI, the key in text and a QR code (SVG, drawn by segno in-process); the
first right code (`confirm`) makes it the person's factor, replacing an earlier one. A code is accepted for the
current step or the one before or after (a phone's clock a little off), and only once: the last accepted step is
moved on by one conditional write, so a replay, even two uses of one code at the same instant, is refused."""
import time
from typing import Annotated

from pydantic import Field
from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from chalicelib.core import tenants
from chalicelib.core.errors import Conflict, Gone, Invalid
from chalicelib.core.models import Person, now
from chalicelib.core.principal import Principal
from chalicelib.core.schema import Shape, Strict
from chalicelib.core.security import sealed
from chalicelib.core.text import OneLine
from chalicelib.flows.staff import mfa, mfa_recovery, passkey_ceremony

STEP_SECONDS = 30
DIGITS = 6
WINDOW = 1  # steps either side of now that still match
PENDING_SECONDS = 10 * 60  # a setup not confirmed within this is started again
_clock = time.time  # the codes' clock (real time: pyotp in the tests computes the same codes)


class TotpStarted(Shape):
    otpauth_uri: str
    secret: str  # the key in text, for typing into the app when the QR code cannot be scanned
    qr_svg: str  # the otpauth URI as a QR code, an inline SVG with attributes only (no style, no script)
    expires_in: int


class TotpConfirm(Strict):
    code: Annotated[OneLine, Field(min_length=1, max_length=16)]


class TotpConfirmed(Shape):
    factor: str
    # shown once: the first set of recovery codes, when the person had none
    recovery_codes: list[str] | None = None
    # for the holder of a setup token: the session the sign-in was waiting for
    access_token: str | None = None
    token_type: str | None = None
    expires_in: int | None = None


def _context(person: Person) -> str:
    """The associated data of a person's sealed secret: it opens only on this tenant's this person."""
    return f"totp#{person.tenant_id}#{person.person_id}"


def _totp(secret: str):
    import pyotp
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)


def normalise(code: str) -> str | None:
    """A 6-digit code as apps show it (spaces or a dash in the middle allowed), or None when it is not one."""
    digits = code.replace(" ", "").replace("-", "")
    return digits if len(digits) == DIGITS and digits.isascii() and digits.isdigit() else None


def _matching_step(secret: str, code: str) -> int | None:
    import hmac
    totp, current = _totp(secret), int(_clock()) // STEP_SECONDS
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def qr_svg(uri: str) -> str:
    import segno
    svg = segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff", svgclass="qr-code")
    return svg.replace("<svg ", '<svg role="img" aria-label="QR code for your authenticator app" ', 1)


def start(principal: Principal, ip: str | None) -> TotpStarted:
    import pyotp
    person = mfa.person_of(principal)
    tenant = tenants.find(person.tenant_id)
    mfa.require_enabled(tenant)
    mfa.require_recent_sign_in(principal)
    secret = pyotp.random_base32(32)  # 160 bits, RFC 4226's recommended key length for SHA-1
    person.update(actions=[Person.totp_pending.set(sealed.seal(secret, _context(person))),
                           Person.totp_pending_at.set(now())], add_version_condition=False)
    mfa.record(person, "staff.mfa_totp_started", ip=ip)
    return _started(person, tenant, secret, PENDING_SECONDS)


def resume(principal: Principal, ip: str | None) -> TotpStarted:
    """The setup under way, shown again (a page shown twice shows the same QR code, so one already scanned still
    confirms); a new one when there is none or it has expired."""
    person = mfa.person_of(principal)
    at = int(person.totp_pending_at or 0)
    if not person.totp_pending or at + PENDING_SECONDS < now():
        return start(principal, ip)
    tenant = tenants.find(person.tenant_id)
    mfa.require_enabled(tenant)
    secret = sealed.open_sealed(person.totp_pending, _context(person))
    return _started(person, tenant, secret, at + PENDING_SECONDS - now())


def _started(person: Person, tenant, secret: str, expires_in: int) -> TotpStarted:
    uri = _totp(secret).provisioning_uri(name=person.username or person.email or person.person_id,
                                         issuer_name=tenant.name if tenant is not None else "portal-access")
    return TotpStarted(otpauth_uri=uri, secret=" ".join(secret[i:i + 4] for i in range(0, len(secret), 4)),
                       qr_svg=qr_svg(uri), expires_in=expires_in)


def confirm(principal: Principal, code: str, ip: str | None, user_agent: str | None = None, *,
            session_seconds: int | None = None) -> TotpConfirmed:
    """The first code from the app makes the pending secret the person's factor (replacing an earlier one). A
    setup token's holder gets the session their sign-in was waiting for."""
    from chalicelib.flows.staff import staff_signin
    person = mfa.person_of(principal)
    mfa.require_enabled(tenants.find(person.tenant_id))
    mfa.require_recent_sign_in(principal)
    if not person.totp_pending or int(person.totp_pending_at or 0) + PENDING_SECONDS < now():
        raise Gone("totp_setup_expired", "Start setting up the authenticator app again: this setup has expired.")
    digits = normalise(code)
    secret = sealed.open_sealed(person.totp_pending, _context(person))
    step = _matching_step(secret, digits) if digits else None
    if step is None:
        raise Invalid("invalid_code", "The code is not right: enter the 6 digits the app shows now.", field="code")
    had = bool(person.totp_secret)
    try:  # one write: of two confirms at once (or a new start meanwhile), one wins
        person.update(actions=[Person.totp_secret.set(person.totp_pending), Person.totp_last_step.set(step),
                               Person.totp_added_at.set(now()), Person.totp_pending.remove(),
                               Person.totp_pending_at.remove()],
                      condition=Person.totp_pending == person.totp_pending, add_version_condition=False)
    except UpdateError as exc:
        mfa.reraise_unless_refused(exc)
        raise Conflict("totp_setup_changed", "This setup was finished or started again meanwhile.") from None
    mfa.record(person, "staff.mfa_totp_added", ip=ip, replaced=had)
    mfa.notify(person, "added")
    codes = None if person.recovery_codes else mfa_recovery.generate(person, ip=ip)
    answer = TotpConfirmed(factor="totp", recovery_codes=codes)
    if principal.kind == "mfa_setup":
        session = staff_signin.start_session(person, "password", ip, user_agent, session_seconds, amr=["pwd", "otp"])
        answer = answer.model_copy(update=session)
        staff_signin.record_signed_in(person, ip)
    return answer


def remove(principal: Principal, ip: str | None) -> None:
    person = mfa.person_of(principal)
    mfa.require_recent_sign_in(principal)
    if not person.totp_secret:
        return
    last = not passkey_ceremony.stored(person)  # a passkey left is still a factor
    if last:
        mfa.keep_required(person, tenants.find(person.tenant_id))
    actions: list[Action] = [Person.totp_secret.remove(), Person.totp_last_step.remove(), Person.totp_added_at.remove(),
               Person.totp_pending.remove(), Person.totp_pending_at.remove()]
    if last:  # the authenticator was the only factor: its recovery codes go with it (they stand in for a factor)
        actions += [Person.recovery_codes.remove(), Person.recovery_codes_at.remove()]
    person.update(actions=actions, add_version_condition=False)
    mfa.record(person, "staff.mfa_totp_removed", ip=ip)
    mfa.notify(person, "removed")


def accept(person: Person, code: str) -> bool:
    """Whether a sign-in's code is right and not used before: the matching step is recorded by one conditional
    write (the secret unchanged, the step later than the last accepted one), so of two uses of one code, however
    close, exactly one is accepted."""
    digits = normalise(code)
    if not digits or not person.totp_secret:
        return False
    try:
        secret = sealed.open_sealed(person.totp_secret, _context(person))
    except sealed.Unsealable:
        return False
    step = _matching_step(secret, digits)
    if step is None:
        return False
    try:
        person.update(actions=[Person.totp_last_step.set(step)],
                      condition=(Person.totp_secret == person.totp_secret)
                      & (Person.totp_last_step.does_not_exist() | (Person.totp_last_step < step)),
                      add_version_condition=False)
    except UpdateError as exc:
        mfa.reraise_unless_refused(exc)
        return False
    return True
