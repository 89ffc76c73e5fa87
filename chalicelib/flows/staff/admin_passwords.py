"""What an admin does for a person's password (DESIGN rules 10, 14): an account with a password that must be
changed at first sign-in, an emailed or texted reset link, a temporary password that dies after 60 minutes."""
import secrets
import string

from pydantic import Field

from chalicelib.core import audit
from chalicelib.core.errors import Conflict
from chalicelib.core.models import Person, now
from chalicelib.core.paging import iso, iso_at
from chalicelib.core.principal import Principal
from chalicelib.core.schema import Password, Shape, Strict
from chalicelib.core.security import passwords
from chalicelib.flows.staff import people, staff_accounts, staff_invitations, staff_signin

RESET_LINK_SECONDS = 24 * 3600
TEMPORARY_PASSWORD_SECONDS = 60 * 60



class AccountCreate(Strict):
    username: staff_invitations.Username
    password: Password


class ResetLinkOut(Shape):
    person_id: str
    channel: str
    expires_at: str


class TemporaryPasswordBody(Strict):
    password: Password | None = Field(None, description="Leave out to have one generated (returned once)")


class TemporaryPasswordOut(Shape):
    person_id: str
    expires_at: str
    temporary_password: str | None = Field(None, description="Only when generated; shown this once")


# --- admin-created accounts, reset links, temporary passwords (rules 10, 14) --------------------------------

def _with_account(caller: Principal, person_id: str) -> Person:
    person = staff_accounts.managed(caller, person_id)
    if person.account_status == "disabled":
        raise Conflict("account_disabled", "This person's account is disabled; enable it first.")
    if not person.username:
        raise Conflict("no_account", "This person has no account yet; invite them or create one.")
    return person


def create_account(caller: Principal, person_id: str, body: AccountCreate, ip: str | None) -> staff_accounts.PersonOut:
    """Rule 10: the admin chooses a username and password; the first sign-in demands a new one of each."""
    person = staff_accounts.managed(caller, person_id)
    if person.account_status == "disabled":
        raise Conflict("account_disabled", "This person's account is disabled; enable it first.")
    if person.username or person.account_status == "active":
        raise Conflict("account_exists", "This person already has an account; set a temporary password "
                       "or send a reset link instead.")
    people.check_username(person, body.username)
    staff_signin.check_policy(body.password, "password")
    staff_signin.set_password(person, body.password, new_username=body.username, must_change=True,
                              username_field="username", ended_by=caller.subject)
    audit.record(caller.tenant_id, "staff.account_created", actor=caller.subject, target=person_id, ip=ip)
    return staff_accounts.person_out(person, 0)


def deliver_reset_link(person: Person, channel: str, actor: str, ip: str | None, outbox: list | None = None,
                     job_id: str | None = None) -> dict:
    staff_invitations.send_link(person, channel, outbox, kind="staff_reset", seconds=RESET_LINK_SECONDS,
                                stored_as="reset_link_token_hash", actions=[Person.updated_at.set(now())],
                                condition=Person.account_status == "active", replaced="link_replaced",
                                path="/staff/reset-password", template="staff-reset-link",
                                token_data={"via": "link"}, hours=str(RESET_LINK_SECONDS // 3600))
    audit.record(person.tenant_id, "staff.reset_link_sent", actor=actor, target=person.person_id, ip=ip,
                 channel=channel, **({"job_id": job_id} if job_id else {}))
    return {"person_id": person.person_id, "channel": channel, "expires_at": iso(now() + RESET_LINK_SECONDS)}


def send_reset_link(caller: Principal, person_id: str, body: staff_invitations.SendOptions | None, ip: str | None) -> dict:
    person = _with_account(caller, person_id)
    return deliver_reset_link(person, staff_invitations.pick_channel(person, body.channel if body else None), caller.subject, ip)


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
        staff_signin.check_policy(given, "password")
    password = given or generate_temporary_password()
    staff_signin.set_password(person, password, must_change=True, temporary_for=TEMPORARY_PASSWORD_SECONDS,
                              ended_by=caller.subject)
    audit.record(caller.tenant_id, "staff.temporary_password_set", actor=caller.subject, target=person_id, ip=ip,
                 generated=given is None)
    staff_signin.notify_password_changed(person, "temporary")
    return TemporaryPasswordOut(person_id=person_id, expires_at=iso_at(person.temporary_password_expires_at),
                                temporary_password=None if given else password)
