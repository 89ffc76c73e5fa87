"""Signing in to the console and out of it: /console/sign-in (business ID, username, password: the staff sign-in
flow, its lockout and forced changes included), /console/change-password (the forced change, then straight into
the console), /console/sign-out, and /console itself (the first section this person may use)."""
from chalice import Response

from chalicelib.core.errors import Error
from chalicelib.web.console import second_factor
from chalicelib.web.console.shell import (
    CONSOLE_SESSION_SECONDS,
    SECTION,
    SIGNED_OUT_WHY,
    Console,
    console_page,
    end_cookie,
    safe_next,
    sections_of,
    signed_in,
    start,
)
from chalicelib.web.pages.forms import NEW_PASSWORD_REQUIRED, Errors, explain, require
from chalicelib.web.pages.render import url
from chalicelib.web.pages.serve import Page

CHANGE = "pa_console_change"
NO_SECTION = SIGNED_OUT_WHY["no_access"]
SIGN_IN_FIELDS = {"tenant_id": "tenant_id", "username": "username", "password": "password"}


@console_page("/console", None, form=False)
def home(c: Console) -> Response:
    """The first section this staff member may use."""
    return c.page.redirect(url(sections_of(c.principal)[0][1]))


def sign_in(p: Page) -> Response:
    """Business ID, username, password. Every wrong combination gets the same answer (the API's)."""
    from chalicelib.flows.staff import staff_signin
    destination = safe_next(p.query.get("next"))
    if p.method == "GET" and signed_in(p)[0] is not None:
        return p.redirect(url(destination))
    errors = Errors()
    tenant_id = (p.form.get("tenant_id") or p.query.get("tenant_id") or "").strip()
    username = p.form.get("username", "").strip()
    if p.method == "POST":
        if not p.csrf_ok():
            p.csrf_failed(errors)
        else:
            require(p.form, errors, {"tenant_id": "Enter your business ID.", "username": "Enter your username.",
                                     "password": "Enter your password."})
        if not errors:
            try:
                body = staff_signin.StaffSignIn(tenant_id=tenant_id, username=username, password=p.form["password"])
                answer = staff_signin.sign_in(body.tenant_id, body.username, body.password, p.ip, p.user_agent,
                                              session_seconds=CONSOLE_SESSION_SECONDS)
            except Error as err:
                if err.code in ("password_change_required", "password_expired") and err.extra.get("change_token"):
                    p.set_cookie(CHANGE, err.extra["change_token"], path="/console/change-password",
                                 max_age=staff_signin.CHANGE_TOKEN_SECONDS)
                    return p.redirect(url("/console/change-password", next=p.query.get("next")))
                if err.code == "mfa_required":  # the second page asks for the factor
                    return second_factor.to_factor(p, err.extra["mfa_token"])
                if err.code == "mfa_setup_required":  # the business requires one: set it up first
                    return second_factor.to_setup(p, err.extra["setup_token"])
                explain(err, errors, SIGN_IN_FIELDS)
            except ValueError as exc:  # pydantic's ValidationError: too long, or not one line
                explain(exc, errors, SIGN_IN_FIELDS)
            else:
                if start(p, answer):
                    return p.redirect(url(destination))
                errors.add(None, NO_SECTION)
    why = SIGNED_OUT_WHY.get(p.query.get("why", "")) if p.method == "GET" else None
    return p.form_page("console/sign-in.html", tenant_name=None, section=SECTION, title="Sign in to the admin console",
                       button="Sign in", errors=errors, tenant_id=tenant_id, username=username, why=why,
                       action=url("/console/sign-in", next=p.query.get("next")),
                       passkey_page=url("/console/sign-in/passkey", tenant_id=tenant_id or None,
                                        next=p.query.get("next")))


def change_password(p: Page) -> Response:
    """The forced change a sign-in asked for (an admin-chosen, temporary or year-old password), then the console."""
    from chalicelib.flows.staff import people, staff_signin
    from chalicelib.web.pages.staff import CHANGE_REASONS, change_principal, username_hint
    token = p.state(CHANGE)
    principal, problem = change_principal(token)
    if problem:
        return p.redirect(url("/console/sign-in", why="ended" if token else None))
    reason = principal.claims.get("reason", "expired")
    needs_username = reason == "admin_set"
    person = people.get(principal.tenant_id, principal.subject)
    errors = Errors()
    username = p.form.get("new_username", "").strip()
    password, confirm = p.form.get("new_password", ""), p.form.get("new_password_confirm", "")
    if p.method == "POST":
        if not p.csrf_ok():
            p.csrf_failed(errors)
        else:
            require(p.form, errors, {"new_username": "Choose your username.", **NEW_PASSWORD_REQUIRED}
                    if needs_username else NEW_PASSWORD_REQUIRED)
        if not errors:
            try:
                answer = staff_signin.change_password(principal, None, password,
                                                      username if needs_username else None, p.ip, p.user_agent,
                                                      new_password_confirm=confirm,
                                                      session_seconds=CONSOLE_SESSION_SECONDS)
            except Error as err:
                if err.code in ("token_used",):
                    p.clear_cookie(CHANGE)
                    return p.redirect(url("/console/sign-in", why="ended"))
                if err.code == "mfa_setup_required":  # changed; now the factor the business requires
                    p.clear_cookie(CHANGE)
                    return second_factor.to_setup(p, err.extra["setup_token"])
                explain(err, errors, {"new_password": "new_password", "new_username": "new_username",
                                      "new_password_confirm": "new_password_confirm"}, password)
            else:
                p.clear_cookie(CHANGE)
                if start(p, answer):
                    return p.redirect(url(safe_next(p.query.get("next"))))
                return p.redirect(url("/console/sign-in", why="no_access"))
    from chalicelib.core import tenants
    business = tenants.active(principal.tenant_id)
    return p.form_page("pages/staff/change-password.html", tenant_name=business.name if business else None,
                       section=SECTION, title="Choose a new password", button="Change password", errors=errors,
                       step="change", action=url("/console/change-password", next=p.query.get("next")),
                       reason=CHANGE_REASONS.get(reason, CHANGE_REASONS["expired"]), needs_username=needs_username,
                       username=username, account=person.username,
                       hint=username_hint(person, "Not the one you were given."))


def sign_out(p: Page) -> Response:
    """Ends this console session (POST, from the Sign out button on every console page)."""
    from chalicelib.core import sessions
    if p.method == "POST" and p.csrf_ok():
        principal, _ = signed_in(p)
        if principal is not None:
            sessions.end(principal.live.session, actor=principal.subject, reason="signed_out", ip=p.ip)
        end_cookie(p)
        return p.redirect(url("/console/sign-in", why="signed_out"))
    return p.redirect(url("/console"))
