"""/portal/access, a customer's secure access link (rule 6): what it opens, or why it no longer does."""
from datetime import datetime, timezone

from chalice import Response

from chalicelib.core.errors import Error
from chalicelib.web.pages.forms import LINK_PROBLEMS, try_again_in
from chalicelib.web.pages.links import LinkHelp, tenant_name, token_tenant
from chalicelib.web.pages.portal import PORTAL
from chalicelib.web.pages.render import url
from chalicelib.web.pages.oauth import continue_after_sign_in, continue_to_app
from chalicelib.web.pages.serve import Page

ACCESS = "pa_access"
ACCESS_COOKIE_SECONDS = 15 * 60
ACCESS_HELP = LinkHelp(PORTAL, ("Open the link again from the message {business} sent you, or ask for a new one.",),
                       business="the business that gave you the link",
                       by_code={"access_link_expired": ("Ask {business} for a new link.",),
                                "access_link_rotated": ("Ask {business} for the new link.",)})


def access(p: Page) -> Response:
    """A customer's secure access link. The first load checks the token (a wrong one counts as a guess) and moves
    it into an HttpOnly, SameSite=Strict cookie with a 303 to /portal/access; there the link session opens and the
    page says, in plain words, whose account with which business it opens.

    Strict, unlike the other pages' Lax: this token opens an account without a password for as long as the link
    works. Chromium withholds Strict cookies from every request of a navigation another site started (a webmail
    page), the 303's target included; such a request (Sec-Fetch-Site: cross-site, no cookie) gets a page that
    reloads itself (Refresh: 0), a navigation this site starts, which carries the cookie."""
    from chalicelib.flows.portal import access_links
    if "token" in p.query:
        token = p.query["token"]
        try:
            access_links.check(token, p.ip)
        except Error as err:
            return _access_problem(p, err, token_tenant(token))
        p.set_cookie(ACCESS, token, path=p.path, max_age=ACCESS_COOKIE_SECONDS, same_site="Strict")
        return p.redirect(p.self_url())
    token = p.state(ACCESS)
    if not token:
        if p.headers.get("sec-fetch-site") == "cross-site":
            return _access_hop(p)
        return p.link_problem("link_missing", tenant_name=None, section=PORTAL,
                              next_steps=["Open the secure access link the business sent you."])
    try:
        opened = access_links.open_link(token, p.ip, p.user_agent)
    except Error as err:
        p.clear_cookie(ACCESS)
        return _access_problem(p, err, token_tenant(token))
    customer = opened.customer
    # the link session becomes this browser's hosted session: the business's portal app signs the holder in
    back = continue_after_sign_in(p, opened.session.access_token)
    if back is not None:
        return back
    to_app = continue_to_app(customer.tenant_id, "portal")
    if to_app:
        p.set_cookie(ACCESS, "", path=p.path, max_age=0, same_site="Strict")  # opened: the token's work is done
        return p.redirect(to_app[0][1])
    business = tenant_name(customer.tenant_id) or "the business"
    expires = customer.access_link_expires_at
    until = datetime.fromtimestamp(expires, timezone.utc).strftime("%d %B %Y").lstrip("0") if expires else ""
    return p.message(200, tenant_name=business, section=PORTAL, heading="Secure access",
                     paragraphs=[f"You have secure access to {customer.name}'s account with {business}.",
                                 "Anyone who has this link can open this account without a password: keep it to "
                                 "yourself. For your safety this visit lasts "
                                 f"{access_links.SESSION_SECONDS // 60} minutes; open the link again to come back.",
                                 f"The link works until {until}. After that, ask {business} for a new one."])


def _access_hop(p: Page) -> Response:
    """One reload started by this site (see access): the Strict cookie is sent with it."""
    target = p.self_url()
    response = p.message(200, tenant_name=None, section=PORTAL, heading="Opening your secure access",
                         paragraphs=["One moment. If nothing happens, choose Continue."],
                         actions=[("Continue", target)])
    response.headers["Refresh"] = f"0; url={target}"
    return response


def _access_problem(p: Page, err: Error, tenant_id: str | None) -> Response:
    """A link that no longer opens the account alone (the customer has a portal sign-in now), a network that
    must wait, or a link that does not work (ACCESS_HELP)."""
    if err.code == "password_required":
        business = tenant_name(tenant_id)
        actions = [("Sign in", url("/sign-in", tenant_id=tenant_id)),
                   ("Can't sign in?", url("/reset-password", tenant_id=tenant_id))] if business else []
        return p.message(403, tenant_name=business, section=PORTAL, heading="Sign in with your email and password",
                         paragraphs=["This account now has its own portal sign-in, so the link alone no longer "
                                     "opens it.", f"Sign in with your email address and password, or ask "
                                     f"{business or ACCESS_HELP.business} to invite you."],
                         actions=actions, tone="problem")
    if err.code == "too_many_requests":
        return p.message(429, tenant_name=tenant_name(tenant_id), section=PORTAL, heading="Too many attempts",
                         paragraphs=[f"Too many attempts from your network. Try again in {try_again_in(err)}."],
                         tone="problem")
    return ACCESS_HELP.page(p, err.code if err.code in LINK_PROBLEMS else "token_invalid", tenant_id)
