"""The staff sign-in page (/staff/sign-in): where a business's staff app (the technicians' mobile app) sends its
people, and where staff pages' "Sign in" leads. Username, email or mobile, and password; then, as the account
needs, the second factor (/staff/sign-in/factor), the required factor's setup (/staff/sign-in/setup) or the forced
change (/staff/change-password); then back to the app that sent the person (pages/oauth.py), or a page that says
they are signed in and offers **Continue to <app name>**.

Every step calls the same flow as the API's `POST /v1/staff/sign-in` and `POST /v1/staff/sign-in/mfa`, so it
refuses, locks out and audits exactly as they do. The session it starts is the browser's hosted session."""
from typing import Callable

from markupsafe import Markup

from chalice import Response

from chalicelib.core.errors import Error
from chalicelib.web.pages.oauth import back_to_app, continue_after_sign_in, continue_to_app, waiting_app
from chalicelib.web.pages.forms import Errors, explain, require
from chalicelib.web.pages.links import tenant
from chalicelib.web.pages.passkey_forms import credential_from, factor_options, options_json
from chalicelib.web.pages.render import url
from chalicelib.web.pages.serve import Page

STAFF = "Staff account"
FACTOR, FACTOR_PATH = "pa_staff_factor", "/staff/sign-in/factor"
SETUP, SETUP_PATH = "pa_staff_setup", "/staff/sign-in/setup"
CHANGE = "pa_change"  # the forced change page's cookie (pages/staff.py)
FIELDS = {"username": "username", "password": "password"}
PASSKEY_NOT_USED = ("No passkey was used. A passkey needs JavaScript in this browser; if it is on, press the button "
                    "and follow your browser's steps.")


def _hosted_seconds() -> int:
    from chalicelib.flows.oauth import hosted
    return hosted.HOSTED_SECONDS


def signed_in(p: Page, answer: dict, business_name: str | None, tenant_id: str) -> Response:
    """The end of every staff sign-in here: back to the waiting app, or the page that says so."""
    back = continue_after_sign_in(p, answer["access_token"])
    if back is not None:
        return back
    return p.message(200, tenant_name=business_name, section=STAFF, heading="You are signed in",
                     paragraphs=["You are signed in on this device. Open your app to continue."],
                     actions=continue_to_app(tenant_id, "staff"))


def after_new_password(p: Page, tenant_id: str, username: str | None, password: str,
                       changed: Callable[[list], Response]) -> Response:
    """The end of a reset or an accepted invitation: signed in with the new password (the hosted session), back to
    the waiting app, or `changed(the way on)`: **Continue to <app name>**, or **Sign in** when the sign-in needs a
    step first (the second factor) and no app is waiting for it."""
    from chalicelib.flows.staff import staff_signin
    sign_in_again = [("Sign in", url("/staff/sign-in", tenant_id=tenant_id))]
    if not username:
        return changed(sign_in_again)
    try:
        answer = staff_signin.sign_in(tenant_id, username, password, p.ip, p.user_agent,
                                      session_seconds=_hosted_seconds())
    except Error as err:
        step = _next_step(p, err) if waiting_app(p, tenant_id, "staff") else None
        return step if step is not None else changed(sign_in_again)
    return continue_after_sign_in(p, answer["access_token"]) or changed(continue_to_app(tenant_id, "staff"))


def _next_step(p: Page, err: Error) -> Response | None:
    """A sign-in answer that is a step, not a refusal: the factor, its required setup, or the forced change."""
    from chalicelib.flows.staff import mfa
    if err.code == "mfa_required":
        p.set_cookie(FACTOR, err.extra["mfa_token"], path=FACTOR_PATH, max_age=mfa.MFA_TOKEN_SECONDS)
        return p.redirect(url(FACTOR_PATH))
    if err.code == "mfa_setup_required":
        p.set_cookie(SETUP, err.extra["setup_token"], path=SETUP_PATH, max_age=mfa.SETUP_TOKEN_SECONDS)
        return p.redirect(url(SETUP_PATH))
    if err.code in ("password_change_required", "password_expired") and err.extra.get("change_token"):
        return _to_change(p, err.extra["change_token"])
    return None


def _to_change(p: Page, change_token: str) -> Response:
    from chalicelib.flows.staff import staff_signin
    p.set_cookie(CHANGE, change_token, path="/staff/change-password", max_age=staff_signin.CHANGE_TOKEN_SECONDS,
                 same_site="Lax")
    return p.redirect(url("/staff/change-password"))


def to_factor(p: Page, mfa_token: str) -> Response:
    """The second step, from another page's sign-in (the change page's)."""
    from chalicelib.flows.staff import mfa
    p.set_cookie(FACTOR, mfa_token, path=FACTOR_PATH, max_age=mfa.MFA_TOKEN_SECONDS)
    return p.redirect(url(FACTOR_PATH))


def sign_in(p: Page) -> Response:
    """Business (from the link), username (or email or mobile) and password."""
    from chalicelib.flows.staff import passkey_signin, staff_signin
    from chalicelib.web.pages.portal import which_business
    business = tenant(p.query.get("tenant_id"))
    if business is None:
        return which_business(p, "/staff/sign-in", title="Staff sign-in",
                              intro="This page signs staff in to their business's apps. Open it from your app or "
                                    "from the business's messages, which name the business, or enter the business "
                                    "ID.", button="Continue to sign-in", section=STAFF)
    errors = Errors()
    username = (p.form.get("username") if p.method == "POST" else p.query.get("username")) or ""
    username = username.strip()[:254]
    if p.method == "POST" and p.form.get("step") == "passkey":
        answer = _passkey_sign_in(p, business.tenant_id, errors)
        if isinstance(answer, Response):
            return answer
        if answer is not None:
            return signed_in(p, answer, business.name, business.tenant_id)
    elif p.method == "POST":
        if not p.csrf_ok():
            p.csrf_failed(errors)
        else:
            require(p.form, errors, {"username": "Enter your username, email address or mobile number.",
                                     "password": "Enter your password."})
        if not errors:
            try:
                body = staff_signin.StaffSignIn(tenant_id=business.tenant_id, username=username,
                                                password=p.form["password"])
                answer = staff_signin.sign_in(body.tenant_id, body.username, body.password, p.ip, p.user_agent,
                                              session_seconds=_hosted_seconds())
            except Error as err:
                step = _next_step(p, err)
                if step is not None:
                    return step
                explain(err, errors, FIELDS)
            except ValueError as exc:  # pydantic: too long, or not one line
                explain(exc, errors, FIELDS)
            else:
                return signed_in(p, answer, business.name, business.tenant_id)
    app = waiting_app(p, business.tenant_id, "staff")
    options = passkey_signin.options(passkey_signin.PasskeySignInOptions(tenant_id=business.tenant_id)).options
    return p.form_page("pages/staff/sign-in.html", tenant_name=business.name, section=STAFF,
                       title=f"Sign in to continue to {app}" if app else "Sign in", button="Sign in", errors=errors,
                       username=username, tenant_id=business.tenant_id, passkey_options=options_json(options),
                       action=url("/staff/sign-in", tenant_id=business.tenant_id))


def _passkey_sign_in(p: Page, tenant_id: str, errors: Errors) -> dict | Response | None:
    """Sign in with a passkey instead of the password (passkey_signin, as POST /v1/staff/sign-in/passkey): the
    session's answer, the next step's page, or None with the refusal in `errors`."""
    from chalicelib.flows.staff import passkey_signin
    from chalicelib.flows.staff.passkey_ceremony import AssertionCredential
    credential = credential_from(p.form, AssertionCredential)
    if not p.csrf_ok():
        p.csrf_failed(errors)
        return None
    if credential is None:
        errors.add("passkey", PASSKEY_NOT_USED)
        return None
    try:
        return passkey_signin.complete(passkey_signin.PasskeySignIn(credential=credential, tenant_id=tenant_id),
                                       p.ip, p.user_agent, session_seconds=_hosted_seconds())
    except Error as err:
        step = _next_step(p, err)
        if step is not None:
            return step
        if err.code == "passkey_invalid":
            errors.add("passkey", "This passkey was not accepted. Try again, or sign in with your password.")
        else:  # locked, too many tries from this network
            explain(err, errors, {"passkey": "passkey"})
    except ValueError as exc:  # pydantic: not one line, too long
        explain(exc, errors, {"credential": "passkey"})
    return None


def _start_again(p: Page, cookie: str, path: str) -> Response:
    p.set_cookie(cookie, "", path=path, max_age=0)
    return p.message(400, tenant_name=None, section=STAFF, heading="Please sign in again",
                     paragraphs=["This sign-in took too long or was already finished. Go back to your app and sign "
                                 "in again."], tone="problem")


def factor(p: Page) -> Response:
    """The second step: an authenticator code or a recovery code (the API's sign-in/mfa)."""
    from chalicelib.flows.staff import mfa_signin
    from chalicelib.flows.staff.passkey_ceremony import AssertionCredential
    token = p.state(FACTOR)
    if not token:
        return _start_again(p, FACTOR, FACTOR_PATH)
    errors = Errors()
    if p.method == "POST":
        passkey = p.form.get("step") == "passkey"
        credential = credential_from(p.form, AssertionCredential) if passkey else None
        if not p.csrf_ok():
            p.csrf_failed(errors)
        elif passkey and credential is None:
            errors.add("passkey", PASSKEY_NOT_USED)
        elif not passkey and not p.form.get("code", "").strip():
            errors.add("code", "Enter the code from your authenticator app, or a recovery code.")
        if not errors:
            try:
                body = mfa_signin.MfaSignIn(mfa_token=token, passkey=credential) if passkey \
                    else mfa_signin.MfaSignIn(mfa_token=token, code=p.form["code"].strip())
                answer = mfa_signin.complete(body, p.ip, p.user_agent, session_seconds=_hosted_seconds())
            except Error as err:
                if err.code == "mfa_token_invalid":
                    return _start_again(p, FACTOR, FACTOR_PATH)
                step = _next_step(p, err)
                if step is not None:
                    p.set_cookie(FACTOR, "", path=FACTOR_PATH, max_age=0)
                    return step
                if err.code == "invalid_code":
                    errors.add("code", "This code is not right. Enter the 6 digits your app shows now, or one of "
                                       "your recovery codes.")
                elif err.code == "passkey_invalid":
                    errors.add("passkey", "This passkey was not accepted. Try again, or enter a code.")
                else:
                    explain(err, errors, {"code": "passkey" if passkey else "code"})
            except ValueError as exc:
                explain(exc, errors, {"code": "code", "mfa_token": "code", "passkey": "passkey"})
            else:
                p.set_cookie(FACTOR, "", path=FACTOR_PATH, max_age=0)
                if "change_token" in answer:  # the factor of the change page's sign-in: on to the change
                    return _to_change(p, answer["change_token"])
                return signed_in(p, answer, None, answer_tenant(answer))
    try:  # a fresh passkey challenge for this step (None when the person has no passkey)
        options = factor_options(token)
    except Error as err:
        if err.code == "mfa_token_invalid":
            return _start_again(p, FACTOR, FACTOR_PATH)
        raise
    return p.form_page("pages/staff/sign-in-factor.html", tenant_name=None, section=STAFF,
                       title="Enter your second factor", button="Continue", errors=errors, action=url(FACTOR_PATH),
                       passkey_options=options_json(options))


def answer_tenant(answer: dict) -> str:
    from chalicelib.core.security import keys
    return keys.verify(answer["access_token"])["tid"]


def setup(p: Page) -> Response:
    """Where the business requires a second factor and the person has none: an authenticator app first."""
    from chalicelib.core import tenants
    from chalicelib.flows.staff import mfa_totp, passkeys
    principal = _setup_principal(p.state(SETUP))
    if principal is None:
        return _start_again(p, SETUP, SETUP_PATH)
    business = tenants.active(principal.tenant_id)
    name = business.name if business is not None else None
    errors = Errors()
    try:
        if p.method == "POST" and p.form.get("step") == "passkey":
            added = _add_passkey(p, principal, errors)
            if added is not None:
                return _set_up(p, principal, name, added)
        elif p.method == "POST":
            if not p.csrf_ok():
                p.csrf_failed(errors)
            elif not p.form.get("code", "").strip():
                errors.add("code", "Enter the 6 digits your authenticator app shows.")
            if not errors:
                try:
                    done = mfa_totp.confirm(principal, p.form["code"].strip()[:16], p.ip, p.user_agent,
                                            session_seconds=_hosted_seconds())
                except Error as err:
                    if err.code != "invalid_code":
                        raise
                    errors.add("code", "This code is not right. Enter the 6 digits your app shows now.")
                else:
                    return _set_up(p, principal, name, done)
        started = mfa_totp.resume(principal, p.ip)
        options = passkeys.options(principal, p.ip).options
    except Error as err:
        if err.code in ("setup_token_used", "totp_setup_expired", "totp_setup_changed"):
            return _start_again(p, SETUP, SETUP_PATH)
        raise
    return p.form_page("console/mfa-setup.html", tenant_name=name, section=STAFF,
                       title="Set up a second sign-in step", button="Confirm", errors=errors,
                       action=url(SETUP_PATH), qr=Markup(started.qr_svg),  # noqa: S704 - segno's own SVG
                       key=started.secret, passkey_options=options_json(options))


def _add_passkey(p: Page, principal, errors: Errors):
    """The required factor as a passkey (passkeys.add, as POST /v1/staff/passkeys with the setup token)."""
    from chalicelib.flows.staff import passkeys
    from chalicelib.flows.staff.passkey_ceremony import RegistrationCredential
    credential = credential_from(p.form, RegistrationCredential)
    if not p.csrf_ok():
        p.csrf_failed(errors)
        return None
    if credential is None:
        errors.add("add-passkey", PASSKEY_NOT_USED)
        return None
    try:
        return passkeys.add(principal, passkeys.NewPasskey(credential=credential,
                                                           name=p.form.get("name", "").strip() or None),
                            p.ip, p.user_agent, session_seconds=_hosted_seconds())
    except Error as err:
        if err.code not in ("passkey_invalid", "passkey_expired"):
            raise
        errors.add("add-passkey", "This passkey could not be added. Try again, or set up an authenticator app.")
    except ValueError as exc:  # pydantic: a name too long, or not one line
        explain(exc, errors, {"name": "name"})
    return None


def _set_up(p: Page, principal, name: str | None, done) -> Response:
    """The required factor is set up: its recovery codes, shown in this answer only, and the way on as a link (a
    redirect would go past them)."""
    p.set_cookie(SETUP, "", path=SETUP_PATH, max_age=0)
    back = back_to_app(p, done.model_dump()["access_token"])
    return p.html(200, "pages/staff/recovery-codes.html", tenant_name=name, section=STAFF,
                  title="Save your recovery codes", codes=done.recovery_codes or [],
                  done="Your passkey is added." if getattr(done, "passkey", None) else
                  "Your authenticator app is set up.",
                  destination=back[1] if back is not None else None,
                  actions=continue_to_app(principal.tenant_id, "staff"))


def _setup_principal(token: str | None):
    """The setup-only token a required factor's sign-in answered with (it can do nothing else)."""
    from chalicelib.web.api import authenticate
    if not token:
        return None
    try:
        principal = authenticate(f"Bearer {token}")
    except Error:
        return None
    return principal if principal.kind == "mfa_setup" else None
