"""Customer Portal → Permissions (portal:manage): Self sign-up, Continue with Google, Continue with Microsoft, read
and saved through the flows of GET/PUT /v1/portal/settings. A provider that is not set up for this deployment
(no client in the stage's OIDC secret: flows/portal/oidc.py provider_config) cannot be switched on; the page says
so next to it. One that is on although not set up can still be switched off."""
from chalice import Response

from chalicelib.core.errors import Error, NotFound
from chalicelib.web.console.shell import Console, console_page
from chalicelib.web.lazy import lazy
from chalicelib.web.pages.forms import Errors, explain

oidc = lazy("chalicelib.flows.portal.oidc")
portal_access = lazy("chalicelib.flows.portal.portal_access")

PORTAL = "portal:manage"
PROVIDERS = (("google", "Continue with Google"), ("microsoft", "Continue with Microsoft"))


def configured(provider: str) -> bool:
    try:
        oidc.provider_config(provider)
        return True
    except NotFound:
        return False


@console_page("/console/portal/permissions", PORTAL)
def permissions(c: Console) -> Response:
    """How customers may get into the portal besides an invitation."""
    errors = Errors()
    current = portal_access.get_settings(c.tenant_id)  # GET /v1/portal/settings
    ready = {provider: configured(provider) for provider, _ in PROVIDERS}
    if c.posted():
        wanted = [p for p, _ in PROVIDERS if c.form.get(p) == "on"]
        for provider, label in PROVIDERS:
            if provider in wanted and not ready[provider] and provider not in current.third_party_signin:
                errors.add(provider, f"{label} cannot be switched on: it is not set up for this service.")
        if not errors:
            try:  # PUT /v1/portal/settings
                portal_access.put_settings(c.tenant_id, portal_access.Settings.model_validate(
                    {"self_signup": c.form.get("self_signup") == "on", "third_party_signin": wanted}),
                    c.principal.subject, c.ip)
                return c.done("/console/portal/permissions", "saved")
            except Error as exc:
                explain(exc, errors, {})
    switches = [{"name": p, "label": label, "on": p in current.third_party_signin, "ready": ready[p]}
                for p, label in PROVIDERS]
    return c.html("console/portal-permissions.html", title="Permissions", status=400 if errors else 200,
                  self_signup=current.self_signup, switches=switches, errors=errors, subnav_current="permissions")


permissions.notices = {"saved": "Permissions saved."}  # type: ignore[attr-defined]
