"""A staff member's own session: sign-in, change password, who am I, sessions and sign-out."""
from chalice import Blueprint

from chalicelib.core import observability
from chalicelib.web.api import Api, PasswordChange, Public, Reply, Staff
from chalicelib.web.lazy import lazy

sessions = lazy("chalicelib.core.sessions")
staff_signin = lazy("chalicelib.flows.staff.staff_signin")

routes = Blueprint(__name__)
api = Api(routes)


@api.route("/v1/staff/sign-in", "POST", Public(), body=staff_signin.shape("StaffSignIn"),
           response=staff_signin.shape("AccessToken"))
def staff_sign_in(call):
    """Staff sign-in with username and password."""
    b = call.body
    return observability.sign_in_outcome("staff", lambda: staff_signin.sign_in(b.tenant_id, b.username, b.password,
                                                                               call.ip, call.user_agent))


@api.route("/v1/staff/change-password", "POST", PasswordChange(), body=staff_signin.shape("ChangePassword"),
           response=staff_signin.shape("AccessToken"))
def staff_change_password(call):
    """Change one's password (signed in, or with the change token of a forced change)."""
    b = call.body
    return staff_signin.change_password(call.principal, b.current_password, b.new_password, b.new_username,
                                        call.ip, call.user_agent)


@api.route("/v1/staff/me", "GET", Staff(), response=staff_signin.shape("StaffMe"))
def staff_me(call):
    """The signed-in staff member."""
    p = call.principal
    return {"person_id": p.subject, "tenant_id": p.tenant_id, "role": p.live.record.role,
            "permissions": sorted(p.permissions)}


@api.route("/v1/staff/sessions", "GET", Staff(), response=sessions.shape("SessionList"))
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
