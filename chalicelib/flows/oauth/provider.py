"""The OpenID Provider's protocol: Authlib's authorization server and grant classes (authorization code with PKCE,
refresh token, OpenID Connect's ID token, RFC 7009 revocation) over this product's storage.

- Apps (clients) are a business's registered apps (flows/apps.py); the tenant comes from the app, never from the
  request, so one business's app can only ever sign in that business's people.
- Codes are single-use tokens (the tokens table, by hash), live 60 seconds, are spent by one conditional write
  when redeemed; a code redeemed twice ends the session it gave (RFC 6749 §4.1.2).
- Tokens: the product's own access token (checked live by the guard on every call), a rotating refresh token
  bound to the app (with `offline_access`), and an ID token signed with the same key ring (JWKS), whose `iss` is
  the public base URL, so the API never takes it for an access token.
- PKCE: S256 only, required of public apps.

The web layer (chalicelib/web/pages/oauth.py) turns requests into `Request`s and answers into HTTP."""
import os
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2 import rfc6749
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import grants as oidc_grants
from authlib.oidc.core.grants.util import create_half_hash
from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.core import audit, config, sessions
from chalicelib.core.models import Session, Token, now
from chalicelib.core.security import keys
from chalicelib.core.security.tokens import token_hash
from chalicelib.flows.oauth import subjects

SCOPES = ("openid", "email", "profile", "offline_access")
CODE_SECONDS = 60
ID_TOKEN_SECONDS = 3600


def issuer() -> str:
    return config.public_base_url()


# --- requests ------------------------------------------------------------------------------------------------------

class Request(rfc6749.OAuth2Request):
    """One request to an endpoint: its parameters (the query of a GET, the form of a POST) and headers."""

    def __init__(self, method: str, path: str, query: list[tuple[str, str]], body: str | None, headers):
        if not issuer().startswith("https://"):
            # The local stack serves http on the loopback; on AWS the base URL (and so every request) is https.
            os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
        super().__init__(method, issuer() + path, headers=headers)
        form = parse_qsl(body or "", keep_blank_values=True) if method == "POST" else []
        self._args = dict(query)
        self._form = dict(form)
        self.payload = Payload(query + form)
        # RFC 6749 §3.1, §3.2: no parameter more than once (Authlib reads some as their first value, some as last)
        self.repeated = sorted(name for name, count in Counter(name for name, _ in query + form).items() if count > 1)

    @property
    def args(self):
        return self._args

    @property
    def form(self):
        return self._form


class Payload(rfc6749.OAuth2Payload):
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._data: dict[str, str] = {}
        self._datalist: dict[str, list] = {}
        for key, value in pairs:
            self._data.setdefault(key, value)
            self._datalist.setdefault(key, []).append(value)

    @property
    def data(self):
        return self._data

    @property
    def datalist(self):
        return self._datalist


# --- apps as OAuth clients -------------------------------------------------------------------------------------------

class Client(rfc6749.ClientMixin):
    def __init__(self, app):
        self.app = app
        self.client_id = app.client_id
        self.tenant_id = app.tenant_id

    def get_client_id(self):
        return self.app.client_id

    def get_default_redirect_uri(self):
        return None  # OpenID Connect: the request names its redirect URI, always

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in (self.app.redirect_uris or [])  # exact match: no prefix, no pattern

    def check_client_secret(self, client_secret):
        from chalicelib.flows import apps
        return apps.check_secret(self.app, client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        if self.app.client_type == "public":
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type in ("authorization_code", "refresh_token")

    @property
    def public(self) -> bool:
        return self.app.client_type == "public"


def find_client(client_id: str | None) -> Client | None:
    from chalicelib.flows import apps
    if not client_id or len(client_id) > 64:
        return None
    app = apps.find(client_id)
    return Client(app) if app is not None else None


# --- authorization codes -------------------------------------------------------------------------------------------

def data_of(record: Token) -> dict:
    data = record.data
    return data.as_dict() if hasattr(data, "as_dict") else dict(data or {})


class Code:
    """A redeemed code (a tokens-table item of kind oauth_code) as Authlib's grants read it."""

    def __init__(self, record: Token):
        self.record = record
        self.data = data_of(record)
        self.code_challenge = self.data.get("code_challenge")
        self.code_challenge_method = self.data.get("code_challenge_method")

    def get_redirect_uri(self):
        return self.data["redirect_uri"]

    def get_scope(self):
        return self.data.get("scope", "")

    def get_nonce(self):
        return self.data.get("nonce")

    def get_auth_time(self):
        return self.data.get("auth_time")

    def get_acr(self):
        return None

    def get_amr(self):
        return None


class Pkce(CodeChallenge):
    """S256 only ("plain" shows the verifier to whoever sees the request), required of public apps."""
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if grant.request.client.public and not data.get("code_challenge"):
            raise InvalidRequestError("This app must use PKCE: send code_challenge with code_challenge_method=S256.",
                                      redirect_uri=redirect_uri)
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.", redirect_uri=redirect_uri)
        return super().validate_code_challenge(grant, redirect_uri)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    @staticmethod
    def validate_no_multiple_request_parameter(request):
        """RFC 6749 §3.1: no parameter more than once. Authlib checks five; a repeated nonce, prompt, max_age or
        login_hint would be read here as its first value, and perhaps as its last by whatever stands in between."""
        for name, values in request.payload.datalist.items():
            if len(values) > 1:
                raise InvalidRequestError(f"Multiple '{name[:40]}' in request.", state=request.payload.state)

    def save_authorization_code(self, code, request):
        user: subjects.Subject = request.user
        data = {"client_id": request.client.client_id, "redirect_uri": request.payload.redirect_uri,
                "scope": request.scope or "", "sid": user.session.family_id, "kind": user.kind,
                "auth_time": int(user.session.created_ms // 1000)}
        for name in ("nonce", "code_challenge", "code_challenge_method"):
            if request.payload.data.get(name):
                data[name] = request.payload.data[name]
        if user.link:
            data["link"] = user.link
        expires = now() + CODE_SECONDS
        Token(token_hash(code), kind="oauth_code", tenant_id=user.tenant_id, subject_id=user.user_id,
              expires_at=expires, ttl=expires + 3600, data=data).save()

    def query_authorization_code(self, code, client):
        """Spends the code (one conditional write: of two redemptions, one wins). A code presented again ends the
        session its first redemption started."""
        try:
            record = Token.get(token_hash(code), consistent_read=True)
        except DoesNotExist:
            return None
        if record.kind != "oauth_code" or data_of(record).get("client_id") != client.client_id \
                or record.tenant_id != client.tenant_id:
            return None
        try:
            record.update(actions=[Token.used_at.set(now())], condition=Token.used_at.does_not_exist())
        except UpdateError:
            _reused(record)
            return None
        if record.expires_at < now():
            return None
        return Code(record)

    def delete_authorization_code(self, authorization_code):
        pass  # spent when it was read

    def create_token_response(self):
        status, token, headers = super().create_token_response()
        # remembered on the spent code, so that a second redemption can end the session the first one started;
        # unless one already came while this answer was made: then that session ends now, and nobody gets it
        record = self.request.authorization_code.record
        try:
            record.update(actions=[Token.data.set({**data_of(record), "issued_sid": token["_sid"]})],
                          condition=Token.revoked.does_not_exist())
        except UpdateError:
            _end_session(token["_sid"], record.subject_id, "code_reused")
            raise InvalidGrantError("This code was presented twice.") from None
        return status, token, headers

    def authenticate_user(self, authorization_code: Code):
        record, data = authorization_code.record, authorization_code.data
        return subjects.live(record.tenant_id, data["kind"], record.subject_id, data["sid"], data.get("link"))


def _reused(record: Token) -> None:
    """A spent code presented again: marked so on the code, and the session its first redemption started ends.
    The mark and that session's id are written to the same item, so whichever write comes second sees the other:
    a redemption still under way when the code comes again finds the mark and ends its own session."""
    record.update(actions=[Token.revoked.set("code_reused")])  # the item as it is now (ALL_NEW)
    issued = data_of(record).get("issued_sid")
    if issued:
        _end_session(issued, record.subject_id, "code_reused")
    audit.record(record.tenant_id, "oauth.code_reused", actor=record.subject_id,
                 client_id=data_of(record).get("client_id"))


def _end_session(session_id: str, actor: str, reason: str) -> None:
    try:
        sessions.end(Session.get(f"fam#{session_id}"), actor=actor, reason=reason, ip=None)
    except DoesNotExist:
        pass


class OpenIDCode(oidc_grants.OpenIDCode):
    def exists_nonce(self, nonce, request):
        return False  # a nonce is the app's to check against its own request; codes are single use here

    def generate_user_info(self, user, scope):
        return subjects.claims(user, scope)

    def encode_id_token(self, token, request) -> str:
        """Signed with the key ring (ES256, a kid in JWKS), like every token of this product."""
        claims: dict[str, Any] = {"iss": issuer(), "aud": request.client.client_id, "azp": request.client.client_id,
                                  "sid": token["_sid"]}
        code = request.authorization_code
        if code is not None:
            claims.update({k: v for k, v in (("nonce", code.get_nonce()), ("auth_time", code.get_auth_time()))
                           if v})
        claims["at_hash"] = create_half_hash(token["access_token"], "ES256").decode()
        claims.update(subjects.claims(request.user, token["scope"]))
        return keys.sign(claims, ID_TOKEN_SECONDS)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        """Spends the token (one conditional write); a token presented a second time has leaked or been replayed,
        and ends its session (OAuth 2.0 Security BCP 4.14)."""
        key = f"rt#{token_hash(refresh_token)}"
        try:
            record = Session.get(key, consistent_read=True)
        except DoesNotExist:
            return None
        if not record.client_id:
            return None  # an API sign-in's refresh token: for POST /v1/portal/refresh, not for apps
        if not RefreshCredential(record).check_client(self.request.client):
            return None  # another app's: refused before it is spent, so its own app's next refresh still works
        try:
            record.update(actions=[Session.used_at.set(now())], condition=Session.used_at.does_not_exist())
        except UpdateError:
            try:
                sessions.end(Session.get(f"fam#{record.family_id}"), actor=record.user_id,
                             reason="refresh_token_reused", ip=None)
            except DoesNotExist:
                pass
            audit.record(record.tenant_id, "oauth.refresh_token_reused", actor=record.user_id,
                         client_id=record.client_id)
            return None
        if record.expires_at < now():
            return None
        return RefreshCredential(record)

    def authenticate_user(self, refresh_token):
        record = refresh_token.record
        return subjects.live(record.tenant_id, record.subject_kind, record.user_id, record.family_id, record.link)

    def revoke_old_credential(self, refresh_token):
        pass  # spent when it was read


class RefreshCredential:
    def __init__(self, record: Session):
        self.record = record

    def check_client(self, client):
        return self.record.client_id == client.client_id and self.record.tenant_id == client.tenant_id

    def get_scope(self):
        return self.record.scope or ""


class Revocation(RevocationEndpoint):
    """RFC 7009: a refresh token or an access token of this app; either ends the app's session (its tokens)."""
    SUPPORTED_TOKEN_TYPES = ("access_token", "refresh_token")
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string, token_type_hint):
        if len(token_string) > 4096:
            return None
        try:
            claims = keys.verify(token_string)
        except keys.InvalidToken:
            claims = None
        if claims is not None:
            session = _session(claims.get("sid"))
            return RefreshCredential(session) if session is not None and session.user_id == claims["sub"] else None
        try:
            return RefreshCredential(Session.get(f"rt#{token_hash(token_string)}", consistent_read=True))
        except DoesNotExist:
            return None

    def authenticate_token(self, request, client):
        token = super().authenticate_token(request, client)
        return token if token is not None and token.check_client(client) else None

    def revoke_token(self, token, request):
        session = _session(token.record.family_id)
        if session is not None:
            sessions.end(session, actor=token.record.user_id, reason="revoked", ip=None)


def _session(session_id) -> Session | None:
    if not isinstance(session_id, str) or not session_id or len(session_id) > 64:
        return None
    try:
        return Session.get(f"fam#{session_id}", consistent_read=True)
    except DoesNotExist:
        return None


# --- the server ----------------------------------------------------------------------------------------------------

class Server(rfc6749.AuthorizationServer):
    def __init__(self) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.register_grant(AuthorizationCodeGrant, [Pkce(required=True), OpenIDCode(require_nonce=False)])
        self.register_grant(RefreshTokenGrant)
        self.register_endpoint(Revocation)
        self.register_client_auth_method("client_secret_basic", _basic)
        self.register_token_generator("default", self._tokens)
        self.ip: str | None = None
        self.user_agent: str | None = None

    def query_client(self, client_id):
        return find_client(client_id)

    def create_token_response(self, request=None):
        if request is not None and request.repeated:
            return self.handle_error_response(request, _repeated(request))
        return super().create_token_response(request)

    def create_endpoint_response(self, name, request=None):
        if request is not None and request.repeated:
            return self.handle_error_response(request, _repeated(request))
        return super().create_endpoint_response(name, request)

    def save_token(self, token, request):
        pass  # the app's session and refresh token were written when the token was made (_tokens)

    def send_signal(self, name, *args, **kwargs):
        pass

    def create_oauth2_request(self, request):
        return request

    def create_json_request(self, request):
        return request

    def handle_response(self, status, body, headers):
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if not k.startswith("_")}
        return status, body, dict(headers)

    def _tokens(self, grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
        """A token response: on a code, the app's new session; on a refresh, a new token in the same session."""
        scope = client.get_allowed_scope(scope)
        offline = "offline_access" in scope.split()
        if grant_type == "authorization_code":
            session = subjects.start_app_session(user, client.client_id, scope, self.ip, self.user_agent)
            audit.record(user.tenant_id, "oauth.signed_in", actor=user.user_id, client_id=client.client_id,
                         session=session.family_id, ip=self.ip)
        else:
            session = user.session
        token = {"token_type": "Bearer", "access_token": subjects.access_token(user, session.family_id, client.client_id),
                 "expires_in": subjects.ACCESS_TOKEN_SECONDS, "scope": scope, "_sid": session.family_id}
        if offline:
            token["refresh_token"] = subjects.new_refresh_token(user, session, client.client_id, scope)
        return token


def _repeated(request: Request) -> InvalidRequestError:
    return InvalidRequestError(f"Multiple '{request.repeated[0][:40]}' in request.")


def _basic(query_client, request):
    """Authlib's client_secret_basic, for a header that decodes: one that is not base64 of UTF-8 (Authlib raises
    ValueError on it) is no credential, and the client is refused like any other (401 invalid_client)."""
    from authlib.oauth2.rfc6749.authenticate_client import authenticate_client_secret_basic
    try:
        return authenticate_client_secret_basic(query_client, request)
    except ValueError:  # UnicodeDecodeError is one
        return None


def server(ip: str | None = None, user_agent: str | None = None) -> Server:
    made = Server()
    made.ip, made.user_agent = ip, user_agent
    return made


def discovery() -> dict:
    base = issuer()
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth2/authorize",
        "token_endpoint": f"{base}/oauth2/token",
        "userinfo_endpoint": f"{base}/oauth2/userinfo",
        "revocation_endpoint": f"{base}/oauth2/revoke",
        "end_session_endpoint": f"{base}/oauth2/logout",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [keys.ALGORITHM],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "email",
                             "email_verified", "name", "tenant_id", "grants", "role"],
    }
