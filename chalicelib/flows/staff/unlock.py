"""An admin ends a person's sign-in lockout (`POST /v1/people/{person_id}/unlock`), so they can sign in at once
instead of waiting out the back-off. Staff sign-in counts failures under the person's username whichever
identifier they typed (staff_signin.sign_in), so clearing that one counter unlocks them; it also forgets failures
counted so far. Idempotent: a person who is not locked is answered as they are, and nothing is recorded."""
from chalicelib.core import audit, lockout
from chalicelib.core.paging import iso_at
from chalicelib.core.principal import Principal
from chalicelib.flows.staff import staff_accounts


def unlock(caller: Principal, person_id: str, ip: str | None = None) -> staff_accounts.PersonOut:
    """The person as they are now (status no longer `locked`). 404 for a person of another tenant (or none),
    403 `cannot_manage` for someone who holds more than the caller. Audited as `staff.unlocked` when a lockout
    was in force."""
    person = staff_accounts.managed(caller, person_id)
    if not person.username:  # no account, so no sign-in to unlock
        return staff_accounts.person_out(person, 0)
    locked_until = lockout.locked_until("staff", caller.tenant_id, [person.username]).get(person.username)
    lockout.clear("staff", caller.tenant_id, person.username)
    if locked_until:
        audit.record(caller.tenant_id, "staff.unlocked", actor=caller.subject, target=person_id, ip=ip,
                     was_locked_until=iso_at(locked_until))
    return staff_accounts.person_out(person, 0)
