"""Staff accounts for admins (DESIGN rules 8-10, 14-17): people with their account status, invitations by email
or SMS, admin-created accounts, reset links, temporary passwords, bulk invitations and resets, and the audit
trail of one person. Passwords are stored by staff_signin.set_password only; links are single-use tokens."""
import secrets
import string
import uuid
from typing import Annotated, Callable, Iterable, Literal

from pydantic import BaseModel, Field, model_validator
from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.core import audit, config, due, lockout, sessions, single_use
from chalicelib.core.errors import Conflict, Error, Forbidden, Gone, Invalid, NotFound, Throttled
from chalicelib.core.identity import Email, Mobile
from chalicelib.core.models import Job, Person, Tenant, now
from chalicelib.core.paging import iso, iso_at, make_cursor, page_args
from chalicelib.core.principal import Principal
from chalicelib.core.schema import Password, Strict
from chalicelib.core.security import passwords
from chalicelib.core.security.tokens import token_hash
from chalicelib.core.text import OneLine
from chalicelib.flows.staff import people, staff_signin

INVITE_SECONDS = 7 * 24 * 3600
RESET_LINK_SECONDS = 24 * 3600
TEMPORARY_PASSWORD_SECONDS = 60 * 60
BULK_MAX_IDS = 1000

# DESIGN rule 17. no_account, invited, active and disabled are stored; locked (a sign-in lockout running) and
# password_expired (over 365 days old, or a temporary password past its hour) are derived when read.
STATUSES = ("no_account", "invited", "active", "locked", "disabled", "password_expired")

Name = Annotated[OneLine, Field(min_length=1, max_length=200)]
Username = Annotated[OneLine, Field(min_length=1, max_length=254)]
Channel = Literal["email", "sms"]
Permission = people.Permission
Role = Literal["admin", "office", "technician", "staff"]
Kind = Literal["employee", "technician"]


# --- request and response bodies ----------------------------------------------------------------------------

class PersonCreate(Strict):
    kind: Kind
    name: Name
    email: Email | None = None
    mobile: Mobile | None = None
    role: Role | None = Field(None, description="Default: technician for technicians, staff for employees")
    permissions: Annotated[list[Permission], Field(max_length=len(people.PERMISSIONS))] = []
    mobile_access: bool = Field(False, description="Technicians only: may use the mobile app")


class PersonPatch(Strict):
    kind: Kind | None = None
    name: Name | None = None
    email: Email | None = None
    mobile: Mobile | None = None
    role: Role | None = None
    permissions: Annotated[list[Permission], Field(max_length=len(people.PERMISSIONS))] | None = None
    mobile_access: bool | None = None
    status: Literal["active", "disabled"] | None = Field(
        None, description="disabled disables the account (sign-in refused, sessions end); active enables it again. "
                          "The same field as a portal user's")
    disabled: bool | None = Field(None, description="Deprecated (use status; kept for one release): true disables "
                                                     "the account, false enables it",
                                  json_schema_extra={"deprecated": True})


class PersonOut(BaseModel):
    person_id: str
    kind: str
    name: str
    email: str | None = None
    mobile: str | None = None
    role: str
    permissions: list[str]
    effective_permissions: list[str]
    mobile_access: bool
    username: str | None = None
    status: str
    invitation_expires_at: str | None = None
    password_set_at: str | None = None
    password_expires_at: str | None = None
    temporary_password_expires_at: str | None = None
    locked_until: str | None = None
    created_at: str
    updated_at: str


class PersonPage(BaseModel):
    items: list[PersonOut]
    next_cursor: str | None = None


class SendOptions(Strict):
    channel: Channel | None = Field(None, description="Default: email when the person has one, else SMS")


class InviteOut(BaseModel):
    person_id: str
    status: str
    channel: str
    expires_at: str


class AccountCreate(Strict):
    username: Username
    password: Password


class ResetLinkOut(BaseModel):
    person_id: str
    channel: str
    expires_at: str


class TemporaryPasswordBody(Strict):
    password: Password | None = Field(None, description="Leave out to have one generated (returned once)")


class TemporaryPasswordOut(BaseModel):
    person_id: str
    expires_at: str
    temporary_password: str | None = Field(None, description="Only when generated; shown this once")


class BulkRequest(Strict):
    person_ids: Annotated[list[Annotated[OneLine, Field(min_length=1, max_length=64)]],
                          Field(min_length=1, max_length=BULK_MAX_IDS)] | None = None
    all: bool = False
    type: Literal["dry_run", "send"] = Field("dry_run", description="dry_run lists who would be contacted")
    channel: Channel | None = None

    @model_validator(mode="after")
    def one_selection(self):
        if bool(self.person_ids) == bool(self.all):
            raise ValueError("give either person_ids or all: true")
        return self


class BulkOutcome(BaseModel):
    person_id: str
    name: str | None = None
    outcome: str  # would_send | sent | skipped | not_found | failed
    reason: str | None = None
    channel: str | None = None


class BulkOut(BaseModel):
    job_id: str | None = None
    kind: str
    type: str
    status: str
    counts: dict[str, int]
    outcomes: list[BulkOutcome]
    created_at: str | None = None


class AcceptInvite(Strict):
    token: Annotated[OneLine, Field(min_length=1, max_length=200)]
    username: Username | None = Field(None, description="Default: the email address the person was invited at")
    password: Password


# --- reading people -----------------------------------------------------------------------------------------

def status_of(person: Person, locked_until: int | None = None) -> str:
    if person.account_status != "active":
        return person.account_status
    if locked_until:
        return "locked"
    temporary_over = person.temporary_password_expires_at and person.temporary_password_expires_at < now()
    if not person.password_hash or temporary_over or staff_signin.password_expired(person):
        return "password_expired"
    return "active"


def _locks(tenant_id: str, persons: list[Person]) -> dict[str, int]:
    return lockout.locked_until("staff", tenant_id, [p.username for p in persons if p.username])


def person_out(person: Person, locked_until: int | None = None) -> PersonOut:
    if locked_until is None and person.username:
        locked_until = _locks(person.tenant_id, [person]).get(person.username)
    expires = person.password_set_at + due.PASSWORD_MAX_AGE_SECONDS if person.password_set_at else None
    return PersonOut(
        person_id=person.person_id, kind=person.kind, name=person.name, email=person.email, mobile=person.mobile,
        role=person.role, permissions=list(person.permissions or []),
        effective_permissions=people.effective_permissions(person), mobile_access=bool(person.mobile_access),
        username=person.username, status=status_of(person, locked_until),
        invitation_expires_at=iso(person.invitation_expires_at) if person.account_status == "invited" else None,
        password_set_at=iso(person.password_set_at), password_expires_at=iso(expires),
        temporary_password_expires_at=iso(person.temporary_password_expires_at),
        locked_until=iso(locked_until), created_at=iso_at(person.created_at), updated_at=iso_at(person.updated_at))


def get_person(tenant_id: str, person_id: str) -> PersonOut:
    return person_out(people.get(tenant_id, person_id))


def list_people(tenant_id: str, query: dict) -> dict:
    """A page of people, optionally of one status and kind. Stored statuses are filtered by DynamoDB; derived
    ones (locked, password_expired) in code, so pages are read until this page is full."""
    limit, start = page_args(query)
    status, kind = query.get("status"), query.get("kind")
    if status is not None and status not in STATUSES:
        raise Invalid("invalid_request", f"status must be one of {', '.join(STATUSES)}.", field="status")
    if kind is not None and kind not in ("employee", "technician"):
        raise Invalid("invalid_request", "kind must be employee or technician.", field="kind")
    condition = None
    if kind:
        condition &= Person.kind == kind
    if status:
        stored = "active" if status in ("locked", "password_expired") else status
        condition &= Person.account_status == stored
    start_key = {"tenant_id": {"S": tenant_id}, "person_id": {"S": start}} if start else None
    results = Person.query(tenant_id, filter_condition=condition, last_evaluated_key=start_key, page_size=100)
    items, chunk, more = [], [], False

    def take(chunk: list[Person]) -> None:
        locks = _locks(tenant_id, chunk)
        for person in chunk:
            out = person_out(person, locks.get(person.username or "", 0))
            if status is None or out.status == status:
                items.append(out)

    for person in results:
        if len(items) >= limit:
            more = True
            break
        chunk.append(person)
        if len(chunk) == 100 or len(items) + len(chunk) >= limit:
            take(chunk)
            chunk = []
    take(chunk)
    items = items[:limit]
    cursor = make_cursor({"person_id": {"S": items[-1].person_id}}, "person_id") if more and items else None
    return {"items": items, "next_cursor": cursor}


# --- creating and changing people ---------------------------------------------------------------------------

def _need_contact(kind: str, email: str | None, mobile: str | None) -> None:
    """DESIGN rule 8: employees need an email; technicians an email or a mobile number."""
    if kind == "employee" and not email:
        raise Invalid("email_required", "An employee needs an email address.", field="email")
    if not email and not mobile:
        raise Invalid("contact_required", "A technician needs an email address or a mobile number.",
                       field="mobile")


def _may_grant(caller: Principal, role: str, permissions: Iterable[str]) -> None:
    """No one hands out more than they hold: an admin with only accounts:manage cannot make an admin."""
    granted = people.ROLE_PERMISSIONS.get(role, set()) | set(permissions)
    missing = granted - set(caller.permissions)
    if missing:
        raise Forbidden("cannot_grant", f"You cannot grant what you do not hold: {', '.join(sorted(missing))}.",
                       field="permissions")


def _managed(caller: Principal, person_id: str) -> Person:
    """The person, if the caller may manage them: no one resets, invites or edits someone who holds more than
    they do (else a holder of accounts:manage alone could reset an admin's password and become them)."""
    person = people.get(caller.tenant_id, person_id)
    if not _may_manage(caller, person):
        raise Forbidden("cannot_manage", "This person holds permissions you do not; ask an admin.")
    return person


def _may_manage(caller: Principal, person: Person) -> bool:
    return set(people.effective_permissions(person)) <= set(caller.permissions)


def create_person(caller: Principal, body: PersonCreate, ip: str | None) -> PersonOut:
    _need_contact(body.kind, body.email, body.mobile)
    role = body.role or ("technician" if body.kind == "technician" else "staff")
    if body.mobile_access and body.kind != "technician":
        raise Invalid("invalid_request", "mobile_access is for technicians.", field="mobile_access")
    _may_grant(caller, role, body.permissions)
    person = people.create(caller.tenant_id, kind=body.kind, name=body.name, email=body.email, mobile=body.mobile,
                           role=role, permissions=sorted(set(body.permissions)), mobile_access=body.mobile_access)
    audit.record(caller.tenant_id, "staff.person_created", actor=caller.subject, target=person.person_id, ip=ip,
                 kind=body.kind, role=role)
    return person_out(person, 0)


ACCESS_FIELDS = ("role", "permissions", "disabled")


def patch_person(caller: Principal, person_id: str, body: PersonPatch, ip: str | None) -> PersonOut:
    changes = body.model_dump(exclude_unset=True)
    if "status" in changes:  # the one shape for people and portal users; `disabled` is its deprecated spelling
        status = changes.pop("status")
        if status is None:
            raise Invalid("invalid_request", "status cannot be empty.", field="status")
        if changes.get("disabled") is not None and changes["disabled"] != (status == "disabled"):
            raise Invalid("invalid_request", "status and disabled disagree; send status only.",
                           field="status")
        changes["disabled"] = status == "disabled"  # from here on, exactly the checks `disabled` goes through
    if person_id == caller.subject and set(changes) & set(ACCESS_FIELDS):
        # Else a token that outlived a demotion could undo it; an admin's own access is another admin's call.
        raise Forbidden("cannot_change_own_access", "You cannot change your own role, permissions or "
                       "disabled state; ask another admin.")
    person = _managed(caller, person_id)
    for required in ("kind", "name", "role", "permissions", "mobile_access"):
        if required in changes and changes[required] is None:
            raise Invalid("invalid_request", f"{required} cannot be empty.", field=required)
    disabled = changes.pop("disabled", None)
    merged = {k: changes.get(k, getattr(person, k)) for k in ("kind", "email", "mobile", "role", "permissions")}
    _need_contact(merged["kind"], merged["email"], merged["mobile"])
    if changes.get("mobile_access") and merged["kind"] != "technician":
        raise Invalid("invalid_request", "mobile_access is for technicians.", field="mobile_access")
    if "role" in changes or "permissions" in changes:
        _may_grant(caller, merged["role"], list(merged["permissions"] or []))
    if "permissions" in changes:
        changes["permissions"] = sorted(set(changes["permissions"]))
    pending_links = []
    if person.account_status == "invited" and ({"email", "mobile"} & set(changes)):
        # The invitation went to a contact that changed (maybe a typo): it stops working; invite again.
        changes.update(account_status="no_account", invitation_token_hash=None, invitation_expires_at=None)
        pending_links.append(person.invitation_token_hash)
    if disabled is not None:
        if disabled and person.account_status != "disabled":
            # A disabled person's pending links stop working too.
            changes.update(account_status="disabled", invitation_token_hash=None, invitation_expires_at=None,
                           reset_link_token_hash=None)
            pending_links += [person.invitation_token_hash, person.reset_link_token_hash]
        elif not disabled and person.account_status == "disabled":
            changes["account_status"] = "active" if person.username else "no_account"
            # an enabled password's expiry warning is due again (the schedule dropped it while disabled)
            changes.update(due.due_fields(person, account_status=changes["account_status"]))
    access_changed = (changes.get("account_status") == "disabled"
                      or changes.get("role", person.role) != person.role
                      or ("permissions" in changes and set(changes["permissions"]) != set(person.permissions or ())))
    if access_changed:
        # in the same write (guarded by the person's version): every session of the person ends
        changes["session_epoch"] = int(person.session_epoch or 0) + 1
    if changes:
        admin_guard = _last_admin_guard(person, changes)
        person = people.update(person, changes, also=admin_guard)
        for hashed in pending_links:
            single_use.revoke(hashed, "invitation_revoked")
    if access_changed:
        audit.record(caller.tenant_id, "session.ended_all", actor=caller.subject, target=person_id, ip=ip,
                     reason="disabled" if changes.get("account_status") == "disabled" else "access_changed")
    fields = sorted(k for k in changes if k not in ("invitation_token_hash", "invitation_expires_at",
                                                    "reset_link_token_hash", "session_epoch", "due_key",
                                                    "due_at"))
    audit.record(caller.tenant_id, "staff.person_updated", actor=caller.subject, target=person_id, ip=ip,
                 fields=fields)
    return person_out(person)


def _is_active_admin(person: Person, changes: dict | None = None) -> bool:
    changes = changes or {}
    return changes.get("role", person.role) == "admin" \
        and changes.get("account_status", person.account_status) == "active"


def _last_admin_guard(person: Person, changes: dict) -> Callable | None:
    """When a change takes an active admin away, 409 `last_admin` if no other active admin is left. The check and
    the change are serialised per business: the change's transaction also bumps the tenant's `admin_changes`,
    conditioned on the value read before the check, so of two admins removing each other at once one fails."""
    if not _is_active_admin(person) or _is_active_admin(person, changes):
        return None
    tenant = Tenant.get(person.tenant_id, consistent_read=True)
    seen = int(tenant.admin_changes or 0)
    others = Person.query(person.tenant_id, consistent_read=True,
                          filter_condition=(Person.role == "admin") & (Person.account_status == "active")
                          & (Person.person_id != person.person_id))
    if next(iter(others), None) is None:
        raise Conflict("last_admin", "This is the business's last active admin: make someone else an admin "
                       "first.")

    def bump(tx) -> None:
        tx.update(Tenant(person.tenant_id), actions=[Tenant.admin_changes.set(seen + 1)],
                  condition=(Tenant.admin_changes == seen) if seen
                  else (Tenant.admin_changes.does_not_exist() | (Tenant.admin_changes == 0)))
    return bump


def person_sessions(caller: Principal, person_id: str) -> "sessions.SessionList":
    person = _managed(caller, person_id)  # where and when someone signs in is as private as their account
    return sessions.listing(caller.tenant_id, "staff", person_id, person)


def sign_out_person(caller: Principal, person_id: str, ip: str | None) -> None:
    """Ends every session of the person (an admin's answer to a lost phone or a shared password)."""
    sessions.end_all(_managed(caller, person_id), actor=caller.subject, reason="admin_sign_out", ip=ip)


# --- invitations (rule 9) -----------------------------------------------------------------------------------

def _pick_channel(person: Person, preferred: str | None) -> str:
    if preferred and preferred != people.channel_for(person, preferred):
        raise Invalid("channel_unavailable", f"This person has no {'email' if preferred == 'email' else 'mobile'}"
                       f" to send to.", field="channel")
    chosen = people.channel_for(person, preferred)
    if chosen is None:
        raise no_contact()
    return chosen


def no_contact() -> Error:  # a fresh error each time: a module-level one keeps every raise's traceback
    return Conflict("no_contact", "This person has neither an email nor a mobile number.")


def _invitable(person: Person) -> str | None:
    """Why this person cannot be invited, or None."""
    if person.account_status == "disabled":
        return "disabled"
    if person.username or person.account_status == "active":
        return "has_account"
    if people.channel_for(person) is None:
        return "no_contact"
    return None


def _invite(person: Person, channel: str, actor: str, ip: str | None, outbox: list | None = None,
            job_id: str | None = None) -> dict:
    """Issues a new invitation link (the previous one stops working) and queues the message."""
    token = single_use.issue("staff_invite", person.tenant_id, person.person_id, INVITE_SECONDS)
    previous, at = person.invitation_token_hash, now()
    try:
        # The version condition and the status condition: a concurrent accept or re-invite wins, this one fails.
        person.update(actions=[Person.invitation_token_hash.set(token_hash(token)), Person.invited_at.set(at),
                               Person.invitation_expires_at.set(at + INVITE_SECONDS),
                               Person.account_status.set("invited"), Person.updated_at.set(at),
                               *due.due_actions(person, account_status="invited",
                                                   invitation_expires_at=at + INVITE_SECONDS)],
                      condition=Person.account_status.is_in("no_account", "invited"))
    except UpdateError:
        single_use.revoke(token_hash(token))
        raise Conflict("edit_conflict", "Someone else changed this person at the same time; try again.") \
            from None
    single_use.revoke(previous, "invitation_replaced")
    link = f"{config.public_base_url()}/staff/accept-invite?token={token}"
    msg = people.message(person, "staff-invite", [link], channel, link=link, days=str(INVITE_SECONDS // 86400))
    if msg is None:  # never: the channel is one the person has
        raise no_contact()
    if outbox is None:
        from chalicelib.core import messaging
        messaging.enqueue([msg])
    else:
        outbox.append(msg)
    audit.record(person.tenant_id, "staff.invited", actor=actor, target=person.person_id, ip=ip, channel=channel,
                 **({"job_id": job_id} if job_id else {}))
    return {"person_id": person.person_id, "status": "invited", "channel": channel,
            "expires_at": iso(at + INVITE_SECONDS)}


def invite(caller: Principal, person_id: str, body: SendOptions | None, ip: str | None) -> dict:
    person = _managed(caller, person_id)
    reason = _invitable(person)
    if reason == "disabled":
        raise Conflict("account_disabled", "This person's account is disabled; enable it first.")
    if reason == "has_account":
        raise Conflict("account_exists", "This person already has an account; send a reset link instead.")
    return _invite(person, _pick_channel(person, body.channel if body else None), caller.subject, ip)


# `username_taken` tells whether a username exists: an invitation may hear it this many times an hour, and
# each one is a wrong guess of the caller's IP (scope "usernames"), so a link cannot list the usernames.
USERNAME_TAKEN_PER_INVITATION = (5, 3600)


def _count_username_taken(person: Person) -> None:
    """One more `username_taken` for the invited person; past the limit, 429 instead (an atomic per-hour counter,
    so concurrent tries cannot hear it more often)."""
    from chalicelib.flows.staff.staff_recovery import within_hourly_cap
    limit, window = USERNAME_TAKEN_PER_INVITATION
    if not within_hourly_cap("staff-invite-username-taken", f"{person.tenant_id}#{person.person_id}", limit):
        import time
        raise Throttled("too_many_requests", "Too many usernames that are taken; wait a little and try again.",
                       retry_after=max(1, window - int(time.time()) % window))


@lockout.limit_guesses_per_ip("links", "token_invalid")
@lockout.limit_guesses_per_ip("usernames", "username_taken")
def accept_invite(body: AcceptInvite, ip: str | None, user_agent: str | None = None, *,
                  password_confirm: str | None = None) -> dict:
    """The invitation link's page: choose a username (default: the email) and a password. Every check comes
    before the link is consumed, so a refused username or password leaves it usable; of concurrent accepts
    exactly one wins (set_password_with_link)."""
    record = single_use.look_up(body.token, "staff_invite")
    try:
        person = Person.get(record.tenant_id, record.subject_id, consistent_read=True)
    except DoesNotExist:
        raise Invalid("token_invalid", "This link is not valid.") from None
    if person.account_status == "disabled":
        raise Forbidden("account_disabled", "This account is disabled; ask your administrator.")
    if person.invitation_token_hash != record.token_hash:
        raise Gone("invitation_replaced", "A newer invitation was sent; use the link in the latest one.")
    # Every field is checked and every problem answered at once (the first in code/field, all in `fields`).
    username = (body.username or person.email or "").strip()
    problems = [Invalid("username_required", "Choose a username.", field="username")] if not username \
        else staff_signin.caught(lambda: people.check_username(person, username))
    problems += staff_signin.caught(lambda: _check_policy(body.password, "password"))
    if password_confirm is not None and password_confirm != body.password:
        problems.append(Invalid("passwords_differ", "The two passwords are not the same.",
                                 field="password_confirm"))
    staff_signin.refuse(problems)
    try:
        staff_signin.set_password_with_link(person, body.password, record, new_username=username,
                                            username_field="username")
    except Error as err:
        if err.code == "username_taken":  # 429 instead once the invitation has heard it too often
            _count_username_taken(person)
        raise
    audit.record(person.tenant_id, "staff.invitation_accepted", actor=person.person_id, ip=ip)
    return staff_signin.start_session(person, "invitation", ip, user_agent)


# --- admin-created accounts, reset links, temporary passwords (rules 10, 14) --------------------------------

def _check_policy(password: str, field: str) -> None:
    try:
        passwords.check_policy(password)
    except passwords.PolicyViolation as exc:
        raise Invalid(exc.code, exc.message, field=field) from None


def _with_account(caller: Principal, person_id: str) -> Person:
    person = _managed(caller, person_id)
    if person.account_status == "disabled":
        raise Conflict("account_disabled", "This person's account is disabled; enable it first.")
    if not person.username:
        raise Conflict("no_account", "This person has no account yet; invite them or create one.")
    return person


def create_account(caller: Principal, person_id: str, body: AccountCreate, ip: str | None) -> PersonOut:
    """Rule 10: the admin chooses a username and password; the first sign-in demands a new one of each."""
    person = _managed(caller, person_id)
    if person.account_status == "disabled":
        raise Conflict("account_disabled", "This person's account is disabled; enable it first.")
    if person.username or person.account_status == "active":
        raise Conflict("account_exists", "This person already has an account; set a temporary password "
                       "or send a reset link instead.")
    people.check_username(person, body.username)
    _check_policy(body.password, "password")
    staff_signin.set_password(person, body.password, new_username=body.username, must_change=True,
                              username_field="username", ended_by=caller.subject)
    audit.record(caller.tenant_id, "staff.account_created", actor=caller.subject, target=person_id, ip=ip)
    return person_out(person, 0)


def _send_reset_link(person: Person, channel: str, actor: str, ip: str | None, outbox: list | None = None,
                     job_id: str | None = None) -> dict:
    token = single_use.issue("staff_reset", person.tenant_id, person.person_id, RESET_LINK_SECONDS, via="link")
    previous = person.reset_link_token_hash
    try:
        person.update(actions=[Person.reset_link_token_hash.set(token_hash(token)), Person.updated_at.set(now())],
                      condition=Person.account_status == "active")
    except UpdateError:
        single_use.revoke(token_hash(token))
        raise Conflict("edit_conflict", "Someone else changed this person at the same time; try again.") \
            from None
    single_use.revoke(previous, "link_replaced")
    link = f"{config.public_base_url()}/staff/reset-password?token={token}"
    msg = people.message(person, "staff-reset-link", [link], channel, link=link,
                         hours=str(RESET_LINK_SECONDS // 3600))
    if msg is None:  # never: the channel is one the person has
        raise no_contact()
    if outbox is None:
        from chalicelib.core import messaging
        messaging.enqueue([msg])
    else:
        outbox.append(msg)
    audit.record(person.tenant_id, "staff.reset_link_sent", actor=actor, target=person.person_id, ip=ip,
                 channel=channel, **({"job_id": job_id} if job_id else {}))
    return {"person_id": person.person_id, "channel": channel, "expires_at": iso(now() + RESET_LINK_SECONDS)}


def send_reset_link(caller: Principal, person_id: str, body: SendOptions | None, ip: str | None) -> dict:
    person = _with_account(caller, person_id)
    return _send_reset_link(person, _pick_channel(person, body.channel if body else None), caller.subject, ip)


TEMPORARY_ALPHABET = string.ascii_letters + string.digits


def generate_temporary_password(length: int = 16) -> str:
    """16 random letters and digits (~95 bits) with an upper, a lower case letter and a digit (rule 11)."""
    while True:
        candidate = "".join(secrets.choice(TEMPORARY_ALPHABET) for _ in range(length))
        if not passwords.policy_failures(candidate):
            return candidate


def set_temporary_password(caller: Principal, person_id: str, body: TemporaryPasswordBody | None,
                           ip: str | None) -> TemporaryPasswordOut:
    """Rule 14: valid 60 minutes, then sign-in answers temporary_password_expired; calling this again issues a
    new one (and ends a lockout)."""
    person = _with_account(caller, person_id)
    given = body.password if body else None
    if given is not None:
        _check_policy(given, "password")
    password = given or generate_temporary_password()
    staff_signin.set_password(person, password, must_change=True, temporary_for=TEMPORARY_PASSWORD_SECONDS,
                              ended_by=caller.subject)
    audit.record(caller.tenant_id, "staff.temporary_password_set", actor=caller.subject, target=person_id, ip=ip,
                 generated=given is None)
    staff_signin.notify_password_changed(person, "temporary")
    return TemporaryPasswordOut(person_id=person_id, expires_at=iso_at(person.temporary_password_expires_at),
                                temporary_password=None if given else password)


# --- bulk invitations and resets (rule 15) ------------------------------------------------------------------

def _resettable(person: Person) -> str | None:
    if person.account_status == "disabled":
        return "disabled"
    if not person.username or person.account_status != "active":
        return "no_account"
    if people.channel_for(person) is None:
        return "no_contact"
    return None


BULK = {  # kind → (who is skipped and why, how one person is contacted, audit action)
    "invite": (_invitable, _invite, "staff.bulk_invite"),
    "password_reset": (_resettable, _send_reset_link, "staff.bulk_password_reset"),
}


def _selected(tenant_id: str, body: BulkRequest) -> tuple[list[Person], list[str]]:
    if body.all:
        return list(Person.query(tenant_id)), []
    wanted = list(dict.fromkeys(body.person_ids or []))  # (given whenever `all` is not)
    found = {p.person_id: p for p in Person.batch_get([(tenant_id, pid) for pid in wanted])}
    return [found[pid] for pid in wanted if pid in found], [pid for pid in wanted if pid not in found]


def bulk(caller: Principal, kind: str, body: BulkRequest, ip: str | None) -> dict:
    """A dry run lists who would be contacted and who is skipped; a real run contacts them through the send
    queue (ten messages per call) and keeps a Job with every person's outcome."""
    from chalicelib.core import messaging
    skip_reason, contact, action = BULK[kind]
    persons, missing = _selected(caller.tenant_id, body)
    dry = body.type == "dry_run"
    to_contact = sum(1 for person in persons if not skip_reason(person))
    if not dry and to_contact > BULK_MAX_IDS:
        # A run contacts everyone within this one request: past this many it would outlive API Gateway's 29 s.
        raise Invalid("too_many_people", f"{to_contact} people would be contacted; a run contacts at most "
                       f"{BULK_MAX_IDS}: list them with a dry run and send by person_ids, {BULK_MAX_IDS} at a time.",
                       count=to_contact, limit=BULK_MAX_IDS)
    job_id = None if dry else uuid.uuid4().hex
    if job_id:
        Job(caller.tenant_id, job_id, kind=f"staff_bulk_{kind}", status="running").save()
    outcomes: list[dict] = []
    outbox: list[dict] = []
    for person in persons:
        reason = skip_reason(person) or (None if _may_manage(caller, person) else "not_permitted")
        channel = people.channel_for(person, body.channel)
        row = {"person_id": person.person_id, "name": person.name}
        if reason or channel is None:  # (skip_reason already skips a person with no channel)
            outcomes.append({**row, "outcome": "skipped", "reason": reason or "no_contact"})
            continue
        if dry:
            outcomes.append({**row, "outcome": "would_send", "channel": channel})
            continue
        try:
            contact(person, channel, caller.subject, ip, outbox, job_id)
            outcomes.append({**row, "outcome": "sent", "channel": channel})
        except Error as err:  # e.g. changed at the same moment: report it, carry on with the others
            outcomes.append({**row, "outcome": "failed", "reason": err.code})
        if len(outbox) >= messaging.SEND_BATCH:
            messaging.enqueue(outbox)
            outbox = []
    messaging.enqueue(outbox)
    outcomes += [{"person_id": pid, "outcome": "not_found"} for pid in missing]
    counts: dict[str, int] = {}
    for row in outcomes:
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
    result = {"job_id": job_id, "kind": kind, "type": body.type, "status": "done", "counts": counts,
              "outcomes": outcomes}
    if job_id:
        job = Job(caller.tenant_id, job_id)
        job.update(actions=[Job.status.set("done"), Job.updated_at.set(now()),
                            Job.summary.set({"type": body.type, "counts": counts, "outcomes": outcomes})])
        audit.record(caller.tenant_id, action, actor=caller.subject, ip=ip, job_id=job_id, counts=counts)
        result["created_at"] = iso(job.created_at)
    return result


def get_bulk_job(tenant_id: str, job_id: str) -> dict:
    try:
        job = Job.get(tenant_id, job_id, consistent_read=True)
    except DoesNotExist:
        job = None
    if job is None or not job.kind.startswith("staff_bulk_"):
        raise NotFound("job_not_found", "No such bulk run in this business.")
    summary = job.summary.as_dict() if hasattr(job.summary, "as_dict") else dict(job.summary or {})
    return {"job_id": job.job_id, "kind": job.kind.removeprefix("staff_bulk_"), "type": summary.get("type", "send"),
            "status": job.status, "counts": summary.get("counts", {}), "outcomes": summary.get("outcomes", []),
            "created_at": iso(job.created_at)}


# --- one person's audit trail -------------------------------------------------------------------------------

def person_audit(tenant_id: str, person_id: str, query: dict) -> dict:
    """Everything done by or to the person, newest first."""
    people.get(tenant_id, person_id)  # 404 for another tenant's person
    return audit.trail(tenant_id, person_id, query)
