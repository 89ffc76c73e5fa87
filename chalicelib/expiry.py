"""The schedule's work (every 5 minutes), over the people of every tenant:

- expire unused temporary passwords: sign-in already refuses them past their 60 minutes; this retires the hash
  (kept aside only so sign-in can still answer `temporary_password_expired`);
- expire stale staff invitations (7 days): the person goes back to no_account and can be invited again;
- warn by email (SMS when there is no email) 14 days before a password turns 365 days old, once per password.

Every change is a conditional write, so two overlapping runs never act twice on one person."""
from datetime import datetime, timezone
from urllib.parse import urlencode

from pynamodb.exceptions import UpdateError

from chalicelib import audit, config, people
from chalicelib.models import Person, now
from chalicelib.observability import logger
from chalicelib.staff_signin import PASSWORD_MAX_AGE_SECONDS

WARN_BEFORE_SECONDS = 14 * 24 * 3600


def expire_temporary_password(person: Person, at: int) -> bool:
    try:
        person.update(actions=[Person.expired_temporary_hash.set(person.password_hash),
                               Person.password_hash.remove(), Person.temporary_password_expires_at.remove(),
                               Person.must_change_password.set(False)],
                      condition=Person.temporary_password_expires_at < at)
    except UpdateError:  # changed since the scan (e.g. the person set a real password): leave it
        return False
    audit.record(person.tenant_id, "staff.temporary_password_expired", target=person.person_id)
    return True


def expire_invitation(person: Person, at: int) -> bool:
    try:
        person.update(actions=[Person.account_status.set("no_account"), Person.invitation_token_hash.remove(),
                               Person.invitation_expires_at.remove(), Person.updated_at.set(at)],
                      condition=(Person.account_status == "invited") & (Person.invitation_expires_at < at))
    except UpdateError:  # accepted or re-sent since the scan
        return False
    # The link itself stops working by its own expiry (it answers token_expired, which explains itself).
    audit.record(person.tenant_id, "staff.invitation_expired", target=person.person_id)
    return True


def warn_password_expiry(person: Person, at: int) -> bool:
    set_at = person.password_set_at
    expires = set_at + PASSWORD_MAX_AGE_SECONDS
    if person.expiry_warning_for == set_at or expires <= at or person.must_change_password:
        return False  # warned for this password already, already expired, or about to be replaced anyway
    try:  # remember the warning first: a crash after this loses one warning rather than sending two
        person.update(actions=[Person.expiry_warning_for.set(set_at)],
                      condition=(Person.password_set_at == set_at)
                      & (Person.expiry_warning_for.does_not_exist() | (Person.expiry_warning_for != set_at)))
    except UpdateError:
        return False
    date = datetime.fromtimestamp(expires, timezone.utc).strftime("%Y-%m-%d")
    days = str(max(1, round((expires - at) / 86400)))
    # The staff change-password page of the person's business (the customer /sign-in is not theirs)
    link = f"{config.public_base_url()}/staff/change-password?{urlencode({'tenant_id': person.tenant_id})}"
    channel = people.send(person, "password-expiry-warning", [link], "email", date=date, days=days, link=link)
    audit.record(person.tenant_id, "staff.password_expiry_warned", target=person.person_id, channel=channel)
    return True


def run() -> dict:
    at = now()
    warn_from = at - (PASSWORD_MAX_AGE_SECONDS - WARN_BEFORE_SECONDS)
    # One scan with the three conditions as its filter (every 5 minutes, people tables are small).
    due = (Person.temporary_password_expires_at < at) \
        | ((Person.account_status == "invited") & (Person.invitation_expires_at < at)) \
        | ((Person.account_status == "active") & (Person.password_set_at <= warn_from)
           & Person.temporary_password_expires_at.does_not_exist())
    result = {"temporary_passwords_expired": 0, "invitations_expired": 0, "expiry_warnings_sent": 0}
    for person in Person.scan(due):
        if person.temporary_password_expires_at and person.temporary_password_expires_at < at:
            result["temporary_passwords_expired"] += expire_temporary_password(person, at)
        elif person.account_status == "invited" and person.invitation_expires_at \
                and person.invitation_expires_at < at:
            result["invitations_expired"] += expire_invitation(person, at)
        elif person.account_status == "active" and person.password_set_at and person.password_hash:
            result["expiry_warnings_sent"] += warn_password_expiry(person, at)
    logger.info("schedule ran", extra=result)
    return result
