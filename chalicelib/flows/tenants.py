"""Onboarding and running tenants (the operator console's `tenant` commands): a tenant and its first admin, who
gets an emailed invitation; no password is ever printed or stored by the operator."""
import re

from pynamodb.exceptions import PutError, UpdateError

from chalicelib.core import audit, identity, tenants
from chalicelib.core.models import Person, Tenant
from chalicelib.flows.staff import people, staff_invitations

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class TenantError(Exception):
    """An operator request that cannot be done; the console prints it as one line."""


def create(tenant_id: str, name: str, admin_email: str, admin_name: str = "Administrator") -> dict:
    if not TENANT_ID.match(tenant_id):
        raise TenantError("tenant id: 2-63 characters, lower-case letters, digits and dashes")
    try:
        email = identity.normalise_email(admin_email)
    except ValueError as exc:
        raise TenantError(f"admin email: {exc}") from None
    if not name.strip():
        raise TenantError("the tenant needs a name")
    try:
        Tenant(tenant_id, name=name.strip()).save(condition=Tenant.tenant_id.does_not_exist())
    except PutError:
        raise TenantError(f"tenant {tenant_id!r} already exists") from None
    admin = people.create(tenant_id, kind="employee", name=admin_name, email=email, role="admin")
    sent = staff_invitations.send_invitation(admin, "email", "operator", None)
    audit.record(tenant_id, "tenant.created", actor="operator", target=admin.person_id, name=name.strip())
    return {"tenant_id": tenant_id, "name": name.strip(), "admin_person_id": admin.person_id, "admin_email": email,
            "invitation_expires_at": sent["expires_at"]}


def get(tenant_id: str) -> Tenant:
    tenant = tenants.find(tenant_id, consistent=True)
    if tenant is None:
        raise TenantError(f"no tenant {tenant_id!r}")
    return tenant


def describe(tenant: Tenant) -> dict:
    admins = [p for p in Person.query(tenant.tenant_id) if p.role == "admin"]
    return {"tenant_id": tenant.tenant_id, "name": tenant.name, "status": tenant.status,
            "self_signup": bool(tenant.self_signup), "third_party_signin": list(tenant.third_party_signin or []),
            "admins": [{"email": a.email, "status": a.account_status} for a in admins]}


def list_all() -> list[Tenant]:
    return sorted(Tenant.scan(), key=lambda t: t.tenant_id)


def set_status(tenant_id: str, status: str) -> None:
    try:
        Tenant(tenant_id).update(actions=[Tenant.status.set(status)], condition=Tenant.tenant_id.exists())
    except UpdateError:
        raise TenantError(f"no tenant {tenant_id!r}") from None
    tenants.forget(tenant_id)
    audit.record(tenant_id, f"tenant.{'disabled' if status == 'disabled' else 'enabled'}", actor="operator")
