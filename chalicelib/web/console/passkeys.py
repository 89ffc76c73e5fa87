"""Passkeys in the console (issue 18): **Sign in with a passkey** (/console/sign-in/passkey: no password; a
discoverable passkey, or the Business ID and Username typed first), a person's own passkeys (/console/mfa-setup
while signed in: **Passkeys**, **Add a passkey** with a name, rename, **Remove**), and what the factor and setup
pages of second_factor.py use for their passkey forms (web/pages/passkey_forms.py, shared with the hosted staff
sign-in).

Thin: every step calls the flow the JSON API calls (passkey_signin, passkeys, mfa_signin), in-process. The
WebAuthn options are rendered into the form (templates/pages/passkey.html), since the pages' CSP lets no script
fetch anything; each render issues a challenge (5 minutes, single use), so a failed try shows a fresh one."""
from chalice import Response

from chalicelib.core.errors import Error
from chalicelib.web.console.shell import (
    CONSOLE_SESSION_SECONDS,
    SECTION,
    SIGNED_OUT_WHY,
    Console,
    ConsolePage,
    gate,
    safe_next,
    signed_in,
    start,
)
from chalicelib.web.pages.forms import Errors, explain
from chalicelib.web.pages.passkey_forms import credential_from, factor_options, options_json
from chalicelib.web.pages.render import url
from chalicelib.web.pages.serve import Page

__all__ = ["credential_from", "factor_options", "options_json"]  # what the factor and setup pages use from here

SIGN_IN_PATH = "/console/sign-in/passkey"
SETUP_PATH = "/console/mfa-setup"
CHANGE = "pa_console_change"  # signin.CHANGE: the forced change that may follow a sign-in
NOT_USED = ("No passkey was used. A passkey needs JavaScript in this browser; if it is on, press the button and "
            "follow your browser's steps.")
NOT_ACCEPTED = "This passkey was not accepted. Try again, or use another way to sign in."
EXPIRED = "This took too long, so the passkey was not added. Try again."
NOT_ADDED = "This passkey could not be added. Try again, or try another device."
WORDS = {  # a flow's refusal of adding or removing, in the console's words
    "recent_sign_in_required": "For your safety, adding or removing a passkey needs a sign-in in the last 10 "
                               "minutes: use Sign in again, then try once more.",
    "passkey_exists": "This passkey is already added to an account.",
    "too_many_passkeys": "You have 10 passkeys, the most one account can have: remove one you no longer use first.",
    "mfa_off": "Your business has switched second factors off, so no passkey can be added.",
    "mfa_required_by_policy": "Your business requires a second factor, and this passkey is your last one: add "
                              "another passkey first, or ask your administrator.",
    "passkey_not_found": "That passkey was removed already.",
}


# --- Sign in with a passkey ----------------------------------------------------------------------------------

def sign_in(p: Page) -> Response:
    """No password: the passkey on this device or a phone. Business ID and Username may be typed first (the
    passkey must then be theirs) or left empty (the passkey says whose it is). Every refusal reads the same."""
    from chalicelib.flows.staff import passkey_signin, staff_signin
    from chalicelib.flows.staff.passkey_ceremony import AssertionCredential
    destination = safe_next(p.query.get("next"))
    if p.method == "GET" and signed_in(p)[0] is not None:
        return p.redirect(url(destination))
    errors = Errors()
    tenant_id = (p.form.get("tenant_id") or p.query.get("tenant_id") or "").strip()
    username = p.form.get("username", "").strip()
    if p.method == "POST":
        credential = credential_from(p.form, AssertionCredential)
        if not p.csrf_ok():
            p.csrf_failed(errors)
        elif credential is None:
            errors.add("passkey", NOT_USED)
        else:
            try:
                body = passkey_signin.PasskeySignIn(credential=credential, tenant_id=tenant_id or None,
                                                    username=username or None)
                answer = passkey_signin.complete(body, p.ip, p.user_agent, session_seconds=CONSOLE_SESSION_SECONDS)
            except Error as err:
                if err.code in ("password_change_required", "password_expired") and err.extra.get("change_token"):
                    p.set_cookie(CHANGE, err.extra["change_token"], path="/console/change-password",
                                 max_age=staff_signin.CHANGE_TOKEN_SECONDS)
                    return p.redirect(url("/console/change-password", next=p.query.get("next")))
                if err.code == "passkey_invalid":
                    errors.add("passkey", NOT_ACCEPTED)
                else:  # locked, too many tries from this network
                    explain(err, errors, {"tenant_id": "tenant_id", "username": "username"})
            except ValueError as exc:  # pydantic: too long, or not one line
                explain(exc, errors, {"tenant_id": "tenant_id", "username": "username", "credential": "passkey"})
            else:
                if start(p, answer):
                    return p.redirect(url(destination))
                errors.add(None, SIGNED_OUT_WHY["no_access"])
    options = passkey_signin.options(passkey_signin.PasskeySignInOptions()).options
    return p.form_page("console/sign-in-passkey.html", tenant_name=None, section=SECTION,
                       title="Sign in with a passkey", button="Sign in with a passkey", errors=errors,
                       tenant_id=tenant_id, username=username, options_json=options_json(options),
                       action=url(SIGN_IN_PATH, next=p.query.get("next")),
                       password_page=url("/console/sign-in", tenant_id=tenant_id or None, next=p.query.get("next")))


# --- a person's own passkeys ---------------------------------------------------------------------------------

def own(p: Page) -> Response:
    """/console/mfa-setup for a signed-in staff member (the setup a policy asks for is second_factor.setup):
    the gate first, as on every console page."""
    return gate(ConsolePage(SETUP_PATH, own_passkeys, None, True), {})(p)


def own_passkeys(c: Console) -> Response:
    """Passkeys: the list (name, added, last used) with Rename and Remove, and Add a passkey with its name."""
    from chalicelib.core import sessions, tenants
    from chalicelib.flows.staff import mfa, mfa_recovery, passkeys
    from chalicelib.flows.staff.passkey_ceremony import MAX_PASSKEYS, RegistrationCredential
    c.current = "Sign-in methods"  # the header's link to this page
    errors = Errors()
    if c.posted():
        step = c.form.get("step", "")
        if step == "reauth":  # sign in again, to come back here with a fresh sign-in
            sessions.end(c.principal.live.session, actor=c.principal.subject, reason="signed_out", ip=c.ip)
            return c.page.redirect(url("/console/sign-in", next=SETUP_PATH))
        passkey_id = c.form.get("passkey_id", "")
        try:
            if step == "passkey":
                credential = credential_from(c.form, RegistrationCredential)
                name = c.form.get("name", "").strip()
                if not name:
                    errors.add("name", "Name this passkey, so you can tell it from others (say, Work phone).")
                if credential is None:
                    errors.add("add-passkey", NOT_USED)
                if not errors:
                    added = passkeys.add(c.principal, passkeys.NewPasskey(credential=credential, name=name), c.ip,
                                         c.page.user_agent)
                    if added.recovery_codes:  # the first factor: its recovery codes, shown once, in this answer
                        return c.page.html(200, "console/mfa-recovery-codes.html", tenant_name=c.tenant_name,
                                           section=SECTION, title="Save your recovery codes",
                                           codes=added.recovery_codes, destination=SETUP_PATH,
                                           done="Your passkey is added.")
                    return c.done(SETUP_PATH, "added")
            elif step == "rename":
                name = c.form.get("name", "").strip()
                if not name:
                    errors.add(f"name-{passkey_id}", "Enter the passkey's new name.")
                else:
                    passkeys.rename(c.principal, passkey_id, passkeys.PasskeyRename(name=name), c.ip)
                    return c.done(SETUP_PATH, "renamed")
            elif step == "remove":
                passkeys.remove(c.principal, passkey_id, c.ip)
                return c.done(SETUP_PATH, "removed")
        except Error as err:
            if err.code in ("passkey_expired", "passkey_invalid"):
                errors.add("add-passkey", EXPIRED if err.code == "passkey_expired" else NOT_ADDED)
            elif err.code in WORDS:
                errors.add(None, WORDS[err.code])
            else:
                explain(err, errors, {"name": "name"})
        except ValueError as exc:  # pydantic: a name too long, or not one line
            explain(exc, errors, {"name": "name" if step == "passkey" else f"name-{passkey_id}"})
    person = c.person
    listed = passkeys.listed(person)
    tenant = tenants.find(c.tenant_id)
    why_not = None
    options = None
    try:
        mfa.require_enabled(tenant)
        mfa.require_recent_sign_in(c.principal)
        if len(listed) < MAX_PASSKEYS:
            options = passkeys.options(c.principal, c.ip).options
    except Error as err:
        why_not = err.code
    return c.html("console/passkeys.html", status=400 if errors or c.stale else 200, title="Your sign-in methods",
                  passkeys=listed, errors=errors, options_json=options_json(options), why_not=why_not,
                  max_passkeys=MAX_PASSKEYS, totp=bool(person.totp_secret),
                  recovery_codes_left=mfa_recovery.remaining(person), required=mfa.required_for(person, tenant))


own_passkeys.notices = {  # type: ignore[attr-defined]
    "added": "Passkey added. You can sign in with it now, with or without your password.",
    "renamed": "Passkey renamed.",
    "removed": "Passkey removed: it no longer signs in to your account.",
}
