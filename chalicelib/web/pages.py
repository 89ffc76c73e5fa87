"""Hosted pages (DESIGN "Hosted pages", issue 7): the server-rendered HTML forms that email and SMS links open.

    /register               choose a password from the invitation link (twice); without a link: self sign-up
    /reset-password         "Can't sign in?": ask for a link by email; with the link: a new password, twice
    /sign-in                portal sign-in, "Can't sign in?", "Continue with Google / Microsoft" when allowed
    /staff/accept-invite    username (the email by default, changeable) and a password, twice
    /staff/reset-password   identifier → email or SMS → the code → a new password (or an admin-sent link)
    /staff/change-password  the forced change (admin-chosen, temporary or year-old password)
    /portal/access          a customer's secure access link (rule 6): what it opens, or why it no longer does
    /                       what this site is, and the way to each page (a business ID form without one)

Each page calls the same flow function as the JSON API, in-process, so it refuses and accepts exactly what the
API does; it only translates the answer into words next to the field it concerns. Templates are files under
templates/pages/, filled with string.Template through `render`, which escapes every value that is not already
`Html`. Forms post back to their own page and work without JavaScript; the one first-party script
(pages.js, script-src 'self') only adds "Show password" to password fields.

Security (see docs/hosted-pages.md):
- CSRF: a signed double-submit token. The cookie `pa_csrf` (`__Host-pa_csrf` over HTTPS; HttpOnly,
  SameSite=Strict) holds a random 256-bit value; every form carries HMAC-SHA256(k, value | page path), where k is
  derived from the JWT signing-key ring (keys.derived_secrets("pages-csrf")). A POST is acted on only when the
  field verifies against the cookie and the browser does not say it is cross-site (Sec-Fetch-Site, Origin).
- The link token leaves the URL on first load: GET ?token= is checked without spending it (single_use.look_up)
  and answered 303 to the same path without the query, the token now in an HttpOnly, path-scoped cookie.
- Every answer carries a CSP without 'unsafe-inline' (default-src 'none'), frame-ancestors 'none' and
  X-Frame-Options DENY, Referrer-Policy no-referrer and Cache-Control no-store.
"""
import base64
import hashlib
import hmac
import html
import secrets
import urllib.parse
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Callable, Sequence

from chalice import Response
from pydantic import ValidationError
from pynamodb.exceptions import DoesNotExist

from chalicelib.core import config
from chalicelib.core.errors import Error, Unauthenticated
from chalicelib.core.security.passwords import POLICY_TEXT, RULE_MESSAGES
from chalicelib.web.api import Public, mark_view, status_of

if TYPE_CHECKING:  # models load lazily here: a page that needs none never pays for PynamoDB
    from chalicelib.core.models import PortalUser

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "pages"
CSS_PATH = "/assets/pages.css"
JS_PATH = "/assets/pages.js"
ICON_PATH = "/favicon.ico"  # an SVG (image/svg+xml): what browsers ask for, and what the layout links
MAX_FORM_BYTES = 16 * 1024
CSRF_PURPOSE = "pages-csrf"
CSRF_FIELD = "csrf_token"
PROVIDERS = {"google": "Google", "microsoft": "Microsoft"}

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}

# Link problems (single_use.look_up and the flows) become an explanation page, never a form error.
LINK_PROBLEMS = {
    "token_invalid": ("This link does not work",
                      "It may have been cut short when it was copied. Open it again from the email or text message."),
    "token_used": ("This link was already used", "Each link works once, to keep your account safe."),
    "token_expired": ("This link has expired", "Links stop working after a while, to keep your account safe."),
    "invitation_expired": ("This invitation has expired",
                           "Invitations stop working after a while, to keep your account safe."),
    "invitation_replaced": ("A newer link was sent",
                            "This link was replaced by a newer one: use the link in the most recent message."),
    "link_replaced": ("A newer link was sent",
                      "This link was replaced by a newer one: use the link in the most recent message."),
    "invitation_revoked": ("This invitation was withdrawn", "The business withdrew this invitation."),
    "flow_expired": ("This reset has timed out", "A password reset has to be finished within 30 minutes."),
    "flow_dead": ("Too many wrong codes", "After five wrong codes a reset stops working, to keep your account safe."),
    "change_expired": ("The time to change your password ran out",
                       "You have 10 minutes after signing in to choose a new password."),
    "link_missing": ("Open the link from your message",
                     "This page works from the link in the email or text message you received."),
    "access_link_expired": ("This link has expired",
                            "Secure access links work for a limited time, to keep the account safe."),
    "access_link_rotated": ("A newer link was made", "The business replaced this link with a new one."),
}
LINK_STATUS = {"token_invalid": 400, "link_missing": 400}


# --- HTML: templates and escaping ---------------------------------------------------------------------------

class Html(str):
    """Text that is already HTML (rendered from a template or built from escaped parts): not escaped again."""


def esc(value) -> Html:
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def join(parts) -> Html:
    return Html("\n".join(esc(p) for p in parts if p))


@lru_cache(maxsize=None)
def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text())


def render(template: str, /, **values) -> Html:
    return Html(_template(template).substitute({k: esc(v) for k, v in values.items()}))


@lru_cache(maxsize=None)
def asset(name: str) -> str:
    """A static file of the pages (stylesheet, script, icon), read once."""
    return (TEMPLATES / name).read_text()


def stylesheet() -> str:
    return asset("pages.css")


def _base_path() -> str:
    """The path part of the public base URL ("" on a custom domain, "/api" on a bare API Gateway stage)."""
    return urllib.parse.urlparse(config.public_base_url()).path.rstrip("/")


def _secure() -> bool:
    return config.public_base_url().startswith("https://")


def url(path: str, **query) -> str:
    query = {k: v for k, v in query.items() if v is not None}
    return _base_path() + path + ("?" + urllib.parse.urlencode(query) if query else "")


# --- form pieces ---------------------------------------------------------------------------------------------

def field(name: str, label: str, *, value: str = "", type: str = "text", autocomplete: str | None = None,
          hint: str | None = None, error: str | None = None, describedby: tuple = (), required: bool = True,
          focus: bool = False, extra: dict | None = None) -> Html:
    """One labelled input. Its hint, the password rules and its error are tied to it with aria-describedby."""
    ids = list(describedby)
    hint_html = Html("")
    if hint:
        hint_html = Html(f'\n<p class="hint" id="{esc(name)}-hint">{esc(hint)}</p>')
        ids.append(f"{name}-hint")
    error_html = Html("")
    attrs = {"autocomplete": autocomplete, **(extra or {})}
    if error:
        error_html = Html(f'\n<p class="field-error" id="{esc(name)}-error">{esc(error)}</p>')
        ids.append(f"{name}-error")
        attrs["aria-invalid"] = "true"
    if ids:
        attrs["aria-describedby"] = " ".join(ids)
    flags = [" required"] if required else []
    if focus:
        flags.append(" autofocus")
    reveal = Html("")
    if type == "password":  # "Show password": hidden until pages.js makes it work (a normal field without it)
        attrs.setdefault("spellcheck", "false")
        attrs.setdefault("autocapitalize", "none")
        reveal = Html(f'\n<button type="button" class="reveal" aria-controls="{esc(name)}" aria-pressed="false" '
                      'hidden>Show password</button>')
    attr_html = "".join(f' {k}="{esc(v)}"' for k, v in attrs.items() if v) + "".join(flags)
    return render("field.html", id=name, name=name, type=type, label=label, hint=hint_html,
                  value="" if type == "password" else value, attrs=Html(attr_html), error=error_html,
                  state=" invalid" if error else "", reveal=reveal)


def account_username(value: str | None, type: str = "text") -> Html:
    """The account a new password is for, in a hidden field with autocomplete="username", so that a password
    manager stores the new password with the right username (Chromium: "password forms should have (optionally
    hidden) username fields"). No name: it is never sent, the page knows whose account it is."""
    if not value:
        return Html("")
    return Html(f'<input type="{esc(type)}" id="account-username" autocomplete="username" value="{esc(value)}" '
                'readonly hidden>')


def choice(name: str, legend: str, options: list[tuple[str, str]], *, value: str = "", hint: str | None = None,
           error: str | None = None) -> Html:
    """A group of radio buttons in a fieldset whose legend is the question."""
    ids = []
    hint_html = Html("")
    if hint:
        hint_html = Html(f'\n<p class="hint" id="{esc(name)}-hint">{esc(hint)}</p>')
        ids.append(f"{name}-hint")
    error_html = Html("")
    if error:
        error_html = Html(f'\n<p class="field-error" id="{esc(name)}-error">{esc(error)}</p>')
        ids.append(f"{name}-error")
    rows = []
    for i, (option_value, label) in enumerate(options):
        oid = f"{name}-{option_value}"
        checked = " checked" if option_value == value else ""
        required = " required" if i == 0 else ""
        rows.append(f'<div class="option"><input type="radio" id="{esc(oid)}" name="{esc(name)}" '
                    f'value="{esc(option_value)}"{checked}{required}>'
                    f'<label for="{esc(oid)}">{esc(label)}</label></div>')
    described = Html(f' aria-describedby="{" ".join(ids)}"') if ids else Html("")
    return render("choice.html", legend=legend, hint=hint_html, options=Html("\n".join(rows)), error=error_html,
                  state=" invalid" if error else "", described=described)


def rules() -> Html:
    return render("rules.html", items=join(Html(f"<li>{esc(rule)}</li>") for rule in POLICY_TEXT))


def password_fields(errors: "Errors", name: str = "password", label: str = "New password",
                    confirm_label: str = "Type the new password again") -> Html:
    """The password rules, stated before the user types, then the password twice."""
    confirm = f"{name}_confirm"
    return join([
        rules(),
        field(name, label, type="password", autocomplete="new-password", error=errors.get(name),
              describedby=("password-rules",), focus=errors.first == name),
        field(confirm, confirm_label, type="password", autocomplete="new-password", error=errors.get(confirm),
              focus=errors.first == confirm),
    ])


class Errors:
    """What went wrong with a form: messages per field (shown next to it) and for the form as a whole; all are
    listed in the aria-live summary at the top, each linked to its field."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.general: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def add(self, name: str | None, message: str) -> "Errors":
        if name:
            self.fields.setdefault(name, message)
        else:
            self.general.append(message)
        return self

    def get(self, name: str) -> str | None:
        return self.fields.get(name)

    @property
    def first(self) -> str | None:
        return next(iter(self.fields), None)

    def summary(self) -> Html:
        if not self:
            return render("errors.html", body=Html(""))
        items = [Html(f"<li>{esc(m)}</li>") for m in self.general]
        items += [Html(f'<li><a href="#{esc(name)}">{esc(m)}</a></li>') for name, m in self.fields.items()]
        body = Html(f"<h2>There is a problem</h2>\n<ul>\n{join(items)}\n</ul>")
        return render("errors.html", body=body)


def require(form: dict, errors: Errors, messages: dict[str, str]) -> None:
    for name, message in messages.items():
        if not form.get(name, "").strip():
            errors.add(name, message)


# --- one request ---------------------------------------------------------------------------------------------

def _parse_cookies(header: str | None) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in cookies:
            cookies[name] = value.strip().strip('"')
    return cookies


def _parse_form(raw: bytes | None) -> dict[str, str]:
    raw = raw or b""
    if len(raw) > MAX_FORM_BYTES:
        return {}
    try:
        parsed = urllib.parse.parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=30)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in parsed.items()}


def cookie_name(base: str) -> str:
    """Over HTTPS the browser-enforced prefixes: __Host- (Secure, Path=/, no Domain) or __Secure-."""
    if not _secure():
        return base
    return f"__Host-{base}" if base == "pa_csrf" else f"__Secure-{base}"


def _csrf_mac(key: bytes, value: str, path: str) -> str:
    digest = hmac.new(key, f"csrf-v1|{value}|{path}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _csrf_keys() -> list[bytes]:
    from chalicelib.core.security import keys
    return keys.derived_secrets(CSRF_PURPOSE)


class Page:
    """A request to one page, as the page sees it: method, query, form, cookies; and the cookies to set."""

    def __init__(self, request, path: str):
        self.path = path
        self.method = request.method.upper()
        self.query = {k: v for k, v in (request.query_params or {}).items()}
        self.headers = request.headers
        identity = (request.context or {}).get("identity") or {}
        self.ip = identity.get("sourceIp")
        self.user_agent = request.headers.get("user-agent")
        self.cookies = _parse_cookies(request.headers.get("cookie"))
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        self.form = _parse_form(request.raw_body) \
            if self.method == "POST" and ctype == "application/x-www-form-urlencoded" else {}
        self.set_cookies: list[str] = []
        value = self.cookies.get(cookie_name("pa_csrf"), "")
        self._csrf_from_cookie = len(value) == 43 and all(c.isalnum() or c in "-_" for c in value)
        self.csrf_value = value if self._csrf_from_cookie else secrets.token_urlsafe(32)

    # cookies
    def set_cookie(self, base: str, value: str, *, path: str | None = None, max_age: int | None = None,
                   same_site: str = "Strict") -> None:
        parts = [f"{cookie_name(base)}={value}", f"Path={_base_path() + path if path else '/'}", "HttpOnly",
                 f"SameSite={same_site}"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if _secure():
            parts.append("Secure")
        self.set_cookies.append("; ".join(parts))

    def clear_cookie(self, base: str) -> None:
        self.set_cookie(base, "", path=self.path, max_age=0, same_site="Lax")

    def state(self, base: str) -> str | None:
        return self.cookies.get(cookie_name(base)) or None

    def keep(self, base: str, value: str, max_age: int) -> None:
        """Page state that must not be in the URL (a link token, a reset flow): an HttpOnly cookie scoped to this
        page's path. SameSite=Lax, not Strict: the first load comes from a link in a webmail page, and Chromium
        withholds Strict cookies from every request of a navigation another site started, the 303 included."""
        self.set_cookie(base, value, path=self.path, max_age=max_age, same_site="Lax")

    # CSRF
    def csrf_token(self) -> str:
        if not self._csrf_from_cookie and not any(c.startswith(cookie_name("pa_csrf") + "=")
                                                  for c in self.set_cookies):
            self.set_cookie("pa_csrf", self.csrf_value)
        return _csrf_mac(_csrf_keys()[0], self.csrf_value, self.path)

    def csrf_ok(self) -> bool:
        if self.headers.get("sec-fetch-site", "same-origin") in ("cross-site", "same-site"):
            return False
        origin = self.headers.get("origin")
        if origin and origin != "null":
            if urllib.parse.urlparse(origin).netloc.lower() != (self.headers.get("host") or "").lower():
                return False
        sent = self.form.get(CSRF_FIELD, "")
        if not self._csrf_from_cookie or not sent:
            return False
        return any(hmac.compare_digest(sent, _csrf_mac(key, self.csrf_value, self.path)) for key in _csrf_keys())

    # answers
    def self_url(self, **query) -> str:
        return url(self.path, **query)

    def html(self, status: int, title: str, content: Html, tenant_name: str | None, section: str) -> Response:
        body = render("layout.html", title=title, tenant_name=tenant_name or "Account", section=section,
                      content=content, css=url(CSS_PATH), js=url(JS_PATH), icon=url(ICON_PATH),
                      footer=f"This secure page belongs to {tenant_name or 'this service'}. "
                             "Never share the links or codes you receive.")
        return self._response(status, body, {"Content-Type": "text/html; charset=utf-8"})

    def redirect(self, location: str) -> Response:
        return self._response(303, "", {"Location": location})

    def _response(self, status: int, body: str, headers: dict) -> Response:
        headers = {**SECURITY_HEADERS, **headers}
        if _secure():
            headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        if self.set_cookies:
            headers["Set-Cookie"] = list(self.set_cookies)
        return Response(body=body, status_code=status, headers=headers)

    # building blocks of every page
    def form_page(self, status: int, *, tenant_name: str | None, section: str, title: str, intro: Html | str,
                  fields: Html, button: str, errors: Errors, step: str = "", after: Html | str = "",
                  action: str | None = None) -> Response:
        intro_html = intro if isinstance(intro, Html) else Html(f"<p>{esc(intro)}</p>") if intro else Html("")
        content = render("form.html", heading=title, intro=intro_html, errors=errors.summary(),
                         action=action or self.self_url(**{k: v for k, v in self.query.items() if k != "token"}),
                         csrf=self.csrf_token(), step=step, fields=fields,
                         button=button, after=after)
        return self.html(status if not errors else 400, title if not errors else f"Error: {title}", content,
                         tenant_name, section)

    def message(self, status: int, *, tenant_name: str | None, section: str, heading: str, paragraphs: list,
                actions: Sequence[tuple[str, str]] = (), tone: str = "ok") -> Response:
        body = join(Html(f"<p>{esc(p)}</p>") for p in paragraphs)
        action_html = Html("")
        if actions:
            links = [Html(f'<a class="button{" secondary" if i else ""}" href="{esc(href)}">{esc(text)}</a>')
                     for i, (text, href) in enumerate(actions)]
            action_html = Html(f'<div class="actions">\n{join(links)}\n</div>')
        content = render("message.html", tone=tone, heading=heading, body=body, actions=action_html)
        return self.html(status, heading, content, tenant_name, section)

    def link_problem(self, code: str, *, tenant_name: str | None, section: str, next_steps: list,
                     actions: Sequence[tuple[str, str]] = ()) -> Response:
        heading, why = LINK_PROBLEMS.get(code, LINK_PROBLEMS["token_invalid"])
        return self.message(LINK_STATUS.get(code, 410), tenant_name=tenant_name, section=section, heading=heading,
                            paragraphs=[why, *next_steps], actions=actions, tone="problem")

    def csrf_failed(self, errors: Errors) -> Errors:
        return errors.add(None, "This form was open too long or in another tab, so it was not sent. "
                                "Check what you entered and send it again.")


def _tenant(tenant_id: str | None):
    from chalicelib.core.models import Tenant
    if not tenant_id or len(tenant_id) > 64:
        return None
    try:
        tenant = Tenant.get(tenant_id)
    except DoesNotExist:
        return None
    return tenant if tenant.status == "active" else None


def _tenant_name(tenant_id: str | None) -> str | None:
    tenant = _tenant(tenant_id)
    return tenant.name if tenant else None


def _token_tenant(token: str | None) -> str | None:
    """The business a link belongs to even when the link no longer works (for its name and the next step)."""
    from chalicelib.core.models import Token
    from chalicelib.core.security.tokens import token_hash
    if not token or len(token) > 100:
        return None
    try:
        return Token.get(token_hash(token)).tenant_id
    except DoesNotExist:
        return None


def _explain(exc: Exception, errors: Errors, fields: dict[str, str], password: str = "") -> str | None:
    """Puts a flow's refusal into `errors`, in words, next to the field it is about. Returns the code when the
    refusal is about the link itself (the caller shows the explanation page instead of the form)."""
    if isinstance(exc, ValidationError):
        for err in exc.errors(include_url=False, include_input=False):
            name = fields.get(str(err["loc"][0]) if err["loc"] else "", None)
            if err["type"] in ("missing", "string_too_short"):
                errors.add(name, "This cannot be empty.")
            elif "email" in str(err["loc"]):
                errors.add(name, "Enter an email address, like name@example.com.")
            else:
                errors.add(name, "This is too long or not in the expected form.")
        return None
    assert isinstance(exc, Error)
    if exc.code in LINK_PROBLEMS:
        return exc.code
    problems = exc.extra.get("fields")
    if problems and all(isinstance(f, dict) and "code" in f for f in problems):  # every field's problem at once
        for f in problems:
            _explain(type(exc)(f["code"], f["problem"], field=f["field"]), errors, fields, password)
        return None
    name = fields.get(exc.extra.get("field") or "", None)
    if exc.code in RULE_MESSAGES:
        from chalicelib.core.security import passwords
        failures = passwords.policy_failures(password) or [exc.code]
        errors.add(name, " ".join(RULE_MESSAGES[c] for c in failures))
    elif exc.code == "code_invalid" and "attempts_left" in exc.extra:
        left = exc.extra["attempts_left"]
        errors.add(name, f"That code is not right. You have {left} {'try' if left == 1 else 'tries'} left.")
    elif exc.code in ("account_locked", "too_many_requests"):
        minutes = max(1, (int(exc.extra.get("retry_after", 60)) + 59) // 60)
        from chalicelib.core import lockout
        what = "attempts"  # the other limits count one email, identifier or client, not the network
        if exc.code == "account_locked":
            what = "failed sign-ins"
        elif exc.message == lockout.FROM_YOUR_NETWORK:
            what = "attempts from your network"
        errors.add(None, f"Too many {what}. Try again in {minutes} minute{'s' if minutes > 1 else ''}.")
    else:
        errors.add(name, exc.message)
    return None


NEW_PASSWORD_REQUIRED = {"new_password": "Enter a new password.",
                         "new_password_confirm": "Type the new password again."}


def _submit(p: Page, errors: Errors, *, required: dict[str, str], flow: Callable[[], object],
            fields: dict[str, str], cookie: str, problem: Callable[[str], Response], done: Callable[[], Response],
            password: str = "", confirm: tuple[str, str] | None = None) -> Response | None:
    """The POST half every link page shares: CSRF, required fields, (the two passwords alike), then the flow.
    A refusal about the link itself ends on `problem(code)`; one the person can fix goes into `errors` (None:
    show the form again); success ends the link's cookie and shows `done()`."""
    if not p.csrf_ok():
        p.csrf_failed(errors)
        return None
    require(p.form, errors, required)
    if not errors and confirm and p.form.get(confirm[0], "") != p.form.get(confirm[1], ""):
        errors.add(confirm[1], "The two passwords are not the same.")
    if errors:
        return None
    try:
        flow()
    except (Error, ValidationError) as exc:
        code = _explain(exc, errors, fields, password)
        if not code:
            return None
        p.clear_cookie(cookie)
        return problem(code)
    p.clear_cookie(cookie)
    return done()


# --- customer portal: /register --------------------------------------------------------------------------------

PORTAL = "Customer portal"


def _link_token(p: Page, kind: str, cookie: str, max_age: int = 3600, expired_code: str = "token_expired"):
    """(token, record, answer). A token in the query is checked without spending it, then moved to a cookie
    with a 303 to the same path; later loads read the cookie. `answer` is the response to give instead."""
    from chalicelib.core import single_use
    if "token" in p.query:
        token = p.query["token"]
        try:
            single_use.look_up(token, kind, expired_code=expired_code)
        except Error as err:
            return None, None, err
        p.keep(cookie, token, max_age)
        rest = {k: v for k, v in p.query.items() if k != "token"}
        return None, None, p.redirect(p.self_url(**rest))
    token = p.state(cookie)
    if not token:
        return None, None, None
    try:
        return token, single_use.look_up(token, kind, expired_code=expired_code), None
    except Error as err:
        p.clear_cookie(cookie)
        return token, None, err


def register(p: Page) -> Response:
    from chalicelib.core.models import PortalUser
    from chalicelib.flows.portal import portal_access
    if "token" not in p.query and "tenant_id" in p.query:
        return _sign_up(p)
    token, record, answer = _link_token(p, "portal_invitation", "pa_register", expired_code="invitation_expired")
    if isinstance(answer, Response):
        return answer
    if isinstance(answer, Error):
        return _register_problem(p, answer.code, _token_tenant(token or p.query.get("token")))
    if token is None:
        return _sign_up(p)
    try:
        user = PortalUser.get(record.tenant_id, record.subject_id)
    except DoesNotExist:
        return _register_problem(p, "invitation_revoked", record.tenant_id)
    tenant_name = _tenant_name(record.tenant_id)
    errors = Errors()
    if p.method == "POST":
        password = p.form.get("password", "")
        answer = _submit(
            p, errors, required={"password": "Enter a password.", "password_confirm": "Type the password again."},
            flow=lambda: portal_access.register(portal_access.RegisterRequest(
                token=token, password=password, password_confirm=p.form.get("password_confirm", "")),
                p.ip, p.user_agent),
            fields={"password": "password", "password_confirm": "password_confirm"}, password=password,
            cookie="pa_register", problem=lambda code: _register_problem(p, code, record.tenant_id),
            done=lambda: p.message(200, tenant_name=tenant_name, section=PORTAL, heading="Your account is ready",
                                   paragraphs=[f"You can now sign in to the {tenant_name} customer portal with "
                                               f"{user.email} and the password you chose."],
                                   actions=[("Sign in", url("/sign-in", tenant_id=record.tenant_id))]))
        if answer:
            return answer
    intro = Html(f"<p>{esc(tenant_name)} invited <strong>{esc(user.email)}</strong> to its customer portal. "
                 "Choose a password to finish creating your account.</p>")
    return p.form_page(200, tenant_name=tenant_name, section=PORTAL, title="Create your account", intro=intro,
                       fields=join([account_username(user.email, "email"),
                                    password_fields(errors, "password", "Password", "Type the password again")]),
                       button="Create account", errors=errors)


def _register_problem(p: Page, code: str, tenant_id: str | None) -> Response:
    tenant_name = _tenant_name(tenant_id)
    who = tenant_name or "the business that invited you"
    steps = [f"Ask {who} to send you a new invitation."]
    actions = []
    if tenant_id and code in ("token_used", "invitation_replaced"):
        steps = ["Already created your account? Sign in with your email and password.", *steps]
        actions = [("Sign in", url("/sign-in", tenant_id=tenant_id))]
    return p.link_problem(code, tenant_name=tenant_name, section=PORTAL, next_steps=steps, actions=actions)


def _sign_up(p: Page) -> Response:
    """/register without a link: self sign-up, when the business allows it (the same answer either way)."""
    from chalicelib.flows.portal import portal_access
    tenant = _tenant(p.query.get("tenant_id"))
    if tenant is None or not tenant.self_signup:
        return p.link_problem("link_missing", tenant_name=tenant.name if tenant else None, section=PORTAL,
                              next_steps=["To create your account, open the Register link in your invitation email. "
                                          "No invitation? Ask the business to send you one."])
    errors = Errors()
    email = p.form.get("email", "").strip()
    if p.method == "POST":
        if not p.csrf_ok():
            p.csrf_failed(errors)
        else:
            require(p.form, errors, {"email": "Enter your email address."})
            if not errors:
                try:
                    answer = portal_access.sign_up(portal_access.SignUpRequest(tenant_id=tenant.tenant_id,
                                                                               email=email), p.ip)
                except (Error, ValidationError) as exc:
                    _explain(exc, errors, {"email": "email"})
                else:
                    return p.message(202, tenant_name=tenant.name, section=PORTAL, heading="Check your email",
                                     paragraphs=[answer["message"], "The link in it lets you choose a password."])
    return p.form_page(200, tenant_name=tenant.name, section=PORTAL, title="Create your account",
                       intro="Enter the email address the business has for you. We will send you a link to "
                             "choose a password.",
                       fields=field("email", "Email address", value=email, type="email", autocomplete="email",
                                    error=errors.get("email"), focus=errors.first == "email",
                                    extra={"spellcheck": "false"}),
                       button="Send me a link", errors=errors,
                       after=Html(f'<ul class="links"><li><a href="{esc(url("/sign-in", tenant_id=tenant.tenant_id))}">'
                                  "I already have an account</a></li></ul>"))


# --- customer portal: /reset-password ---------------------------------------------------------------------------

def reset_password(p: Page) -> Response:
    from chalicelib.core.models import PortalUser
    from chalicelib.flows.portal import portal_access
    if "token" not in p.query and "tenant_id" in p.query:
        return _reset_request(p)
    token, record, answer = _link_token(p, "portal_reset", "pa_reset", max_age=portal_access.RESET_SECONDS)
    if isinstance(answer, Response):
        return answer
    if isinstance(answer, Error):
        return _reset_problem(p, answer.code, _token_tenant(token or p.query.get("token")))
    if token is None:
        return _reset_request(p)
    try:
        user = PortalUser.get(record.tenant_id, record.subject_id)
    except DoesNotExist:
        return _reset_problem(p, "token_invalid", record.tenant_id)
    tenant_name = _tenant_name(record.tenant_id)
    errors = Errors()
    if p.method == "POST":
        password = p.form.get("new_password", "")
        answer = _submit(
            p, errors, required=NEW_PASSWORD_REQUIRED,
            flow=lambda: portal_access.complete_reset(portal_access.ResetComplete(
                token=token, new_password=password, new_password_confirm=p.form.get("new_password_confirm", "")),
                p.ip, p.user_agent),
            fields={"new_password": "new_password", "new_password_confirm": "new_password_confirm"},
            password=password, cookie="pa_reset", problem=lambda code: _reset_problem(p, code, record.tenant_id),
            done=lambda: p.message(200, tenant_name=tenant_name, section=PORTAL, heading="Your password was changed",
                                   paragraphs=["Sign in with your new password. For your safety, every device "
                                               "that was signed in to your account has been signed out."],
                                   actions=[("Sign in", url("/sign-in", tenant_id=record.tenant_id))]))
        if answer:
            return answer
    intro = Html(f"<p>Choose a new password for <strong>{esc(user.email)}</strong>.</p>")
    return p.form_page(200, tenant_name=tenant_name, section=PORTAL, title="Choose a new password", intro=intro,
                       fields=join([account_username(user.email, "email"), password_fields(errors, "new_password")]),
                       button="Change password", errors=errors)


def _reset_problem(p: Page, code: str, tenant_id: str | None) -> Response:
    tenant_name = _tenant_name(tenant_id)
    actions = [("Ask for a new link", url("/reset-password", tenant_id=tenant_id))] if tenant_id else []
    steps = ["Ask for a new link: we will email it to you."] if tenant_id else \
        ["Open the sign-in page of the business and choose \"Can't sign in?\" to get a new link."]
    return p.link_problem(code, tenant_name=tenant_name, section=PORTAL, next_steps=steps, actions=actions)


def _reset_request(p: Page) -> Response:
    """"Can't sign in?": an emailed reset link (the same answer whether or not the email has an account)."""
    from chalicelib.flows.portal import portal_access
    tenant = _tenant(p.query.get("tenant_id"))
    if tenant is None:
        return p.link_problem("link_missing", tenant_name=None, section=PORTAL,
                              next_steps=["To reset your password, open the sign-in page of the business and "
                                          "choose \"Can't sign in?\"."])
    errors = Errors()
    email = p.form.get("email", "").strip()
    if p.method == "POST":
        if not p.csrf_ok():
            p.csrf_failed(errors)
        else:
            require(p.form, errors, {"email": "Enter your email address."})
            if not errors:
                try:
                    portal_access.request_reset(portal_access.ResetRequest(tenant_id=tenant.tenant_id, email=email),
                                                p.ip)
                except (Error, ValidationError) as exc:
                    _explain(exc, errors, {"email": "email"})
                else:
                    return p.message(202, tenant_name=tenant.name, section=PORTAL, heading="Check your email",
                                     paragraphs=["If this email address has an account here, we have sent it a "
                                                 "link to choose a new password.",
                                                 f"The link works once and for "
                                                 f"{portal_access.RESET_SECONDS // 60} minutes. "
                                                 "Nothing arrived? Check your spam folder, or ask again."],
                                     actions=[("Back to sign-in", url("/sign-in", tenant_id=tenant.tenant_id))])
    return p.form_page(200, tenant_name=tenant.name, section=PORTAL, title="Can't sign in?",
                       intro="Enter the email address of your account. We will email you a link to choose a new "
                             "password.",
                       fields=field("email", "Email address", value=email, type="email", autocomplete="email",
                                    error=errors.get("email"), focus=errors.first == "email",
                                    extra={"spellcheck": "false"}),
                       button="Email me a link", errors=errors,
                       after=Html(f'<ul class="links"><li><a href="{esc(url("/sign-in", tenant_id=tenant.tenant_id))}">'
                                  "Back to sign-in</a></li></ul>"))


# --- customer portal: /sign-in ----------------------------------------------------------------------------------

def sign_in(p: Page) -> Response:
    from chalicelib.flows.portal import portal_access
    tenant = _tenant(p.query.get("tenant_id"))
    if tenant is None:
        return which_business(p, "/sign-in", title="Sign in to a customer portal",
                              intro="This page signs you in to the customer portal of the business that serves "
                                    "you. Open the sign-in link from its emails or website, which names the "
                                    "business, or enter the business ID.",
                              button="Continue to sign-in", section=PORTAL)
    errors = Errors()
    email = p.form.get("email", "").strip()
    if p.method == "POST":
        if not p.csrf_ok():
            p.csrf_failed(errors)
        else:
            require(p.form, errors, {"email": "Enter your email address.", "password": "Enter your password."})
            if not errors:
                try:
                    portal_access.sign_in(portal_access.SignInRequest(
                        tenant_id=tenant.tenant_id, email=email, password=p.form["password"]), p.ip, p.user_agent)
                except (Error, ValidationError) as exc:
                    _explain(exc, errors, {"email": "email", "password": "password"})
                else:
                    return p.message(200, tenant_name=tenant.name, section=PORTAL, heading="You are signed in",
                                     paragraphs=[f"Welcome back. You are signed in to the {tenant.name} customer "
                                                 f"portal as {email.lower()}."])
    tid = tenant.tenant_id
    after = [Html(f'<ul class="links"><li><a href="{esc(url("/reset-password", tenant_id=tid))}">'
                  "Can't sign in?</a></li>"
                  + (f'<li><a href="{esc(url("/register", tenant_id=tid))}">New here? Create an account</a></li>'
                     if tenant.self_signup else "") + "</ul>")]
    providers = [p_ for p_ in PROVIDERS if p_ in (tenant.third_party_signin or [])]
    if providers:
        after.append(Html('<p class="or">or</p>'))
        links = [Html(f'<a class="button secondary" href="{esc(url(f"/v1/portal/oidc/{name}/start", tenant_id=tid))}">'
                      f"Continue with {esc(PROVIDERS[name])}</a>") for name in providers]
        after.append(Html(f'<div class="actions providers">\n{join(links)}\n</div>'))
    return p.form_page(200, tenant_name=tenant.name, section=PORTAL, title="Sign in",
                       intro=f"Sign in to the {tenant.name} customer portal.",
                       fields=join([
                           field("email", "Email address", value=email, type="email", autocomplete="username",
                                 error=errors.get("email"), focus=errors.first == "email",
                                 extra={"spellcheck": "false"}),
                           field("password", "Password", type="password", autocomplete="current-password",
                                 error=errors.get("password"), focus=errors.first == "password")]),
                       button="Sign in", errors=errors, after=join(after))


def which_business(p: Page, path: str, *, title: str, intro: str, button: str, section: str) -> Response:
    """A page reached without naming its business: a GET form that asks for the business ID (it reloads `path`
    with ?tenant_id=), and where to find it. An unknown ID is said next to the field (400)."""
    given = p.query.get("tenant_id", "").strip()
    errors = Errors()
    if "tenant_id" in p.query:
        errors.add("tenant_id", "We do not know this business ID. Check it, or open the link from the "
                                "business's message." if given else "Enter the business ID.")
    content = render("lookup.html", heading=title, intro=Html(f"<p>{esc(intro)}</p>"), errors=errors.summary(),
                     action=url(path), button=button,
                     fields=field("tenant_id", "Business ID", value=given[:64], error=errors.get("tenant_id"),
                                  focus=bool(errors), autocomplete="off",
                                  hint="It is in the address of every link the business sends you, after "
                                       "tenant_id= (for example tenant_id=brightwater).",
                                  extra={"spellcheck": "false", "autocapitalize": "none"}),
                     after="")
    return p.html(400 if errors else 200, f"Error: {title}" if errors else title, content, None, section)


# --- / : what this site is ----------------------------------------------------------------------------------------

HOME = "Customer portal and staff accounts"

def home(p: Page) -> Response:
    """What this site is and the way to each page: with ?tenant_id= the business's customer sign-in and its staff's
    password pages (staff sign in in their app: there is no staff sign-in page); without, a business ID form."""
    tenant = _tenant(p.query.get("tenant_id"))
    if tenant is None:
        return which_business(p, "/", title="Customer portal and staff accounts",
                              intro="This secure site belongs to a field-service business: its customers sign in "
                                    "to its customer portal here, and its staff set up and recover their "
                                    "accounts. Open a link from the business's emails or website, or enter its "
                                    "business ID.", button="Continue", section=HOME)
    tid = tenant.tenant_id
    actions = [("Sign in to the customer portal", url("/sign-in", tenant_id=tid))]
    if tenant.self_signup:
        actions.append(("New customer? Create an account", url("/register", tenant_id=tid)))
    actions += [("Staff: forgot your password?", url("/staff/reset-password", tenant_id=tid)),
                ("Staff: change your password", url("/staff/change-password", tenant_id=tid))]
    return p.message(200, tenant_name=tenant.name, section=HOME,
                     heading=f"Welcome to {tenant.name}",
                     paragraphs=[f"Customers of {tenant.name} sign in here to its customer portal.",
                                 f"Staff of {tenant.name} sign in in their app; here they can reset or change "
                                 "their password."], actions=actions)


# --- customer portal: back from Google / Microsoft -----------------------------------------------------------------

def wants_html(request) -> bool:
    """A browser (its Accept names text/html before any JSON), not an API client."""
    accept = (request.headers.get("accept") or "").lower()
    return "text/html" in accept and not accept.lstrip().startswith("application/json")


def oidc_result(request, provider: str, finish: Callable[[], "PortalUser"]) -> Response:
    """The end of "Continue with Google / Microsoft" in a browser: the same page as a password sign-in's, or
    what went wrong and the way back to the business's sign-in page, never a JSON body."""
    p = Page(request, f"/v1/portal/oidc/{provider}/callback")
    name = PROVIDERS.get(provider, provider)
    try:
        user = finish()
    except Error as err:
        tenant_id = _token_tenant(p.query.get("state"))  # the state names the business even once it is spent
        tenant_name = _tenant_name(tenant_id)
        actions = [("Back to sign-in", url("/sign-in", tenant_id=tenant_id))] if tenant_id and tenant_name else []
        return p.message(status_of(err), tenant_name=tenant_name, section=PORTAL,
                         heading=f"We could not sign you in with {name}",
                         paragraphs=[err.message, "Try again from the sign-in page of the business, or sign in "
                                                  "with your email address and password."],
                         actions=actions, tone="problem")
    tenant_name = _tenant_name(user.tenant_id) or ""
    return p.message(200, tenant_name=tenant_name, section=PORTAL, heading="You are signed in",
                     paragraphs=[f"Welcome. You are signed in to the {tenant_name} customer portal with {name} as "
                                 f"{user.email}."])


# --- customer portal: /portal/access, a customer's secure access link (rule 6) ------------------------------------

ACCESS = "pa_access"
ACCESS_COOKIE_SECONDS = 15 * 60


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
            return _access_problem(p, err, _token_tenant(token))
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
        return _access_problem(p, err, _token_tenant(token))
    customer = opened.customer
    tenant_name = _tenant_name(customer.tenant_id) or "the business"
    expires = customer.access_link_expires_at
    until = datetime.fromtimestamp(expires, timezone.utc).strftime("%d %B %Y").lstrip("0") if expires else ""
    return p.message(200, tenant_name=tenant_name, section=PORTAL, heading="Secure access",
                     paragraphs=[f"You have secure access to {customer.name}'s account with {tenant_name}.",
                                 "Anyone who has this link can open this account without a password: keep it to "
                                 "yourself. For your safety this visit lasts "
                                 f"{access_links.SESSION_SECONDS // 60} minutes; open the link again to come back.",
                                 f"The link works until {until}. After that, ask {tenant_name} for a new one."])


def _access_hop(p: Page) -> Response:
    """One reload started by this site (see access): the Strict cookie is sent with it."""
    target = p.self_url()
    response = p.message(200, tenant_name=None, section=PORTAL, heading="Opening your secure access",
                         paragraphs=["One moment. If nothing happens, choose Continue."],
                         actions=[("Continue", target)])
    response.headers["Refresh"] = f"0; url={target}"
    return response


def _access_problem(p: Page, err: Error, tenant_id: str | None) -> Response:
    tenant_name = _tenant_name(tenant_id)
    who = tenant_name or "the business that gave you the link"
    if err.code == "password_required":
        actions = [("Sign in", url("/sign-in", tenant_id=tenant_id)),
                   ("Can't sign in?", url("/reset-password", tenant_id=tenant_id))] if tenant_name else []
        return p.message(403, tenant_name=tenant_name, section=PORTAL, heading="Sign in with your email and password",
                         paragraphs=["This account now has its own portal sign-in, so the link alone no longer "
                                     "opens it.", f"Sign in with your email address and password, or ask {who} to "
                                     "invite you."], actions=actions, tone="problem")
    if err.code == "too_many_requests":
        minutes = max(1, (int(err.extra.get("retry_after", 60)) + 59) // 60)
        return p.message(429, tenant_name=tenant_name, section=PORTAL, heading="Too many attempts",
                         paragraphs=[f"Too many attempts from your network. Try again in {minutes} minute"
                                     f"{'s' if minutes > 1 else ''}."], tone="problem")
    steps = {"access_link_expired": [f"Ask {who} for a new link."],
             "access_link_rotated": [f"Ask {who} for the new link."]}.get(
        err.code, [f"Open the link again from the message {who} sent you, or ask for a new one."])
    return p.link_problem(err.code if err.code in LINK_PROBLEMS else "token_invalid", tenant_name=tenant_name,
                          section=PORTAL, next_steps=steps)


# --- staff: /staff/accept-invite ----------------------------------------------------------------------------------

STAFF = "Staff account"


def accept_invite(p: Page) -> Response:
    from chalicelib.core.models import Person
    from chalicelib.flows.staff import staff_invitations
    token, record, answer = _link_token(p, "staff_invite", "pa_invite")
    if isinstance(answer, Response):
        return answer
    if isinstance(answer, Error):
        return _invite_problem(p, answer.code, _token_tenant(token or p.query.get("token")))
    if token is None:
        return _invite_problem(p, "link_missing", None)
    try:
        person = Person.get(record.tenant_id, record.subject_id)
    except DoesNotExist:
        return _invite_problem(p, "token_invalid", record.tenant_id)
    tenant_name = _tenant_name(record.tenant_id)
    errors = Errors()
    username = p.form.get("username", person.email or "").strip() if p.method == "POST" else (person.email or "")
    if p.method == "POST":
        password = p.form.get("password", "")
        answer = _submit(
            p, errors, required={"username": "Choose a username.", "password": "Enter a password.",
                                 "password_confirm": "Type the password again."},
            # the confirmation goes to the flow, which answers every field's problem at once
            flow=lambda: staff_invitations.accept_invite(staff_invitations.AcceptInvite(
                token=token, username=username, password=password), p.ip,
                password_confirm=p.form.get("password_confirm", "")),
            fields={"username": "username", "password": "password", "password_confirm": "password_confirm"},
            password=password, cookie="pa_invite",
            problem=lambda code: _invite_problem(p, code, record.tenant_id),
            done=lambda: p.message(200, tenant_name=tenant_name, section=STAFF, heading="Your account is ready",
                                   paragraphs=[f"Your username is {username}.",
                                               f"Sign in to {tenant_name} with it and the password you chose."]))
        if answer:
            return answer
    intro = Html(f"<p>Welcome, {esc(person.name)}. {esc(tenant_name)} invited you to create your staff account: "
                 "choose a username and a password.</p>")
    fields = join([
        field("username", "Username", value=username, autocomplete="username", error=errors.get("username"),
              hint=username_hint(person, "You sign in with this."),
              focus=errors.first == "username", extra={"spellcheck": "false", "autocapitalize": "none"}),
        password_fields(errors, "password", "Password", "Type the password again"),
    ])
    return p.form_page(200, tenant_name=tenant_name, section=STAFF, title="Create your account", intro=intro,
                       fields=fields, button="Create account", errors=errors)


def username_hint(person, lead: str) -> str:
    """What a username may be, saying only what this person has: "your email address" only to someone with one
    (a technician invited by SMS has none, and an @ is for one's own email address only)."""
    if person.email:
        return f"{lead} It can be your email address, or 3 to 64 letters, digits and . _ @ + -"
    return f"{lead} 3 to 64 letters, digits and . _ + -"


def _invite_problem(p: Page, code: str, tenant_id: str | None) -> Response:
    tenant_name = _tenant_name(tenant_id)
    steps = ["Ask your administrator to send you a new invitation."]
    actions = []
    if tenant_id and code == "token_used":
        steps = ["If you already created your account, sign in with your username and password. "
                 "Forgot the password? Reset it.", *steps]
        actions = [("Reset my password", url("/staff/reset-password", tenant_id=tenant_id))]
    return p.link_problem(code, tenant_name=tenant_name, section=STAFF, next_steps=steps, actions=actions)


# --- staff: /staff/reset-password ------------------------------------------------------------------------------------

STATE = "pa_staff_reset"  # flow.<stage>.<channel>.<flow id> | reset.<reset token>
CHANNELS = [("email", "Email"), ("sms", "Text message (SMS)")]


def staff_reset_password(p: Page) -> Response:
    from chalicelib.core import single_use
    from chalicelib.flows.staff import staff_recovery
    if "token" in p.query:  # an admin-sent reset link: straight to the new password
        token = p.query["token"]
        try:
            single_use.look_up(token, staff_recovery.RESET_KIND)
        except Error as err:
            return _staff_reset_problem(p, err.code, _token_tenant(token))
        p.keep(STATE, f"reset.{token}", staff_recovery.RESET_TOKEN_SECONDS)
        return p.redirect(p.self_url())
    if "tenant_id" in p.query:  # "Forgot password?" from an app: a fresh start for that business
        if p.method == "GET" and p.state(STATE):
            p.clear_cookie(STATE)
        return _staff_reset_start(p, p.query["tenant_id"])
    state = p.state(STATE) or ""
    kind, _, rest = state.partition(".")
    if kind == "reset":
        return _staff_reset_new(p, rest)
    if kind == "flow":
        stage, channel, flow_id = (rest.split(".", 2) + ["", "", ""])[:3]
        try:
            flow = single_use.look_up(flow_id, staff_recovery.FLOW_KIND, expired_code="flow_expired")
        except Error as err:
            p.clear_cookie(STATE)
            return _staff_reset_problem(p, err.code, _token_tenant(flow_id))
        if flow.attempts >= staff_recovery.MAX_ATTEMPTS:
            p.clear_cookie(STATE)
            return _staff_reset_problem(p, "flow_dead", flow.tenant_id)
        if stage == "code":
            return _staff_reset_code(p, flow, flow_id, channel)
        return _staff_reset_channel(p, flow, flow_id, channel)
    return _staff_reset_problem(p, "link_missing", None)


def _staff_reset_problem(p: Page, code: str, tenant_id: str | None) -> Response:
    tenant_name = _tenant_name(tenant_id)
    if code == "link_missing":
        return p.link_problem(code, tenant_name=None, section=STAFF,
                              next_steps=["To reset your password, choose \"Forgot password?\" where you sign in, or "
                                          "open the reset link your administrator sent you."])
    actions = [("Start again", url("/staff/reset-password", tenant_id=tenant_id))] if tenant_id else []
    return p.link_problem(code, tenant_name=tenant_name, section=STAFF,
                          next_steps=["Start again to get a new code, or ask your administrator for a new reset "
                                      "link."], actions=actions)


def _staff_reset_start(p: Page, tenant_id: str) -> Response:
    from chalicelib.flows.staff import staff_recovery
    tenant = _tenant(tenant_id)
    if tenant is None:
        return _staff_reset_problem(p, "link_missing", None)
    errors = Errors()
    identifier = p.form.get("identifier", "").strip()
    if p.method == "POST" and p.form.get("step") == "start":
        if not p.csrf_ok():
            p.csrf_failed(errors)
        else:
            require(p.form, errors, {"identifier": "Enter your username, email address or mobile number."})
            if not errors:
                try:
                    answer = staff_recovery.start(staff_recovery.ResetStart(tenant_id=tenant.tenant_id,
                                                                            identifier=identifier), p.ip)
                except (Error, ValidationError) as exc:
                    _explain(exc, errors, {"identifier": "identifier", "tenant_id": "identifier"})
                else:
                    p.keep(STATE, f"flow.channel.{suggested_channel(identifier)}.{answer['flow_id']}",
                           staff_recovery.FLOW_SECONDS)
                    return p.redirect(p.self_url())
    return p.form_page(200, tenant_name=tenant.name, section=STAFF, title="Forgot your password?",
                       intro="First, tell us which account. Then we send you a code to verify it is yours.",
                       fields=field("identifier", "Username, email address or mobile number", value=identifier,
                                    autocomplete="username", error=errors.get("identifier"),
                                    focus=errors.first == "identifier",
                                    extra={"spellcheck": "false", "autocapitalize": "none"}),
                       button="Continue", errors=errors, step="start",
                       action=url("/staff/reset-password", tenant_id=tenant.tenant_id))


def suggested_channel(identifier: str) -> str:
    """The channel the next step preselects, from what the person typed only: a mobile number → SMS, anything
    else → email (what send-code does by default; the code goes to the other one when the account has only
    that). Never from the account: a step that differed for a known identifier would tell it from an unknown one."""
    from chalicelib.core import identity
    if "@" not in identifier:
        try:
            identity.normalise_mobile(identifier)
            return "sms"
        except ValueError:
            pass
    return "email"


def _staff_reset_channel(p: Page, flow, flow_id: str, suggested: str = "") -> Response:
    from chalicelib.flows.staff import staff_recovery
    tenant_name = _tenant_name(flow.tenant_id)
    errors = Errors()
    channel = p.form.get("channel", "") if p.method == "POST" else suggested
    if p.method == "POST" and p.form.get("step") == "send":
        if not p.csrf_ok():
            p.csrf_failed(errors)
        elif channel not in ("email", "sms"):
            errors.add("channel", "Choose where to send the code.")
        else:
            try:
                staff_recovery.send_code(
                    staff_recovery.SendCode.model_validate({"flow_id": flow_id, "channel": channel}), p.ip)
            except (Error, ValidationError) as exc:
                code = _explain(exc, errors, {"channel": "channel"})
                if code:
                    p.clear_cookie(STATE)
                    return _staff_reset_problem(p, code, flow.tenant_id)
            else:
                p.keep(STATE, f"flow.code.{channel}.{flow_id}", staff_recovery.FLOW_SECONDS)
                return p.redirect(p.self_url())
    return p.form_page(200, tenant_name=tenant_name, section=STAFF, title="Verify your account",
                       intro="We will send you a code to prove the account is yours.",
                       fields=choice("channel", "Where should we send the code?", CHANNELS, value=channel,
                                     hint="We use the email address or mobile number on your staff profile.",
                                     error=errors.get("channel")),
                       button="Send the code", errors=errors, step="send",
                       after=_start_again_link(flow.tenant_id))


def _start_again_link(tenant_id: str) -> Html:
    return Html(f'<ul class="links"><li><a href="{esc(url("/staff/reset-password", tenant_id=tenant_id))}">'
                "Start again with another account</a></li></ul>")


def _staff_reset_code(p: Page, flow, flow_id: str, channel: str) -> Response:
    from chalicelib.flows.staff import staff_recovery
    tenant_name = _tenant_name(flow.tenant_id)
    errors = Errors()
    notice = None
    step = p.form.get("step") if p.method == "POST" else None
    if step in ("verify", "resend"):
        if not p.csrf_ok():
            p.csrf_failed(errors)
        elif step == "resend":
            try:
                staff_recovery.send_code(
                    staff_recovery.SendCode.model_validate({"flow_id": flow_id, "channel": channel or None}), p.ip)
                notice = "We sent a new code. The previous code no longer works."
            except (Error, ValidationError) as exc:
                code = _explain(exc, errors, {})
                if code:
                    p.clear_cookie(STATE)
                    return _staff_reset_problem(p, code, flow.tenant_id)
        else:
            require(p.form, errors, {"code": "Enter the code we sent you."})
            if not errors:
                try:
                    answer = staff_recovery.verify(staff_recovery.VerifyCode(flow_id=flow_id,
                                                                             code=p.form["code"]), p.ip)
                except (Error, ValidationError) as exc:
                    code = _explain(exc, errors, {"code": "code"})
                    if code:
                        p.clear_cookie(STATE)
                        return _staff_reset_problem(p, code, flow.tenant_id)
                else:
                    p.keep(STATE, f"reset.{answer['reset_token']}", staff_recovery.RESET_TOKEN_SECONDS)
                    return p.redirect(p.self_url())
    where = {"email": "to its email address (or its mobile number, if it has no email address)",
             "sms": "to its mobile number (or its email address, if it has no mobile number)"}.get(channel, "")
    intro = join([Html(f"<p>If an account matches what you entered, we sent an "
                       f"{staff_recovery.CODE_LENGTH}-character code {esc(where)}. It works for "
                       f"{staff_recovery.CODE_SECONDS // 60} minutes.</p>"),
                  Html(f'<p role="status">{esc(notice)}</p>') if notice else ""])
    resend = Html(
        f'<form method="post" action="{esc(p.self_url())}" class="form resend">\n'
        f'<input type="hidden" name="{CSRF_FIELD}" value="{esc(p.csrf_token())}">\n'
        f'<input type="hidden" name="step" value="resend">\n'
        f'<p class="or">Nothing arrived?</p>\n'
        f'<button type="submit" class="button secondary">Send a new code</button>\n</form>\n'
        + _start_again_link(flow.tenant_id))
    return p.form_page(200, tenant_name=tenant_name, section=STAFF, title="Enter the code", intro=intro,
                       fields=field("code", "Code", error=errors.get("code"), focus=errors.first == "code",
                                    autocomplete="one-time-code",
                                    hint="Type it exactly as written: upper and lower case letters are different.",
                                    extra={"spellcheck": "false", "autocapitalize": "none", "autocorrect": "off"}),
                       button="Check the code", errors=errors, step="verify", after=resend)


def _staff_reset_new(p: Page, reset_token: str) -> Response:
    from chalicelib.core import single_use
    from chalicelib.flows.staff import staff_recovery
    try:
        record = single_use.look_up(reset_token, staff_recovery.RESET_KIND)
    except Error as err:
        p.clear_cookie(STATE)
        return _staff_reset_problem(p, err.code, _token_tenant(reset_token))
    tenant_name = _tenant_name(record.tenant_id)
    errors = Errors()
    if p.method == "POST" and p.form.get("step") == "complete":
        password = p.form.get("new_password", "")
        answer = _submit(
            p, errors, required=NEW_PASSWORD_REQUIRED, confirm=("new_password", "new_password_confirm"),
            flow=lambda: staff_recovery.complete(staff_recovery.CompleteReset(reset_token=reset_token,
                                                                              new_password=password), p.ip),
            fields={"new_password": "new_password"}, password=password, cookie=STATE,
            problem=lambda code: _staff_reset_problem(p, code, record.tenant_id),
            done=lambda: p.message(200, tenant_name=tenant_name, section=STAFF, heading="Your password was changed",
                                   paragraphs=["Sign in with your username and your new password.",
                                               "We let you know by email or text message, so that a change you "
                                               "did not make does not go unnoticed."]))
        if answer:
            return answer
    return p.form_page(200, tenant_name=tenant_name, section=STAFF, title="Choose a new password",
                       intro="Almost done: choose the password you will sign in with.",
                       fields=join([account_username(_username_of(record.tenant_id, record.subject_id)),
                                    password_fields(errors, "new_password")]),
                       button="Change password", errors=errors, step="complete")


def _username_of(tenant_id: str, person_id: str) -> str | None:
    from chalicelib.core.models import Person
    try:
        return Person.get(tenant_id, person_id).username
    except DoesNotExist:
        return None


# --- staff: /staff/change-password -----------------------------------------------------------------------------------

CHANGE = "pa_change"
CHANGE_REASONS = {
    "admin_set": "Your administrator chose your username and password. Choose your own to continue.",
    "temporary": "You signed in with a temporary password. Choose your own password to continue.",
    "expired": "Your password is over a year old. Choose a new one to continue.",
    "chosen": "Choose a new password. It replaces the one you signed in with, and signs you out everywhere else.",
}


def _change_principal(token: str | None):
    """The principal of a forced-change token, or the explanation code when it cannot be used."""
    from chalicelib.web.api import authenticate
    if not token:
        return None, "link_missing"
    try:
        principal = authenticate(f"Bearer {token}")
    except Error as err:
        return None, "change_expired" if err.code == "token_expired" else "token_invalid"
    if principal.kind != "password_change":
        return None, "token_invalid"
    return principal, None


def _unverified_tenant(token: str | None) -> str | None:
    """The business a (maybe expired) change token names: only to show its name and the way back."""
    try:
        import jwt
        claims = jwt.decode(token or "", options={"verify_signature": False})
    except Exception:  # noqa: BLE001 - anything unreadable simply names no business
        return None
    tid = claims.get("tid")
    return tid if isinstance(tid, str) else None


def staff_change_password(p: Page) -> Response:
    if "token" in p.query:  # an app that got password_change_required hands the change token over
        token = p.query["token"]
        principal, problem = _change_principal(token)
        if problem:
            return _change_problem(p, problem, _unverified_tenant(token))
        from chalicelib.flows.staff import staff_signin
        p.keep(CHANGE, token, staff_signin.CHANGE_TOKEN_SECONDS)
        return p.redirect(p.self_url())
    if "tenant_id" in p.query:
        if p.method == "GET" and p.state(CHANGE):
            p.clear_cookie(CHANGE)
        return _change_sign_in(p, p.query["tenant_id"])
    token = p.state(CHANGE)
    principal, problem = _change_principal(token)
    if problem:
        if token:
            p.clear_cookie(CHANGE)
        return _change_problem(p, problem, _unverified_tenant(token))
    return _change_form(p, principal)


def _change_problem(p: Page, code: str, tenant_id: str | None) -> Response:
    tenant_name = _tenant_name(tenant_id)
    if code == "link_missing" or not tenant_id:
        return p.link_problem("link_missing" if code == "link_missing" else code, tenant_name=tenant_name,
                              section=STAFF, next_steps=["Sign in where you usually do: you are brought here when "
                                                         "your password has to change."])
    return p.link_problem(code, tenant_name=tenant_name, section=STAFF,
                          next_steps=["Sign in again with your current password, then choose the new one."],
                          actions=[("Sign in again", url("/staff/change-password", tenant_id=tenant_id))])


def _change_sign_in(p: Page, tenant_id: str) -> Response:
    """Sign in first: the answer of a sign-in that demands a change carries the change token."""
    from chalicelib.flows.staff import staff_signin
    tenant = _tenant(tenant_id)
    if tenant is None:
        return _change_problem(p, "link_missing", None)
    errors = Errors()
    username = p.form.get("username", "").strip()
    if p.method == "POST" and p.form.get("step") == "sign_in":
        if not p.csrf_ok():
            p.csrf_failed(errors)
        else:
            require(p.form, errors, {"username": "Enter your username.", "password": "Enter your password."})
            if not errors:
                try:
                    # a password that is current is changed too (the expiry warning sends people here early)
                    chosen = staff_signin.sign_in(tenant.tenant_id, username, p.form["password"], p.ip,
                                                  to_change_password=True)
                except Error as err:
                    if err.code in ("password_change_required", "password_expired") and err.extra.get("change_token"):
                        p.keep(CHANGE, err.extra["change_token"], staff_signin.CHANGE_TOKEN_SECONDS)
                        return p.redirect(url("/staff/change-password"))
                    _explain(err, errors, {})
                else:
                    p.keep(CHANGE, chosen["change_token"], staff_signin.CHANGE_TOKEN_SECONDS)
                    return p.redirect(url("/staff/change-password"))
    return p.form_page(200, tenant_name=tenant.name, section=STAFF, title="Sign in to change your password",
                       intro="Sign in with the username and password you have now. Then choose a new password.",
                       fields=join([
                           field("username", "Username", value=username, autocomplete="username",
                                 error=errors.get("username"), focus=errors.first == "username",
                                 extra={"spellcheck": "false", "autocapitalize": "none"}),
                           field("password", "Current password", type="password", autocomplete="current-password",
                                 error=errors.get("password"), focus=errors.first == "password")]),
                       button="Continue", errors=errors, step="sign_in",
                       after=Html(f'<ul class="links"><li><a href="'
                                  f'{esc(url("/staff/reset-password", tenant_id=tenant.tenant_id))}">'
                                  "Forgot your password?</a></li></ul>"),
                       action=url("/staff/change-password", tenant_id=tenant.tenant_id))


def _change_form(p: Page, principal) -> Response:
    from chalicelib.flows.staff import people, staff_signin
    reason = principal.claims.get("reason", "expired")
    needs_username = reason == "admin_set"
    person = people.get(principal.tenant_id, principal.subject)
    tenant_name = _tenant_name(principal.tenant_id)
    errors = Errors()
    username = p.form.get("new_username", "").strip()
    if p.method == "POST" and p.form.get("step") == "change":
        if not p.csrf_ok():
            p.csrf_failed(errors)
        else:
            password, confirm = p.form.get("new_password", ""), p.form.get("new_password_confirm", "")
            required = {"new_password": "Enter a new password.", "new_password_confirm": "Type the new password again."}
            if needs_username:
                required = {"new_username": "Choose your username.", **required}
            require(p.form, errors, required)
            if not errors:  # the flow checks every field (the confirmation too) and answers every problem at once
                try:
                    staff_signin.change_password(principal, None, password, username if needs_username else None,
                                                 p.ip, new_password_confirm=confirm)
                except Error as err:
                    if isinstance(err, Unauthenticated):  # the change token was used (the password changed since)
                        p.clear_cookie(CHANGE)
                        return _change_problem(p, "token_used", principal.tenant_id)
                    _explain(err, errors, {"new_password": "new_password", "new_username": "new_username",
                                           "new_password_confirm": "new_password_confirm"}, password)
                else:
                    p.clear_cookie(CHANGE)
                    paragraphs = ["From now on, sign in with your new password."]
                    if needs_username:
                        paragraphs = [f"Your username is now {username}.", *paragraphs]
                    return p.message(200, tenant_name=tenant_name, section=STAFF,
                                     heading="Your password was changed", paragraphs=paragraphs)
    fields = []
    if needs_username:
        fields.append(field("new_username", "Your username", value=username, autocomplete="username",
                            error=errors.get("new_username"), focus=errors.first == "new_username",
                            hint=username_hint(person, "Not the one you were given."),
                            extra={"spellcheck": "false", "autocapitalize": "none"}))
    else:
        fields.append(account_username(person.username))
    fields.append(password_fields(errors, "new_password"))
    return p.form_page(200, tenant_name=tenant_name, section=STAFF, title="Choose a new password",
                       intro=CHANGE_REASONS.get(reason, CHANGE_REASONS["expired"]), fields=join(fields),
                       button="Change password", errors=errors, step="change")


# --- serving ---------------------------------------------------------------------------------------------------------

def serve(app, path: str, handler: Callable[[Page], Response]) -> Response:
    """Runs one page. Whatever fails unexpectedly shows a plain apology page: never a stack trace or JSON."""
    from chalicelib.core.observability import logger
    request = app.current_request
    p = Page(request, path)
    try:
        response = handler(p)
    except Exception:  # noqa: BLE001 - the page must answer in HTML whatever happened
        logger.exception("page failed", extra={"route": f"{p.method} {path}"})
        p.set_cookies = []
        response = p.message(500, tenant_name=None, section="", heading="Something went wrong on our side",
                             paragraphs=["Nothing was changed. Please try again in a few minutes."], tone="problem")
    # The route template only: the query and the form may carry tokens and passwords.
    logger.info("page served", extra={"route": f"{p.method} {path}", "status": response.status_code})
    return response


def page(app, path: str, handler: Callable[[Page], Response], *, form: bool = True) -> None:
    """Registers GET (a page, or a link's first load) and POST (its form, urlencoded; not for a page without
    one) on `path`. Each view is Public (anyone may open a page; the flows check the link, code or password) and
    marked as an HTML page."""
    name = "page_" + path.strip("/").replace("/", "_").replace("-", "_")

    def view():
        return serve(app, path, handler)
    view.__name__ = name
    view.__doc__ = (handler.__doc__ or "").strip()
    mark_view(view, Public(), page=True)
    app.route(path, methods=["GET"], name=name)(view)
    if not form:
        return

    def form_view():
        return serve(app, path, handler)
    form_view.__name__ = name + "_form"
    mark_view(form_view, Public(), page=True)
    app.route(path, methods=["POST"], content_types=["application/x-www-form-urlencoded"],
              name=name + "_form")(form_view)


def css(app) -> None:
    """The pages' static files and the site's front page: the one stylesheet (CSP style-src 'self' allows nothing
    else, inline styles included), the one script (script-src 'self'), the icon at /favicon.ico (an SVG, linked
    from every page), and `/`, which says what this site is. (Called once from app.py with the pages.)"""
    _static(app, CSS_PATH, "page_stylesheet", "pages.css", "text/css; charset=utf-8")
    _static(app, JS_PATH, "page_script", "pages.js", "text/javascript; charset=utf-8")
    _static(app, ICON_PATH, "page_icon", "favicon.svg", "image/svg+xml", max_age=86400)
    page(app, "/", home, form=False)


def _static(app, path: str, name: str, filename: str, content_type: str, max_age: int = 3600) -> None:
    def view():
        return Response(body=asset(filename), status_code=200,
                        headers={"Content-Type": content_type, "Cache-Control": f"public, max-age={max_age}",
                                 "X-Content-Type-Options": "nosniff", "Cross-Origin-Resource-Policy": "same-origin",
                                 "Content-Security-Policy": "default-src 'none'"})
    view.__name__ = name
    mark_view(view, Public(), page=True)
    app.route(path, methods=["GET"], name=name)(view)
