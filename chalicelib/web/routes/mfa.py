"""The second factor (issue 18): the sign-in's second step, a person's own factors, the business's policy and an
admin's reset."""
from chalice import Blueprint

from chalicelib.core import observability
from chalicelib.web.api import Admin, Api, MfaSetup, Public, Reply, Staff
from chalicelib.web.lazy import lazy

mfa = lazy("chalicelib.flows.staff.mfa")
mfa_admin = lazy("chalicelib.flows.staff.mfa_admin")
mfa_recovery = lazy("chalicelib.flows.staff.mfa_recovery")
mfa_signin = lazy("chalicelib.flows.staff.mfa_signin")
mfa_totp = lazy("chalicelib.flows.staff.mfa_totp")
staff_accounts = lazy("chalicelib.flows.staff.staff_accounts")
staff_signin = lazy("chalicelib.flows.staff.staff_signin")

routes = Blueprint(__name__)
api = Api(routes)
ACCOUNTS = Admin("accounts:manage")


@api.route("/v1/staff/sign-in/mfa", "POST", Public(), body=mfa_signin.shape("MfaSignIn"),
           response=staff_signin.shape("AccessToken"),
           errors=("mfa_token_invalid", "invalid_code", "passkey_invalid", "account_locked",
                   "password_change_required", "password_expired"))
def staff_sign_in_mfa(call):
    """The second step of a sign-in that answered 401 mfa_required: the mfa_token and an authenticator or recovery
    code, or a passkey's assertion for its passkey_options; then the session, as sign-in gives it."""
    return observability.sign_in_outcome("staff", lambda: mfa_signin.complete(call.body, call.ip, call.user_agent))


@api.route("/v1/staff/mfa", "GET", Staff(), response=mfa.shape("MfaStatus"))
def staff_mfa_status(call):
    """The caller's second factors, recovery codes left, and whether the business requires one of them."""
    from chalicelib.core import tenants
    person = call.principal.live.record
    tenant = tenants.get(call.tenant_id)
    return mfa.MfaStatus(methods=mfa.methods(person), recovery_codes_left=mfa_recovery.remaining(person),
                     policy=mfa.policy_of(tenant), required=mfa.required_for(person, tenant))


@api.route("/v1/staff/mfa/totp", "POST", MfaSetup(), response=mfa_totp.shape("TotpStarted"),
           errors=("recent_sign_in_required", "mfa_off", "setup_token_used"))
def staff_totp_start(call):
    """Start setting up an authenticator app: its otpauth URI, the key in text and the QR code (SVG). Needs a
    sign-in in the last 10 minutes (or the setup token of a sign-in that must set up a factor)."""
    return mfa_totp.start(call.principal, call.ip)


@api.route("/v1/staff/mfa/totp/confirm", "POST", MfaSetup(), body=mfa_totp.shape("TotpConfirm"),
           response=mfa_totp.shape("TotpConfirmed"),
           errors=("invalid_code", "totp_setup_expired", "recent_sign_in_required", "setup_token_used"))
def staff_totp_confirm(call):
    """Confirm the authenticator app with its first code (replaces an earlier one); the first recovery codes are
    shown once; a setup token's holder also gets the session."""
    return mfa_totp.confirm(call.principal, call.body.code, call.ip, call.user_agent)


@api.route("/v1/staff/mfa/totp", "DELETE", Staff(), status=204,
           errors=("recent_sign_in_required", "mfa_required_by_policy"))
def staff_totp_remove(call):
    """Remove the authenticator app (and, as it is the only factor, the recovery codes); needs a recent sign-in."""
    mfa_totp.remove(call.principal, call.ip)
    return Reply(None, 204)


@api.route("/v1/staff/mfa/recovery-codes", "POST", Staff(), response=mfa_recovery.shape("RecoveryCodes"), status=201,
           errors=("recent_sign_in_required", "no_second_factor"))
def staff_recovery_codes(call):
    """Ten new single-use recovery codes, shown once; the old set stops working. Needs a recent sign-in."""
    return mfa_recovery.regenerate(call.principal, call.ip)


@api.route("/v1/staff/mfa/policy", "GET", ACCOUNTS, response=mfa.shape("MfaPolicy"))
def get_mfa_policy(call):
    """The business's staff second-factor policy: off | optional | required_for_admins | required_for_all."""
    return mfa_admin.get_policy(call.tenant_id)


@api.route("/v1/staff/mfa/policy", "PUT", ACCOUNTS, body=mfa.shape("MfaPolicy"), response=mfa.shape("MfaPolicy"))
def put_mfa_policy(call):
    """Set the staff second-factor policy (in force at each person's next sign-in)."""
    return mfa_admin.put_policy(call.principal, call.body, call.ip)


@api.route("/v1/people/{person_id}/reset-mfa", "POST", ACCOUNTS, response=staff_accounts.shape("PersonOut"),
           errors=("cannot_manage",))
def reset_person_mfa(call, person_id):
    """Reset second factor: remove a person's authenticator app, passkeys and recovery codes (audited; the person
    is told)."""
    return mfa_admin.reset(call.principal, person_id, call.ip)
