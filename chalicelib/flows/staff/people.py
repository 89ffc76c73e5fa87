"""Employees and technicians (staff): creating and changing them with unique email / mobile / username claims,
finding them by any identifier, and sending them a message on the channel they have."""
import re
import uuid
from typing import Callable, Literal, get_args

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.core import due, identity, tenants
from chalicelib.core.errors import Conflict, Invalid, NotFound
from chalicelib.core.models import Claim, Person, now, transaction

# What an admin can be allowed to do; the admin role holds every permission.
Permission = Literal["accounts:manage", "directory:manage", "portal:manage", "partners:manage", "audit:read",
                     "apps:manage"]
PERMISSIONS: tuple[str, ...] = get_args(Permission)
ROLE_PERMISSIONS = {"admin": set(PERMISSIONS), "office": {"directory:manage"}, "technician": set(), "staff": set()}
NOBODY = "-"  # a person id no one has: read in place of a missing person, so both cost the same


def effective_permissions(person: Person) -> list[str]:
    return sorted(ROLE_PERMISSIONS.get(person.role, set()) | set(person.permissions or ()))


def get(tenant_id: str, person_id: str) -> Person:
    try:
        return Person.get(tenant_id, person_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound("person_not_found", "No such person in this business.") from None


def find_by_username(tenant_id: str, username: str) -> Person | None:
    """The person a sign-in names. An email address is the person's whose email it is (looked up as an email
    first, as person_id_for does), so a username that is a colleague's email never opens the squatter's account;
    anything else is a username. Two reads whether or not anyone is found (one BatchGetItem of the claims, then
    the person, or a person id no one has), so sign-in costs the same for a known and an unknown identifier."""
    value = username.strip()
    lookups = [("username", value)]
    if "@" in value:
        try:
            lookups.insert(0, ("email", identity.normalise_email(value)))
        except ValueError:
            pass
    person_id = next((owner for owner in identity.owners_of(tenant_id, lookups) if owner), None)
    try:
        person = Person.get(tenant_id, person_id or NOBODY, consistent_read=True)
    except DoesNotExist:
        return None
    return person if person_id else None


def create(tenant_id: str, *, kind: str, name: str, email: str | None = None, mobile: str | None = None,
           role: str = "staff", permissions: list[str] | None = None, username: str | None = None,
           password_hash: str | None = None, mobile_access: bool = False) -> Person:
    """Creates the person and claims its email, mobile and username in one transaction."""
    person = Person(tenant_id, uuid.uuid4().hex, kind=kind, name=name, email=email, mobile=mobile, role=role,
                    permissions=permissions or [], mobile_access=mobile_access, username=username,
                    password_hash=password_hash, password_set_at=now() if password_hash else None,
                    account_status="active" if password_hash else "no_account")
    if password_hash:  # the schedule's index: this password's expiry warning falls due (expiry.py)
        person.due_key, person.due_at = due.due_fields(person).values()
    claims = [(k, v) for k, v in (("email", email), ("mobile", mobile), ("username", username)) if v]
    try:
        with transaction() as tx:
            for kind_, value in claims:
                identity.claim_put(tx, tenant_id, kind_, value, person.person_id)
            tx.save(person, condition=Person.person_id.does_not_exist())
    except TransactWriteError as exc:
        taken = identity.taken_claims(exc, claims) or ["email"]
        raise Conflict(f"{taken[0]}_taken", f"Another person of this business already has this {taken[0]}.",
                       field=taken[0]) from None
    return person


# --- changing a person: new email / mobile claimed, old ones released, in one transaction ------------------

def update(person: Person, changes: dict, also: Callable | None = None) -> Person:
    """Applies attribute changes. A changed email or mobile is claimed (409 `<field>_taken` when another person
    of the tenant holds it) and the old value released in the same transaction as the person's write, whose
    version condition makes a concurrent edit fail instead of being lost. `also(tx)` adds a write of the
    caller's to the same transaction (the last-admin guard)."""
    claims, releases = [], []
    for field in ("email", "mobile"):
        if field in changes and changes[field] != getattr(person, field):
            if changes[field]:
                claims.append((field, changes[field]))
            if getattr(person, field):
                releases.append((field, getattr(person, field)))
    actions = [getattr(Person, k).set(v) if v is not None else getattr(Person, k).remove()
               for k, v in changes.items()]
    actions.append(Person.updated_at.set(now()))
    try:
        with transaction() as tx:
            for kind, value in claims:
                identity.claim_put(tx, person.tenant_id, kind, value, person.person_id)
            for kind, value in releases:
                tx.delete(Claim(person.tenant_id, identity.claim_key(kind, value)))
            tx.update(person, actions=actions)
            if also is not None:
                also(tx)
    except TransactWriteError as exc:
        codes = identity.cancellation_codes(exc, [("save", kind) for kind, _ in claims]
                                            + [("delete", f"old {kind}") for kind, _ in releases]
                                            + [("update", "person")])
        taken = [kind for kind, _ in claims if codes.get(kind) == "ConditionalCheckFailed"]
        if taken:
            raise Conflict(f"{taken[0]}_taken", f"Another person of this business already has this "
                           f"{taken[0]}.", field=taken[0]) from None
        raise Conflict("edit_conflict", "Someone else changed this person at the same time; try again.") \
            from None
    person.refresh(consistent_read=True)
    return person


# --- usernames and identifiers ------------------------------------------------------------------------------

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{2,63}$")


def _as_mobile(value: str) -> str | None:
    try:
        return identity.normalise_mobile(value)
    except ValueError:
        return None


def check_username(person: Person, username: str, *, field: str = "username") -> None:
    """A username is 3-64 letters, digits and . _ @ + - (no spaces, nothing that needs escaping), or the
    person's own email address, which is the default. One that looks like an email address (has an @) or a
    mobile number (any spelling normalise_mobile takes) must be the person's own: else someone could take a
    colleague's email or number as their username and be found by it (400 invalid_username, which says so)."""
    value = username.strip()
    if person.email and value.lower() == person.email:
        return
    if "@" in value:
        raise Invalid("invalid_username", "A username with an @ must be your own email address; choose "
                       "another username, or use your email.", field=field)
    mobile = _as_mobile(value)
    if mobile is not None and mobile != person.mobile:
        raise Invalid("invalid_username", "A username that is a phone number must be your own mobile "
                       "number; choose another username.", field=field)
    if not USERNAME_RE.match(value):
        raise Invalid("invalid_username", "A username is 3 to 64 letters, digits and . _ @ + - "
                       "(starting with a letter or digit).", field=field)


def person_id_for(tenant_id: str, identifier: str) -> str | None:
    """The id of the person an identifier names: an email address is looked up as an email first, and a mobile
    number (any spelling) as a mobile first (so a username that happens to look like a colleague's email or number
    never captures the colleague's recovery), then as a username; anything else as a username. Every candidate
    is read in one call, so an identifier that names no one costs what one that names someone does."""
    value = identifier.strip()
    lookups = [("username", value)]
    try:
        if "@" in value:
            lookups.insert(0, ("email", identity.normalise_email(value)))
        else:
            lookups.insert(0, ("mobile", identity.normalise_mobile(value)))
    except ValueError:
        pass
    return next((owner for owner in identity.owners_of(tenant_id, lookups) if owner), None)


# --- messages to a person -----------------------------------------------------------------------------------

def channel_for(person: Person, preferred: str | None = None) -> str | None:
    """The channel to reach a person on: the preferred one when they have it, else email, else SMS."""
    available = [c for c, v in (("email", person.email), ("sms", person.mobile)) if v]
    if preferred in available:
        return preferred
    return available[0] if available else None


def tenant_name(tenant_id: str) -> str:
    tenant = tenants.find(tenant_id)
    return tenant.name if tenant is not None else "Your company"


def message(person: Person, template: str, links: list[str], channel: str | None = None, **values) -> dict | None:
    """The rendered email or SMS (templates/emails/<template>.txt|.html|.sms.txt), or None without a way to reach
    them. Every template gets `name` and `tenant_name`."""
    from chalicelib.core import messaging
    chosen = channel_for(person, channel)
    values = {"name": person.name, "tenant_name": tenant_name(person.tenant_id), **values}
    if chosen == "email":
        return messaging.render_email(person.tenant_id, person.email, template, links, **values)
    if chosen == "sms":
        return messaging.render_sms(person.tenant_id, person.mobile, template, links, **values)
    return None


def send(person: Person, template: str, links: list[str], channel: str | None = None, **values) -> str | None:
    """Puts the message on the send queue; returns the channel used (None when the person has none)."""
    from chalicelib.core import messaging
    msg = message(person, template, links, channel, **values)
    if msg is None:
        return None
    messaging.enqueue([msg])
    return msg["channel"]
