"""Hosted pages (DESIGN "Hosted pages", issue 7): the server-rendered HTML forms that email and SMS links open.

    /register               choose a password from the invitation link (twice); without a link: self sign-up
    /reset-password         "Can't sign in?": ask for a link by email; with the link: a new password, twice
    /sign-in                portal sign-in, "Can't sign in?", "Continue with Google / Microsoft" when allowed
    /staff/accept-invite    username (the email by default, changeable) and a password, twice
    /staff/reset-password   identifier → email or SMS → the code → a new password (or an admin-sent link)
    /staff/change-password  the forced change (admin-chosen, temporary or year-old password)
    /staff/sign-in          staff sign-in (username, email or mobile; the second factor; its required setup)
    /portal/access          a customer's secure access link (rule 6): what it opens, or why it no longer does
    /                       what this site is, and the way to each page (a business ID form without one)

Each page calls the same flow function as the JSON API, in-process, so it refuses and accepts exactly what the
API does; it only translates the answer into words next to the field it concerns. Forms post back to their own
page and work without JavaScript; the one first-party script (pages.js, script-src 'self') only adds "Show
password" to password fields.

    render.py        the Jinja2 environment (templates/pages/, autoescaped) and the pages' addresses
    forms.py         a form's errors, and a flow's refusal in words
    serve.py         one request (Page: cookies, CSRF, answers), registration on the app, static files
    links.py         what link pages share: the business, the link token, the link-problem page, the POST half
    portal.py        /register, /sign-in, /, the way back from Google / Microsoft
    portal_reset.py  /reset-password
    access.py        /portal/access
    staff.py         /staff/accept-invite, /staff/change-password
    staff_reset.py   /staff/reset-password
    passkey_forms.py what every passkey form shares (options, the browser's answer, /assets/passkeys.js)
    oauth.py         the OpenID Provider's endpoints (/oauth2/*), and the way back to an app after any sign-in
    staff_signin.py  /staff/sign-in, its factor and setup steps (where staff apps send their people)

Security (see docs/hosted-pages.md):
- CSRF: a signed double-submit token (serve.py).
- The link token leaves the URL on first load, for an HttpOnly, path-scoped cookie (links.py).
- Every answer carries a CSP without 'unsafe-inline' (default-src 'none'), frame-ancestors 'none' and
  X-Frame-Options DENY, Referrer-Policy no-referrer and Cache-Control no-store.
- Every value a template shows is escaped (Jinja2 autoescape).
"""
from chalicelib.web.pages import oauth
from chalicelib.web.pages.access import access
from chalicelib.web.pages.portal import home, oidc_result, oidc_start, register, sign_in, wants_html
from chalicelib.web.pages.portal_reset import reset_password
from chalicelib.web.pages.serve import Page, page, static_files
from chalicelib.web.pages.staff import accept_invite, staff_change_password
from chalicelib.web.pages.staff_reset import staff_reset_password
from chalicelib.web.pages.staff_signin import factor as staff_sign_in_factor
from chalicelib.web.pages.staff_signin import setup as staff_sign_in_setup
from chalicelib.web.pages.staff_signin import sign_in as staff_sign_in

__all__ = ["Page", "oauth", "accept_invite", "access", "css", "home", "oidc_result", "oidc_start", "page", "register", "reset_password",
           "sign_in", "staff_change_password", "staff_reset_password", "staff_sign_in", "staff_sign_in_factor",
           "staff_sign_in_setup", "wants_html"]


def css(app) -> None:
    """The pages' static files and the site's front page: the one stylesheet, the one script, the icon at
    /favicon.ico, and `/`, which says what this site is. (Called once from app.py with the pages.)"""
    from chalicelib.web.pages import passkey_forms
    static_files(app)
    passkey_forms.register_asset(app)  # /assets/passkeys.js: the console's and the staff sign-in's passkey forms
    page(app, "/", home, form=False)
