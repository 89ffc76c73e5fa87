"""/reset-password, the customer portal's "Can't sign in?": ask for a link by email; with the link, a new
password, twice."""
from chalice import Response

from chalicelib.web.pages.forms import NEW_PASSWORD_REQUIRED, Errors
from chalicelib.web.pages.links import LinkHelp, open_link, submit, tenant
from chalicelib.web.pages.portal import PORTAL, ask_email
from chalicelib.web.pages.render import url
from chalicelib.web.pages.oauth import continue_after_sign_in, continue_to_app
from chalicelib.web.pages.serve import Page

RESET_HELP = LinkHelp(PORTAL, ("Ask for a new link: we will email it to you.",),
                      action=("Ask for a new link", "/reset-password"),
                      unknown=("Open the sign-in page of the business and choose \"Can't sign in?\" to get a new link.",))


def reset_password(p: Page) -> Response:
    from chalicelib.core.models import PortalUser
    from chalicelib.flows.portal import portal_access
    if "token" not in p.query and "tenant_id" in p.query:
        return _reset_request(p)
    link = open_link(p, "portal_reset", "pa_reset", RESET_HELP, subject=PortalUser, without=_reset_request,
                     max_age=portal_access.RESET_SECONDS)
    if isinstance(link, Response):
        return link
    tid = link.record.tenant_id
    errors = Errors()
    password = p.form.get("new_password", "")
    answer = submit(
        p, errors, required=NEW_PASSWORD_REQUIRED,
        flow=lambda: portal_access.complete_reset(portal_access.ResetComplete(
            token=link.token, new_password=password, new_password_confirm=p.form.get("new_password_confirm", "")),
            p.ip, p.user_agent),
        fields={"new_password": "new_password", "new_password_confirm": "new_password_confirm"},
        password=password, cookie="pa_reset", problem=lambda code: RESET_HELP.page(p, code, tid),
        done=lambda _: _changed(p, link, password))
    if answer:
        return answer
    return p.form_page("pages/portal/reset.html", tenant_name=link.tenant_name, section=PORTAL,
                       title="Choose a new password", button="Change password", errors=errors,
                       email=link.subject.email)


def _changed(p: Page, link, password: str) -> Response:
    """Signed in with the new password (the hosted session), then back to the waiting app, or the page that says
    so with **Continue to <app name>**."""
    from chalicelib.core.errors import Error
    from chalicelib.flows.portal import portal_access
    tid = link.record.tenant_id
    try:
        answer = portal_access.sign_in(portal_access.SignInRequest(tenant_id=tid, email=link.subject.email,
                                                                   password=password), p.ip, p.user_agent)
    except Error:
        answer = None
    back = continue_after_sign_in(p, answer["access_token"]) if answer else None
    if back is not None:
        return back
    return p.message(200, tenant_name=link.tenant_name, section=PORTAL, heading="Your password was changed",
                     paragraphs=["You are signed in with your new password." if answer else
                                 "Sign in with your new password.",
                                 "For your safety, every other device that was signed in to your account has been "
                                 "signed out."],
                     actions=(continue_to_app(tid, "portal") if answer else [])
                     or [("Sign in", url("/sign-in", tenant_id=tid))])


def _reset_request(p: Page) -> Response:
    """"Can't sign in?": an emailed reset link (the same answer whether or not the email has an account)."""
    from chalicelib.flows.portal import portal_access
    business = tenant(p.query.get("tenant_id"))
    if business is None:
        return p.link_problem("link_missing", tenant_name=None, section=PORTAL,
                              next_steps=["To reset your password, open the sign-in page of the business and "
                                          "choose \"Can't sign in?\"."])
    return ask_email(p, business, "pages/portal/reset-request.html", title="Can't sign in?", button="Email me a link",
                     flow=lambda email: portal_access.request_reset(portal_access.ResetRequest(
                         tenant_id=business.tenant_id, email=email), p.ip),
                     done=lambda _: p.message(
                         202, tenant_name=business.name, section=PORTAL, heading="Check your email",
                         paragraphs=["If this email address has an account here, we have sent it a link to choose a "
                                     "new password.",
                                     f"The link works once and for {portal_access.RESET_SECONDS // 60} minutes. "
                                     "Nothing arrived? Check your spam folder, or ask again."],
                         actions=[("Back to sign-in", url("/sign-in", tenant_id=business.tenant_id))]))
