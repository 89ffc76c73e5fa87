"""The customer portal's pages: /register (an invitation link, or self sign-up without one), /sign-in (and the
way back from Google / Microsoft), and / (what this site is)."""
from typing import TYPE_CHECKING, Any, Callable

from chalice import Response

from chalicelib.core.errors import Error
from chalicelib.web.api import status_of
from chalicelib.web.pages.oauth import continue_after_sign_in, continue_to_app, waiting_app
from chalicelib.web.pages.forms import Errors
from chalicelib.web.pages.links import LinkHelp, open_link, submit, tenant, tenant_name, token_tenant
from chalicelib.web.pages.render import url
from chalicelib.web.pages.serve import Page

if TYPE_CHECKING:  # models load lazily here: a page that needs none never pays for PynamoDB
    from chalicelib.core.models import PortalUser

PORTAL = "Customer portal"
HOME = "Customer portal and staff accounts"
PROVIDERS = {"google": "Google", "microsoft": "Microsoft"}


# --- /register -------------------------------------------------------------------------------------------------

REGISTER_HELP = LinkHelp(PORTAL, ("Ask {business} to send you a new invitation.",),
                         business="the business that invited you", used_codes=("token_used", "invitation_replaced"),
                         used_steps=("Already created your account? Sign in with your email and password.",),
                         used_action=("Sign in", "/sign-in"))


def register(p: Page) -> Response:
    from chalicelib.core.models import PortalUser
    from chalicelib.flows.portal import portal_access
    if "token" not in p.query and "tenant_id" in p.query:
        return _sign_up(p)
    link = open_link(p, "portal_invitation", "pa_register", REGISTER_HELP, subject=PortalUser,
                     gone="invitation_revoked", without=_sign_up, expired_code="invitation_expired")
    if isinstance(link, Response):
        return link
    user, tid = link.subject, link.record.tenant_id
    errors = Errors()
    password = p.form.get("password", "")
    answer = submit(
        p, errors, required={"password": "Enter a password.", "password_confirm": "Type the password again."},
        flow=lambda: portal_access.register(portal_access.RegisterRequest(
            token=link.token, password=password, password_confirm=p.form.get("password_confirm", "")),
            p.ip, p.user_agent),
        fields={"password": "password", "password_confirm": "password_confirm"}, password=password,
        cookie="pa_register", problem=lambda code: REGISTER_HELP.page(p, code, tid),
        done=lambda answer: continue_after_sign_in(p, answer["access_token"]) or p.message(
            200, tenant_name=link.tenant_name, section=PORTAL, heading="Your account is ready",
            paragraphs=[f"You are signed in to the {link.tenant_name} customer portal as {user.email}. Next time, "
                        "sign in with this email address and the password you chose."],
            actions=continue_to_app(tid, "portal") or [("Sign in", url("/sign-in", tenant_id=tid))]))
    if answer:
        return answer
    return p.form_page("pages/portal/register.html", tenant_name=link.tenant_name, section=PORTAL,
                       title="Create your account", button="Create account", errors=errors, email=user.email)


def _sign_up(p: Page) -> Response:
    """/register without a link: self sign-up, when the business allows it (the same answer either way)."""
    from chalicelib.flows.portal import portal_access
    business = tenant(p.query.get("tenant_id"))
    if business is None or not business.self_signup:
        return p.link_problem("link_missing", tenant_name=business.name if business else None, section=PORTAL,
                              next_steps=["To create your account, open the Register link in your invitation email. "
                                          "No invitation? Ask the business to send you one."])
    return ask_email(p, business, "pages/portal/sign-up.html", title="Create your account", button="Send me a link",
                     flow=lambda email: portal_access.sign_up(portal_access.SignUpRequest(
                         tenant_id=business.tenant_id, email=email), p.ip),
                     done=lambda sent: p.message(202, tenant_name=business.name, section=PORTAL,
                                                 heading="Check your email",
                                                 paragraphs=[sent["message"],
                                                             "The link in it lets you choose a password."]))


def ask_email(p: Page, business, template: str, *, title: str, button: str, flow: Callable[[str], Any],
              done: Callable[[Any], Response]) -> Response:
    """A form that asks for the email address only (self sign-up, "Can't sign in?"): `flow(email)`, then
    `done(what it answered)`."""
    errors = Errors()
    email = p.form.get("email", "").strip()
    answer = submit(p, errors, required={"email": "Enter your email address."}, fields={"email": "email"},
                    flow=lambda: flow(email), done=done)
    if answer:
        return answer
    return p.form_page(template, tenant_name=business.name, section=PORTAL, title=title, button=button,
                       errors=errors, email=email, tenant_id=business.tenant_id)


# --- /sign-in --------------------------------------------------------------------------------------------------

def sign_in(p: Page) -> Response:
    from chalicelib.flows.portal import portal_access
    business = tenant(p.query.get("tenant_id"))
    if business is None:
        return which_business(p, "/sign-in", title="Sign in to a customer portal",
                              intro="This page signs you in to the customer portal of the business that serves "
                                    "you. Open the sign-in link from its emails or website, which names the "
                                    "business, or enter the business ID.",
                              button="Continue to sign-in", section=PORTAL)
    errors = Errors()
    email = (p.form.get("email") if p.method == "POST" else p.query.get("email")) or ""
    email = email.strip()[:254]
    answer = submit(p, errors, required={"email": "Enter your email address.", "password": "Enter your password."},
                    fields={"email": "email", "password": "password"},
                    flow=lambda: portal_access.sign_in(portal_access.SignInRequest(
                        tenant_id=business.tenant_id, email=email, password=p.form["password"]),
                        p.ip, p.user_agent),
                    done=lambda answer: continue_after_sign_in(p, answer["access_token"]) or p.message(
                        200, tenant_name=business.name, section=PORTAL, heading="You are signed in",
                        paragraphs=[f"Welcome back. You are signed in to the {business.name} customer portal as "
                                    f"{email.lower()}."], actions=continue_to_app(business.tenant_id, "portal")))
    if answer:
        return answer
    tid = business.tenant_id
    providers = [(f"Continue with {label}", url(f"/v1/portal/oidc/{name}/start", tenant_id=tid))
                 for name, label in PROVIDERS.items() if name in (business.third_party_signin or [])]
    app = waiting_app(p, tid, "portal")
    return p.form_page("pages/portal/sign-in.html", tenant_name=business.name, section=PORTAL,
                       title=f"Sign in to continue to {app}" if app else "Sign in",
                       button="Sign in", errors=errors, email=email, tenant_id=tid,
                       self_signup=business.self_signup, providers=providers)


def which_business(p: Page, path: str, *, title: str, intro: str, button: str, section: str) -> Response:
    """A page reached without naming its business: a GET form that asks for the business ID (it reloads `path`
    with ?tenant_id=), and where to find it. An unknown ID is said next to the field (400)."""
    given = p.query.get("tenant_id", "").strip()
    errors = Errors()
    if "tenant_id" in p.query:
        errors.add("tenant_id", "We do not know this business ID. Check it, or open the link from the "
                                "business's message." if given else "Enter the business ID.")
    return p.html(400 if errors else 200, "pages/lookup.html", tenant_name=None, section=section, title=title,
                  intro=intro, errors=errors, action=url(path), button=button, value=given[:64])


# --- / : what this site is ----------------------------------------------------------------------------------------

def home(p: Page) -> Response:
    """What this site is and the way to each page: with ?tenant_id= the business's customer sign-in, its staff
    sign-in and its staff's password pages; without, a business ID form."""
    business = tenant(p.query.get("tenant_id"))
    if business is None:
        return which_business(p, "/", title="Customer portal and staff accounts",
                              intro="This secure site belongs to a field-service business: its customers sign in "
                                    "to its customer portal here, and its staff set up and recover their "
                                    "accounts. Open a link from the business's emails or website, or enter its "
                                    "business ID.", button="Continue", section=HOME)
    tid = business.tenant_id
    actions = [("Sign in to the customer portal", url("/sign-in", tenant_id=tid))]
    if business.self_signup:
        actions.append(("New customer? Create an account", url("/register", tenant_id=tid)))
    actions += [("Staff sign-in", url("/staff/sign-in", tenant_id=tid)),
                ("Staff: forgot your password?", url("/staff/reset-password", tenant_id=tid)),
                ("Staff: change your password", url("/staff/change-password", tenant_id=tid))]
    return p.message(200, tenant_name=business.name, section=HOME,
                     heading=f"Welcome to {business.name}",
                     paragraphs=[f"Customers of {business.name} sign in here to its customer portal.",
                                 f"Staff of {business.name} sign in here or in their app, and can reset or change "
                                 "their password."], actions=actions)


# --- back from Google / Microsoft ------------------------------------------------------------------------------------

def wants_html(request) -> bool:
    """A browser (its Accept names text/html before any JSON), not an API client."""
    accept = (request.headers.get("accept") or "").lower()
    return "text/html" in accept and not accept.lstrip().startswith("application/json")


def oidc_start(request, provider: str, start: Callable[[], Response]) -> Response:
    """"Continue with Google / Microsoft" in a browser: off to the provider, or, when it cannot start (the business
    does not offer it, or it is not set up), a page that says so and the way back, never a JSON body."""
    p = Page(request, f"/v1/portal/oidc/{provider}/start")
    try:
        return start()
    except Error as err:
        tenant_id = p.query.get("tenant_id")
        business = tenant_name(tenant_id) if tenant_id else None
        name = PROVIDERS.get(provider, "this provider")
        return p.message(status_of(err), tenant_name=business, section=PORTAL,
                         heading=f"Sign-in with {name} is not available", tone="problem",
                         paragraphs=[err.message, "Sign in with your email address and password instead."],
                         actions=[("Back to sign-in", url("/sign-in", tenant_id=tenant_id))] if business else [])


def oidc_result(request, provider: str, finish: Callable[[], "PortalUser"]) -> Response:
    """The end of "Continue with Google / Microsoft" in a browser: the same page as a password sign-in's, or
    what went wrong and the way back to the business's sign-in page, never a JSON body."""
    p = Page(request, f"/v1/portal/oidc/{provider}/callback")
    name = PROVIDERS.get(provider, provider)
    try:
        user = finish()
    except Error as err:
        tenant_id = token_tenant(p.query.get("state"))  # the state names the business even once it is spent
        business = tenant_name(tenant_id)
        actions = [("Back to sign-in", url("/sign-in", tenant_id=tenant_id))] if tenant_id and business else []
        return p.message(status_of(err), tenant_name=business, section=PORTAL,
                         heading=f"We could not sign you in with {name}",
                         paragraphs=[err.message, "Try again from the sign-in page of the business, or sign in "
                                                  "with your email address and password."],
                         actions=actions, tone="problem")
    from chalicelib.flows.portal import portal_sessions
    back = continue_after_sign_in(p, portal_sessions.start(user, provider, p.ip, p.user_agent)["access_token"])
    if back is not None:
        return back
    business = tenant_name(user.tenant_id) or ""
    return p.message(200, tenant_name=business, section=PORTAL, heading="You are signed in",
                     paragraphs=[f"Welcome. You are signed in to the {business} customer portal with {name} as "
                                 f"{user.email}."], actions=continue_to_app(user.tenant_id, "portal"))
