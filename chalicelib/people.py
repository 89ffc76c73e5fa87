"""Employees and technicians (staff): creating them with unique email / mobile / username claims."""
import uuid

from pynamodb.exceptions import DoesNotExist, TransactWriteError


from chalicelib import identity
from chalicelib.api import ApiError
from chalicelib.models import Person, now, transaction

# What an admin can be allowed to do; the admin role holds every permission.
PERMISSIONS = ("accounts:manage", "directory:manage", "portal:manage", "partners:manage", "audit:read")
ROLE_PERMISSIONS = {"admin": set(PERMISSIONS), "office": {"directory:manage"}, "technician": set(), "staff": set()}


def effective_permissions(person: Person) -> list[str]:
    return sorted(ROLE_PERMISSIONS.get(person.role, set()) | set(person.permissions or ()))


def get(tenant_id: str, person_id: str) -> Person:
    try:
        return Person.get(tenant_id, person_id, consistent_read=True)
    except DoesNotExist:
        raise ApiError(404, "person_not_found", "No such person in this business.") from None


def find_by_username(tenant_id: str, username: str) -> Person | None:
    person_id = identity.owner_of(tenant_id, "username", username)
    if person_id is None:
        return None
    try:
        return Person.get(tenant_id, person_id, consistent_read=True)
    except DoesNotExist:
        return None


def create(tenant_id: str, *, kind: str, name: str, email: str | None = None, mobile: str | None = None,
           role: str = "staff", permissions: list[str] | None = None, username: str | None = None,
           password_hash: str | None = None, mobile_access: bool = False) -> Person:
    """Creates the person and claims its email, mobile and username in one transaction."""
    person = Person(tenant_id, uuid.uuid4().hex, kind=kind, name=name, email=email, mobile=mobile, role=role,
                    permissions=permissions or [], mobile_access=mobile_access, username=username,
                    password_hash=password_hash, password_set_at=now() if password_hash else None,
                    account_status="active" if password_hash else "no_account")
    claims = [(k, v) for k, v in (("email", email), ("mobile", mobile), ("username", username)) if v]
    try:
        with transaction() as tx:
            for kind_, value in claims:
                identity.claim_put(tx, tenant_id, kind_, value, person.person_id)
            tx.save(person, condition=Person.person_id.does_not_exist())
    except TransactWriteError as exc:
        taken = identity.taken_claims(exc, claims) or ["email"]
        raise ApiError(409, f"{taken[0]}_taken", f"Another person of this business already has this {taken[0]}.",
                       field=taken[0]) from None
    return person
