"""One request to a page (`Page`: what it sent, the cookies to set, the CSRF check, the answers every page gives)
and the registration of pages and their static files on the Chalice app.

CSRF: a signed double-submit token. The cookie `pa_csrf` (`__Host-pa_csrf` over HTTPS; HttpOnly, SameSite=Strict)
holds a random 256-bit value; every form carries HMAC-SHA256(k, value | page path), where k is derived from the
JWT signing-key ring (keys.derived_secrets("pages-csrf")). A POST is acted on only when the field verifies
against the cookie and the browser does not say it is cross-site (Sec-Fetch-Site, Origin)."""
import base64
import hashlib
import hmac
import secrets
import urllib.parse
from typing import Callable, Sequence

from chalice import Response

from chalicelib.web.api import Public, mark_view
from chalicelib.web.pages.forms import (
    LINK_PROBLEMS,
    LINK_STATUS,
    Errors,
    FormProblem,
    UploadedFile,
    parse_form,
    parse_multipart,
)
from chalicelib.web.pages.render import CSS_PATH, ICON_PATH, JS_PATH, asset, base_path, render, secure, url

CSRF_PURPOSE = "pages-csrf"
CSRF_FIELD = "csrf_token"
# The largest file a page takes (the console's bulk list) and the largest multipart body read (it and the form).
# The console reviews a file within its request: on AWS the request passes API Gateway (29 s) and Lambda (6 MB,
# base64: about 4 MB of file), so 2 MB (about 40,000 lines) is what is read and reviewed in time. A larger list goes
# through the API's upload URL with review: true (bulk_invites.MAX_BYTES, 100 MB) and shows in the console's list.
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_UPLOAD_BYTES = MAX_FILE_BYTES + 64 * 1024

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


def parse_cookies(header: str | None) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in cookies:
            cookies[name] = value.strip().strip('"')
    return cookies


def cookie_name(base: str) -> str:
    """Over HTTPS the browser-enforced prefixes: __Host- (Secure, Path=/, no Domain) or __Secure-."""
    if not secure():
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
        params = request.query_params or {}  # every value of a repeated parameter (OAuth refuses repeats)
        self.query_pairs = [(k, v) for k in params for v in (params.getlist(k) if hasattr(params, "getlist")
                                                             else [params[k]])]
        self.raw_body = request.raw_body if self.method == "POST" else b""
        self.headers = request.headers
        identity = (request.context or {}).get("identity") or {}
        self.ip = identity.get("sourceIp")
        self.user_agent = request.headers.get("user-agent")
        self.cookies = parse_cookies(request.headers.get("cookie"))
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        self.form: dict[str, str] = {}
        self.files: dict[str, UploadedFile] = {}  # a multipart form's file fields
        self.form_problem: str | None = None  # why a multipart body could not be read, in words
        if self.method == "POST" and ctype == "application/x-www-form-urlencoded":
            self.form = parse_form(request.raw_body)
        elif self.method == "POST" and ctype == "multipart/form-data":
            try:
                self.form, self.files = parse_multipart(request.raw_body, request.headers.get("content-type", ""),
                                                        MAX_UPLOAD_BYTES)
            except FormProblem as problem:
                self.form_problem = str(problem)
        self.set_cookies: list[str] = []
        value = self.cookies.get(cookie_name("pa_csrf"), "")
        self._csrf_from_cookie = len(value) == 43 and all(c.isalnum() or c in "-_" for c in value)
        self.csrf_value = value if self._csrf_from_cookie else secrets.token_urlsafe(32)

    # cookies
    def set_cookie(self, base: str, value: str, *, path: str | None = None, max_age: int | None = None,
                   same_site: str = "Strict") -> None:
        parts = [f"{cookie_name(base)}={value}", f"Path={base_path() + path if path else '/'}", "HttpOnly",
                 f"SameSite={same_site}"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if secure():
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

    def csrf_token_for(self, path: str) -> str:
        """The token of a form on this page that posts to another page (the console's Sign out)."""
        self.csrf_token()
        return _csrf_mac(_csrf_keys()[0], self.csrf_value, path)

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

    def csrf_failed(self, errors: Errors) -> Errors:
        return errors.add(None, "This form was open too long or in another tab, so it was not sent. "
                                "Check what you entered and send it again.")

    # answers
    def self_url(self, **query) -> str:
        return url(self.path, **query)

    def html(self, status: int, template: str, **values) -> Response:
        """templates/<template> (one that extends pages/layout.html) as the answer."""
        return self._response(status, render(template, **values), {"Content-Type": "text/html; charset=utf-8"})

    def download(self, body: bytes, filename: str, content_type: str) -> Response:
        """A file to save (a report): `filename` must hold only safe characters (it goes into a header)."""
        return self._response(200, body.decode("utf-8"), {"Content-Type": content_type,
                                                          "Content-Disposition": f'attachment; filename="{filename}"'})

    def redirect(self, location: str) -> Response:
        return self._response(303, "", {"Location": location})

    def _response(self, status: int, body: str, headers: dict) -> Response:
        headers = {**SECURITY_HEADERS, **headers}
        if secure():
            headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        if self.set_cookies:
            headers["Set-Cookie"] = list(self.set_cookies)
        return Response(body=body, status_code=status, headers=headers)

    def form_page(self, template: str, *, tenant_name: str | None, section: str, title: str, button: str,
                  errors: Errors, step: str = "", action: str | None = None, **values) -> Response:
        """A page that is one form (templates/pages/form.html): 200, or 400 with the errors when there are any.
        The form posts back to this page, its query kept but for a link token."""
        return self.html(400 if errors else 200, template, tenant_name=tenant_name, section=section, title=title,
                         button=button, errors=errors, step=step, csrf=self.csrf_token(),
                         action=action or self.self_url(**{k: v for k, v in self.query.items() if k != "token"}),
                         **values)

    def message(self, status: int, *, tenant_name: str | None, section: str, heading: str, paragraphs: list,
                actions: Sequence[tuple[str, str]] = (), tone: str = "ok") -> Response:
        return self.html(status, "pages/message.html", tenant_name=tenant_name, section=section, heading=heading,
                         paragraphs=paragraphs, actions=actions, tone=tone)

    def link_problem(self, code: str, *, tenant_name: str | None, section: str, next_steps: list,
                     actions: Sequence[tuple[str, str]] = ()) -> Response:
        """Why a link does not work (LINK_PROBLEMS), then what to do next."""
        heading, why = LINK_PROBLEMS.get(code, LINK_PROBLEMS["token_invalid"])
        return self.message(LINK_STATUS.get(code, 410), tenant_name=tenant_name, section=section, heading=heading,
                            paragraphs=[why, *next_steps], actions=actions, tone="problem")


# --- registration on the app ---------------------------------------------------------------------------------

def serve(app, path: str, handler: Callable[[Page], Response], route: str | None = None) -> Response:
    """Runs one page. Whatever fails unexpectedly shows a plain apology page: never a stack trace or JSON."""
    from chalicelib.core.observability import logger
    request = app.current_request
    p = Page(request, path)
    try:
        response = handler(p)
    except Exception:  # noqa: BLE001 - the page must answer in HTML whatever happened
        logger.exception("page failed", extra={"route": f"{p.method} {route or path}"})
        p.set_cookies = []
        response = p.message(500, tenant_name=None, section="", heading="Something went wrong on our side",
                             paragraphs=["Nothing was changed. Please try again in a few minutes."], tone="problem")
    # The route template only: the query and the form may carry tokens and passwords, a path ids.
    logger.info("page served", extra={"route": f"{p.method} {route or path}", "status": response.status_code})
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


def static_files(app) -> None:
    """The one stylesheet (CSP style-src 'self' allows nothing else, inline styles included), the one script
    (script-src 'self') and the icon at /favicon.ico (an SVG, linked from every page)."""
    _static(app, CSS_PATH, "page_stylesheet", "pages.css", "text/css; charset=utf-8")
    _static(app, JS_PATH, "page_script", "pages.js", "text/javascript; charset=utf-8")
    _static(app, ICON_PATH, "page_icon", "favicon.svg", "image/svg+xml", max_age=86400)


def _static(app, path: str, name: str, filename: str, content_type: str, max_age: int = 3600) -> None:
    def view():
        return Response(body=asset(filename), status_code=200,
                        headers={"Content-Type": content_type, "Cache-Control": f"public, max-age={max_age}",
                                 "X-Content-Type-Options": "nosniff", "Cross-Origin-Resource-Policy": "same-origin",
                                 "Content-Security-Policy": "default-src 'none'"})
    view.__name__ = name
    mark_view(view, Public(), page=True)
    app.route(path, methods=["GET"], name=name)(view)
