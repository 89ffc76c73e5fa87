"""The console's sign-in with a second factor (issue 18): /console/sign-in/factor (the second page: **Use a passkey**
when the person has one, or "Authenticator code or recovery code", after a right password for a person with a
factor) and /console/mfa-setup (where the business requires a factor and the person has none: **Add a passkey**,
or the authenticator's QR code, its key in text and a confirm field; then the recovery codes, shown once, and the
console; for a signed-in person the same address is their own passkeys, console/passkeys.py). Both call the flows
the JSON API calls (mfa_signin.complete and passkey_options, passkeys.options/add, mfa_totp.start/confirm); their
tokens live in HttpOnly cookies scoped to each page's path."""
from chalice import Response
from markupsafe import Markup

from chalicelib.core.errors import Error
from chalicelib.web.console import passkeys as passkey_pages
from chalicelib.web.console.shell import CONSOLE_SESSION_SECONDS, SECTION, safe_next, start
from chalicelib.web.pages.forms import Errors, explain
from chalicelib.web.pages.render import url
from chalicelib.web.pages.serve import Page

FACTOR = "pa_console_factor"
SETUP = "pa_console_setup"
FACTOR_PATH = "/console/sign-in/factor"
SETUP_PATH = "/console/mfa-setup"
CHANGE = "pa_console_change"  # signin.CHANGE: the forced change that may follow the factor


def to_factor(p: Page, mfa_token: str) -> Response:
    """From the password page: the second page, holding the mfa_token (5 minutes) in its cookie."""
    from chalicelib.flows.staff import mfa
    p.set_cookie(FACTOR, mfa_token, path=FACTOR_PATH, max_age=mfa.MFA_TOKEN_SECONDS)
    return p.redirect(url(FACTOR_PATH, next=p.query.get("next")))


def to_setup(p: Page, setup_token: str) -> Response:
    from chalicelib.flows.staff import mfa
    p.set_cookie(SETUP, setup_token, path=SETUP_PATH, max_age=mfa.SETUP_TOKEN_SECONDS)
    return p.redirect(url(SETUP_PATH, next=p.query.get("next")))


def _back_to_sign_in(p: Page, cookie: str) -> Response:
    p.set_cookie(cookie, "", path=FACTOR_PATH if cookie == FACTOR else SETUP_PATH, max_age=0)
    return p.redirect(url("/console/sign-in", why="ended", next=p.query.get("next")))


def factor(p: Page) -> Response:
    """The second page of the sign-in: a passkey, or an authenticator code or a recovery code."""
    from chalicelib.flows.staff import mfa_signin, staff_signin
    from chalicelib.flows.staff.passkey_ceremony import AssertionCredential
    token = p.state(FACTOR)
    if not token:
        return p.redirect(url("/console/sign-in", next=p.query.get("next")))
    errors = Errors()
    if p.method == "POST":
        passkey = p.form.get("step") == "passkey"
        credential = passkey_pages.credential_from(p.form, AssertionCredential) if passkey else None
        if not p.csrf_ok():
            p.csrf_failed(errors)
        elif passkey and credential is None:
            errors.add("passkey", passkey_pages.NOT_USED)
        elif not passkey and not p.form.get("code", "").strip():
            errors.add("code", "Enter the code from your authenticator app, or a recovery code.")
        if not errors:
            try:
                body = mfa_signin.MfaSignIn(mfa_token=token, passkey=credential) if passkey \
                    else mfa_signin.MfaSignIn(mfa_token=token, code=p.form["code"].strip())
                answer = mfa_signin.complete(body, p.ip, p.user_agent, session_seconds=CONSOLE_SESSION_SECONDS)
            except Error as err:
                if err.code == "mfa_token_invalid":
                    return _back_to_sign_in(p, FACTOR)
                if err.code in ("password_change_required", "password_expired") and err.extra.get("change_token"):
                    p.set_cookie(FACTOR, "", path=FACTOR_PATH, max_age=0)
                    p.set_cookie(CHANGE, err.extra["change_token"], path="/console/change-password",
                                 max_age=staff_signin.CHANGE_TOKEN_SECONDS)
                    return p.redirect(url("/console/change-password", next=p.query.get("next")))
                if err.code == "invalid_code":
                    errors.add("code", "This code is not right. Enter the 6 digits your app shows now, or one of "
                                       "your recovery codes.")
                elif err.code == "passkey_invalid":
                    errors.add("passkey", "This passkey was not accepted. Try again, or enter a code.")
                else:
                    explain(err, errors, {"code": "passkey" if passkey else "code"})
            except ValueError as exc:  # pydantic: too long, or not one line
                explain(exc, errors, {"code": "code", "mfa_token": "code", "passkey": "passkey"})
            else:
                p.set_cookie(FACTOR, "", path=FACTOR_PATH, max_age=0)
                if start(p, answer):
                    return p.redirect(url(safe_next(p.query.get("next"))))
                return p.redirect(url("/console/sign-in", why="no_access"))
    try:  # a fresh passkey challenge for this sign-in (the last one, if any, was spent by the try)
        options = passkey_pages.factor_options(token)
    except Error as err:
        if err.code == "mfa_token_invalid":
            return _back_to_sign_in(p, FACTOR)
        raise
    return p.form_page("console/sign-in-factor.html", tenant_name=None, section=SECTION,
                       title="Enter your second factor", button="Continue", errors=errors,
                       action=url(FACTOR_PATH, next=p.query.get("next")),
                       passkey_options=passkey_pages.options_json(options))


def setup(p: Page) -> Response:
    """Where the business requires a second factor: add a passkey or set up an authenticator app before anything
    else. Signed in (no setup under way), the same page is the person's own passkeys."""
    from chalicelib.core import tenants
    from chalicelib.flows.staff import mfa_totp, passkeys
    principal = _setup_principal(p.state(SETUP))
    if principal is None:
        if not p.state(SETUP):
            return passkey_pages.own(p)
        return _back_to_sign_in(p, SETUP)
    business = tenants.active(principal.tenant_id)
    name = business.name if business is not None else None
    errors = Errors()
    try:
        if p.method == "POST" and p.form.get("step") == "passkey":
            done = _add_passkey(p, principal, errors)
            if done is not None:
                p.set_cookie(SETUP, "", path=SETUP_PATH, max_age=0)
                destination = safe_next(p.query.get("next")) if start(p, done.model_dump()) else None
                return p.html(200, "console/mfa-recovery-codes.html", tenant_name=name, section=SECTION,
                              title="Save your recovery codes", codes=done.recovery_codes or [],
                              destination=destination, done="Your passkey is added.")
        elif p.method == "POST":
            if not p.csrf_ok():
                p.csrf_failed(errors)
            elif not p.form.get("code", "").strip():
                errors.add("code", "Enter the 6 digits your authenticator app shows.")
            if not errors:
                try:
                    done = mfa_totp.confirm(principal, p.form["code"].strip()[:16], p.ip, p.user_agent,
                                            session_seconds=CONSOLE_SESSION_SECONDS)
                except Error as err:
                    if err.code != "invalid_code":
                        raise
                    errors.add("code", "This code is not right. Enter the 6 digits your app shows now.")
                else:
                    p.set_cookie(SETUP, "", path=SETUP_PATH, max_age=0)
                    destination = safe_next(p.query.get("next")) if start(p, done.model_dump()) else None
                    # shown in this answer only (no-store, never redirected to): the codes are in no URL or history
                    return p.html(200, "console/mfa-recovery-codes.html", tenant_name=name, section=SECTION,
                                  title="Save your recovery codes", codes=done.recovery_codes or [],
                                  destination=destination)
        started = mfa_totp.resume(principal, p.ip)
        options = passkeys.options(principal, p.ip).options
    except Error as err:
        if err.code in ("setup_token_used", "totp_setup_expired", "totp_setup_changed"):
            return _back_to_sign_in(p, SETUP)
        raise
    return p.form_page("console/mfa-setup.html", tenant_name=name, section=SECTION,
                       title="Set up a second factor", button="Confirm", errors=errors,
                       action=url(SETUP_PATH, next=p.query.get("next")), qr=Markup(started.qr_svg),  # noqa: S704
                       key=started.secret, passkey_options=passkey_pages.options_json(options))


def _add_passkey(p: Page, principal, errors: Errors):
    """The setup's Add a passkey: the passkey added (with the session and the recovery codes), or None with the
    errors said."""
    from chalicelib.flows.staff import passkeys
    from chalicelib.flows.staff.passkey_ceremony import RegistrationCredential
    credential = passkey_pages.credential_from(p.form, RegistrationCredential)
    name = p.form.get("name", "").strip()
    if not p.csrf_ok():
        p.csrf_failed(errors)
        return None
    if not name:
        errors.add("name", "Name this passkey, so you can tell it from others (say, Work phone).")
    if credential is None:
        errors.add("add-passkey", passkey_pages.NOT_USED)
    if errors:
        return None
    try:
        return passkeys.add(principal, passkeys.NewPasskey(credential=credential, name=name), p.ip, p.user_agent,
                            session_seconds=CONSOLE_SESSION_SECONDS)
    except Error as err:
        if err.code in ("setup_token_used",):
            raise
        errors.add("add-passkey", passkey_pages.EXPIRED if err.code == "passkey_expired"
                   else passkey_pages.WORDS.get(err.code, passkey_pages.NOT_ADDED))
    except ValueError as exc:  # pydantic: a name too long, or not one line
        explain(exc, errors, {"name": "name"})
    return None


def _setup_principal(token: str | None):
    from chalicelib.web.api import authenticate
    if not token:
        return None
    try:
        principal = authenticate(f"Bearer {token}")
    except Error:
        return None
    return principal if principal.kind == "mfa_setup" else None
