"""portal-access: the Chalice app. Each handler parses, calls one flow in chalicelib/, and shapes the answer;
`api.route` declares who may call it (the guard) and what it accepts (the models behind /v1/openapi.json)."""
from typing import Annotated

from chalice import Chalice, Rate
from pydantic import BaseModel, Field, StringConstraints

from chalicelib.flows.portal import access_links, bulk_invites, invitations, oidc, portal_access, portal_sessions
from chalicelib.core import audit, config, observability, sessions
from chalicelib.flows import directory, partners
from chalicelib.web import openapi, pages
from chalicelib.flows.staff import staff_accounts, staff_recovery, staff_signin
from chalicelib.web import middleware
from chalicelib.core.schema import Password, Strict
from chalicelib.web.api import Admin, Api, Partner, PasswordChange, Public, Reply, Staff
from chalicelib.web.api import PortalUser as PortalSignedIn
from chalicelib.flows.directory import (ContactCreate, ContactOut, ContactPage, ContactPatch, CustomerCreate,
                                  CustomerOut, CustomerPage, CustomerPatch, LocationCreate, LocationOut,
                                  LocationPage, LocationPatch)
from chalicelib.flows.staff.staff_accounts import (AcceptInvite, AccountCreate, BulkOut, BulkRequest, InviteOut, PersonCreate,
                                       PersonOut, PersonPage, PersonPatch, ResetLinkOut, SendOptions,
                                       TemporaryPasswordBody, TemporaryPasswordOut)
from chalicelib.flows.staff.staff_recovery import (CodeSent, CompleteReset, ResetDone, ResetStart, ResetStarted, ResetToken,
                                       SendCode, VerifyCode)
from chalicelib.core.text import OneLine

app = Chalice(app_name="portal-access")
middleware.register(app)
api = Api(app)

DIRECTORY = Admin("directory:manage")
PORTAL_ADMIN = Admin("portal:manage")
PAGING = {"limit": "Page size, 1-100 (default 50)", "cursor": "next_cursor of the previous page"}
Short = Annotated[OneLine, Field(min_length=1, max_length=256)]


class StaffSignIn(Strict):
    tenant_id: Annotated[OneLine, Field(min_length=1, max_length=64)]
    username: Short
    password: Password


class ChangePassword(Strict):
    current_password: Annotated[str, StringConstraints(strip_whitespace=False, max_length=1024)] | None = None
    new_password: Password
    new_username: Short | None = None


class AccessToken(BaseModel):
    access_token: str
    token_type: str
    expires_in: int


class StaffMe(BaseModel):
    person_id: str
    tenant_id: str
    role: str
    permissions: list[str]


# --- public -------------------------------------------------------------------------------------------------

@api.route("/v1/health", "GET", Public())
def health(call):
    """Liveness of the API."""
    return {"status": "ok", "stage": config.stage()}


@api.route("/v1/openapi.json", "GET", Public())
def openapi_document(call):
    """This API, as OpenAPI 3.1."""
    return openapi.document(api)


@api.route("/.well-known/jwks.json", "GET", Public())
def jwks(call):
    """Public keys that verify access tokens (every key not yet retired)."""
    from chalicelib.core.security import keys
    return keys.jwks()


# --- staff --------------------------------------------------------------------------------------------------

@api.route("/v1/staff/sign-in", "POST", Public(), body=StaffSignIn, response=AccessToken)
def staff_sign_in(call):
    """Staff sign-in with username and password."""
    b = call.body
    return observability.sign_in_outcome("staff", lambda: staff_signin.sign_in(b.tenant_id, b.username, b.password,
                                                                               call.ip, call.user_agent))


@api.route("/v1/staff/change-password", "POST", PasswordChange(), body=ChangePassword, response=AccessToken)
def staff_change_password(call):
    """Change one's password (signed in, or with the change token of a forced change)."""
    b = call.body
    return staff_signin.change_password(call.principal, b.current_password, b.new_password, b.new_username,
                                        call.ip, call.user_agent)


@api.route("/v1/staff/me", "GET", Staff(), response=StaffMe)
def staff_me(call):
    """The signed-in staff member."""
    p = call.principal
    return {"person_id": p.subject, "tenant_id": p.tenant_id, "role": p.live.record.role,
            "permissions": sorted(p.permissions)}


@api.route("/v1/staff/sessions", "GET", Staff(), response=sessions.SessionList)
def staff_sessions(call):
    """The caller's sessions (current: true marks this one)."""
    return sessions.own(call.principal)


@api.route("/v1/staff/sessions/{session_id}", "DELETE", Staff(), status=204, errors=("session_not_found",))
def staff_end_session(call, session_id):
    """End one of the caller's sessions (another device)."""
    sessions.end_own(call.principal, session_id, call.ip)
    return Reply(None, 204)


@api.route("/v1/staff/sign-out", "POST", Staff(), status=204)
def staff_sign_out(call):
    """End this session."""
    sessions.sign_out(call.principal, call.ip)
    return Reply(None, 204)


@api.route("/v1/staff/sign-out-everywhere", "POST", Staff(), status=204)
def staff_sign_out_everywhere(call):
    """End every session of the caller, this one included."""
    sessions.sign_out_everywhere(call.principal, call.ip)
    return Reply(None, 204)


# --- directory (admin) --------------------------------------------------------------------------------------

@api.route("/v1/customers", "POST", DIRECTORY, body=CustomerCreate, response=CustomerOut, status=201)
def create_customer(call):
    """Create a customer record."""
    return directory.create_customer(call.tenant_id, call.body)


@api.route("/v1/customers", "GET", DIRECTORY, response=CustomerPage, query=PAGING)
def list_customers(call):
    """List customers, a page at a time."""
    return directory.list_customers(call.tenant_id, call.query)


@api.route("/v1/customers/{customer_id}", "GET", DIRECTORY, response=CustomerOut)
def get_customer(call, customer_id):
    """One customer."""
    return directory.customer_out(directory.get_customer(call.tenant_id, customer_id))


@api.route("/v1/customers/{customer_id}", "PATCH", DIRECTORY, body=CustomerPatch, response=CustomerOut)
def patch_customer(call, customer_id):
    """Change a customer's name, emails, phones or billing address."""
    return invitations.patch_customer(call.tenant_id, customer_id, call.body)


@api.route("/v1/customers/{customer_id}/locations", "POST", DIRECTORY, body=LocationCreate,
           response=LocationOut, status=201)
def create_location(call, customer_id):
    """Add a service location to a customer."""
    return directory.create_location(call.tenant_id, customer_id, call.body)


@api.route("/v1/customers/{customer_id}/locations", "GET", DIRECTORY, response=LocationPage, query=PAGING)
def list_locations(call, customer_id):
    """A customer's locations."""
    return directory.list_locations(call.tenant_id, customer_id, call.query)


@api.route("/v1/locations/{location_id}", "GET", DIRECTORY, response=LocationOut)
def get_location(call, location_id):
    """One location."""
    return directory.location_out(directory.get_location(call.tenant_id, location_id))


@api.route("/v1/locations/{location_id}", "PATCH", DIRECTORY, body=LocationPatch, response=LocationOut)
def patch_location(call, location_id):
    """Change a location's name, address or emails."""
    return invitations.patch_location(call.tenant_id, location_id, call.body)


@api.route("/v1/customers/{customer_id}/contacts", "POST", DIRECTORY, body=ContactCreate,
           response=invitations.ContactWithInvite, status=201)
def create_contact(call, customer_id):
    """Add a contact to a customer; with send_portal_invite, invite them to the portal too."""
    return invitations.create_contact(call.tenant_id, customer_id, call.body, call.actor, call.ip)


@api.route("/v1/customers/{customer_id}/contacts", "GET", DIRECTORY, response=ContactPage, query=PAGING)
def list_contacts(call, customer_id):
    """A customer's contacts."""
    return directory.list_contacts(call.tenant_id, customer_id, call.query)


@api.route("/v1/contacts/{contact_id}", "GET", DIRECTORY, response=ContactOut)
def get_contact(call, contact_id):
    """One contact."""
    return directory.contact_out(directory.get_contact(call.tenant_id, contact_id))


@api.route("/v1/contacts/{contact_id}", "PATCH", DIRECTORY, body=ContactPatch, response=ContactOut)
def patch_contact(call, contact_id):
    """Change a contact's name, email or phone."""
    return invitations.patch_contact(call.tenant_id, contact_id, call.body)


# --- customer portal: invitations, bulk invitations, portal users (admin) ----------------------------------

@api.route("/v1/portal/invitations", "POST", PORTAL_ADMIN, body=invitations.InvitationCreate,
           response=invitations.PortalUserOut, status=202)
def invite_to_portal(call):
    """Invite an email on a customer or location record (again = resend, replacing the previous link)."""
    return invitations.invite(call.tenant_id, call.body, call.actor, call.ip)


@api.route("/v1/portal/users", "GET", PORTAL_ADMIN, response=invitations.PortalUserPage,
           query={**PAGING, "status": "invited | active | disabled", "customer_id": "users with a grant on it"})
def list_portal_users(call):
    """Portal users with status, grants, last sent and delivery problems."""
    return invitations.list_users(call.tenant_id, call.query)


@api.route("/v1/portal/users/{user_id}", "GET", PORTAL_ADMIN, response=invitations.PortalUserOut)
def get_portal_user(call, user_id):
    """One portal user."""
    return invitations.user_out(invitations.get_user(call.tenant_id, user_id))


@api.route("/v1/portal/users/{user_id}", "PATCH", PORTAL_ADMIN, body=invitations.PortalUserPatch,
           response=invitations.PortalUserOut,
           errors=("email_not_on_record", "access_not_allowed", "contact_not_on_customer", "not_registered",
                   "edit_conflict"))
def patch_portal_user(call, user_id):
    """Change a portal user's grants, or disable / enable them (disabling ends their sessions for good)."""
    return invitations.patch_user(call.tenant_id, user_id, call.body, call.actor, call.ip)


@api.route("/v1/portal/users/{user_id}/resend-invitation", "POST", PORTAL_ADMIN,
           response=invitations.PortalUserOut, status=202)
def resend_portal_invitation(call, user_id):
    """Send the invitation again; the previous link stops working."""
    return invitations.resend(call.tenant_id, user_id, call.actor, call.ip)


@api.route("/v1/portal/bulk-invites/upload-url", "POST", PORTAL_ADMIN, body=bulk_invites.UploadUrlRequest,
           response=bulk_invites.UploadUrl, status=201)
def bulk_invite_upload_url(call):
    """A pre-signed PUT for a CSV of emails, bound to the caller's business."""
    return bulk_invites.upload_url(call.tenant_id, call.body, call.actor)


@api.route("/v1/portal/bulk-invites", "GET", PORTAL_ADMIN, response=bulk_invites.BulkJobPage, query=PAGING)
def list_bulk_invites(call):
    """Bulk invitation runs, newest first, with their counts."""
    return bulk_invites.list_jobs(call.tenant_id, call.query)


@api.route("/v1/portal/bulk-invites/{job_id}", "GET", PORTAL_ADMIN, response=bulk_invites.BulkJob)
def get_bulk_invite(call, job_id):
    """One bulk invitation run: status, counts, report location."""
    return bulk_invites.get_job(call.tenant_id, job_id)


# --- customer portal: the portal user's own routes -----------------------------------------------------------

@api.route("/v1/portal/register", "POST", Public(), body=portal_access.RegisterRequest, response=portal_access.Session)
def portal_register(call):
    """Register from an invitation link: choose a password (the link works once)."""
    return portal_access.register(call.body, call.ip, call.user_agent)


@api.route("/v1/portal/sign-up", "POST", Public(), body=portal_access.SignUpRequest,
           response=portal_access.Accepted, status=202)
def portal_sign_up(call):
    """Self sign-up: the same answer whether or not a registration email was sent."""
    return portal_access.sign_up(call.body, call.ip)


@api.route("/v1/portal/sign-in", "POST", Public(), body=portal_access.SignInRequest, response=portal_access.Session)
def portal_sign_in(call):
    """Portal sign-in with email and password."""
    return observability.sign_in_outcome("portal", lambda: portal_access.sign_in(call.body, call.ip, call.user_agent))


@api.route("/v1/portal/token/refresh", "POST", Public(), body=portal_access.RefreshRequest,
           response=portal_access.Session)
def portal_refresh(call):
    """Swap a refresh token for a new access token and refresh token (rotation)."""
    return portal_sessions.refresh(call.body.refresh_token, call.ip)


@api.route("/v1/portal/sign-out", "POST", PortalSignedIn(), status=204)
def portal_sign_out(call):
    """End this session (its refresh tokens stop working at once)."""
    sessions.sign_out(call.principal, call.ip)
    return Reply(None, 204)


@api.route("/v1/portal/sessions", "GET", PortalSignedIn(), response=sessions.SessionList)
def portal_sessions_list(call):
    """The caller's sessions (current: true marks this one; an access-link session sees only itself)."""
    return sessions.own(call.principal)


@api.route("/v1/portal/sessions/{session_id}", "DELETE", PortalSignedIn(), status=204, errors=("session_not_found",))
def portal_end_session(call, session_id):
    """End one of the caller's sessions (another device); its refresh tokens stop working."""
    sessions.end_own(call.principal, session_id, call.ip)
    return Reply(None, 204)


@api.route("/v1/portal/sign-out-everywhere", "POST", PortalSignedIn(), status=204)
def portal_sign_out_everywhere(call):
    """End every session of the caller, this one included, and every refresh token."""
    sessions.sign_out_everywhere(call.principal, call.ip)
    return Reply(None, 204)


@api.route("/v1/portal/users/{user_id}/sign-out", "POST", PORTAL_ADMIN, status=204)
def portal_user_sign_out(call, user_id):
    """End every session of a portal user."""
    portal_sessions.sign_out_user(call.tenant_id, user_id, call.actor, call.ip)
    return Reply(None, 204)


@api.route("/v1/portal/password-reset", "POST", Public(), body=portal_access.ResetRequest,
           response=portal_access.Accepted, status=202)
def portal_password_reset(call):
    """Email a reset link (the same answer whether or not the account exists)."""
    return portal_access.request_reset(call.body, call.ip)


@api.route("/v1/portal/password-reset/complete", "POST", Public(), body=portal_access.ResetComplete,
           response=portal_access.Accepted)
def portal_password_reset_complete(call):
    """Choose a new password with the emailed link; every session of the user ends."""
    return portal_access.complete_reset(call.body, call.ip, call.user_agent)


@api.route("/v1/portal/me", "GET", PortalSignedIn(), response=portal_access.Me)
def portal_me(call):
    """The signed-in portal user and every grant."""
    return portal_access.me(call.principal)


@api.route("/v1/portal/access", "POST", Public(), body=access_links.OpenLink, response=access_links.LinkSession)
def portal_access_link(call):
    """Open a customer's portal with the token of its secure access link (only while it has no portal users and
    the link has not expired). Browsers open the link itself, the hosted page /portal/access?token=…."""
    return access_links.open_link(call.body.token, call.ip, call.user_agent).session


@api.route("/v1/customers/{customer_id}/access-link", "POST", PORTAL_ADMIN, body=access_links.LinkOptions,
           response=access_links.AccessLink, status=201)
def rotate_access_link(call, customer_id):
    """Create or replace a customer's secure access link (shown once), working expires_in_days (default 90)."""
    return access_links.rotate(call.tenant_id, customer_id, call.body, call.actor, call.ip)


@api.route("/v1/customers/{customer_id}/access-link", "GET", PORTAL_ADMIN, response=access_links.AccessLinkState)
def get_access_link(call, customer_id):
    """Whether the customer has an access link, and until when it works (never the link itself)."""
    return access_links.get_state(call.tenant_id, customer_id)


@api.route("/v1/customers/{customer_id}/access-link/renew", "POST", PORTAL_ADMIN, body=access_links.LinkOptions,
           response=access_links.AccessLinkState, errors=("no_access_link",))
def renew_access_link(call, customer_id):
    """Make the current access link work expires_in_days (default 90) from now; the link does not change."""
    return access_links.renew(call.tenant_id, customer_id, call.body, call.actor, call.ip)


@api.route("/v1/portal/oidc/{provider}/start", "GET", Public(), status=302,
           query={"tenant_id": "the business to sign in to"})
def portal_oidc_start(call, provider):
    """Start sign-in with Google or Microsoft (redirects to the provider)."""
    return oidc.start(provider, call.query.get("tenant_id"))


@api.route("/v1/portal/oidc/{provider}/callback", "GET", Public(), response=portal_access.Session,
           query={"code": "from the provider", "state": "from the provider"})
def portal_oidc_callback(call, provider):
    """Where the provider sends the browser back: verifies the ID token and signs in. A browser gets a page that
    says how it went (as the hosted /sign-in does); a client that asks for JSON gets the session."""
    if pages.wants_html(app.current_request):
        return pages.oidc_result(app.current_request, provider, lambda: oidc.sign_in(provider, call.query, call.ip))
    return oidc.callback(provider, call.query, call.ip, call.user_agent)


@api.route("/v1/portal/settings", "GET", PORTAL_ADMIN, response=portal_access.Settings)
def get_portal_settings(call):
    """Self sign-up and third-party sign-in (invitation-only when both are off)."""
    return portal_access.get_settings(call.tenant_id)


@api.route("/v1/portal/settings", "PUT", PORTAL_ADMIN, body=portal_access.Settings, response=portal_access.Settings)
def put_portal_settings(call):
    """Change self sign-up and third-party sign-in."""
    return portal_access.put_settings(call.tenant_id, call.body, call.actor, call.ip)


@api.route("/v1/portal/users/{user_id}/audit", "GET", PORTAL_ADMIN, response=audit.AuditPage, query=PAGING)
def portal_user_audit(call, user_id):
    """What a portal user did and what was done to them, newest first."""
    return portal_access.user_audit(call.tenant_id, user_id, call.query)


# --- staff accounts: people, invitations, admin-set and temporary passwords, recovery -----------------------


ACCOUNTS = Admin("accounts:manage")


@api.route("/v1/people", "POST", ACCOUNTS, body=PersonCreate, response=PersonOut, status=201)
def create_person(call):
    """Add an employee (unique email) or technician (unique email or mobile); no account yet."""
    return staff_accounts.create_person(call.principal, call.body, call.ip)


@api.route("/v1/people", "GET", ACCOUNTS, response=PersonPage,
           query={**PAGING, "status": "no_account | invited | active | locked | disabled | password_expired",
                  "kind": "employee | technician"})
def list_people(call):
    """Employees and technicians with their account status, a page at a time."""
    return staff_accounts.list_people(call.tenant_id, call.query)


@api.route("/v1/people/{person_id}", "GET", ACCOUNTS, response=PersonOut)
def get_person(call, person_id):
    """One person and their account status."""
    return staff_accounts.get_person(call.tenant_id, person_id)


@api.route("/v1/people/{person_id}", "PATCH", ACCOUNTS, body=PersonPatch, response=PersonOut)
def patch_person(call, person_id):
    """Change a person's details, role or permissions; disable or enable their account."""
    return staff_accounts.patch_person(call.principal, person_id, call.body, call.ip)


@api.route("/v1/people/{person_id}/invite", "POST", ACCOUNTS, body=SendOptions, response=InviteOut, status=202)
def invite_person(call, person_id):
    """Send an account invitation by email, or SMS when there is only a mobile (replaces an earlier link)."""
    return staff_accounts.invite(call.principal, person_id, call.body, call.ip)


@api.route("/v1/people/{person_id}/account", "POST", ACCOUNTS, body=AccountCreate, response=PersonOut, status=201)
def create_person_account(call, person_id):
    """Create the account with a username and password; the first sign-in demands new ones."""
    return staff_accounts.create_account(call.principal, person_id, call.body, call.ip)


@api.route("/v1/people/{person_id}/password-reset-link", "POST", ACCOUNTS, body=SendOptions,
           response=ResetLinkOut, status=202)
def send_password_reset_link(call, person_id):
    """Send a password reset link by email or SMS (replaces an earlier link)."""
    return staff_accounts.send_reset_link(call.principal, person_id, call.body, call.ip)


@api.route("/v1/people/{person_id}/temporary-password", "POST", ACCOUNTS, body=TemporaryPasswordBody,
           response=TemporaryPasswordOut, status=201)
def set_temporary_password(call, person_id):
    """Set a temporary password valid 60 minutes (generated and shown once unless given)."""
    return staff_accounts.set_temporary_password(call.principal, person_id, call.body, call.ip)


@api.route("/v1/people/bulk-invite", "POST", ACCOUNTS, body=BulkRequest, response=BulkOut)
def bulk_invite_people(call):
    """Invite all or selected people without an account (type dry_run lists who would be contacted)."""
    return staff_accounts.bulk(call.principal, "invite", call.body, call.ip)


@api.route("/v1/people/bulk-password-reset", "POST", ACCOUNTS, body=BulkRequest, response=BulkOut)
def bulk_reset_people(call):
    """Send password reset links to all or selected people with an account (or a dry run)."""
    return staff_accounts.bulk(call.principal, "password_reset", call.body, call.ip)


@api.route("/v1/people/bulk-jobs/{job_id}", "GET", ACCOUNTS, response=BulkOut)
def get_people_bulk_job(call, job_id):
    """One bulk invitation or reset run with every person's outcome."""
    return staff_accounts.get_bulk_job(call.tenant_id, job_id)


@api.route("/v1/people/{person_id}/sessions", "GET", ACCOUNTS, response=sessions.SessionList)
def person_sessions(call, person_id):
    """A person's sessions: when and where each started, how, and when it was last used."""
    return staff_accounts.person_sessions(call.principal, person_id)


@api.route("/v1/people/{person_id}/sign-out", "POST", ACCOUNTS, status=204)
def sign_out_person(call, person_id):
    """End every session of a person."""
    staff_accounts.sign_out_person(call.principal, person_id, call.ip)
    return Reply(None, 204)


@api.route("/v1/people/{person_id}/audit", "GET", ACCOUNTS, response=audit.AuditPage, query=PAGING)
def person_audit(call, person_id):
    """What was done by or to this person, newest first."""
    return staff_accounts.person_audit(call.tenant_id, person_id, call.query)


@api.route("/v1/staff/accept-invite", "POST", Public(), body=AcceptInvite, response=AccessToken)
def staff_accept_invite(call):
    """Accept an invitation: choose a username (default: your email) and a password; signs you in."""
    return staff_accounts.accept_invite(call.body, call.ip, call.user_agent)


@api.route("/v1/staff/password-reset/start", "POST", Public(), body=ResetStart, response=ResetStarted, status=202)
def staff_reset_start(call):
    """Forgot password: name the account by username, email or mobile (same answer if it does not exist)."""
    return staff_recovery.start(call.body, call.ip)


@api.route("/v1/staff/password-reset/send-code", "POST", Public(), body=SendCode, response=CodeSent, status=202)
def staff_reset_send_code(call):
    """Send an 8-character, case-sensitive code (valid 10 minutes) by email or SMS."""
    return staff_recovery.send_code(call.body, call.ip)


@api.route("/v1/staff/password-reset/verify", "POST", Public(), body=VerifyCode, response=ResetToken)
def staff_reset_verify(call):
    """Check the code (5 tries per reset); the answer holds the token that sets the new password."""
    return staff_recovery.verify(call.body, call.ip)


@api.route("/v1/staff/password-reset/complete", "POST", Public(), body=CompleteReset, response=ResetDone)
def staff_reset_complete(call):
    """Choose the new password, with the reset token from verify or from an admin-sent reset link."""
    return staff_recovery.complete(call.body, call.ip)


# --- partner portals ---
# Tenant admins see and enable portals; partners call /v1/partner/* with a partner token. Partner(permission)
# re-checks the enablement and the permission on every call (partners.check_access), so handlers stay one line.


PARTNERS_ADMIN = Admin("partners:manage")


@api.route("/v1/partner-portals", "GET", PARTNERS_ADMIN, response=partners.PartnerPortalList)
def list_partner_portals(call):
    """Every partner portal with its permissions and whether this business enabled it."""
    return partners.list_for_tenant(call.tenant_id)


@api.route("/v1/partner-portals/{portal_id}", "GET", PARTNERS_ADMIN, response=partners.PartnerPortalOut)
def get_partner_portal(call, portal_id):
    """One partner portal: permissions (enabled or not) and the acceptance on record."""
    return partners.get_for_tenant(call.tenant_id, portal_id)


@api.route("/v1/partner-portals/{portal_id}/agreement", "GET", PARTNERS_ADMIN, response=partners.PartnerAgreement)
def get_partner_agreement(call, portal_id):
    """The current legal agreement of a portal: version and text."""
    return partners.agreement(portal_id)


@api.route("/v1/partner-portals/{portal_id}/enable", "POST", PARTNERS_ADMIN, body=partners.EnableBody,
           response=partners.PartnerPortalOut)
def enable_partner_portal(call, portal_id):
    """Enable a portal by accepting the current version of its agreement (who, when, IP are recorded)."""
    return partners.enable(call.tenant_id, portal_id, call.body, call.actor, call.ip, call.user_agent)


@api.route("/v1/partner-portals/{portal_id}/disable", "POST", PARTNERS_ADMIN, response=partners.PartnerPortalOut)
def disable_partner_portal(call, portal_id):
    """Disable a portal: the partner's next call for this business fails."""
    return partners.disable(call.tenant_id, portal_id, call.actor, call.ip)


@api.route("/v1/partner-portals/{portal_id}/users", "GET", PARTNERS_ADMIN, response=partners.PartnerUserPage,
           query={**PAGING, "include_inactive": "true to list inactive users too"})
def list_partner_users(call, portal_id):
    """The portal's users, active only unless include_inactive=true."""
    return partners.list_users(portal_id, call.query)


@api.route("/v1/partner-portals/{portal_id}/audit", "GET", PARTNERS_ADMIN, response=audit.AuditPage,
           query=PAGING)
def partner_portal_audit(call, portal_id):
    """Enables, disables, tokens and every partner call for this business, newest first."""
    return partners.portal_audit(call.tenant_id, portal_id, call.query)


@api.route("/v1/partner/token", "POST", Public(), body=partners.PartnerTokenRequest, response=partners.PartnerToken)
def partner_token(call):
    """Partner credentials + a business that enabled the portal → a 10-minute partner token."""
    return observability.sign_in_outcome("partner", lambda: partners.issue_token(call.body, call.ip))


@api.route("/v1/partner/permissions", "GET", Partner(), response=partners.PartnerScope)
def partner_permissions(call):
    """What this partner token may do for its business."""
    return partners.scope(call.principal)


@api.route("/v1/partner/customers", "GET", Partner("view_customer"), response=CustomerPage, query=PAGING)
def partner_customers(call):
    """The business's customers (permission View Customer)."""
    return directory.list_customers(call.tenant_id, call.query)


@api.route("/v1/partner/customers/{customer_id}", "GET", Partner("view_customer"), response=CustomerOut)
def partner_customer(call, customer_id):
    """One customer of the business (permission View Customer)."""
    return directory.customer_out(directory.get_customer(call.tenant_id, customer_id))


@api.route("/v1/partner/locations", "GET", Partner("view_location"), response=partners.PartnerLocationPage,
           query={**PAGING, "customer_id": "only this customer's locations"})
def partner_locations(call):
    """The business's service locations (permission View Location)."""
    return partners.list_locations(call.tenant_id, call.query)


# --- hosted pages (what email and SMS links open) ---


pages.page(app, "/register", pages.register)
pages.page(app, "/reset-password", pages.reset_password)
pages.page(app, "/sign-in", pages.sign_in)
pages.page(app, "/staff/accept-invite", pages.accept_invite)
pages.page(app, "/staff/reset-password", pages.staff_reset_password)
pages.page(app, "/staff/change-password", pages.staff_change_password)
pages.page(app, "/portal/access", pages.access, form=False)
pages.css(app)


api.add_method_not_allowed()


# --- events -------------------------------------------------------------------------------------------------

@app.on_sqs_message(queue=config.queue_name("bulk-invites"), batch_size=1)
def on_bulk_invite_upload(event):
    return bulk_invites.handle_batch(event.to_dict(), event.context)


@app.on_sns_message(topic=config.resource_name("ses-events"))
def on_ses_event(event):
    import json
    return {"marked": invitations.record_delivery_problem(json.loads(event.message))}


# At most two concurrent consumers (SQS's own scaling limit, not reserved concurrency, which would throttle
# receives into the DLQ): with PORTAL_SEND_RATE_PER_SECOND each, together under SES's sending rate.
@app.on_sqs_message(queue=config.queue_name("send"), batch_size=10, maximum_concurrency=2)
def on_send_message(event):
    from chalicelib.events import sender
    return sender.handle_batch(event.to_dict(), event.context)


@app.schedule(Rate(5, unit=Rate.MINUTES))
def run_schedule(event):
    from chalicelib.flows import expiry
    return expiry.run()
