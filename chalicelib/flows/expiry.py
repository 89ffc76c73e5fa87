"""The schedule's work (every 5 minutes), for the people it has something to do for:

- expire unused temporary passwords: sign-in already refuses them past their 60 minutes; this retires the hash
  (kept aside only so sign-in can still answer `temporary_password_expired`);
- expire stale staff invitations (7 days): the person goes back to no_account and can be invited again;
- warn by email (SMS when there is no email) 14 days before a password turns 365 days old, once per password.

Every change is a conditional write, so two overlapping runs never act twice on one person.

What is due is found without a scan, through the `by-due` index (core/due.py)."""
import time
from datetime import datetime, timezone
from urllib.parse import urlencode

from pynamodb.exceptions import UpdateError

from chalicelib.core import audit, config
from chalicelib.core.due import DUE, PASSWORD_MAX_AGE_SECONDS, WARN_BEFORE_SECONDS, due_actions, next_due
from chalicelib.core.models import Person, _transaction_connection, now
from chalicelib.core.observability import logger
from chalicelib.flows.staff import people

RUN_BUDGET_SECONDS = 20  # of the function's 30 s: what is left stays due for the next run, 5 minutes later


def expire_temporary_password(person: Person, at: int) -> bool:
    try:
        person.update(actions=[Person.expired_temporary_hash.set(person.password_hash),
                               Person.password_hash.remove(), Person.temporary_password_expires_at.remove(),
                               Person.must_change_password.set(False),
                               *due_actions(person, password_hash=None, temporary_password_expires_at=None,
                                            must_change_password=False)],
                      condition=Person.temporary_password_expires_at < at)
    except UpdateError:  # changed since the scan (e.g. the person set a real password): leave it
        return False
    audit.record(person.tenant_id, "staff.temporary_password_expired", target=person.person_id)
    return True


def expire_invitation(person: Person, at: int) -> bool:
    try:
        person.update(actions=[Person.account_status.set("no_account"), Person.invitation_token_hash.remove(),
                               Person.invitation_expires_at.remove(), Person.updated_at.set(at),
                               *due_actions(person, account_status="no_account", invitation_expires_at=None)],
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
        person.update(actions=[Person.expiry_warning_for.set(set_at),
                               *due_actions(person, expiry_warning_for=set_at)],
                      condition=(Person.password_set_at == set_at)
                      & (Person.expiry_warning_for.does_not_exist() | (Person.expiry_warning_for != set_at)))
    except UpdateError:
        return False
    date = datetime.fromtimestamp(expires, timezone.utc).strftime("%Y-%m-%d")
    days = str(max(1, round((expires - at) / 86400)))
    # The staff change-password page of the person's business (the customer /sign-in is not theirs)
    link = f"{config.public_base_url()}/staff/change-password?{urlencode({'tenant_id': person.tenant_id})}"
    sign_in = staff_sign_in_link(person.tenant_id)
    channel = people.send(person, "password-expiry-warning", [link, sign_in], "email", date=date, days=days,
                          link=link, sign_in_link=sign_in)
    audit.record(person.tenant_id, "staff.password_expiry_warned", target=person.person_id, channel=channel)
    return True


def staff_sign_in_link(tenant_id: str) -> str:
    """Where the business's staff sign in: its staff app (the default one, where it says where a sign-in starts),
    else the staff sign-in page."""
    from chalicelib.flows import apps
    app = apps.default_app(tenant_id, "staff")
    if app is not None and app.initiate_login_uri:
        glue = "&" if "?" in app.initiate_login_uri else "?"
        return f"{app.initiate_login_uri}{glue}{urlencode({'iss': config.public_base_url()})}"
    return f"{config.public_base_url()}/staff/sign-in?{urlencode({'tenant_id': tenant_id})}"


def _due_people(at: int, started: float):
    """The people whose due_at has come, a page of keys at a time, each page read in one BatchGetItem (strongly
    consistent: the index is eventually consistent, the conditional writes below decide)."""
    client = _transaction_connection().client
    for page in Person.by_due.query(DUE, Person.due_at <= at).page_iter:
        keys = [{"tenant_id": {"S": k["tenant_id"]["S"]}, "person_id": {"S": k["person_id"]["S"]}} for k in page.get("Items", [])]
        for chunk in (keys[i:i + 100] for i in range(0, len(keys), 100)):
            request = {Person.Meta.table_name: {"Keys": chunk, "ConsistentRead": True}}
            while request:
                answer = client.batch_get_item(RequestItems=request)
                for raw in answer.get("Responses", {}).get(Person.Meta.table_name, []):
                    yield Person.from_raw_data(raw)
                request = answer.get("UnprocessedKeys") or {}
        if time.monotonic() - started > RUN_BUDGET_SECONDS:
            return  # the rest stays due for the next run


def _move_on(person: Person, at: int) -> None:
    """Found due with nothing to do (changed since, due_at was early, or the password expired unwarned): the index
    moves to the next due time, or drops the person. Conditional on the version (as every update of a person), so
    a concurrent write, which set due_at itself, wins."""
    due = next_due(person, at)
    if due is not None and due == person.due_at:
        return
    try:
        person.update(actions=[Person.due_key.set(DUE), Person.due_at.set(due)] if due is not None
                      else [Person.due_key.remove(), Person.due_at.remove()])
    except UpdateError:
        pass


def run() -> dict:
    at, started = now(), time.monotonic()
    warn_from = at - (PASSWORD_MAX_AGE_SECONDS - WARN_BEFORE_SECONDS)
    result = {"temporary_passwords_expired": 0, "invitations_expired": 0, "expiry_warnings_sent": 0}
    for person in _due_people(at, started):
        acted = False
        if person.temporary_password_expires_at and person.temporary_password_expires_at < at:
            acted = expire_temporary_password(person, at)
            result["temporary_passwords_expired"] += acted
        elif person.account_status == "invited" and person.invitation_expires_at \
                and person.invitation_expires_at < at:
            acted = expire_invitation(person, at)
            result["invitations_expired"] += acted
        elif person.account_status == "active" and person.password_set_at and person.password_hash \
                and person.password_set_at <= warn_from:
            acted = warn_password_expiry(person, at)
            result["expiry_warnings_sent"] += acted
        if not acted:
            _move_on(person, at)
    logger.info("schedule ran", extra=result)
    return result
