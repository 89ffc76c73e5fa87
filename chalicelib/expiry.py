"""The schedule's work (every 15 minutes): expire unused temporary passwords. Sign-in already refuses them
past their 60 minutes; this removes the hash so nothing can use it later."""
from chalicelib import audit
from chalicelib.models import Person, now
from chalicelib.observability import logger


def expire_temporary_passwords() -> int:
    expired = 0
    cutoff = now()
    for person in Person.scan(Person.temporary_password_expires_at < cutoff):
        try:
            person.update(actions=[Person.password_hash.remove(), Person.temporary_password_expires_at.remove(),
                                   Person.must_change_password.set(False)],
                          condition=Person.temporary_password_expires_at < cutoff)
        except Exception:  # changed since the scan (the person set a real password): leave it
            continue
        audit.record(person.tenant_id, "staff.temporary_password_expired", target=person.person_id)
        expired += 1
    return expired


def run() -> dict:
    result = {"temporary_passwords_expired": expire_temporary_passwords()}
    logger.info("schedule ran", extra=result)
    return result
