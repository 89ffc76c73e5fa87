"""Staff invitations (DESIGN rule 9): by email, or by SMS when a technician has only a mobile number; accepting
one sets the username and password. The link is a single-use token that lives 7 days."""
from typing import Annotated, Literal

from pydantic import Field
from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import Condition

from chalicelib.core import audit, config, due, lockout, single_use, tenants
from chalicelib.core.errors import Conflict, Error, Forbidden, Gone, Invalid, Throttled
from chalicelib.core.models import Person, now
from chalicelib.core.paging import iso
from chalicelib.core.principal import Principal
from chalicelib.core.schema import Password, Shape, Strict
from chalicelib.core.security.tokens import token_hash
from chalicelib.core.text import OneLine
from chalicelib.flows.staff import people, staff_accounts, staff_signin

INVITE_SECONDS = 7 * 24 * 3600

Username = Annotated[OneLine, Field(min_length=1, max_length=254)]
Channel = Literal["email", "sms"]


class SendOptions(Strict):
    channel: Channel | None = Field(None, description="Default: email when the person has one, else SMS")


class InviteOut(Shape):
    person_id: str
    status: str
    channel: str
    expires_at: str


class AcceptInvite(Strict):
    token: Annotated[OneLine, Field(min_length=1, max_length=200)]
    username: Username | None = Field(None, description="Default: the email address the person was invited at")
    password: Password


# --- invitations (rule 9) -----------------------------------------------------------------------------------

def pick_channel(person: Person, preferred: str | None) -> str:
    if preferred and preferred != people.channel_for(person, preferred):
        raise Invalid("channel_unavailable", f"This person has no {'email' if preferred == 'email' else 'mobile'}"
                       f" to send to.", field="channel")
    chosen = people.channel_for(person, preferred)
    if chosen is None:
        raise no_contact()
    return chosen


def no_contact() -> Error:  # a fresh error each time: a module-level one keeps every raise's traceback
    return Conflict("no_contact", "This person has neither an email nor a mobile number.")


def invitable(person: Person) -> str | None:
    """Why this person cannot be invited, or None."""
    if person.account_status == "disabled":
        return "disabled"
    if person.username or person.account_status == "active":
        return "has_account"
    if people.channel_for(person) is None:
        return "no_contact"
    return None


def send_link(person: Person, channel: str, outbox: list | None, *, kind: str, seconds: int, stored_as: str,
              actions: list, condition: Condition, replaced: str, path: str, template: str,
              token_data: dict | None = None, **values: str) -> None:
    """The one way a staff link goes out (an invitation, an admin-sent reset link): mints a single-use token of
    `kind`, stores its hash in the person's `stored_as` with `actions`, on `condition` and the person's version (a
    concurrent accept, re-send or edit wins: 409 edit_conflict, and the new token dies), makes the link it replaces
    answer `replaced`, and queues the message carrying the link (`template` with `values`; into `outbox` when a
    bulk run sends them in batches)."""
    token = single_use.issue(kind, person.tenant_id, person.person_id, seconds, **(token_data or {}))
    previous = getattr(person, stored_as)
    try:
        person.update(actions=[getattr(Person, stored_as).set(token_hash(token)), *actions], condition=condition)
    except UpdateError:
        single_use.revoke(token_hash(token))
        raise Conflict("edit_conflict", "Someone else changed this person at the same time; try again.") \
            from None
    single_use.revoke(previous, replaced)
    link = f"{config.public_base_url()}{path}?token={token}"
    msg = people.message(person, template, [link], channel, link=link, **values)
    if msg is None:  # never: the channel is one the person has
        raise no_contact()
    if outbox is None:
        from chalicelib.core import messaging
        messaging.enqueue([msg])
    else:
        outbox.append(msg)


def send_invitation(person: Person, channel: str, actor: str, ip: str | None, outbox: list | None = None,
            job_id: str | None = None) -> dict:
    """Issues a new invitation link (the previous one stops working) and queues the message."""
    at = now()
    send_link(person, channel, outbox, kind="staff_invite", seconds=INVITE_SECONDS, stored_as="invitation_token_hash",
              actions=[Person.invited_at.set(at), Person.invitation_expires_at.set(at + INVITE_SECONDS),
                       Person.account_status.set("invited"), Person.updated_at.set(at),
                       *due.due_actions(person, account_status="invited", invitation_expires_at=at + INVITE_SECONDS)],
              condition=Person.account_status.is_in("no_account", "invited"), replaced="invitation_replaced",
              path="/staff/accept-invite", template="staff-invite", days=str(INVITE_SECONDS // 86400))
    audit.record(person.tenant_id, "staff.invited", actor=actor, target=person.person_id, ip=ip, channel=channel,
                 **({"job_id": job_id} if job_id else {}))
    return {"person_id": person.person_id, "status": "invited", "channel": channel,
            "expires_at": iso(at + INVITE_SECONDS)}


def invite(caller: Principal, person_id: str, body: SendOptions | None, ip: str | None) -> dict:
    person = staff_accounts.managed(caller, person_id)
    reason = invitable(person)
    if reason == "disabled":
        raise Conflict("account_disabled", "This person's account is disabled; enable it first.")
    if reason == "has_account":
        raise Conflict("account_exists", "This person already has an account; send a reset link instead.")
    return send_invitation(person, pick_channel(person, body.channel if body else None), caller.subject, ip)


# `username_taken` tells whether a username exists: an invitation may hear it this many times an hour, and
# each one is a wrong guess of the caller's IP (scope "usernames"), so a link cannot list the usernames.
USERNAME_TAKEN_PER_INVITATION = (5, 3600)


def _count_username_taken(person: Person) -> None:
    """One more `username_taken` for the invited person; past the limit, 429 instead (an atomic per-hour counter,
    so concurrent tries cannot hear it more often)."""
    from chalicelib.flows.staff.staff_recovery import within_hourly_cap
    limit, window = USERNAME_TAKEN_PER_INVITATION
    if not within_hourly_cap("staff-invite-username-taken", f"{person.tenant_id}#{person.person_id}", limit):
        import time
        raise Throttled("too_many_requests", "Too many usernames that are taken; wait a little and try again.",
                       retry_after=max(1, window - int(time.time()) % window))


@lockout.limit_guesses_per_ip("links", "token_invalid")
@lockout.limit_guesses_per_ip("usernames", "username_taken")
def accept_invite(body: AcceptInvite, ip: str | None, user_agent: str | None = None, *,
                  password_confirm: str | None = None) -> dict:
    """The invitation link's page: choose a username (default: the email) and a password. Every check comes
    before the link is consumed, so a refused username or password leaves it usable; of concurrent accepts
    exactly one wins (set_password_with_link)."""
    record, person = single_use.look_up_holder(body.token, "staff_invite", Person,
                                               Invalid("token_invalid", "This link is not valid."))
    if person.account_status == "disabled":
        raise Forbidden("account_disabled", "This account is disabled; ask your administrator.")
    if person.invitation_token_hash != record.token_hash:
        raise Gone("invitation_replaced", "A newer invitation was sent; use the link in the latest one.")
    # Every field is checked and every problem answered at once (the first in code/field, all in `fields`).
    username = (body.username or person.email or "").strip()
    problems = [Invalid("username_required", "Choose a username.", field="username")] if not username \
        else staff_signin.caught(lambda: people.check_username(person, username))
    problems += staff_signin.caught(lambda: staff_signin.check_policy(body.password, "password"))
    if password_confirm is not None and password_confirm != body.password:
        problems.append(Invalid("passwords_differ", "The two passwords are not the same.",
                                 field="password_confirm"))
    staff_signin.refuse(problems)
    try:
        staff_signin.set_password_with_link(person, body.password, record, new_username=username,
                                            username_field="username")
    except Error as err:
        if err.code == "username_taken":  # 429 instead once the invitation has heard it too often
            _count_username_taken(person)
        raise
    audit.record(person.tenant_id, "staff.invitation_accepted", actor=person.person_id, ip=ip)
    # where the business requires a second factor, the new account sets one up before its first session
    return staff_signin.session_or_setup(person, tenants.find(person.tenant_id), "invitation", ip, user_agent,
                                         signed_in=False)
