"""An admin and the second factor: the business's policy `staff_mfa` (GET|PUT /v1/staff/mfa/policy) and
**Reset second factor** for a person (POST /v1/people/{person_id}/reset-mfa: the authenticator app, passkeys and
recovery codes), both needing accounts:manage."""
from chalicelib.core import audit, tenants
from chalicelib.core.models import Person, Tenant
from chalicelib.core.principal import Principal
from chalicelib.flows.staff import mfa, passkeys, staff_accounts


def get_policy(tenant_id: str) -> mfa.MfaPolicy:
    return mfa.MfaPolicy(staff_mfa=mfa.policy_of(tenants.get(tenant_id, consistent=True)))  # type: ignore[arg-type]


def put_policy(caller: Principal, body: mfa.MfaPolicy, ip: str | None) -> mfa.MfaPolicy:
    """Takes effect at each person's next sign-in (sessions already started go on until they end)."""
    before = mfa.policy_of(tenants.get(caller.tenant_id, consistent=True))
    Tenant(caller.tenant_id).update(actions=[Tenant.staff_mfa.set(body.staff_mfa)],
                                    condition=Tenant.tenant_id.exists())
    if before != body.staff_mfa:
        audit.record(caller.tenant_id, "staff.mfa_policy_changed", actor=caller.subject, ip=ip, before=before,
                     after=body.staff_mfa)
    return get_policy(caller.tenant_id)


def reset(caller: Principal, person_id: str, ip: str | None) -> staff_accounts.PersonOut:
    """Removes every factor of the person (the authenticator, its pending setup, every passkey, the recovery
    codes), audited and the person told; 404 for another business's person, 403 cannot_manage for someone holding
    more than the caller. Idempotent: a person without a factor is answered as they are and nothing is recorded.
    Their sessions go on (an admin can also sign them out); at the next sign-in they may, or where required must,
    set one up again."""
    person = staff_accounts.managed(caller, person_id)
    if mfa.has_factor(person) or person.totp_pending or person.recovery_codes or person.passkeys is not None:
        removed_passkeys = passkeys.remove_all(person)
        person.update(actions=[Person.totp_secret.remove(), Person.totp_last_step.remove(),
                               Person.totp_added_at.remove(), Person.totp_pending.remove(),
                               Person.totp_pending_at.remove(), Person.recovery_codes.remove(),
                               Person.recovery_codes_at.remove()], add_version_condition=False)
        mfa.record(person, "staff.mfa_reset", actor=caller.subject, ip=ip, passkeys=removed_passkeys)
        mfa.notify(person, "reset", "its authenticator app, passkeys and recovery codes were removed")
    return staff_accounts.person_out(person)
