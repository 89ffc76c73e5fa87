"""Staff "Forgot password?" (DESIGN rule 13) and the completion of admin-sent reset links (rule 14).

    start {tenant_id, identifier}  → 202 {flow_id}        the same answer whether or not the person exists
    send-code {flow_id, channel?}  → 202                  an 8-character case-sensitive code, valid 10 minutes
    verify {flow_id, code}         → {reset_token}        5 tries per flow, then the flow is dead
    complete {reset_token, new_password}                  also takes the token of an admin-sent reset link

A flow is a single-use token (kind staff_reset_flow) stored by its hash. A flow for an unknown identifier is
stored too, with no person behind it, and behaves the same way everywhere: its codes are never sent and never
match. Every step does the same reads and writes whoever the flow names; the code's message is queued for
every flow and the sender decides at delivery whether the person may get it (activated, reachable, business
active), so neither answers nor their timing tell a known identifier from an unknown one. The code's hash
is keyed with the flow id, which is itself stored only hashed, so a leaked table does
not let anyone recover a code offline. Every endpoint is rate-limited per client IP, and start per identifier
as normalised (every spelling of one mobile or email is one identifier). However many flows reach one person (by
other spellings, identifiers or IPs), the sender delivers at most CODES_PER_PERSON_PER_HOUR codes to that person
an hour and silently drops the rest: a refusal the caller could see would tell a known identifier from an
unknown one.
"""
import hashlib
import hmac
import time
import uuid
from typing import Annotated, Literal, TypeGuard

from pydantic import Field
from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.core import audit, identity, lockout, messaging, single_use, tenants
from chalicelib.core.errors import Error, Forbidden, Gone, Invalid, Throttled
from chalicelib.core.models import Counter, Person, Token, now
from chalicelib.core.observability import logger
from chalicelib.core.schema import Password, Shape, Strict
from chalicelib.core.security import passwords
from chalicelib.core.security.tokens import new_code
from chalicelib.core.text import OneLine
from chalicelib.flows.staff import people, staff_signin

FLOW_KIND = "staff_reset_flow"
RESET_KIND = "staff_reset"  # also the kind of admin-sent reset links (staff_accounts)
FLOW_SECONDS = 30 * 60
CODE_SECONDS = 10 * 60  # ASVS 2.7.2
CODE_LENGTH = 8
MAX_ATTEMPTS = 5
MAX_SENDS = 3  # codes per flow; a new code does not give new attempts
RESET_TOKEN_SECONDS = 15 * 60
NOBODY = "-"  # the subject of a flow whose identifier names no eligible person
# Codes delivered to one person per hour, whatever identifier, spelling or IP asked for them (SMS/email bombing);
# past it the sender sends nothing, and the caller's answer is unchanged.
CODES_PER_PERSON_PER_HOUR = 5

# (requests, window seconds) per key; unknown identifiers count like known ones.
LIMITS = {
    "start_identifier": (5, 15 * 60),
    "start_ip": (30, 15 * 60),
    "send_ip": (30, 15 * 60),
    "verify_ip": (60, 15 * 60),
    "complete_ip": (30, 15 * 60),
}

Id = Annotated[OneLine, Field(min_length=1, max_length=200)]


class ResetStart(Strict):
    tenant_id: Annotated[OneLine, Field(min_length=1, max_length=64)]
    identifier: Annotated[OneLine, Field(min_length=1, max_length=256, description="Username, email or mobile")]


class ResetStarted(Shape):
    flow_id: str
    expires_in: int


class SendCode(Strict):
    flow_id: Id
    channel: Literal["email", "sms"] | None = Field(None, description="Default: email when the profile has one")


class CodeSent(Shape):
    status: str
    expires_in: int


class VerifyCode(Strict):
    flow_id: Id
    code: Annotated[OneLine, Field(min_length=1, max_length=64)]


class ResetToken(Shape):
    reset_token: str
    expires_in: int


class CompleteReset(Strict):
    reset_token: Id
    new_password: Password


class ResetDone(Shape):
    status: str


def _throttle(name: str, key: str | None) -> None:
    if key:
        lockout.throttle(f"staff-reset-{name}", key, *LIMITS[name])


def _identifier_key(tenant_id: str, identifier: str) -> str:
    """The identifier as start looks it up: every spelling of one email or mobile number is one key (the same
    for a known and an unknown identifier: it depends on the string only)."""
    value = identifier.strip()
    try:
        canonical = identity.normalise_email(value) if "@" in value else identity.normalise_mobile(value)
    except ValueError:
        canonical = value.lower()
    return f"{tenant_id}#{canonical}"


def within_hourly_cap(scope: str, key: str, limit: int) -> bool:
    """Counts one message for `key` in this clock hour; False past `limit`. One unconditional ADD on a counter
    per hour, so of concurrent deliveries exactly `limit` get True (lockout.throttle opens a new window with a
    second, unconditional write, which lets every concurrent first hit through)."""
    hour = int(time.time()) // 3600
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]  # no identifier in clear in the counters table
    counter = Counter(f"cap#{scope}#{hour}#{digest}")
    counter.update(actions=[Counter.hits.add(1), Counter.ttl.set((hour + 2) * 3600)])
    return int(counter.hits) <= limit


def _within_hourly_cap(person: Person) -> bool:
    """Counts one code for the person; False once they had CODES_PER_PERSON_PER_HOUR this hour (across IPs,
    identifiers and flows)."""
    return within_hourly_cap("staff-reset-codes", f"{person.tenant_id}#{person.person_id}",
                             CODES_PER_PERSON_PER_HOUR)


def _code_hash(flow_id: str, code: str) -> str:
    return hmac.new(flow_id.encode(), code.encode(), hashlib.sha256).hexdigest()


def _eligible(person: Person | None) -> TypeGuard[Person]:
    """Only a verified (activated) account that is not disabled, and that we can reach, gets a code."""
    return (person is not None and person.account_status == "active" and bool(person.username)
            and people.channel_for(person) is not None and tenants.active(person.tenant_id) is not None)


def _person(flow: Token) -> Person | None:
    if flow.subject_id == NOBODY:
        return None
    try:
        return Person.get(flow.tenant_id, flow.subject_id, consistent_read=True)
    except DoesNotExist:
        return None


def _flow(flow_id: str) -> Token:
    flow = single_use.look_up(flow_id, FLOW_KIND, expired_code="flow_expired")
    if flow.attempts >= MAX_ATTEMPTS:
        raise _dead()
    return flow


def _dead() -> Error:
    return Gone("flow_dead", "Too many wrong codes; start again from \"Forgot password?\".")


# --- the four steps -----------------------------------------------------------------------------------------

def start(body: ResetStart, ip: str | None) -> dict:
    _throttle("start_ip", ip)
    _throttle("start_identifier", _identifier_key(body.tenant_id, body.identifier))
    # The same reads and writes whoever the identifier names, or if it names no one: one batch read of its
    # claims, the flow, the audit event. Whether the person may reset is decided when the code is delivered.
    person_id = people.person_id_for(body.tenant_id, body.identifier)
    flow_id = single_use.issue(FLOW_KIND, body.tenant_id, person_id or NOBODY, FLOW_SECONDS)
    audit.record(body.tenant_id, "staff.password_reset_started", target=person_id, ip=ip)
    return {"flow_id": flow_id, "expires_in": FLOW_SECONDS}


def send_code(body: SendCode, ip: str | None) -> dict:
    """A new code replaces the previous one; the attempts already used stay used."""
    _throttle("send_ip", ip)
    flow = _flow(body.flow_id)
    code = new_code(CODE_LENGTH)
    try:
        flow.update(actions=[Token.code_hash.set(_code_hash(body.flow_id, code)),
                             Token.code_expires_at.set(now() + CODE_SECONDS), Token.sends.add(1)],
                    condition=(Token.sends < MAX_SENDS) & (Token.attempts < MAX_ATTEMPTS)
                    & Token.used_at.does_not_exist())
    except UpdateError:
        flow.refresh(consistent_read=True)
        if flow.used_at:
            raise Gone("token_used", "This reset was already verified.") from None
        if flow.attempts >= MAX_ATTEMPTS:
            raise _dead() from None
        raise Throttled("too_many_codes", "That is enough codes for this reset; start again.") from None
    # Queued for every flow; the sender sends it only to an eligible person (render_code). The queued message
    # carries the code, as the email or SMS it becomes does, and its hash (the sender restarts its lifetime).
    messaging.enqueue([{"message_id": uuid.uuid4().hex, "tenant_id": flow.tenant_id, "channel": "email",
                        "render": "staff_reset_code", "flow": flow.token_hash, "code": code,
                        "code_hash": _code_hash(body.flow_id, code), "preferred": body.channel, "ip": ip}])
    return {"status": "sent", "expires_in": CODE_SECONDS}


def render_code(message: dict) -> dict | None:
    """The sender's half of send-code: the code goes to the flow's person if they may reset (activated, not
    disabled, reachable, their business active) and had fewer than CODES_PER_PERSON_PER_HOUR codes this hour;
    nothing is sent otherwise."""
    try:
        flow = Token.get(message["flow"], consistent_read=True)
    except DoesNotExist:
        return None
    if flow.used_at or flow.revoked or flow.expires_at <= now():
        return None  # a reset already done, ended or past its time (a late or redriven message): no code to use
    person = _person(flow)
    if not _eligible(person):
        return None
    if message.get("code_hash") and flow.code_hash != message["code_hash"]:
        return None  # a newer code replaced it while queued: sending it would only spend the person's hourly cap
    if not _within_hourly_cap(person):
        logger.warning("reset code not sent: hourly cap reached", extra={"tenant_id": flow.tenant_id,
                                                                         "person_id": person.person_id})
        return None
    concrete = people.message(person, "staff-reset-code", [], message.get("preferred"), code=message["code"],
                              minutes=str(CODE_SECONDS // 60))
    if concrete is None or not _restart_lifetime(flow, message):
        return None
    concrete["message_id"] = message["message_id"]
    audit.record(flow.tenant_id, "staff.reset_code_sent", target=person.person_id, ip=message.get("ip"),
                 channel=concrete["channel"])
    return concrete


def _restart_lifetime(flow: Token, message: dict) -> bool:
    """The code lives CODE_SECONDS from its delivery, not from its request (a queue may have held it). False: a
    newer code replaced it meanwhile, and only the newest is worth sending."""
    if not message.get("code_hash"):  # queued before messages carried it: its lifetime runs from the request
        return True
    try:
        flow.update(actions=[Token.code_expires_at.set(now() + CODE_SECONDS)],
                    condition=Token.code_hash == message["code_hash"])
        return True
    except UpdateError:
        return False


def verify(body: VerifyCode, ip: str | None) -> dict:
    """Every try counts (one conditional increment) before the code is compared, so concurrent guesses cannot
    exceed five; of concurrent right answers exactly one marks the flow used and gets the reset token."""
    _throttle("verify_ip", ip)
    flow = _flow(body.flow_id)
    try:
        flow.update(actions=[Token.attempts.add(1)],
                    condition=(Token.attempts < MAX_ATTEMPTS) & Token.used_at.does_not_exist())
    except UpdateError:
        flow.refresh(consistent_read=True)
        if flow.used_at:
            raise Gone("token_used", "This reset was already verified.") from None
        raise _dead() from None
    given = _code_hash(body.flow_id, body.code.strip())
    if not flow.code_hash or not hmac.compare_digest(given, flow.code_hash):
        left = MAX_ATTEMPTS - flow.attempts
        audit.record(flow.tenant_id, "staff.reset_code_failed", target=None if flow.subject_id == NOBODY
                     else flow.subject_id, ip=ip, attempts_left=left)  # for every flow: the same write
        if left <= 0:
            raise _dead()
        raise Invalid("code_invalid", "That code is not right.", field="code", attempts_left=left)
    if flow.code_expires_at < now():
        raise Gone("code_expired", "This code has expired; ask for a new one.")
    try:
        flow.update(actions=[Token.used_at.set(now())],
                    condition=Token.used_at.does_not_exist() & (Token.code_hash == given))
    except UpdateError:
        raise Gone("token_used", "This reset was already verified.") from None
    token = single_use.issue(RESET_KIND, flow.tenant_id, flow.subject_id, RESET_TOKEN_SECONDS, via="code")
    audit.record(flow.tenant_id, "staff.reset_code_verified", target=flow.subject_id, ip=ip)
    return {"reset_token": token, "expires_in": RESET_TOKEN_SECONDS}


def complete(body: CompleteReset, ip: str | None) -> dict:
    """Sets the new password and consumes the reset token (exactly once); checks come first so a refused
    password leaves the token usable."""
    _throttle("complete_ip", ip)
    record, person = single_use.look_up_holder(body.reset_token, RESET_KIND, Person,
                                               Invalid("token_invalid", "This link is not valid."))
    if person.account_status != "active":
        raise Forbidden("account_not_active", "This account is not active; ask your administrator.")
    try:
        passwords.check_policy(body.new_password)
    except passwords.PolicyViolation as exc:
        raise Invalid(exc.code, exc.message, field="new_password") from None
    if person.password_hash and passwords.verify_password(person.password_hash, body.new_password):
        raise Invalid("password_reused", "Choose a password different from the current one.",
                       field="new_password")
    staff_signin.set_password_with_link(person, body.new_password, record)
    data = record.data.as_dict() if hasattr(record.data, "as_dict") else dict(record.data or {})
    via = data.get("via", "code")
    audit.record(person.tenant_id, "staff.password_reset", actor=person.person_id, ip=ip, via=via)
    staff_signin.notify_password_changed(person, "reset_link" if via == "link" else "reset")
    return {"status": "password_reset"}
