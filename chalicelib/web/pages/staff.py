"""The staff account's pages: /staff/accept-invite (username, the email by default, and a password, twice) and
/staff/change-password (the forced change: an admin-chosen, temporary or year-old password)."""
from chalice import Response

from chalicelib.core.errors import Error
from chalicelib.web.pages.forms import NEW_PASSWORD_REQUIRED, Errors
from chalicelib.web.pages.links import LinkHelp, open_link, submit, tenant, tenant_name
from chalicelib.web.pages.render import url
from chalicelib.web.pages.oauth import continue_after_sign_in, continue_to_app
from chalicelib.web.pages.serve import Page

STAFF = "Staff account"


def username_hint(person, lead: str) -> str:
    """What a username may be, saying only what this person has: "your email address" only to someone with one
    (a technician invited by SMS has none, and an @ is for one's own email address only)."""
    if person.email:
        return f"{lead} It can be your email address, or 3 to 64 letters, digits and . _ @ + -"
    return f"{lead} 3 to 64 letters, digits and . _ + -"


# --- /staff/accept-invite --------------------------------------------------------------------------------------------

INVITE_HELP = LinkHelp(STAFF, ("Ask your administrator to send you a new invitation.",),
                       used_codes=("token_used",),
                       used_steps=("If you already created your account, sign in with your username and password. "
                                   "Forgot the password? Reset it.",),
                       used_action=("Reset my password", "/staff/reset-password"))


def _accepted(accept):
    """The account is made either way: where a second factor is required, the person sets it up at their first
    sign-in (the API's answer carries a setup token this page has no use for)."""
    try:
        return accept()
    except Error as err:
        if err.code == "mfa_setup_required":
            return {}
        raise


def accept_invite(p: Page) -> Response:
    from chalicelib.core.models import Person
    from chalicelib.flows.staff import staff_invitations
    link = open_link(p, "staff_invite", "pa_invite", INVITE_HELP, subject=Person,
                     without=lambda p: INVITE_HELP.page(p, "link_missing", None))
    if isinstance(link, Response):
        return link
    person = link.subject
    errors = Errors()
    username = p.form.get("username", person.email or "").strip() if p.method == "POST" else (person.email or "")
    password = p.form.get("password", "")
    answer = submit(
        p, errors, required={"username": "Choose a username.", "password": "Enter a password.",
                             "password_confirm": "Type the password again."},
        # the confirmation goes to the flow, which answers every field's problem at once
        flow=lambda: _accepted(lambda: staff_invitations.accept_invite(staff_invitations.AcceptInvite(
            token=link.token, username=username, password=password), p.ip,
            password_confirm=p.form.get("password_confirm", ""))),
        fields={"username": "username", "password": "password", "password_confirm": "password_confirm"},
        password=password, cookie="pa_invite",
        problem=lambda code: INVITE_HELP.page(p, code, link.record.tenant_id),
        done=lambda answer: (continue_after_sign_in(p, answer["access_token"]) if answer else None) or p.message(
            200, tenant_name=link.tenant_name, section=STAFF, heading="Your account is ready",
            paragraphs=[f"Your username is {username}.",
                        f"You are signed in to {link.tenant_name} on this device. Next time, sign in with your "
                        "username and the password you chose." if answer else
                        f"Sign in to {link.tenant_name} with it and the password you chose."],
            actions=(continue_to_app(link.record.tenant_id, "staff") if answer else [])
            or [("Sign in", url("/staff/sign-in", tenant_id=link.record.tenant_id))]))
    if answer:
        return answer
    return p.form_page("pages/staff/accept-invite.html", tenant_name=link.tenant_name, section=STAFF,
                       title="Create your account", button="Create account", errors=errors, name=person.name,
                       username=username, hint=username_hint(person, "You sign in with this."))


# --- /staff/change-password ------------------------------------------------------------------------------------------

CHANGE = "pa_change"
CHANGE_REASONS = {
    "admin_set": "Your administrator chose your username and password. Choose your own to continue.",
    "temporary": "You signed in with a temporary password. Choose your own password to continue.",
    "expired": "Your password is over a year old. Choose a new one to continue.",
    "chosen": "Choose a new password. It replaces the one you signed in with, and signs you out everywhere else.",
}
CHANGE_HELP = LinkHelp(STAFF, ("Sign in again with your current password, then choose the new one.",),
                       action=("Sign in again", "/staff/change-password"),
                       unknown=("Sign in where you usually do: you are brought here when your password has to "
                                "change.",))


def change_principal(token: str | None):
    """The principal of a forced-change token, or the explanation code when it cannot be used."""
    from chalicelib.web.api import authenticate
    if not token:
        return None, "link_missing"
    try:
        principal = authenticate(f"Bearer {token}")
    except Error as err:
        return None, "change_expired" if err.code == "token_expired" else "token_invalid"
    if principal.kind != "password_change":
        return None, "token_invalid"
    return principal, None


def _unverified_tenant(token: str | None) -> str | None:
    """The business a (maybe expired) change token names: only to show its name and the way back."""
    try:
        import jwt
        claims = jwt.decode(token or "", options={"verify_signature": False})
    except Exception:  # noqa: BLE001 - anything unreadable simply names no business
        return None
    tid = claims.get("tid")
    return tid if isinstance(tid, str) else None


def staff_change_password(p: Page) -> Response:
    if "token" in p.query:  # an app that got password_change_required hands the change token over
        token = p.query["token"]
        principal, problem = change_principal(token)
        if problem:
            return CHANGE_HELP.page(p, problem, _unverified_tenant(token))
        from chalicelib.flows.staff import staff_signin
        p.keep(CHANGE, token, staff_signin.CHANGE_TOKEN_SECONDS)
        return p.redirect(p.self_url())
    if "tenant_id" in p.query:
        if p.method == "GET" and p.state(CHANGE):
            p.clear_cookie(CHANGE)
        return _change_sign_in(p, p.query["tenant_id"])
    token = p.state(CHANGE)
    principal, problem = change_principal(token)
    if problem:
        if token:
            p.clear_cookie(CHANGE)
        return CHANGE_HELP.page(p, problem, _unverified_tenant(token))
    return _change_form(p, principal)


class SecondStep(Exception):
    """The change page's sign-in needs the second factor first (the staff sign-in's factor step asks for it)."""

    def __init__(self, mfa_token: str):
        super().__init__("mfa_required")
        self.mfa_token = mfa_token


def _change_sign_in(p: Page, tenant_id: str) -> Response:
    """Sign in first: the answer of a sign-in that demands a change carries the change token."""
    from chalicelib.flows.staff import staff_signin
    business = tenant(tenant_id)
    if business is None:
        return CHANGE_HELP.page(p, "link_missing", None)
    errors = Errors()
    username = p.form.get("username", "").strip()

    def change_token() -> str:
        try:  # a password that is current is changed too (the expiry warning sends people here early)
            return staff_signin.sign_in(business.tenant_id, username, p.form["password"], p.ip,
                                        to_change_password=True)["change_token"]
        except Error as err:
            if err.code in ("password_change_required", "password_expired") and err.extra.get("change_token"):
                return err.extra["change_token"]
            if err.code == "mfa_required":  # the staff sign-in's second step, then back here to change it
                raise SecondStep(err.extra["mfa_token"]) from None
            raise

    def changing(token: str) -> Response:
        p.keep(CHANGE, token, staff_signin.CHANGE_TOKEN_SECONDS)
        return p.redirect(url("/staff/change-password"))

    try:
        answer = submit(p, errors, step="sign_in", required={"username": "Enter your username.",
                                                             "password": "Enter your password."},
                        flow=change_token, fields={}, done=changing)
    except SecondStep as step:
        from chalicelib.web.pages.staff_signin import to_factor
        return to_factor(p, step.mfa_token)
    if answer:
        return answer
    return p.form_page("pages/staff/change-sign-in.html", tenant_name=business.name, section=STAFF,
                       title="Sign in to change your password", button="Continue", errors=errors, step="sign_in",
                       action=url("/staff/change-password", tenant_id=business.tenant_id), username=username,
                       tenant_id=business.tenant_id)


def _change_form(p: Page, principal) -> Response:
    from chalicelib.flows.staff import people, staff_signin
    reason = principal.claims.get("reason", "expired")
    needs_username = reason == "admin_set"
    person = people.get(principal.tenant_id, principal.subject)
    business = tenant_name(principal.tenant_id)
    errors = Errors()
    username = p.form.get("new_username", "").strip()
    password, confirm = p.form.get("new_password", ""), p.form.get("new_password_confirm", "")
    required, paragraphs = NEW_PASSWORD_REQUIRED, ["From now on, sign in with your new password."]
    if needs_username:
        required = {"new_username": "Choose your username.", **required}
        paragraphs = [f"Your username is now {username}.", *paragraphs]
    # the flow checks every field (the confirmation too) and answers every problem at once; a change token
    # already used (the password changed since) is a link problem
    answer = submit(p, errors, step="change", required=required,
                    flow=lambda: staff_signin.change_password(principal, None, password,
                                                              username if needs_username else None, p.ip,
                                                              new_password_confirm=confirm),
                    fields={"new_password": "new_password", "new_username": "new_username",
                            "new_password_confirm": "new_password_confirm"}, password=password, cookie=CHANGE,
                    problem=lambda code: CHANGE_HELP.page(p, code, principal.tenant_id),
                    done=lambda answer: continue_after_sign_in(p, answer["access_token"]) or p.message(
                        200, tenant_name=business, section=STAFF, heading="Your password was changed",
                        paragraphs=paragraphs, actions=continue_to_app(principal.tenant_id, "staff")))
    if answer:
        return answer
    return p.form_page("pages/staff/change-password.html", tenant_name=business, section=STAFF,
                       title="Choose a new password", button="Change password", errors=errors, step="change",
                       reason=CHANGE_REASONS.get(reason, CHANGE_REASONS["expired"]), needs_username=needs_username,
                       username=username, account=person.username,
                       hint=username_hint(person, "Not the one you were given."))
