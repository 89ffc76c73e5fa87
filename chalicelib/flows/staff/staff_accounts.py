"""Staff accounts for admins (DESIGN rules 8-10, 16-17): people with their account status, creating and changing
them (with the last-admin and own-access rules), their sessions and the audit trail of one person. Invitations are
staff_invitations.py, admin-set passwords and reset links admin_passwords.py, bulk runs staff_bulk.py; passwords
are stored by staff_signin.set_password only."""
from typing import Annotated, Callable, Iterable, Literal

from pydantic import Field

from chalicelib.core import audit, due, lockout, sessions, single_use, tenants
from chalicelib.core.errors import Conflict, Forbidden, Invalid
from chalicelib.core.identity import Email, Mobile
from chalicelib.core.models import Person, Tenant, now
from chalicelib.core.paging import iso, iso_at, make_cursor, page_args
from chalicelib.core.principal import Principal
from chalicelib.core.schema import Shape, Strict
from chalicelib.core.text import OneLine
from chalicelib.flows.staff import mfa, people, staff_signin

# DESIGN rule 17. no_account, invited, active and disabled are stored; locked (a sign-in lockout running) and
# password_expired (over 365 days old, or a temporary password past its hour) are derived when read.
STATUSES = ("no_account", "invited", "active", "locked", "disabled", "password_expired")

Name = Annotated[OneLine, Field(min_length=1, max_length=200)]
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


class PersonOut(Shape):
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
    mfa: bool = False  # whether a second factor is set up (issue 18)
    created_at: str
    updated_at: str


class PersonPage(Shape):
    items: list[PersonOut]
    next_cursor: str | None = None


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
        locked_until=iso(locked_until), mfa=mfa.has_factor(person), created_at=iso_at(person.created_at),
        updated_at=iso_at(person.updated_at))


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


def managed(caller: Principal, person_id: str) -> Person:
    """The person, if the caller may manage them: no one resets, invites or edits someone who holds more than
    they do (else a holder of accounts:manage alone could reset an admin's password and become them)."""
    person = people.get(caller.tenant_id, person_id)
    if not may_manage(caller, person):
        raise Forbidden("cannot_manage", "This person holds permissions you do not; ask an admin.")
    return person


def may_manage(caller: Principal, person: Person) -> bool:
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
    person = managed(caller, person_id)
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
    tenant = tenants.get(person.tenant_id, consistent=True)
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
    person = managed(caller, person_id)  # where and when someone signs in is as private as their account
    return sessions.listing(caller.tenant_id, "staff", person_id, person)


def sign_out_person(caller: Principal, person_id: str, ip: str | None) -> None:
    """Ends every session of the person (an admin's answer to a lost phone or a shared password)."""
    sessions.end_all(managed(caller, person_id), actor=caller.subject, reason="admin_sign_out", ip=ip)


# --- one person's audit trail -------------------------------------------------------------------------------

def person_audit(tenant_id: str, person_id: str, query: dict) -> dict:
    """Everything done by or to the person, newest first."""
    people.get(tenant_id, person_id)  # 404 for another tenant's person
    return audit.trail(tenant_id, person_id, query)
