"""Public routes of the service itself: health, the OpenAPI document, the token-verifying keys."""
from chalice import Blueprint

from chalicelib.core import config
from chalicelib.web import openapi
from chalicelib.web.api import Api, Public, Reply

routes = Blueprint(__name__)
# Public documents a browser app (an SPA's OpenID Connect library) reads from its own origin.
ANY_ORIGIN = {"Access-Control-Allow-Origin": "*"}
api = Api(routes)


@api.route("/v1/health", "GET", Public())
def health(call):
    """Liveness of the API."""
    return {"status": "ok", "stage": config.stage()}


@api.route("/v1/openapi.json", "GET", Public())
def openapi_document(call):
    """This API, as OpenAPI 3.1."""
    return openapi.document()


@api.route("/.well-known/jwks.json", "GET", Public())
def jwks(call):
    """Public keys that verify access tokens (every key not yet retired)."""
    from chalicelib.core.security import keys
    return Reply(keys.jwks(), headers=ANY_ORIGIN)


@api.route("/.well-known/openid-configuration", "GET", Public())
def openid_configuration(call):
    """The OpenID Provider's metadata (OpenID Connect Discovery 1.0): its endpoints, scopes and keys."""
    from chalicelib.flows.oauth import provider
    return Reply(provider.discovery(), headers=ANY_ORIGIN)
