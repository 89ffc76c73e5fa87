"""The admin console (issue 16): what office admins use every day, as server-rendered pages served by the same app,
on the hosted pages' Jinja2 layout, CSRF, CSP and form macros (chalicelib/web/pages). Every page calls the same flow
function as the JSON API, in-process, with the signed-in staff member as the Principal.

    /console, /console/sign-in, /console/change-password, /console/sign-out    signin.py
    Customers          /console/customers...                 directory:manage
    Customer Portal    /console/portal/...                   portal:manage
    People             /console/people/...                   accounts:manage
    Partner Portals    /console/partner-portals...           partners:manage
    Apps               /console/apps...                      apps:manage
    Activity           /console/activity                     audit:read

    shell.py    the console session (cookie, idle end), the gate (signed in, then the section's permission, else the
                same 403 page), the answers (layout, post/redirect/get with a notice), the registry of pages
    signin.py   signing in and out; /console itself
    second_factor.py   the sign-in's second page (/console/sign-in/factor) and the required setup (/console/mfa-setup)
    passkeys.py        Sign in with a passkey (/console/sign-in/passkey), a person's own passkeys (/console/mfa-setup
                       signed in), the passkey forms' script /assets/passkeys.js
One module per section adds its pages with @console_page(path, permission); SECTIONS lists them."""
import importlib

from chalicelib.web.console import shell
from chalicelib.web.pages.serve import page

# The modules that add pages (importing one runs its @console_page decorators).
SECTIONS = ("signin", "customers", "customer_contacts", "customer_links", "portal_users", "portal_bulk", "portal_settings", "people", "people_actions", "partner_portals", "apps", "activity")


def register(app) -> None:
    from chalicelib.web.console import passkeys, second_factor, signin
    for name in SECTIONS:
        importlib.import_module(f"chalicelib.web.console.{name}")
    page(app, "/console/sign-in", signin.sign_in)
    page(app, "/console/sign-in/factor", second_factor.factor)
    page(app, "/console/sign-in/passkey", passkeys.sign_in)
    page(app, "/console/mfa-setup", second_factor.setup)
    page(app, "/console/change-password", signin.change_password)
    page(app, "/console/sign-out", signin.sign_out)
    shell.register(app, shell.PAGES)
