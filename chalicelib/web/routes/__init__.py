"""The JSON API, one Blueprint per area, each module's routes declared with web.api.Api."""
from chalicelib.web.api import ROUTES
from chalicelib.web.routes import apps, directory, mfa, partners, passkeys, people, portal, staff, system

AREAS = (system, staff, mfa, passkeys, directory, portal, people, partners, apps)  # the OpenAPI document's order


def register(app) -> None:
    for area in AREAS:
        app.register_blueprint(area.routes)
        ROUTES.extend(area.api.routes)
