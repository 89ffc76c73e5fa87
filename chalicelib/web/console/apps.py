"""Apps (apps:manage): the apps that sign the business's people in through portal-access (issue 17). The list (name,
who signs in, type, default), **Add app**, and an app's page: edit its name and addresses, **Make default**,
**Rotate secret** (a confidential app's new secret shown once, in the answer to that POST, never in an address, a
cookie or a log) and **Delete app** behind a confirmation.

Every page calls the flow the JSON API calls (flows/apps.py: POST|GET /v1/apps, GET|PATCH|DELETE
/v1/apps/{client_id}, POST /v1/apps/{client_id}/secret), in-process, with the signed-in admin as actor."""
from urllib.parse import quote

from chalice import Response

from chalicelib.core.errors import Error, NotFound
from chalicelib.web.api import status_of
from chalicelib.web.console.shell import Console, console_page
from chalicelib.web.lazy import lazy
from chalicelib.web.pages.forms import Errors, explain
from chalicelib.web.pages.render import url

apps = lazy("chalicelib.flows.apps")
pydantic = lazy("pydantic")

APPS = "apps:manage"
LIST = "/console/apps"
PAGE_SIZE = "50"
AUDIENCES = (("portal", "Customer portal"), ("staff", "Staff"))
AUDIENCE_HINTS = {"portal": "Your customers sign in with their customer portal account.",
                  "staff": "Your employees and technicians sign in with their staff account."}
TYPES = (("public", "Public"), ("confidential", "Confidential"))
TYPE_HINTS = {"public": "A website that runs in the browser, or a mobile app. It has no secret (it proves itself "
                        "with PKCE).",
              "confidential": "An app with its own server that can keep a secret. It gets a client secret."}
FIELDS = {"name": "name", "redirect_uris": "redirect_uris", "post_logout_redirect_uris": "post_logout_redirect_uris",
          "initiate_login_uri": "initiate_login_uri", "audience": "audience", "client_type": "client_type"}
NOTICES = {
    "created": "App added. Give its client ID to the people who build the app.",
    "saved": "Changes saved.",
    "made_default": "This app is now the default. \u201cContinue to\u201d buttons after sign-up and password resets "
                    "lead to it.",
    "deleted": "App deleted. People can no longer sign in to it.",
}


def app_path(client_id: str, *rest: str) -> str:
    return "/".join((LIST, quote(client_id, safe=""), *rest))


def lines(value: str) -> list[str]:
    """A text box's addresses, one per line; blank lines left out."""
    return [line.strip() for line in value.splitlines() if line.strip()]


def not_found(c: Console) -> Response:
    return c.html("console/apps-not-found.html", status=404, title="App not found")


def app_or_none(c: Console, client_id: str):
    try:
        return apps.get(c.tenant_id, client_id)  # GET /v1/apps/{client_id}: another business's id is not found
    except NotFound:
        return None


# --- the list ----------------------------------------------------------------------------------------------------

@console_page(LIST, APPS, form=False)
def listing(c: Console) -> Response:
    """The business's apps: name, who signs in, type and which is the default (GET /v1/apps)."""
    query = {"limit": PAGE_SIZE, **({"cursor": c.query["cursor"]} if c.query.get("cursor") else {})}
    errors = Errors()
    found: dict = {"items": [], "next_cursor": None}
    try:
        found = apps.list_apps(c.tenant_id, query)
    except Error:  # a cursor that is not one of ours
        errors.add(None, "That page of the list could not be found. Start again from the first page.")
    more = url(LIST, cursor=found["next_cursor"]) if found["next_cursor"] else None
    return c.html("console/apps.html", status=400 if errors else 200, title="Apps", items=found["items"],
                  errors=errors, more=more, first=not c.query.get("cursor"), path=app_path,
                  audience_words=dict(AUDIENCES), type_words=dict(TYPES))


listing.notices = NOTICES  # type: ignore[attr-defined]


# --- Add app -----------------------------------------------------------------------------------------------------

@console_page("/console/apps/new", APPS)
def add(c: Console) -> Response:
    """Add app: name, who signs in, type and addresses (POST /v1/apps). A confidential app's secret is shown once."""
    errors = Errors()
    form = {"name": "", "audience": "", "client_type": "public", "redirect_uris": "", "post_logout_redirect_uris": "",
            "initiate_login_uri": ""}
    if c.posted():
        form.update({k: c.form.get(k, "") for k in form})
        if form["audience"] not in dict(AUDIENCES):
            errors.add("audience", "Choose who signs in to this app.")
        if form["client_type"] not in dict(TYPES):
            errors.add("client_type", "Choose the type of app.")
        if not form["name"].strip():
            errors.add("name", "Enter the app's name.")
        if errors:  # the addresses too, so that every problem is said at once
            try:
                apps.check_addresses(lines(form["redirect_uris"]), lines(form["post_logout_redirect_uris"]),
                                     form["initiate_login_uri"].strip() or None)
            except Error as exc:
                explain(exc, errors, FIELDS)
        else:
            try:
                body = apps.AppCreate.model_validate({
                    "name": form["name"], "audience": form["audience"], "client_type": form["client_type"],
                    "redirect_uris": lines(form["redirect_uris"]),
                    "post_logout_redirect_uris": lines(form["post_logout_redirect_uris"]),
                    "initiate_login_uri": form["initiate_login_uri"].strip() or None})
                made = apps.create(c.tenant_id, body, c.principal.subject, c.ip)
            except (pydantic.ValidationError, Error) as exc:
                explain(exc, errors, FIELDS)
            else:
                if made.client_secret:  # shown in this answer only
                    return app_page(c, apps.get(c.tenant_id, made.client_id), Errors(), secret=made.client_secret,
                                    secret_words="created")
                return c.done(app_path(made.client_id), "created")
    return c.html("console/apps-new.html", status=400 if errors else 200, title="Add app", form=form, errors=errors,
                  audiences=AUDIENCES, audience_hints=AUDIENCE_HINTS, types=TYPES, type_hints=TYPE_HINTS)


# --- an app's page -----------------------------------------------------------------------------------------------

def app_page(c: Console, app, errors: Errors, status: int = 200, form: dict | None = None, secret: str | None = None,
             secret_words: str = "") -> Response:
    shown = apps.app_out(app)
    form = form or {"name": shown.name, "redirect_uris": "\n".join(shown.redirect_uris),
                    "post_logout_redirect_uris": "\n".join(shown.post_logout_redirect_uris),
                    "initiate_login_uri": shown.initiate_login_uri or ""}
    return c.html("console/apps-app.html", status=status, title=shown.name, app=shown, form=form, errors=errors,
                  secret=secret, secret_words=secret_words, path=app_path,
                  audience=dict(AUDIENCES)[shown.audience], type_words=dict(TYPES)[shown.client_type],
                  # the page is also the answer to POSTs to other paths (Add app, Rotate secret): each form's own token
                  edit_csrf=c.csrf(app_path(shown.client_id)),
                  default_csrf=c.csrf(app_path(shown.client_id, "default")),
                  secret_csrf=c.csrf(app_path(shown.client_id, "secret")))


@console_page("/console/apps/{client_id}", APPS)
def app(c: Console, client_id: str) -> Response:
    """An app: its client ID, who signs in, type; edit its name and addresses (PATCH /v1/apps/{client_id}); Make
    default, Rotate secret, Delete app."""
    found = app_or_none(c, client_id)
    if found is None:
        return not_found(c)
    if not c.posted():
        return app_page(c, found, Errors())
    form = {k: c.form.get(k, "") for k in ("name", "redirect_uris", "post_logout_redirect_uris",
                                           "initiate_login_uri")}
    errors = Errors()
    if not form["name"].strip():
        errors.add("name", "Enter the app's name.")
    else:
        try:
            body = apps.AppPatch.model_validate({
                "name": form["name"], "redirect_uris": lines(form["redirect_uris"]),
                "post_logout_redirect_uris": lines(form["post_logout_redirect_uris"]),
                "initiate_login_uri": form["initiate_login_uri"].strip() or None})
            apps.patch(c.tenant_id, client_id, body, c.principal.subject, c.ip)
        except NotFound:
            return not_found(c)
        except (pydantic.ValidationError, Error) as exc:
            explain(exc, errors, FIELDS)
        else:
            return c.done(app_path(client_id), "saved")
    return app_page(c, found, errors, 400, form=form)


app.notices = NOTICES  # type: ignore[attr-defined]


@console_page("/console/apps/{client_id}/default", APPS)
def make_default(c: Console, client_id: str) -> Response:
    """Make default (PATCH /v1/apps/{client_id} with is_default: true); a GET shows the app's page."""
    found = app_or_none(c, client_id)
    if found is None:
        return not_found(c)
    if not c.posted():
        return c.page.redirect(url(app_path(client_id)))
    try:
        apps.patch(c.tenant_id, client_id, apps.AppPatch(is_default=True), c.principal.subject, c.ip)
    except NotFound:
        return not_found(c)
    except Error as err:  # edit_conflict: the apps kept changing at the same moment
        return app_page(c, found, Errors().add(None, err.message), status_of(err))
    return c.done(app_path(client_id), "made_default")


@console_page("/console/apps/{client_id}/secret", APPS)
def rotate_secret(c: Console, client_id: str) -> Response:
    """Rotate secret (POST /v1/apps/{client_id}/secret): the new secret once, in this answer; a GET shows the app."""
    found = app_or_none(c, client_id)
    if found is None:
        return not_found(c)
    if not c.posted():
        return c.page.redirect(url(app_path(client_id)))
    try:
        made = apps.rotate_secret(c.tenant_id, client_id, c.principal.subject, c.ip)
    except NotFound:
        return not_found(c)
    except Error as err:  # public_app: a public app has no secret
        return app_page(c, found, Errors().add(None, err.message), status_of(err))
    return app_page(c, apps.get(c.tenant_id, client_id), Errors(), secret=made.client_secret,
                    secret_words="rotated")


@console_page("/console/apps/{client_id}/delete", APPS)
def delete(c: Console, client_id: str) -> Response:
    """Delete app, behind a confirmation (DELETE /v1/apps/{client_id})."""
    found = app_or_none(c, client_id)
    if found is None:
        return not_found(c)
    errors, status = Errors(), 200
    if c.posted():
        try:
            apps.delete(c.tenant_id, client_id, c.principal.subject, c.ip)
        except NotFound:
            return not_found(c)
        except Error as err:
            words = dict(AUDIENCES)[found.audience].lower()
            errors.add(None, f"This is the default app for {words} sign-ins. Make another {words} app the default "
                             "first, then delete this one." if err.code == "default_app" else err.message)
            status = status_of(err)
        else:
            return c.done(LIST, "deleted")
    return c.html("console/apps-delete.html", status=status, title=f"Delete {found.name}", app=apps.app_out(found),
                  errors=errors, path=app_path, audience=dict(AUDIENCES)[found.audience])
