"""Passkeys (issue 18): a staff member's own (register, list, rename, remove), a passkey as the sign-in's second
step (a new challenge for it; the answer goes to POST /v1/staff/sign-in/mfa, routes/mfa.py) and a sign-in
without a password."""
from chalice import Blueprint

from chalicelib.core import observability
from chalicelib.web.api import Api, MfaSetup, Public, Reply, Staff
from chalicelib.web.lazy import lazy

mfa = lazy("chalicelib.flows.staff.mfa")
mfa_signin = lazy("chalicelib.flows.staff.mfa_signin")
passkey_ceremony = lazy("chalicelib.flows.staff.passkey_ceremony")
passkey_signin = lazy("chalicelib.flows.staff.passkey_signin")
passkeys = lazy("chalicelib.flows.staff.passkeys")
staff_signin = lazy("chalicelib.flows.staff.staff_signin")

routes = Blueprint(__name__)
api = Api(routes)


@api.route("/v1/staff/passkeys/options", "POST", MfaSetup(), response=passkey_ceremony.shape("PasskeyOptions"),
           errors=("recent_sign_in_required", "mfa_off", "setup_token_used", "too_many_passkeys"))
def staff_passkey_options(call):
    """Start adding a passkey: the options for navigator.credentials.create() (a challenge for 5 minutes, used
    once). Needs a sign-in in the last 10 minutes (or the setup token of a sign-in that must set up a factor)."""
    return passkeys.options(call.principal, call.ip)


@api.route("/v1/staff/passkeys", "POST", MfaSetup(), body=passkeys.shape("NewPasskey"),
           response=passkeys.shape("PasskeyAdded"), status=201,
           errors=("passkey_invalid", "passkey_expired", "passkey_exists", "too_many_passkeys",
                   "recent_sign_in_required", "mfa_off", "setup_token_used"))
def staff_passkey_add(call):
    """Add the passkey the browser made for those options, with a name. The first factor's recovery codes are
    shown once; a setup token's holder also gets the session. The person is told by email or SMS."""
    return passkeys.add(call.principal, call.body, call.ip, call.user_agent)


@api.route("/v1/staff/passkeys", "GET", Staff(), response=passkeys.shape("PasskeyList"))
def staff_passkey_list(call):
    """The caller's passkeys: id, name, when added and last used."""
    return passkeys.PasskeyList(items=passkeys.listed(mfa.person_of(call.principal)))


@api.route("/v1/staff/passkeys/{id}", "PATCH", Staff(), body=passkeys.shape("PasskeyRename"),
           response=passkeys.shape("PasskeyOut"),
           errors=("passkey_not_found",))
def staff_passkey_rename(call, id):  # `id`: the path parameter the issue names
    """Rename one of the caller's passkeys."""
    return passkeys.rename(call.principal, id, call.body, call.ip)


@api.route("/v1/staff/passkeys/{id}", "DELETE", Staff(), status=204,
           errors=("passkey_not_found", "recent_sign_in_required", "mfa_required_by_policy"))
def staff_passkey_remove(call, id):  # `id`: the path parameter the issue names
    """Remove one of the caller's passkeys: it no longer signs in. Needs a recent sign-in; the person is told."""
    passkeys.remove(call.principal, id, call.ip)
    return Reply(None, 204)


@api.route("/v1/staff/sign-in/mfa/passkey-options", "POST", Public(), body=mfa_signin.shape("MfaPasskeyOptions"),
           response=passkey_ceremony.shape("PasskeyOptions"), errors=("mfa_token_invalid", "no_passkey"))
def staff_sign_in_mfa_passkey_options(call):
    """A new passkey challenge for a sign-in waiting for its second factor (the mfa_required answer carries the
    first as passkey_options); the assertion then goes to POST /v1/staff/sign-in/mfa as `passkey`."""
    return mfa_signin.passkey_options(call.body)


@api.route("/v1/staff/sign-in/passkey/options", "POST", Public(), body=passkey_signin.shape("PasskeySignInOptions"),
           response=passkey_ceremony.shape("PasskeyOptions"))
def staff_sign_in_passkey_options(call):
    """Sign in without a password, step 1: the options for navigator.credentials.get() (the same for every
    username; tenant_id and username optional, binding the challenge to them)."""
    return passkey_signin.options(call.body)


@api.route("/v1/staff/sign-in/passkey", "POST", Public(), body=passkey_signin.shape("PasskeySignIn"),
           response=staff_signin.shape("AccessToken"),
           errors=("passkey_invalid", "account_locked", "password_change_required", "password_expired"))
def staff_sign_in_passkey(call):
    """Sign in without a password, step 2: the passkey's assertion (a discoverable passkey names its person; with
    a username or tenant_id it must be theirs). Counts as password and second factor; then the session, as
    sign-in gives it."""
    return observability.sign_in_outcome("staff", lambda: passkey_signin.complete(call.body, call.ip,
                                                                                  call.user_agent))
