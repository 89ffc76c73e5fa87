"""Sign-in with Google or Microsoft: OpenID Connect authorization code flow with PKCE (S256), `state` and
`nonce`. The ID token is verified against the provider's JWKS (signature, issuer, audience, expiry, nonce) and
must carry a verified email. An account is created or linked only for a verified email that is on a customer or
location record of the tenant, and only when the tenant allows that provider.

Providers come from the stage's secret `portal-access/<stage>/oidc` (JSON: {"google": {"client_id",
"client_secret", "discovery_url"}, "microsoft": {...}}), read through Powertools Parameters. Tests point a
provider's discovery_url at an OpenID provider running on loopback: the code here is the same either way."""
import base64
import hashlib
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from functools import lru_cache

from chalice import Response
from pynamodb.expressions.update import Action

from chalicelib.core import audit, config, identity, single_use, tenants
from chalicelib.core.errors import Forbidden, Invalid, NotFound, Unauthenticated
from chalicelib.core.models import PortalUser, Tenant, now
from chalicelib.flows import directory
from chalicelib.flows.portal import invitations, portal_sessions

PROVIDERS = ("google", "microsoft")
STATE_SECONDS = 10 * 60
HTTP_TIMEOUT = 10


def secret_name() -> str:
    return f"{config.PROJECT}/{config.stage()}/oidc"


@lru_cache(maxsize=1)
def _provider_secrets():
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    return SecretsProvider(boto3_client=config.client("secretsmanager"))


def provider_config(provider: str) -> dict:
    if provider not in PROVIDERS:
        raise NotFound("unknown_provider", "Sign-in is possible with google or microsoft.")
    try:
        settings = _provider_secrets().get(secret_name(), transform="json", max_age=300) or {}
    except Exception:  # no secret in this stage: the provider is simply not configured
        settings = {}
    conf = settings.get(provider)
    if not conf or not conf.get("client_id") or not conf.get("discovery_url"):
        raise NotFound("provider_not_configured", f"Sign-in with {provider} is not set up here.")
    return conf


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as r:
        return json.loads(r.read())


@lru_cache(maxsize=8)
def _discovery(url: str) -> dict:
    return _get_json(url)


@lru_cache(maxsize=8)
def _jwks_client(jwks_uri: str):
    import jwt
    return jwt.PyJWKClient(jwks_uri, cache_keys=True, lifespan=3600)


def _callback_url(provider: str) -> str:
    return f"{config.public_base_url()}/v1/portal/oidc/{provider}/callback"


def _tenant_allows(tenant_id: str, provider: str) -> Tenant:
    tenant = tenants.active(tenant_id)
    if tenant is None or provider not in (tenant.third_party_signin or []):
        raise Forbidden("provider_not_allowed", f"This business does not offer sign-in with {provider}.")
    return tenant


def start(provider: str, tenant_id: str | None) -> Response:
    if not tenant_id:
        raise Invalid("invalid_request", "tenant_id is required.", field="tenant_id")
    conf = provider_config(provider)
    _tenant_allows(tenant_id, provider)
    discovery = _discovery(conf["discovery_url"])
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    nonce = secrets.token_urlsafe(24)
    # The state is a single-use token: it carries the PKCE verifier and nonce server-side, never in the browser.
    state = single_use.issue("oidc_state", tenant_id, provider, STATE_SECONDS, verifier=verifier, nonce=nonce)
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": conf["client_id"], "redirect_uri": _callback_url(provider),
        "scope": "openid email profile", "state": state, "nonce": nonce, "code_challenge": challenge,
        "code_challenge_method": "S256", "prompt": "select_account"})
    return Response(body="", status_code=302, headers={"Location": f"{discovery['authorization_endpoint']}?{query}",
                                                        "Cache-Control": "no-store"})


def callback(provider: str, query: dict, ip: str | None, user_agent: str | None = None) -> dict:
    """The session, for a client that asked for JSON."""
    return portal_sessions.start(sign_in(provider, query, ip), provider, ip, user_agent)


def sign_in(provider: str, query: dict, ip: str | None) -> PortalUser:
    """The provider's answer checked end to end (state, code, ID token, email on a record): the portal user it
    signs in, linked or created."""
    if query.get("error"):
        raise Unauthenticated("provider_refused", f"{provider} did not sign you in ({query['error'][:60]}).")
    if not query.get("code") or not query.get("state"):
        raise Invalid("invalid_request", "The provider's answer lacks code or state.")
    state = single_use.consume(query["state"], "oidc_state")
    if state.subject_id != provider:
        raise Invalid("token_invalid", "This sign-in was started with another provider.")
    data = state.data.as_dict()
    tenant = _tenant_allows(state.tenant_id, provider)
    conf = provider_config(provider)
    claims = _verified_claims(provider, conf, _exchange_code(conf, provider, query["code"], data["verifier"]),
                              data["nonce"])
    email = identity.email_key(str(claims["email"]))
    allowed = invitations.grants_from_refs(directory.records_for_email(tenant.tenant_id, email))
    if not allowed:
        raise Forbidden("email_not_on_record", "This email is not on any customer record of this business.")
    user = _link_or_create(tenant.tenant_id, email, allowed, f"{provider}:{claims['sub']}")
    audit.record(tenant.tenant_id, "portal.signed_in", actor=user.user_id, ip=ip, provider=provider)
    return user


def _exchange_code(conf: dict, provider: str, code: str, verifier: str) -> str:
    token_endpoint = _discovery(conf["discovery_url"])["token_endpoint"]
    form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": _callback_url(provider), "client_id": conf["client_id"],
                                   "client_secret": conf.get("client_secret", ""), "code_verifier": verifier}).encode()
    request = urllib.request.Request(token_endpoint, data=form, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded",
                                              "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as r:
            answer = json.loads(r.read())
    except (urllib.error.URLError, ValueError):
        raise Unauthenticated("provider_refused", f"{provider} did not accept the sign-in; try again.") from None
    if not answer.get("id_token"):
        raise Unauthenticated("provider_refused", f"{provider} sent no ID token.")
    return answer["id_token"]


def _verified_claims(provider: str, conf: dict, id_token: str, nonce: str) -> dict:
    import jwt
    discovery = _discovery(conf["discovery_url"])
    try:
        key = _jwks_client(discovery["jwks_uri"]).get_signing_key_from_jwt(id_token)
        claims = jwt.decode(id_token, key.key, algorithms=["RS256", "ES256"], audience=conf["client_id"],
                            options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_iss": False})
    except jwt.PyJWTError:
        raise Unauthenticated("id_token_invalid", f"The ID token from {provider} did not verify.") from None
    if not _issuer_ok(discovery["issuer"], claims):
        raise Unauthenticated("id_token_invalid", f"The ID token is not from {provider}.")
    if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise Unauthenticated("id_token_invalid", "The ID token does not belong to this sign-in.")
    # Google states email_verified; Microsoft personal and work accounts state xms_edov (email domain verified).
    verified = claims.get("email_verified") is True or str(claims.get("email_verified")).lower() == "true" \
        or claims.get("xms_edov") is True
    if not claims.get("email") or not verified:
        raise Forbidden("email_not_verified", f"{provider} did not confirm this email address.")
    return claims


def _issuer_ok(expected: str, claims: dict) -> bool:
    """Microsoft's multi-tenant discovery names its issuer with a {tenantid} placeholder: fill in the token's."""
    if "{tenantid}" in expected:
        expected = expected.replace("{tenantid}", str(claims.get("tid", "")))
    return claims.get("iss") == expected


def _link_or_create(tenant_id: str, email: str, allowed: dict, identity: str) -> PortalUser:
    user = invitations.find_user(tenant_id, email)
    if user is not None and user.status == "disabled":
        raise Forbidden("account_disabled", "This account is disabled; contact the business.")
    if user is None:  # `allowed` is never empty here
        user = [invitations.upsert_invited(tenant_id, email, customer_id, access, contact_id, False, identity)
                for customer_id, (access, contact_id) in allowed.items()][-1]
    actions: list[Action] = [PortalUser.linked_identities.add({identity}), PortalUser.updated_at.set(now())]
    if user.status == "invited":  # signing in with a verified email completes the invitation
        backed = [g for g in user.grants or [] if g.customer_id in allowed]
        actions += [PortalUser.status.set("active"),
                    PortalUser.status_key.set(invitations.status_key(tenant_id, "active")),
                    PortalUser.grants.set(backed)]
        single_use.revoke(user.invitation_token_hash, "token_used")
    user.update(actions=actions, add_version_condition=False)
    return user
