"""Staff accounts (admins with accounts:manage): people, invitations, admin-set and temporary passwords,
bulk jobs, sessions and audit; and the public steps of accepting an invitation and of recovery."""
from chalice import Blueprint

from chalicelib.web.api import PAGING, Admin, Api, Public, Reply
from chalicelib.web.lazy import lazy

admin_passwords = lazy("chalicelib.flows.staff.admin_passwords")
audit = lazy("chalicelib.core.audit")
sessions = lazy("chalicelib.core.sessions")
staff_accounts = lazy("chalicelib.flows.staff.staff_accounts")
staff_bulk = lazy("chalicelib.flows.staff.staff_bulk")
staff_invitations = lazy("chalicelib.flows.staff.staff_invitations")
staff_recovery = lazy("chalicelib.flows.staff.staff_recovery")
staff_signin = lazy("chalicelib.flows.staff.staff_signin")
unlock = lazy("chalicelib.flows.staff.unlock")

routes = Blueprint(__name__)
api = Api(routes)


ACCOUNTS = Admin("accounts:manage")


@api.route("/v1/people", "POST", ACCOUNTS, body=staff_accounts.shape("PersonCreate"),
           response=staff_accounts.shape("PersonOut"), status=201)
def create_person(call):
    """Add an employee (unique email) or technician (unique email or mobile); no account yet."""
    return staff_accounts.create_person(call.principal, call.body, call.ip)


@api.route("/v1/people", "GET", ACCOUNTS, response=staff_accounts.shape("PersonPage"),
           query={**PAGING, "status": "no_account | invited | active | locked | disabled | password_expired",
                  "kind": "employee | technician"})
def list_people(call):
    """Employees and technicians with their account status, a page at a time."""
    return staff_accounts.list_people(call.tenant_id, call.query)


@api.route("/v1/people/{person_id}", "GET", ACCOUNTS, response=staff_accounts.shape("PersonOut"))
def get_person(call, person_id):
    """One person and their account status."""
    return staff_accounts.get_person(call.tenant_id, person_id)


@api.route("/v1/people/{person_id}", "PATCH", ACCOUNTS, body=staff_accounts.shape("PersonPatch"),
           response=staff_accounts.shape("PersonOut"))
def patch_person(call, person_id):
    """Change a person's details, role or permissions; disable or enable their account."""
    return staff_accounts.patch_person(call.principal, person_id, call.body, call.ip)


@api.route("/v1/people/{person_id}/invite", "POST", ACCOUNTS, body=staff_invitations.shape("SendOptions"),
           response=staff_invitations.shape("InviteOut"), status=202)
def invite_person(call, person_id):
    """Send an account invitation by email, or SMS when there is only a mobile (replaces an earlier link)."""
    return staff_invitations.invite(call.principal, person_id, call.body, call.ip)


@api.route("/v1/people/{person_id}/account", "POST", ACCOUNTS, body=admin_passwords.shape("AccountCreate"),
           response=staff_accounts.shape("PersonOut"), status=201)
def create_person_account(call, person_id):
    """Create the account with a username and password; the first sign-in demands new ones."""
    return admin_passwords.create_account(call.principal, person_id, call.body, call.ip)


@api.route("/v1/people/{person_id}/password-reset-link", "POST", ACCOUNTS, body=staff_invitations.shape("SendOptions"),
           response=admin_passwords.shape("ResetLinkOut"), status=202)
def send_password_reset_link(call, person_id):
    """Send a password reset link by email or SMS (replaces an earlier link)."""
    return admin_passwords.send_reset_link(call.principal, person_id, call.body, call.ip)


@api.route("/v1/people/{person_id}/temporary-password", "POST", ACCOUNTS,
           body=admin_passwords.shape("TemporaryPasswordBody"),
           response=admin_passwords.shape("TemporaryPasswordOut"), status=201)
def set_temporary_password(call, person_id):
    """Set a temporary password valid 60 minutes (generated and shown once unless given)."""
    return admin_passwords.set_temporary_password(call.principal, person_id, call.body, call.ip)


@api.route("/v1/people/bulk-invite", "POST", ACCOUNTS, body=staff_bulk.shape("BulkRequest"),
           response=staff_bulk.shape("BulkOut"))
def bulk_invite_people(call):
    """Invite all or selected people without an account (type dry_run lists who would be contacted)."""
    return staff_bulk.bulk(call.principal, "invite", call.body, call.ip)


@api.route("/v1/people/bulk-password-reset", "POST", ACCOUNTS, body=staff_bulk.shape("BulkRequest"),
           response=staff_bulk.shape("BulkOut"))
def bulk_reset_people(call):
    """Send password reset links to all or selected people with an account (or a dry run)."""
    return staff_bulk.bulk(call.principal, "password_reset", call.body, call.ip)


@api.route("/v1/people/bulk-jobs/{job_id}", "GET", ACCOUNTS, response=staff_bulk.shape("BulkOut"))
def get_people_bulk_job(call, job_id):
    """One bulk invitation or reset run with every person's outcome."""
    return staff_bulk.get_bulk_job(call.tenant_id, job_id)


@api.route("/v1/people/{person_id}/sessions", "GET", ACCOUNTS, response=sessions.shape("SessionList"))
def person_sessions(call, person_id):
    """A person's sessions: when and where each started, how, and when it was last used."""
    return staff_accounts.person_sessions(call.principal, person_id)


@api.route("/v1/people/{person_id}/sign-out", "POST", ACCOUNTS, status=204)
def sign_out_person(call, person_id):
    """End every session of a person."""
    staff_accounts.sign_out_person(call.principal, person_id, call.ip)
    return Reply(None, 204)


@api.route("/v1/people/{person_id}/unlock", "POST", ACCOUNTS, response=staff_accounts.shape("PersonOut"),
           errors=("cannot_manage",))
def unlock_person(call, person_id):
    """End a sign-in lockout at once (a person who is not locked is answered as they are)."""
    return unlock.unlock(call.principal, person_id, call.ip)


@api.route("/v1/people/{person_id}/audit", "GET", ACCOUNTS, response=audit.shape("AuditPage"), query=PAGING)
def person_audit(call, person_id):
    """What was done by or to this person, newest first."""
    return staff_accounts.person_audit(call.tenant_id, person_id, call.query)


@api.route("/v1/staff/accept-invite", "POST", Public(), body=staff_invitations.shape("AcceptInvite"),
           response=staff_signin.shape("AccessToken"))
def staff_accept_invite(call):
    """Accept an invitation: choose a username (default: your email) and a password; signs you in."""
    return staff_invitations.accept_invite(call.body, call.ip, call.user_agent)


@api.route("/v1/staff/password-reset/start", "POST", Public(), body=staff_recovery.shape("ResetStart"),
           response=staff_recovery.shape("ResetStarted"), status=202)
def staff_reset_start(call):
    """Forgot password: name the account by username, email or mobile (same answer if it does not exist)."""
    return staff_recovery.start(call.body, call.ip)


@api.route("/v1/staff/password-reset/send-code", "POST", Public(), body=staff_recovery.shape("SendCode"),
           response=staff_recovery.shape("CodeSent"), status=202)
def staff_reset_send_code(call):
    """Send an 8-character, case-sensitive code (valid 10 minutes) by email or SMS."""
    return staff_recovery.send_code(call.body, call.ip)


@api.route("/v1/staff/password-reset/verify", "POST", Public(), body=staff_recovery.shape("VerifyCode"),
           response=staff_recovery.shape("ResetToken"))
def staff_reset_verify(call):
    """Check the code (5 tries per reset); the answer holds the token that sets the new password."""
    return staff_recovery.verify(call.body, call.ip)


@api.route("/v1/staff/password-reset/complete", "POST", Public(), body=staff_recovery.shape("CompleteReset"),
           response=staff_recovery.shape("ResetDone"))
def staff_reset_complete(call):
    """Choose the new password, with the reset token from verify or from an admin-sent reset link."""
    return staff_recovery.complete(call.body, call.ip)
