"""The OpenID Provider's endpoints (flows/oauth/provider.py has the protocol): what a business's apps send people
to and call.

    GET  /.well-known/openid-configuration   discovery (routes/system.py; the keys are /.well-known/jwks.json)
    GET  /oauth2/authorize   the hosted sign-in of the app's audience, then back to the app with a code
    POST /oauth2/token       code (PKCE) or refresh token -> tokens
    GET  /oauth2/userinfo    the signed-in account's claims (Bearer access token of an app)
    POST /oauth2/revoke      RFC 7009
    GET  /oauth2/logout      RP-initiated logout: ends the hosted session, back to a registered URI only

Who may call them: anyone (Public); the protocol decides (the app's secret or PKCE, the code, the token). A request
whose app or redirect URI is not right gets an error page and is never redirected (RFC 6749 §4.1.2.1)."""
import json
from urllib.parse import urlencode, urlparse

from chalice import Response

from chalicelib.web.api import Public, mark_view
from chalicelib.web.pages.render import url
from chalicelib.web.pages.serve import SECURITY_HEADERS, Page

PENDING = "pa_authorize"  # the authorize request a sign-in page brings the person back to
SECTION = "Sign in"
SIGN_IN_PAGE = {"portal": "/sign-in", "staff": "/staff/sign-in"}


def hosted_cookie(tenant_id: str, audience: str) -> str:
    """One hosted session per business and kind of account in a browser."""
    return f"pa_hosted_{audience}_{tenant_id}"


# --- /oauth2/authorize ---------------------------------------------------------------------------------------------

def _app_problem(p: Page, heading: str, why: str) -> Response:
    return p.message(400, tenant_name=None, section=SECTION, heading=heading, tone="problem",
                     paragraphs=[why, "Go back to the app and try again. If this keeps happening, tell the business "
                                      "whose app it is."])


def authorize(p: Page) -> Response:
    """Signs the person in to the app: at once when the browser has a hosted session of the app's business (and
    the app did not ask prompt=login), else through the sign-in page of the app's audience, which comes back here."""
    from authlib.oauth2.rfc6749.errors import OAuth2Error
    from authlib.oidc.core.errors import LoginRequiredError

    from chalicelib.flows.oauth import hosted, provider
    request = provider.Request("GET", "/oauth2/authorize", p.query_pairs, None, p.headers)
    client = provider.find_client(request.payload.client_id)
    if client is None:
        return _app_problem(p, "This app is not known here", "The app that sent you here is not registered, or "
                                                             "was removed.")
    redirect_uri = request.payload.redirect_uri
    if len(request.payload.datalist.get("redirect_uri", [])) > 1 or not redirect_uri \
            or not client.check_redirect_uri(redirect_uri):
        return _app_problem(p, "This app sent you to the wrong place", "The app asked to return you to an address "
                                                                       "it has not registered, so we stopped here.")
    app = client.app
    prompts = (request.payload.data.get("prompt") or "").split()
    user = None if "login" in prompts else hosted.subject(p.state(hosted_cookie(app.tenant_id, app.audience)),
                                                          app.tenant_id, app.audience)
    server = provider.server(p.ip, p.user_agent)
    try:
        max_age = _max_age(request.payload.data.get("max_age"), redirect_uri, request.payload.state)
        if user is not None and max_age is not None and not hosted.signed_in_within(user, max_age):
            user = None  # OpenID Connect's max_age: a sign-in older than the app allows is asked for again
        grant = server.get_consent_grant(request, end_user=user)
    except OAuth2Error as error:
        return _protocol_answer(p, *server.handle_error_response(request, error))
    if user is None and "none" in prompts:  # never a form (Authlib checks prompt only with the openid scope)
        return _protocol_answer(p, *server.handle_error_response(request, LoginRequiredError(
            redirect_uri=grant.redirect_uri, state=request.payload.state)))
    if user is None:
        # replayed after the sign-in without what asked for it (the sign-in is then the newest there can be)
        remembered = hosted.remember({k: v for k, v in request.payload.data.items() if k not in ("prompt", "max_age")},
                                     app.tenant_id, app.audience, app.name)
        if remembered is None:
            return _app_problem(p, "This app's request is too long", "The app sent more than we can keep while "
                                                                    "you sign in.")
        p.set_cookie(PENDING, remembered, max_age=hosted.PENDING_SECONDS, same_site="Lax")
        hint = (request.payload.data.get("login_hint") or "")[:254] or None
        field = "email" if app.audience == "portal" else "username"
        return p.redirect(url(SIGN_IN_PAGE[app.audience], tenant_id=app.tenant_id, **{field: hint}))
    return _protocol_answer(p, *server.create_authorization_response(request, grant_user=user, grant=grant))


def _max_age(value: str | None, redirect_uri: str, state: str | None) -> int | None:
    """OpenID Connect's max_age: whole seconds, or invalid_request (back to the app, whose address is checked)."""
    from authlib.oauth2.rfc6749.errors import InvalidRequestError
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise InvalidRequestError("max_age must be a whole number of seconds.", redirect_uri=redirect_uri,
                                  state=state)
    return int(value)


def _protocol_answer(p: Page, status: int, body, headers: dict) -> Response:
    """Authlib's answer: a redirect back to the app (a code, or an error with the state), or an error that has no
    valid place to go, as a page."""
    location = headers.get("Location")
    if location:
        response = p.redirect(location)
        response.status_code = 302
        return response
    error = body if isinstance(body, dict) else json.loads(body or "{}")
    return _app_problem(p, "We could not sign you in to this app",
                        error.get("error_description") or "The app's request was not valid.")


def back_to_app(p: Page, access_token: str) -> tuple[str, str] | None:
    """After any sign-in on a hosted page: the browser's hosted session starts; when an app sent the person here,
    (the app's name, the remembered authorize request replayed without its prompt), else None."""
    from chalicelib.flows.oauth import hosted
    token, tenant_id, audience = hosted.session_token(access_token)
    p.set_cookie(hosted_cookie(tenant_id, audience), token, max_age=hosted.HOSTED_SECONDS, same_site="Lax")
    waiting = hosted.pending(p.state(PENDING), tenant_id)
    if waiting is None or waiting.get("aud_kind") != audience:
        return None
    p.set_cookie(PENDING, "", max_age=0, same_site="Lax")
    return waiting["app"], url("/oauth2/authorize", **waiting["req"])


def continue_after_sign_in(p: Page, access_token: str) -> Response | None:
    """After any sign-in on a hosted page (password, registration, reset, Google, an access link): the browser's
    hosted session starts, and when an app sent the person here, back to it (back_to_app); else None, and the page
    says its own last words."""
    back = back_to_app(p, access_token)
    if back is None:
        return None
    app_name, target = back
    if p.method != "POST":
        return p.redirect(target)
    # After a form, not a redirect: browsers hold every redirect of a form's answer to the page's CSP form-action
    # ('self'), and the last hop goes to the app. A page that reloads itself at once is a navigation of its own.
    response = p.message(200, tenant_name=None, section=SECTION, heading=f"Returning you to {app_name}",
                         paragraphs=["One moment. If nothing happens, choose Continue."],
                         actions=[("Continue", target)])
    response.headers["Refresh"] = f"0; url={target}"
    return response


def waiting_app(p: Page, tenant_id: str | None, audience: str) -> str | None:
    """The name of the app a sign-in page will return the person to, if one sent them."""
    from chalicelib.flows.oauth import hosted
    waiting = hosted.pending(p.state(PENDING), tenant_id)
    return waiting["app"] if waiting and waiting.get("aud_kind") == audience else None


def continue_to_app(tenant_id: str, audience: str) -> list[tuple[str, str]]:
    """The last page's way on when no app is waiting: **Continue to <app name>**, the business's default app of
    that audience (when it says where a sign-in starts)."""
    from chalicelib.flows import apps
    from chalicelib.flows.oauth import provider
    app = apps.default_app(tenant_id, audience)
    if app is None or not app.initiate_login_uri:
        return []
    glue = "&" if "?" in app.initiate_login_uri else "?"
    return [(f"Continue to {app.name}", app.initiate_login_uri + glue + urlencode({"iss": provider.issuer()}))]


# --- /oauth2/logout ------------------------------------------------------------------------------------------------

def logout(p: Page) -> Response:
    """Ends the browser's hosted session of the app's business; back to the app only at a registered post-logout
    URI (with its state), else a page that says so."""
    from chalicelib.core import sessions
    from chalicelib.core.models import Session
    from chalicelib.flows.oauth import hosted, provider
    client = provider.find_client(p.query.get("client_id"))
    hint = p.query.get("id_token_hint")
    if client is None and hint:
        client = provider.find_client(_hint_audience(hint))
    target = p.query.get("post_logout_redirect_uri")
    app = client.app if client else None
    if app is not None:
        token = p.state(hosted_cookie(app.tenant_id, app.audience))
        named = hosted.session_id(token)
        if named:
            try:
                session = Session.get(f"fam#{named[2]}")
                if session.tenant_id == app.tenant_id and session.user_id == named[1]:
                    sessions.end(session, actor=named[1], reason="signed_out", ip=p.ip)
            except Session.DoesNotExist:
                pass
        p.set_cookie(hosted_cookie(app.tenant_id, app.audience), "", max_age=0, same_site="Lax")
        if target and target in (app.post_logout_redirect_uris or []):
            state = p.query.get("state")
            glue = "&" if "?" in target else "?"
            response = p.redirect(target + (glue + urlencode({"state": state}) if state else ""))
            response.status_code = 302
            return response
    return p.message(200, tenant_name=None, section=SECTION, heading="You are signed out",
                     paragraphs=["You are signed out of this business's sign-in pages on this device. "
                                 "You can close this window."])


def _hint_audience(id_token: str) -> str | None:
    """The app an ID token was issued to (`aud`), read from a token this provider signed (expired ones too)."""
    import jwt

    from chalicelib.core.security import keys
    if len(id_token) > 8192:
        return None
    try:
        header = jwt.get_unverified_header(id_token)
        key = next((k for k in keys.jwks()["keys"] if k["kid"] == header.get("kid")), None)
        if key is None:
            return None
        claims = jwt.decode(id_token, jwt.PyJWK(key).key, algorithms=[keys.ALGORITHM],
                            options={"verify_exp": False, "verify_aud": False})
    except jwt.PyJWTError:
        return None
    aud = claims.get("aud")
    return aud if isinstance(aud, str) else None


# --- the JSON endpoints --------------------------------------------------------------------------------------------

def _json(status: int, body, headers: dict | None = None) -> Response:
    merged = {**SECURITY_HEADERS, "Content-Type": "application/json", "Pragma": "no-cache", **(headers or {})}
    return Response(body=json.dumps(body if body is not None else {}), status_code=status, headers=merged)


def _cors(request, client_id: str | None) -> dict:
    """A browser app (an SPA) calls the token and revocation endpoints from its own origin: allowed for the
    origins of the app's registered redirect URIs, and only those."""
    from chalicelib.flows.oauth import provider
    origin = request.headers.get("origin")
    client = provider.find_client(client_id) if origin else None
    if client is None:
        return {}
    origins = {f"{u.scheme}://{u.netloc}" for u in map(urlparse, client.app.redirect_uris or [])
               if u.scheme in ("http", "https")}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin in origins else {}


def _oauth_request(request, path: str):
    from chalicelib.flows.oauth import provider
    body = (request.raw_body or b"").decode("utf-8", "replace")
    return provider.Request(request.method, path, [], body, request.headers)


def _userinfo(authorization: str | None) -> tuple[int, dict]:
    """OpenID Connect's UserInfo: the claims of the scope the app was granted, for a live session only."""
    from chalicelib.core.errors import Error
    from chalicelib.flows.oauth import subjects
    from chalicelib.web.api import ApiError, _check_live, authenticate
    try:
        principal = authenticate(authorization)
        if principal.kind not in ("staff", "portal"):
            raise ApiError(401, "invalid_token", "This is not an access token of a person.")
        _check_live(principal)
    except Error as err:  # ApiError, and the live check's session_ended (a core Error) for an ended session
        return 401, {"error": "invalid_token", "error_description": err.message}
    live = principal.live
    kind = "link" if principal.subject.startswith("link:") else principal.kind
    scope = live.session.scope or "openid email profile"
    subject = subjects.Subject(principal.tenant_id, kind, principal.subject, live.record, live.session,
                               principal.claims.get("lnk"))
    return 200, subjects.claims(subject, scope)


def _protocol(view):
    """An endpoint's answer whatever happens: OAuth's `server_error` in JSON, never a stack trace."""
    def guarded():
        from chalicelib.core.observability import logger
        try:
            return view()
        except Exception:  # noqa: BLE001 - the client gets the protocol's error, the log the details
            logger.exception("oauth endpoint failed", extra={"route": view.__name__})
            return _json(500, {"error": "server_error", "error_description": "Something went wrong; try again."})
    guarded.__name__, guarded.__doc__ = view.__name__, view.__doc__
    return guarded


def register(app) -> None:
    from chalicelib.web.pages.serve import page

    page(app, "/oauth2/authorize", authorize, form=False)
    page(app, "/oauth2/logout", logout, form=False)

    def token():
        """Code (with PKCE) or refresh token -> tokens (RFC 6749 §4.1.3, §6)."""
        from chalicelib.flows.oauth import provider
        request = app.current_request
        oauth = _oauth_request(request, "/oauth2/token")
        identity = (request.context or {}).get("identity") or {}
        status, body, headers = provider.server(identity.get("sourceIp"),
                                                request.headers.get("user-agent")).create_token_response(oauth)
        return _json(status, body, {**headers, **_cors(request, oauth.payload.client_id)})

    def revoke():
        """RFC 7009: an app's refresh or access token; its session ends. 200 whether or not it was known."""
        from chalicelib.flows.oauth import provider
        request = app.current_request
        oauth = _oauth_request(request, "/oauth2/revoke")
        status, body, headers = provider.server().create_endpoint_response("revocation", oauth)
        return _json(status, body, {**headers, **_cors(request, oauth.payload.client_id)})

    def userinfo():
        """The claims of the account an app's access token names (checked live, as on every API call)."""
        status, body = _userinfo(app.current_request.headers.get("authorization"))
        headers = {"Access-Control-Allow-Origin": "*"}
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return _json(status, body, headers)

    def userinfo_preflight():
        return Response(body="", status_code=204, headers={
            "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Headers": "Authorization", "Access-Control-Max-Age": "600"})

    for path, methods, view, ctypes in (
            ("/oauth2/token", ["POST"], token, ["*/*"]),  # any type: a wrong one gets OAuth's error, not a 415
            ("/oauth2/revoke", ["POST"], revoke, ["*/*"]),
            ("/oauth2/userinfo", ["GET", "POST"], userinfo, ["*/*"]),
            ("/oauth2/userinfo", ["OPTIONS"], userinfo_preflight, ["*/*"])):
        view.__name__ = "oauth2_" + view.__name__
        view = _protocol(view)
        mark_view(view, Public(), page=True)
        app.route(path, methods=methods, content_types=ctypes, name=view.__name__)(view)

