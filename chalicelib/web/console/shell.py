"""What every console page shares: the console session in its cookie, the gate (signed in, then the section's
permission), the answers (a page in the console layout, a redirect after a POST, the 403 page) and the registry
the section modules add their pages to.

The session is a staff session (core/sessions.py) like the API's, started by the console's sign-in with a longer
lifetime (CONSOLE_SESSION_SECONDS) and ended after IDLE_SECONDS without a request. The cookie `pa_console` (HttpOnly,
SameSite=Strict, Path=/console, Secure over HTTPS) holds a signed token of type `console` naming the session:
the API refuses it as a bearer token (its type is not `staff`), and every console request checks the session
live, exactly as the guard does: signed out, disabled, a password change or "sign out everywhere" end it."""
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable

from chalice import Response

from chalicelib.core.errors import Error
from chalicelib.core.principal import Principal
from chalicelib.web.api import Policy, mark_view
from chalicelib.web.pages.render import base_path, url
from chalicelib.web.pages.serve import Page, serve

COOKIE = "pa_console"
CONSOLE_SESSION_SECONDS = 12 * 3600  # a working day at most, then sign in again
IDLE_SECONDS = 30 * 60
SECTION = "Admin console"

# The navigation, in order: (label, path, permission).
NAVIGATION = (
    ("Customers", "/console/customers", "directory:manage"),
    ("Customer Portal", "/console/portal/users", "portal:manage"),
    ("People", "/console/people/employees", "accounts:manage"),
    ("Partner Portals", "/console/partner-portals", "partners:manage"),
    ("Apps", "/console/apps", "apps:manage"),
    ("Activity", "/console/activity", "audit:read"),
)
SIGNED_OUT_WHY = {
    "idle": "You were signed out after 30 minutes without activity. Sign in again to continue.",
    "ended": "Your session has ended. Sign in again to continue.",
    "signed_out": "You are signed out.",
    "no_access": "This account cannot use the admin console. Ask your administrator for access to the sections "
                 "you need.",
}


class ConsoleSignIn(Policy):
    """A console page: a staff member signed in to the console (its cookie), holding `permission` when one is
    named. Refused in the browser's words: the sign-in page, or the 403 page."""
    token_kinds = ("staff",)

    def __init__(self, permission: str | None = None):
        self.permission = permission
        self.name = f"console:{permission}" if permission else "console"


@dataclass
class ConsolePage:
    path: str
    handler: Callable[..., Response]
    permission: str | None
    form: bool


PAGES: list[ConsolePage] = []


def console_page(path: str, permission: str | None, *, form: bool = True):
    """Adds a page to the console: `handler(c: Console, **path_params)`, shown only to a signed-in staff member
    holding `permission` (None: any staff member who may see some section)."""
    def add(handler):
        PAGES.append(ConsolePage(path, handler, permission, form))
        return handler
    return add


# --- the session ------------------------------------------------------------------------------------------------

def start(p: Page, answer: dict) -> bool:
    """Puts the session of a sign-in's answer (its access token names the session) into the console cookie; or,
    for a staff member without any console section, ends that session at once and says False."""
    from chalicelib.core import sessions
    from chalicelib.core.models import Session
    from chalicelib.core.security import keys
    claims = keys.verify(answer["access_token"])  # its permissions were read from the person just now
    if not any(permission in (claims.get("perms") or ()) for _, _, permission in NAVIGATION):
        sessions.end(Session.get(f"fam#{claims['sid']}"), actor=claims["sub"], reason="no_console_access", ip=p.ip)
        return False
    token = keys.sign({"sub": claims["sub"], "tid": claims["tid"], "typ": "console", "sid": claims["sid"]},
                      CONSOLE_SESSION_SECONDS)
    p.set_cookie(COOKIE, token, path="/console")
    return True


def end_cookie(p: Page) -> None:
    p.set_cookie(COOKIE, "", path="/console", max_age=0)


def signed_in(p: Page) -> tuple[Principal | None, str | None]:
    """The console session of this request, checked live; or None and why it is not there (SIGNED_OUT_WHY)."""
    from chalicelib.core import sessions
    from chalicelib.core.models import now
    from chalicelib.core.security import keys
    from chalicelib.flows.staff import people
    token = p.state(COOKIE)
    if not token:
        return None, None
    try:
        claims = keys.verify(token)
    except keys.InvalidToken:
        return None, "ended"
    if claims.get("typ") != "console" or not all(isinstance(claims.get(k), str) for k in ("sub", "tid", "sid")):
        return None, "ended"
    principal = Principal(kind="staff", tenant_id=claims["tid"], subject=claims["sub"], claims=claims)
    live = sessions.read(principal)
    if not live.tenant_active:
        return None, "ended"
    session = live.session
    if session is not None and not session.revoked_at \
            and now() - int(session.last_used_at or session.created_ms // 1000) > IDLE_SECONDS:
        sessions.end(session, actor=principal.subject, reason="idle", ip=p.ip)
        return None, "idle"
    try:
        sessions.check(principal, live)
    except Error:
        return None, "ended"
    principal.live = live
    principal.permissions = frozenset(people.effective_permissions(live.record))
    return principal, None


def sections_of(principal: Principal) -> list[tuple[str, str]]:
    """The navigation this staff member may use: (label, path)."""
    return [(label, path) for label, path, permission in NAVIGATION if permission in principal.permissions]


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path only (never another site: //evil.example, /\\evil...)."""
    if value and value.startswith("/console") and "//" not in value and "\\" not in value \
            and all(31 < ord(ch) < 127 for ch in value):
        return value
    return "/console"


# --- a request to a console page ------------------------------------------------------------------------------

@dataclass
class Console:
    """A signed-in request to a console page: the Page (form, query, CSRF, cookies) and who is asking."""
    page: Page
    principal: Principal
    tenant_name: str
    current: str  # the navigation label of this page's section
    notices: dict = field(default_factory=dict)

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id

    @property
    def person(self):
        return self.principal.live.record

    @property
    def form(self) -> dict:
        return self.page.form

    @property
    def files(self) -> dict:
        """A multipart form's file fields: name -> UploadedFile (filename, data)."""
        return self.page.files

    @property
    def query(self) -> dict:
        return self.page.query

    @property
    def ip(self) -> str | None:
        return self.page.ip

    def can(self, permission: str) -> bool:
        return permission in self.principal.permissions

    def posted(self) -> bool:
        """A POST whose CSRF token verifies (a forged or stale one is treated as not sent: see `stale`)."""
        return self.page.method == "POST" and self.page.csrf_ok()

    @property
    def stale(self) -> bool:
        """A POST that failed the CSRF check: the page shows itself again with a line saying nothing was done.
        (Not for a multipart body that could not be read at all: `form_problem` says why instead.)"""
        return self.page.method == "POST" and not self.page.form_problem and not self.page.csrf_ok()

    @property
    def form_problem(self) -> str | None:
        """Why a posted multipart form (a file upload) could not be read, in words; nothing was done."""
        return self.page.form_problem if self.page.method == "POST" else None

    def csrf(self, path: str | None = None) -> str:
        """The CSRF field's value for a form that posts to `path` (this page by default)."""
        return self.page.csrf_token_for(path or self.page.path)

    def html(self, template: str, status: int = 200, **values) -> Response:
        notice = self.notices.get(self.query.get("done", ""))
        return self.page.html(status, template, tenant_name=self.tenant_name, section=SECTION,
                              nav=sections_of(self.principal), current=self.current, me=self.person,
                              sign_out_csrf=self.csrf("/console/sign-out"), csrf=self.csrf(), notice=notice,
                              stale=self.stale, form_problem=self.form_problem, **values)

    def done(self, path: str, notice: str, **query) -> Response:
        """Post/redirect/get: back to `path`, whose page says `notice` (a key of its NOTICES) in words."""
        return self.page.redirect(url(path, done=notice, **query))


def forbidden(p: Page, principal: Principal, tenant_name: str) -> Response:
    """The same 403 page for a section not held and for a hidden link typed by hand."""
    return p.html(403, "console/forbidden.html", tenant_name=tenant_name, section=SECTION,
                  nav=sections_of(principal), current="", me=principal.live.record,
                  sign_out_csrf=p.csrf_token_for("/console/sign-out"), notice=None, stale=False)


def to_sign_in(p: Page, why: str | None) -> Response:
    """Not signed in: to the sign-in page, which brings the person back here (a GET's address) afterwards."""
    here = p.path + ("?" + urllib.parse.urlencode(p.query) if p.query and p.method == "GET" else "")
    if why:
        end_cookie(p)
    return p.redirect(url("/console/sign-in", next=here if here != "/console" else None, why=why))


def gate(entry: ConsolePage, params: dict) -> Callable[[Page], Response]:
    """The handler `serve` runs: signed in, holding the permission, then the page itself."""
    def run(p: Page) -> Response:
        from chalicelib.core import tenants
        principal, why = signed_in(p)
        if principal is None:
            return to_sign_in(p, why)
        business = tenants.active(principal.tenant_id)
        name = business.name if business is not None else principal.tenant_id
        label = next((label for label, _, permission in NAVIGATION if permission == entry.permission), "")
        if not sections_of(principal) or (entry.permission and entry.permission not in principal.permissions):
            return forbidden(p, principal, name)
        notices = getattr(entry.handler, "notices", {})
        return entry.handler(Console(p, principal, name, label, notices), **params)
    return run


def concrete(path: str, params: dict) -> str:
    for name, value in params.items():
        path = path.replace("{" + name + "}", urllib.parse.quote(value, safe=""))
    return path


def register(app, entries: list[ConsolePage]) -> None:
    """GET and (for a page with forms) POST, urlencoded or multipart (a file upload), on each page's path; each
    view marked with its ConsoleSignIn policy (tests/test_console.py walks them)."""
    if "multipart/form-data" not in app.api.binary_types:  # an uploaded file's bytes arrive as they were sent
        app.api.binary_types.append("multipart/form-data")
    for entry in entries:
        name = "console_" + (entry.path.strip("/").replace("/", "_").replace("-", "_").replace("{", "")
                             .replace("}", "") or "home")
        methods = [("GET", None), ("POST", ["application/x-www-form-urlencoded", "multipart/form-data"])]
        for method, content_types in methods[:2 if entry.form else 1]:
            def view(entry=entry, **params):
                return serve(app, concrete(entry.path, params), gate(entry, params), route=entry.path)
            view.__name__ = name + ("_form" if method == "POST" else "")
            view.__doc__ = (entry.handler.__doc__ or "").strip()
            mark_view(view, ConsoleSignIn(entry.permission), page=True)
            app.route(entry.path, methods=[method], name=view.__name__,
                      **({"content_types": content_types} if content_types else {}))(view)


__all__ = ["CONSOLE_SESSION_SECONDS", "Console", "IDLE_SECONDS", "PAGES", "SIGNED_OUT_WHY", "base_path",
           "console_page", "register", "safe_next", "signed_in", "start"]
