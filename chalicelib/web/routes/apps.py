"""The apps a business signs its people in to through its OpenID Provider (admins with apps:manage): register,
list, change, delete, and rotate a confidential app's secret. Another business's client_id answers 404."""
from chalice import Blueprint

from chalicelib.web.api import PAGING, Admin, Api, Reply
from chalicelib.web.lazy import lazy

apps = lazy("chalicelib.flows.apps")

routes = Blueprint(__name__)
api = Api(routes)

APPS = Admin("apps:manage")
URI_ERRORS = ("invalid_redirect_uri", "too_many_redirect_uris", "redirect_uri_required", "invalid_initiate_login_uri")


@api.route("/v1/apps", "POST", APPS, body=apps.shape("AppCreate"), response=apps.shape("AppCreated"), status=201,
           errors=(*URI_ERRORS, "too_many_apps"))
def create_app(call):
    """Register an app: public (PKCE, no secret) or confidential (its client_secret is in this answer only). The
    first app of an audience becomes its default."""
    return apps.create(call.tenant_id, call.body, call.actor, call.ip)


@api.route("/v1/apps", "GET", APPS, response=apps.shape("AppPage"),
           query={**PAGING, "audience": "portal | staff: only this audience's apps"})
def list_apps(call):
    """The business's apps, a page at a time (never a secret)."""
    return apps.list_apps(call.tenant_id, call.query)


@api.route("/v1/apps/{client_id}", "GET", APPS, response=apps.shape("AppOut"), errors=("app_not_found",))
def get_app(call, client_id):
    """One app (never its secret)."""
    return apps.app_out(apps.get(call.tenant_id, client_id))


@api.route("/v1/apps/{client_id}", "PATCH", APPS, body=apps.shape("AppPatch"), response=apps.shape("AppOut"),
           errors=("app_not_found", "default_required", *URI_ERRORS))
def patch_app(call, client_id):
    """Change an app's name and URIs; `is_default: true` makes it its audience's default (the old one stops
    being it)."""
    return apps.patch(call.tenant_id, client_id, call.body, call.actor, call.ip)


@api.route("/v1/apps/{client_id}", "DELETE", APPS, status=204, errors=("app_not_found", "default_app"))
def delete_app(call, client_id):
    """Delete an app: sign-ins through it stop at once. The default of an audience with other apps cannot go."""
    apps.delete(call.tenant_id, client_id, call.actor, call.ip)
    return Reply(None, 204)


@api.route("/v1/apps/{client_id}/secret", "POST", APPS, response=apps.shape("AppSecret"),
           errors=("app_not_found", "public_app"))
def rotate_app_secret(call, client_id):
    """A new client secret for a confidential app, shown in this answer only; the old one stops working at once.
    409 public_app for a public app."""
    return apps.rotate_secret(call.tenant_id, client_id, call.actor, call.ip)
