"""A person's page in People (accounts:manage): their details and account status; New Account Status for a person
without an account (Create an account later / Send invitation via email or SMS / Create a username and password);
Profile Actions (Send Password Reset, Set Temporary Password shown once, Unlock, Disable / Enable, Reset second
factor, Sign out everywhere) and their Activity in words. Each action is the flow the JSON API's route calls (routes/people.py)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from chalicelib.core.errors import Error, NotFound
from chalicelib.web.console import people_words as words
from chalicelib.web.console import words as activity_words
from chalicelib.web.console.people import ACCOUNTS, LISTS, status_of_error
from chalicelib.web.console.shell import Console, console_page
from chalicelib.web.lazy import lazy
from chalicelib.web.pages.forms import Errors, explain
from chalicelib.web.pages.render import url

if TYPE_CHECKING:
    from chalicelib.flows.staff.staff_accounts import PersonOut

admin_passwords = lazy("chalicelib.flows.staff.admin_passwords")
mfa_admin = lazy("chalicelib.flows.staff.mfa_admin")
pydantic = lazy("pydantic")
staff_accounts = lazy("chalicelib.flows.staff.staff_accounts")
staff_invitations = lazy("chalicelib.flows.staff.staff_invitations")
unlock = lazy("chalicelib.flows.staff.unlock")

ACTIVITY_PAGE = 25
NEW_ACCOUNT = {"later": "Create an account later", "invite": "Send invitation via email or SMS",
               "password": "Create a username and password"}
ACCOUNT_FIELDS = {"channel": "channel", "username": "username", "password": "password"}


def _missing(c: Console) -> Response:
    return c.html("console/people-missing.html", status=404, title="Not found", heading="This person was not found",
                  words_back="Employees", back_href="/console/people/employees")


def _page(c: Console, person: PersonOut, *, errors: Errors | None = None, problem: str | None = None,
          status: int = 200) -> Response:
    which = "technicians" if person.kind == "technician" else "employees"
    channels = [(ch, label) for ch, label, have in (("email", "Email", person.email),
                                                    ("sms", "Text message (SMS)", person.mobile)) if have]
    return c.html("console/people-person.html", status=status, title=person.name, p=person, words=words,
                  errors=errors or Errors(), problem=problem, form=c.form if c.page.method == "POST" else {},
                  new_account=NEW_ACCOUNT, channels=channels, self_page=person.person_id == c.person.person_id,
                  back_href=f"/console/people/{which}", back_label=LISTS[which][1])


def _new_account(c: Console, person_id: str) -> Response | None:
    """New Account Status: nothing yet, an invitation, or a username and password. None when it is done."""
    choice = c.form.get("account")
    if choice == "later":
        return c.done(f"/console/people/{person_id}", "later")
    if choice == "invite":
        options = staff_invitations.SendOptions(channel=c.form.get("channel") or None)
        staff_invitations.invite(c.principal, person_id, options, c.ip)
        return c.done(f"/console/people/{person_id}", "invited")
    if choice == "password":
        body = admin_passwords.AccountCreate(username=c.form.get("username", "").strip(),
                                             password=c.form.get("password", ""))
        admin_passwords.create_account(c.principal, person_id, body, c.ip)
        return c.done(f"/console/people/{person_id}", "account_created")
    return None


def _profile_action(c: Console, person_id: str, do: str) -> Response | None:
    here = f"/console/people/{person_id}"
    if do == "reset":
        admin_passwords.send_reset_link(c.principal, person_id, None, c.ip)
        return c.done(here, "reset_sent")
    if do == "temporary":
        out = admin_passwords.set_temporary_password(c.principal, person_id, None, c.ip)
        person = staff_accounts.get_person(c.tenant_id, person_id)
        # Shown in this answer (200, no-store like every page), never redirected to: the password is in no URL,
        # no log line (pages log the route only), no history entry to go back to.
        return c.html("console/people-temporary-password.html", title="Temporary password", p=person,
                      password=out.temporary_password, expires=words.when(out.expires_at), back_href=here)
    if do == "unlock":
        unlock.unlock(c.principal, person_id, c.ip)
        return c.done(here, "unlocked")
    if do in ("disable", "enable"):
        body = staff_accounts.PersonPatch.model_validate({"status": "disabled" if do == "disable" else "active"})
        staff_accounts.patch_person(c.principal, person_id, body, c.ip)
        return c.done(here, f"{do}d")
    if do == "sign_out":
        staff_accounts.sign_out_person(c.principal, person_id, c.ip)
        return c.done(here, "signed_out")
    if do == "reset_mfa":
        mfa_admin.reset(c.principal, person_id, c.ip)
        return c.done(here, "mfa_reset")
    return None


@console_page("/console/people/{person_id}", ACCOUNTS)
def person(c: Console, person_id: str) -> Response:
    """One person: details, account status, New Account Status, Profile Actions."""
    try:
        found = staff_accounts.get_person(c.tenant_id, person_id)
    except NotFound:
        return _missing(c)
    if not c.posted():
        return _page(c, found, status=400 if c.stale else 200)
    errors = Errors()
    do = c.form.get("do", "")
    try:
        done = _new_account(c, person_id) if do == "account" else _profile_action(c, person_id, do)
        if done is not None:
            return done
        if do == "account":
            errors.add("account-later", "Choose what to do about their account.")
        else:
            errors.add(None, "Choose one of the actions.")
        return _page(c, found, errors=errors, status=400)
    except (pydantic.ValidationError, Error) as exc:
        explain(exc, errors, ACCOUNT_FIELDS, c.form.get("password", ""))
        status = 400 if isinstance(exc, pydantic.ValidationError) else status_of_error(exc)
        found = staff_accounts.get_person(c.tenant_id, person_id)  # as it is now (a race may have changed it)
        return _page(c, found, errors=errors, status=status)


person.notices = {  # type: ignore[attr-defined]
    "created": "Added. Choose below how they get their account, or leave it for later.",
    "later": "No account for now: invite them or create one here whenever you are ready.",
    "invited": "Invitation sent. The link in it works for 7 days.",
    "account_created": "Account created. Give them the username and password; they choose new ones when they "
                       "first sign in.",
    "reset_sent": "Password reset link sent. It works for 24 hours.",
    "unlocked": "Unlocked: they can sign in again now.",
    "disabled": "Disabled: they cannot sign in, and every session of theirs has ended.",
    "enabled": "Enabled: they can sign in again.",
    "signed_out": "Signed out everywhere: every session of theirs has ended.",
    "mfa_reset": "Second factor reset: they sign in with their password alone until they set one up again (where "
                 "the business requires one, right at their next sign-in). They were told by email or text.",
}


@console_page("/console/people/{person_id}/activity", ACCOUNTS, form=False)
def activity(c: Console, person_id: str) -> Response:
    """What was done by or to this person, newest first, in words."""
    try:
        found = staff_accounts.get_person(c.tenant_id, person_id)
        query = {"limit": str(ACTIVITY_PAGE), **({"cursor": c.query["cursor"]} if c.query.get("cursor") else {})}
        trail = staff_accounts.person_audit(c.tenant_id, person_id, query)
    except NotFound:
        return _missing(c)
    except Error:  # a cursor typed by hand: the first page
        trail = staff_accounts.person_audit(c.tenant_id, person_id, {"limit": str(ACTIVITY_PAGE)})
    names = activity_words.names_for(c.tenant_id, trail["items"])
    rows = [{"when": words.when(e.at), "what": activity_words.describe(e, names)} for e in trail["items"]]
    return c.html("console/people-activity.html", title=f"Activity: {found.name}", p=found, rows=rows,
                  next_href=url(f"/console/people/{person_id}/activity", cursor=trail["next_cursor"])
                  if trail["next_cursor"] else None, back_href=f"/console/people/{person_id}")
