"""The customer portal: invitations, bulk invitations and portal users (admins with portal:manage), and
the portal user's own routes (register, sign-up, sign-in, sessions, reset, access link, Google/Microsoft)."""
from chalice import Blueprint, Response

from chalicelib.core import observability
from chalicelib.web import pages
from chalicelib.web.api import PAGING, Admin, Api, Public, Reply
from chalicelib.web.api import PortalUser as PortalSignedIn
from chalicelib.web.lazy import lazy

access_links = lazy("chalicelib.flows.portal.access_links")
audit = lazy("chalicelib.core.audit")
bulk_review = lazy("chalicelib.flows.portal.bulk_review")
invitations = lazy("chalicelib.flows.portal.invitations")
oidc = lazy("chalicelib.flows.portal.oidc")
portal_access = lazy("chalicelib.flows.portal.portal_access")
portal_sessions = lazy("chalicelib.flows.portal.portal_sessions")
sessions = lazy("chalicelib.core.sessions")
user_search = lazy("chalicelib.flows.portal.user_search")

PORTAL_ADMIN = Admin("portal:manage")

routes = Blueprint(__name__)
api = Api(routes)


@api.route("/v1/portal/invitations", "POST", PORTAL_ADMIN, body=invitations.shape("InvitationCreate"),
           response=invitations.shape("PortalUserOut"), status=202)
def invite_to_portal(call):
    """Invite an email on a customer or location record (again = resend, replacing the previous link)."""
    return invitations.invite(call.tenant_id, call.body, call.actor, call.ip)


@api.route("/v1/portal/users", "GET", PORTAL_ADMIN, response=invitations.shape("PortalUserPage"),
           query={**PAGING, "status": "invited | active | disabled", "customer_id": "users with a grant on it",
                  "q": "users whose email starts with this (any case), in email order"})
def list_portal_users(call):
    """Portal users with status, grants, last sent and delivery problems; with q, searched by email."""
    if call.query.get("q", "").strip():
        return user_search.search(call.tenant_id, call.query["q"], call.query)
    return invitations.list_users(call.tenant_id, call.query)


@api.route("/v1/portal/users/{user_id}", "GET", PORTAL_ADMIN, response=invitations.shape("PortalUserOut"))
def get_portal_user(call, user_id):
    """One portal user."""
    return invitations.user_out(invitations.get_user(call.tenant_id, user_id))


@api.route("/v1/portal/users/{user_id}", "PATCH", PORTAL_ADMIN, body=invitations.shape("PortalUserPatch"),
           response=invitations.shape("PortalUserOut"),
           errors=("email_not_on_record", "access_not_allowed", "contact_not_on_customer", "edit_conflict"))
def patch_portal_user(call, user_id):
    """Change a portal user's grants, or disable / enable them (disabling ends their sessions for good; enabling
    someone who never registered makes them invited again, for a resend)."""
    return invitations.patch_user(call.tenant_id, user_id, call.body, call.actor, call.ip)


@api.route("/v1/portal/users/{user_id}/resend-invitation", "POST", PORTAL_ADMIN,
           response=invitations.shape("PortalUserOut"), status=202)
def resend_portal_invitation(call, user_id):
    """Send the invitation again; the previous link stops working."""
    return invitations.resend(call.tenant_id, user_id, call.actor, call.ip)


@api.route("/v1/portal/bulk-invites/upload-url", "POST", PORTAL_ADMIN, body=bulk_review.shape("UploadUrlRequest"),
           response=bulk_review.shape("UploadUrl"), status=201)
def bulk_invite_upload_url(call):
    """A pre-signed PUT for a CSV of emails, bound to the caller's business (review: true = decide, send later)."""
    return bulk_review.upload_url(call.tenant_id, call.body, call.actor)


@api.route("/v1/portal/bulk-invites", "GET", PORTAL_ADMIN, response=bulk_review.shape("BulkJobPage"), query=PAGING)
def list_bulk_invites(call):
    """Bulk invitation runs, newest first, with their counts."""
    return bulk_review.list_jobs(call.tenant_id, call.query)


@api.route("/v1/portal/bulk-invites/{job_id}", "GET", PORTAL_ADMIN, response=bulk_review.shape("BulkJob"))
def get_bulk_invite(call, job_id):
    """One bulk invitation run: status, counts, report location."""
    return bulk_review.get_job(call.tenant_id, job_id)


@api.route("/v1/portal/bulk-invites/{job_id}/rows", "GET", PORTAL_ADMIN, response=bulk_review.shape("BulkRowPage"),
           query={**PAGING, "outcome": "only rows with this outcome (will_invite, invited, skipped_not_on_record, "
                                       "skipped_already_invited, skipped_active, invalid, duplicate, ...)"},
           errors=("rows_not_ready",))
def list_bulk_invite_rows(call, job_id):
    """Every row of the file in file order: line, email, outcome and the access it got (or would get)."""
    return bulk_review.list_rows(call.tenant_id, job_id, call.query)


@api.route("/v1/portal/bulk-invites/{job_id}/send", "POST", PORTAL_ADMIN, response=bulk_review.shape("BulkJob"),
           status=202,
           errors=("job_expired", "job_not_ready", "not_reviewed"))
def send_bulk_invite(call, job_id):
    """Send a reviewed job (ready, up to 24 h after the upload): outcomes are decided again now; only the first
    call sends, any other gets the job as it is."""
    return bulk_review.send(call.tenant_id, job_id, call.actor, call.ip)


@api.route("/v1/portal/bulk-invites/{job_id}/report.csv", "GET", PORTAL_ADMIN, errors=("rows_not_ready",))
def bulk_invite_report_csv(call, job_id):
    """The report as CSV (line,email,outcome,access; rows in file order). Over 5 MB: 303 to a 5-minute S3 link."""
    report = bulk_review.report_csv(call.tenant_id, job_id)
    if report.body is None:
        return Response(body="", status_code=303, headers={"Location": report.url or "", "Cache-Control": "no-store"})
    return Response(body=report.body.decode("utf-8"), status_code=200,
                    headers={"Content-Type": "text/csv; charset=utf-8", "Cache-Control": "no-store",
                             "Content-Disposition": f'attachment; filename="{report.filename}"'})


# --- the portal user's own routes ---------------------------------------------------------------------------

@api.route("/v1/portal/register", "POST", Public(), body=portal_access.shape("RegisterRequest"),
           response=portal_access.shape("Session"))
def portal_register(call):
    """Register from an invitation link: choose a password (the link works once)."""
    return portal_access.register(call.body, call.ip, call.user_agent)


@api.route("/v1/portal/sign-up", "POST", Public(), body=portal_access.shape("SignUpRequest"),
           response=portal_access.shape("Accepted"), status=202)
def portal_sign_up(call):
    """Self sign-up: the same answer whether or not a registration email was sent."""
    return portal_access.sign_up(call.body, call.ip)


@api.route("/v1/portal/sign-in", "POST", Public(), body=portal_access.shape("SignInRequest"),
           response=portal_access.shape("Session"))
def portal_sign_in(call):
    """Portal sign-in with email and password."""
    return observability.sign_in_outcome("portal", lambda: portal_access.sign_in(call.body, call.ip, call.user_agent))


@api.route("/v1/portal/token/refresh", "POST", Public(), body=portal_access.shape("RefreshRequest"),
           response=portal_access.shape("Session"))
def portal_refresh(call):
    """Swap a refresh token for a new access token and refresh token (rotation)."""
    return portal_sessions.refresh(call.body.refresh_token, call.ip)


@api.route("/v1/portal/sign-out", "POST", PortalSignedIn(), status=204)
def portal_sign_out(call):
    """End this session (its refresh tokens stop working at once)."""
    sessions.sign_out(call.principal, call.ip)
    return Reply(None, 204)


@api.route("/v1/portal/sessions", "GET", PortalSignedIn(), response=sessions.shape("SessionList"))
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


@api.route("/v1/portal/password-reset", "POST", Public(), body=portal_access.shape("ResetRequest"),
           response=portal_access.shape("Accepted"), status=202)
def portal_password_reset(call):
    """Email a reset link (the same answer whether or not the account exists)."""
    return portal_access.request_reset(call.body, call.ip)


@api.route("/v1/portal/password-reset/complete", "POST", Public(), body=portal_access.shape("ResetComplete"),
           response=portal_access.shape("Accepted"))
def portal_password_reset_complete(call):
    """Choose a new password with the emailed link; every session of the user ends."""
    return portal_access.complete_reset(call.body, call.ip, call.user_agent)


@api.route("/v1/portal/me", "GET", PortalSignedIn(), response=portal_access.shape("Me"))
def portal_me(call):
    """The signed-in portal user and every grant."""
    return portal_access.me(call.principal)


@api.route("/v1/portal/access", "POST", Public(), body=access_links.shape("OpenLink"),
           response=access_links.shape("LinkSession"))
def portal_access_link(call):
    """Open a customer's portal with the token of its secure access link (only while it has no portal users and
    the link has not expired). Browsers open the link itself, the hosted page /portal/access?token=…."""
    return access_links.open_link(call.body.token, call.ip, call.user_agent).session


@api.route("/v1/customers/{customer_id}/access-link", "POST", PORTAL_ADMIN, body=access_links.shape("LinkOptions"),
           response=access_links.shape("AccessLink"), status=201, errors=("access_link_changed",))
def rotate_access_link(call, customer_id):
    """Create or replace a customer's secure access link (shown once), working expires_in_days (default 90)."""
    return access_links.rotate(call.tenant_id, customer_id, call.body, call.actor, call.ip)


@api.route("/v1/customers/{customer_id}/access-link", "GET", PORTAL_ADMIN,
           response=access_links.shape("AccessLinkState"))
def get_access_link(call, customer_id):
    """Whether the customer has an access link, and until when it works (never the link itself)."""
    return access_links.get_state(call.tenant_id, customer_id)


@api.route("/v1/customers/{customer_id}/access-link/renew", "POST", PORTAL_ADMIN,
           body=access_links.shape("LinkOptions"),
           response=access_links.shape("AccessLinkState"), errors=("no_access_link",))
def renew_access_link(call, customer_id):
    """Make the current access link work expires_in_days (default 90) from now; the link does not change."""
    return access_links.renew(call.tenant_id, customer_id, call.body, call.actor, call.ip)


@api.route("/v1/portal/oidc/{provider}/start", "GET", Public(), status=302,
           query={"tenant_id": "the business to sign in to"})
def portal_oidc_start(call, provider):
    """Start sign-in with Google or Microsoft (redirects to the provider). A browser that cannot be sent there gets
    a page that says why."""
    if pages.wants_html(routes.current_request):
        return pages.oidc_start(routes.current_request, provider, lambda: oidc.start(provider, call.query.get("tenant_id")))
    return oidc.start(provider, call.query.get("tenant_id"))


@api.route("/v1/portal/oidc/{provider}/callback", "GET", Public(), response=portal_access.shape("Session"),
           query={"code": "from the provider", "state": "from the provider"})
def portal_oidc_callback(call, provider):
    """Where the provider sends the browser back: verifies the ID token and signs in. A browser gets a page that
    says how it went (as the hosted /sign-in does); a client that asks for JSON gets the session."""
    if pages.wants_html(routes.current_request):
        return pages.oidc_result(routes.current_request, provider, lambda: oidc.sign_in(provider, call.query, call.ip))
    return oidc.callback(provider, call.query, call.ip, call.user_agent)


@api.route("/v1/portal/settings", "GET", PORTAL_ADMIN, response=portal_access.shape("Settings"))
def get_portal_settings(call):
    """Self sign-up and third-party sign-in (invitation-only when both are off)."""
    return portal_access.get_settings(call.tenant_id)


@api.route("/v1/portal/settings", "PUT", PORTAL_ADMIN, body=portal_access.shape("Settings"),
           response=portal_access.shape("Settings"),
           errors=("provider_not_configured",))
def put_portal_settings(call):
    """Change self sign-up and third-party sign-in (a provider not set up for this service cannot be switched
    on: 400 provider_not_configured)."""
    return portal_access.put_settings(call.tenant_id, call.body, call.actor, call.ip)


@api.route("/v1/portal/users/{user_id}/audit", "GET", PORTAL_ADMIN, response=audit.shape("AuditPage"), query=PAGING)
def portal_user_audit(call, user_id):
    """What a portal user did and what was done to them, newest first."""
    return portal_access.user_audit(call.tenant_id, user_id, call.query)
