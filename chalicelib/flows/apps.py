"""The apps a business registers with its OpenID Provider (issue 17): a name, an audience (`portal`: customer portal
users; `staff`: employees and technicians), exact redirect URIs, and a type: `public` (PKCE, no secret: SPAs and
mobile apps) or `confidential` (a client secret shown once, kept as its SHA-256).

The provider (flows/oauth) calls `find` with the client_id of a request (any tenant: the app says which tenant it
is), `check_secret` for a confidential app, and `default_app` for the "Continue to <app name>" of journeys that
did not start from an app. The admin routes (web/routes/apps.py), the console's Apps section and the operator
console call the rest.

Each tenant has at most one default app per audience: the first app of an audience becomes it, "make default"
moves it, and an AppDefault item (models/apps.py) written in the same transaction as the apps keeps that true under
concurrent changes."""
import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, StrictBool
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from chalicelib.core import audit
from chalicelib.core.errors import Conflict, Invalid, NotFound
from chalicelib.core.models import App, AppDefault, now, transaction
from chalicelib.core.paging import iso_at, make_cursor, page_args
from chalicelib.core.schema import Shape, Strict
from chalicelib.core.text import OneLine

Audience = Literal["portal", "staff"]
ClientType = Literal["public", "confidential"]
AUDIENCES: tuple[str, ...] = ("portal", "staff")
AUDIENCE_WORDS = {"portal": "Customer portal", "staff": "Staff"}
TYPE_WORDS = {"public": "Public", "confidential": "Confidential"}

MAX_URIS = 10  # of each list
MAX_URI_LENGTH = 2000
MAX_APPS_PER_AUDIENCE = 50  # a business has a handful; the cap bounds what one admin token can create
CLIENT_ID = re.compile(r"^app_[A-Za-z0-9_-]{22}$")
SECRET_BYTES = 32  # 256 bits
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# RFC 3986's scheme characters; a private-use scheme must also hold a dot (a reverse domain name, RFC 8252 §7.1)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
DEFAULT_RETRIES = 10  # a transaction that lost to a concurrent one is tried again on what that one left


def not_found() -> NotFound:
    return NotFound("app_not_found", "No app with that client id.")


Uri = Annotated[OneLine, Field(min_length=1, max_length=MAX_URI_LENGTH)]
Name = Annotated[OneLine, Field(min_length=1, max_length=80)]


# --- shapes of the API ----------------------------------------------------------------------------------------

class AppCreate(Strict):
    name: Name
    audience: Audience
    client_type: ClientType = "public"
    redirect_uris: list[Uri]
    post_logout_redirect_uris: list[Uri] = []
    initiate_login_uri: Uri | None = None


class AppPatch(Strict):
    name: Name | None = None
    redirect_uris: list[Uri] | None = None
    post_logout_redirect_uris: list[Uri] | None = None
    initiate_login_uri: Uri | None = None  # null clears it
    is_default: StrictBool | None = None  # true makes this app its audience's default


class AppOut(Shape):
    client_id: str
    name: str
    audience: str
    client_type: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    initiate_login_uri: str | None = None
    is_default: bool
    created_at: str
    updated_at: str


class AppCreated(AppOut):
    client_secret: str | None = None  # confidential apps only; shown in this answer and never again


class AppPage(Shape):
    items: list[AppOut]
    next_cursor: str | None = None


class AppSecret(Shape):
    client_id: str
    client_secret: str  # shown once


def app_out(app: App) -> AppOut:
    return AppOut(client_id=app.client_id, name=app.name, audience=app.audience, client_type=app.client_type,
                  redirect_uris=list(app.redirect_uris or []),
                  post_logout_redirect_uris=list(app.post_logout_redirect_uris or []),
                  initiate_login_uri=app.initiate_login_uri, is_default=bool(app.is_default),
                  created_at=iso_at(app.created_at), updated_at=iso_at(app.updated_at))


# --- what the provider calls ------------------------------------------------------------------------------------

def find(client_id: str) -> App | None:
    """The app of a client_id, whichever tenant it belongs to; None for anything else (also for ids of another
    shape, which never reach the table)."""
    if not isinstance(client_id, str) or not CLIENT_ID.match(client_id):
        return None
    try:
        return App.get(client_id, consistent_read=True)
    except DoesNotExist:
        return None


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_secret(app: App, secret: str) -> bool:
    """Whether `secret` is the confidential app's client secret, compared in constant time. A public app has none,
    so nothing matches."""
    if not app.secret_hash or not isinstance(secret, str) or not secret:
        return False
    return hmac.compare_digest(secret_hash(secret), app.secret_hash)


def default_app(tenant_id: str, audience: str) -> App | None:
    """The tenant's default app of the audience ("portal" or "staff"), or None when it has no app of it."""
    if audience not in AUDIENCES:
        return None
    try:
        pointer = AppDefault.get(AppDefault.key_of(tenant_id, audience), consistent_read=True)
    except DoesNotExist:
        return None
    app = find(pointer.default_client_id)
    return app if app and app.tenant_id == tenant_id else None


# --- validation -------------------------------------------------------------------------------------------------

def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host) in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
    except ValueError:
        return False


def uri_problem(uri: str, *, private_use: bool = True) -> str | None:
    """Why a redirect URI cannot be registered, or None. Redirect URIs are compared as exact strings at
    /oauth2/authorize, so they are kept as typed; here they must be absolute, without a fragment (RFC 6749
    §3.1.2), and https, except http on a loopback address with any port (RFC 8252 §7.3: native apps on the same
    machine) and a private-use scheme holding a dot, such as com.example.app:/callback (RFC 8252 §7.1: mobile
    apps)."""
    if any(ch.isspace() for ch in uri):
        return "must not contain spaces"
    if "#" in uri:
        return "must not have a fragment (#)"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        return "is not a valid URI"
    scheme = uri.split(":", 1)[0] if ":" in uri else ""
    if not SCHEME.match(scheme):
        return "must be a full address starting with https:// (or an app's own scheme in lower case)"
    if scheme in ("https", "http"):
        host = parts.hostname or ""
        if not parts.netloc or not host:
            return "must name a host"
        if "@" in parts.netloc:
            return "must not carry a user name or password"
        if "*" in host:
            return "must name one host exactly (no wildcards)"
        if scheme == "http" and not _loopback(host):
            return "must use https (http only on 127.0.0.1, localhost or [::1])"
        return None
    if private_use and "." in scheme:
        if not uri[len(scheme) + 1:]:
            return "needs a path after the scheme (com.example.app:/callback)"
        return None
    if private_use:
        return "must use https, http on a loopback address, or an app's own scheme with a dot (com.example.app:/callback)"
    return "must use https (http only on 127.0.0.1, localhost or [::1])"


URI_WORDS = {"redirect_uris": "redirect URI", "post_logout_redirect_uris": "post-logout redirect URI"}


def _uris(values: list[str], field: str) -> list[str]:
    unique = list(dict.fromkeys(values))  # the same URI twice is kept once, in the order given
    if len(unique) > MAX_URIS:
        raise Invalid("too_many_redirect_uris", f"Enter at most {MAX_URIS} {URI_WORDS[field]}s.", field=field)
    for uri in unique:
        problem = uri_problem(uri)
        if problem:
            raise Invalid("invalid_redirect_uri", f"The {URI_WORDS[field]} {uri[:200]} {problem}.", field=field)
    return unique


def _initiate_login_uri(value: str | None) -> str | None:
    """Where "Continue to <app name>" sends a person: a web address the browser opens (OpenID Connect Core §4 asks
    for https; http only on a loopback address, for an app on the same machine)."""
    if value is None:
        return None
    problem = uri_problem(value, private_use=False)
    if problem:
        raise Invalid("invalid_initiate_login_uri", f"The initiate login URI {problem}.", field="initiate_login_uri")
    return value


# --- admin: create, list, get, change, delete, rotate ------------------------------------------------------------

def new_client_id() -> str:
    return "app_" + secrets.token_urlsafe(16)  # 128 random bits, 22 URL-safe characters


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def check_addresses(redirect_uris: list[str], post_logout_redirect_uris: list[str],
                    initiate_login_uri: str | None) -> tuple[list[str], list[str], str | None]:
    """An app's addresses as they will be kept, or the first refusal (the console checks them even when another
    field of its form is missing, to say everything at once)."""
    uris = _uris(redirect_uris, "redirect_uris")
    if not uris:
        raise Invalid("redirect_uri_required", "An app needs at least one redirect URI.", field="redirect_uris")
    return uris, _uris(post_logout_redirect_uris, "post_logout_redirect_uris"), _initiate_login_uri(initiate_login_uri)


def create(tenant_id: str, body: AppCreate, actor: str, ip: str | None) -> AppCreated:
    redirect_uris, post_logout, initiate = check_addresses(body.redirect_uris, body.post_logout_redirect_uris,
                                                           body.initiate_login_uri)
    secret = new_secret() if body.client_type == "confidential" else None
    pointer_key = AppDefault.key_of(tenant_id, body.audience)
    for _ in range(DEFAULT_RETRIES):
        app = App(new_client_id(), tenant_id=tenant_id, name=body.name, audience=body.audience,
                  client_type=body.client_type, redirect_uris=redirect_uris, post_logout_redirect_uris=post_logout,
                  initiate_login_uri=initiate, secret_hash=secret_hash(secret) if secret else None)
        pointer = _pointer(pointer_key)
        if pointer is not None and pointer.apps >= MAX_APPS_PER_AUDIENCE:
            raise Conflict("too_many_apps", f"A business can have at most {MAX_APPS_PER_AUDIENCE} apps of each "
                                            "audience; delete one first.")
        try:
            with transaction() as writes:
                if pointer is None:  # the first app of its audience is the default
                    app.is_default = True
                    writes.save(AppDefault(pointer_key, default_client_id=app.client_id, apps=1),
                                condition=AppDefault.key.does_not_exist())
                else:
                    writes.update(AppDefault(pointer_key), actions=[AppDefault.apps.add(1)],
                                  condition=AppDefault.default_client_id == pointer.default_client_id)
                writes.save(app, condition=App.client_id.does_not_exist())
        except TransactWriteError:  # another app of the audience was created or made default meanwhile
            _pause()
            continue
        audit.record(tenant_id, "app.created", actor=actor, target=app.client_id, ip=ip, name=app.name,
                     audience=app.audience, client_type=app.client_type, is_default=bool(app.is_default))
        return AppCreated(**app_out(app).model_dump(), client_secret=secret)
    raise _busy()


def _pause() -> None:
    """After a transaction lost to a concurrent one: a short random wait, so the retries do not collide again."""
    time.sleep(0.02 + secrets.randbelow(80) / 1000)


def _busy() -> Conflict:
    return Conflict("edit_conflict", "The apps of this business were changed at the same time; try again.")


def _pointer(key: str) -> AppDefault | None:
    try:
        return AppDefault.get(key, consistent_read=True)
    except DoesNotExist:
        return None


def get(tenant_id: str, client_id: str) -> App:
    """The tenant's app, or 404 app_not_found (also for another tenant's client_id)."""
    app = find(client_id)
    if app is None or app.tenant_id != tenant_id:
        raise not_found()
    return app


def list_apps(tenant_id: str, query: dict) -> dict:
    """The business's apps in client_id order, a page at a time (`audience` keeps one audience)."""
    limit, start = page_args(query)
    audience = query.get("audience")
    if audience is not None and audience not in AUDIENCES:
        raise Invalid("invalid_request", "audience must be portal or staff.", field="audience")
    start_key = {"tenant_id": {"S": tenant_id}, "client_id": {"S": start}} if start else None
    results = App.by_tenant.query(tenant_id, limit=limit, last_evaluated_key=start_key,
                                  filter_condition=(App.audience == audience) if audience else None)
    items = [app_out(app) for app in results]
    return {"items": items, "next_cursor": make_cursor(results.last_evaluated_key, "client_id")}


def patch(tenant_id: str, client_id: str, body: AppPatch, actor: str, ip: str | None) -> AppOut:
    app = get(tenant_id, client_id)
    given = body.model_fields_set
    actions: list = []
    changed: list[str] = []
    if "name" in given and body.name is not None:
        actions.append(App.name.set(body.name))
        changed.append("name")
    if "redirect_uris" in given and body.redirect_uris is not None:
        uris = _uris(body.redirect_uris, "redirect_uris")
        if not uris:
            raise Invalid("redirect_uri_required", "An app needs at least one redirect URI.", field="redirect_uris")
        actions.append(App.redirect_uris.set(uris))
        changed.append("redirect_uris")
    if "post_logout_redirect_uris" in given and body.post_logout_redirect_uris is not None:
        actions.append(App.post_logout_redirect_uris.set(
            _uris(body.post_logout_redirect_uris, "post_logout_redirect_uris")))
        changed.append("post_logout_redirect_uris")
    if "initiate_login_uri" in given:
        value = _initiate_login_uri(body.initiate_login_uri)
        actions.append(App.initiate_login_uri.set(value) if value else App.initiate_login_uri.remove())
        changed.append("initiate_login_uri")
    if body.is_default is False and app.is_default:
        raise Invalid("default_required", "Each audience keeps one default app: make another app the default "
                                          "instead.", field="is_default")
    if actions:
        try:
            app.update(actions=[*actions, App.updated_at.set(now())], condition=App.tenant_id == tenant_id)
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":  # deleted meanwhile
                raise not_found() from None
            raise
        audit.record(tenant_id, "app.updated", actor=actor, target=client_id, ip=ip, changed=changed)
    if body.is_default and not app.is_default:
        make_default(tenant_id, client_id, actor, ip)
        app = get(tenant_id, client_id)
    return app_out(app)


def make_default(tenant_id: str, client_id: str, actor: str, ip: str | None) -> None:
    """Make the app its audience's default: the old default loses it in the same transaction, conditioned on the
    pointer still naming it, so of two concurrent calls each commits whole or retries on what the other left."""
    app = get(tenant_id, client_id)
    key = AppDefault.key_of(tenant_id, app.audience)
    for _ in range(DEFAULT_RETRIES):
        pointer = _pointer(key)
        if pointer is None:  # only while the app is being deleted
            raise not_found()
        if pointer.default_client_id == client_id:
            return
        stamp = now()
        try:
            with transaction() as writes:
                writes.update(AppDefault(key), actions=[AppDefault.default_client_id.set(client_id)],
                              condition=AppDefault.default_client_id == pointer.default_client_id)
                writes.update(App(client_id), actions=[App.is_default.set(True), App.updated_at.set(stamp)],
                              condition=(App.tenant_id == tenant_id) & (App.audience == app.audience))
                writes.update(App(pointer.default_client_id),
                              actions=[App.is_default.set(False), App.updated_at.set(stamp)],
                              condition=App.client_id.exists())
        except TransactWriteError:
            if find(client_id) is None:
                raise not_found() from None
            _pause()
            continue
        audit.record(tenant_id, "app.updated", actor=actor, target=client_id, ip=ip, changed=["is_default"],
                     previous_default=pointer.default_client_id)
        return
    raise _busy()


def delete(tenant_id: str, client_id: str, actor: str, ip: str | None) -> None:
    """Delete an app: its redirect URIs stop working at once. The default of an audience that has other apps
    cannot go (409 default_app): make another app the default first."""
    app = get(tenant_id, client_id)
    key = AppDefault.key_of(tenant_id, app.audience)
    for _ in range(DEFAULT_RETRIES):
        pointer = _pointer(key)
        is_default = pointer is not None and pointer.default_client_id == client_id
        if is_default and pointer is not None and pointer.apps > 1:
            raise Conflict("default_app", "This is the default app of its audience: make another app the default "
                                          "first.")
        try:
            with transaction() as writes:
                if pointer is None:  # no pointer (never while apps of the audience exist): the app alone
                    writes.delete(App(client_id), condition=App.tenant_id == tenant_id)
                elif is_default:  # the last app of its audience: the audience has no default any more
                    writes.delete(AppDefault(key), condition=(AppDefault.default_client_id == client_id)
                                  & (AppDefault.apps == 1))
                    writes.delete(App(client_id), condition=App.tenant_id == tenant_id)
                else:
                    writes.update(AppDefault(key), actions=[AppDefault.apps.add(-1)],
                                  condition=AppDefault.default_client_id == pointer.default_client_id)
                    writes.delete(App(client_id), condition=(App.tenant_id == tenant_id)
                                  & (App.is_default == False))  # noqa: E712 (a condition, not a comparison)
        except TransactWriteError:
            if find(client_id) is None:
                raise not_found() from None
            _pause()
            continue
        audit.record(tenant_id, "app.deleted", actor=actor, target=client_id, ip=ip, name=app.name,
                     audience=app.audience)
        return
    raise _busy()


def rotate_secret(tenant_id: str, client_id: str, actor: str, ip: str | None) -> AppSecret:
    """A new client secret for a confidential app; the old one stops working at once. 409 for a public app."""
    app = get(tenant_id, client_id)
    if app.client_type != "confidential":
        raise Conflict("public_app", "A public app has no client secret (it uses PKCE).")
    secret = new_secret()
    try:
        app.update(actions=[App.secret_hash.set(secret_hash(secret)), App.updated_at.set(now())],
                   condition=(App.tenant_id == tenant_id) & (App.client_type == "confidential"))
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":  # deleted meanwhile
            raise not_found() from None
        raise
    audit.record(tenant_id, "app.secret_rotated", actor=actor, target=client_id, ip=ip)
    return AppSecret(client_id=client_id, client_secret=secret)
