"""How every route is declared: who may call it (one guard), what it accepts (pydantic models that validate
the body and generate the OpenAPI document), and the error envelope of DESIGN for every failure.

    directory = lazy("chalicelib.flows.directory")   # imported at the first call (web/lazy.py)

    @api.route("/v1/customers", "POST", Admin("directory:manage"), body=directory.shape("CustomerCreate"),
               response=directory.shape("CustomerOut"), status=201)
    def create_customer(call): ...

The handler gets a `Call` (principal, validated body, query, client ip) and path parameters; it returns a
JSON-able value or raises a flow error (core/errors.py). The tenant is always the one in the caller's token."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from chalice import Response

from chalicelib.core import errors
from chalicelib.core.errors import Error
from chalicelib.core.principal import Principal
from chalicelib.web.lazy import ShapeRef, resolve

if TYPE_CHECKING:  # pydantic is imported by the flows a request uses, not by declaring the routes (web/lazy.py)
    from pydantic import BaseModel, ValidationError

MAX_BODY_BYTES = 64 * 1024


class ApiError(Error):
    """An error only the web layer raises, with its HTTP status (405, 415, 500; the refusals of the guard)."""
    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(code, message, **extra)
        self.status = status


# Each kind of flow error and the status it answers (chalicelib/core/errors.py).
STATUS = {errors.Invalid: 400, errors.Unauthenticated: 401, errors.Forbidden: 403, errors.NotFound: 404,
          errors.Conflict: 409, errors.Gone: 410, errors.TooLarge: 413, errors.Locked: 423, errors.Throttled: 429}


def status_of(err: Error) -> int:
    if isinstance(err, ApiError):
        return err.status
    for kind, status in STATUS.items():
        if isinstance(err, kind):
            return status
    return 500


def error_body(code: str, message: str, **extra: Any) -> dict:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(err: Error, headers: dict | None = None) -> Response:
    return Response(body=error_body(err.code, err.message, **err.extra), status_code=status_of(err),
                    headers={"Content-Type": "application/json", "Cache-Control": "no-store", **(headers or {})})


# --- who may call a route -------------------------------------------------------------------------------

class Policy:
    name = "policy"
    token_kinds: tuple = ()

    def allows(self, principal: Principal) -> bool:
        return principal.kind in self.token_kinds

    def describe(self) -> str:
        """The policy's machine name (the OpenAPI document's x-policy, which clients and the fuzzer read)."""
        return self.name

    def refusal(self) -> str:
        """The 403 message for a caller this policy refuses, in words (never the policy's machine name)."""
        return "You are not allowed to do this."

    def check(self, principal: Principal, route: str, params: dict, ip: str | None) -> None:
        """Checks that need the database, run once the token itself is accepted (none by default)."""


class Public(Policy):
    name = "public"


class Staff(Policy):
    """Any signed-in employee or technician of the token's tenant."""
    name = "staff"
    token_kinds = ("staff",)

    def refusal(self) -> str:
        return STAFF_SIGN_IN


class Admin(Policy):
    """Staff holding one permission (the admin role holds them all)."""
    token_kinds = ("staff",)

    def __init__(self, permission: str):
        self.permission = permission
        self.name = f"admin:{permission}"

    def allows(self, principal: Principal) -> bool:
        return super().allows(principal) and self.permission in principal.permissions

    def refusal(self) -> str:
        what = PERMISSION_WORDS.get(self.permission)
        return f"You need permission to {what}." if what else "You need a permission you do not hold."


class PortalUser(Policy):
    name = "portal_user"
    token_kinds = ("portal",)

    def refusal(self) -> str:
        return "This needs a customer portal sign-in."


class Partner(Policy):
    """A partner's token. Its claims are not trusted alone: on every call partners.check_access reads whether
    the portal is still enabled for the token's tenant and still grants `permission` (when one is named)."""
    name = "partner"
    token_kinds = ("partner",)

    def __init__(self, permission: str | None = None):
        self.permission = permission
        if permission:
            self.name = f"partner:{permission}"

    def refusal(self) -> str:
        return "This needs a partner's token."

    def check(self, principal: Principal, route: str, params: dict, ip: str | None) -> None:
        from chalicelib.flows import partners  # imported here: partners imports this module
        partners.check_access(principal, self.permission, route, params, ip)


class PasswordChange(Policy):
    """A signed-in staff member, or one holding the short-lived change token of a forced change."""
    name = "staff_or_password_change"
    token_kinds = ("staff", "password_change")

    def refusal(self) -> str:
        return STAFF_SIGN_IN


class MfaSetup(Policy):
    """A signed-in staff member, or one holding the setup token of a sign-in that must set up a second factor
    first (flows/staff/mfa.py): that token is taken by the authenticator and passkey setup routes and nowhere
    else."""
    name = "staff_or_mfa_setup"
    token_kinds = ("staff", "mfa_setup")

    def refusal(self) -> str:
        return STAFF_SIGN_IN


STAFF_SIGN_IN = "This needs a staff sign-in."
# What each admin permission lets one do, for the 403 of a caller without it.
PERMISSION_WORDS = {
    "directory:manage": "manage customers",
    "accounts:manage": "manage staff accounts",
    "portal:manage": "manage the customer portal",
    "partners:manage": "manage partner portals",
    "audit:read": "read the audit trail",
    "apps:manage": "manage apps",
}


def mark_view(view: Callable, policy: Policy, *, page: bool = False) -> None:
    """Sets the attributes a Chalice view carries: `policy`, who may call it (tests/test_guard.py checks every
    route has one), and `page` on an HTML page."""
    view.__dict__["policy"] = policy
    if page:
        view.__dict__["page"] = True


def authenticate(auth_header: str | None) -> Principal:
    from chalicelib.core.security import keys
    if not auth_header:
        raise ApiError(401, "not_signed_in", "Sign in first: send Authorization: Bearer <access token>.")
    scheme, _, token = auth_header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "invalid_token", "The Authorization header must be: Bearer <access token>.")
    try:
        claims = keys.verify(token.strip())
    except keys.InvalidToken as exc:
        code = "token_expired" if str(exc) == "expired" else "invalid_token"
        raise ApiError(401, code, "The access token is expired or invalid; sign in again.") from None
    if not isinstance(claims.get("tid"), str) or not isinstance(claims.get("typ"), str):
        raise ApiError(401, "invalid_token", "The access token is expired or invalid; sign in again.")
    return Principal(kind=claims["typ"], tenant_id=claims["tid"], subject=claims["sub"],
                     permissions=frozenset(claims.get("perms") or ()), claims=claims)


def _forbidden(policy: Policy, principal: Principal) -> ApiError:
    """403 in words: a caller of the wrong kind hears which sign-in the route needs (a portal user on an admin
    route: a staff sign-in), one of the right kind what it lacks (the permission)."""
    if principal.kind not in policy.token_kinds and "staff" in policy.token_kinds:
        return ApiError(403, "forbidden", STAFF_SIGN_IN)
    return ApiError(403, "forbidden", policy.refusal())


def _tenant_disabled() -> ApiError:
    return ApiError(403, "tenant_disabled", "This business's access is disabled.")


def _check_live(principal: Principal) -> None:
    """A disabled tenant is cut off on every call. A staff or portal session is checked live (sessions.py): one
    read of tenant, session and account; a staff caller's permissions become the live person's."""
    from chalicelib.core import sessions, tenants
    from chalicelib.flows.staff import people
    if principal.kind not in ("staff", "portal"):
        if not tenants.is_active(principal.tenant_id):
            raise _tenant_disabled()
        return
    live = sessions.read(principal)
    if not live.tenant_active:
        raise _tenant_disabled()
    sessions.check(principal, live)
    principal.live = live
    if principal.kind == "staff":
        principal.permissions = frozenset(people.effective_permissions(live.record))


# --- a call as the handler sees it ------------------------------------------------------------------------

@dataclass
class Call:
    principal: Principal | None
    body: Any
    query: dict
    ip: str | None
    user_agent: str | None
    request_id: str

    @property
    def tenant_id(self) -> str:
        if self.principal is None:  # only a Public route has no principal, and it never asks for the tenant
            raise AttributeError("tenant_id: this call has no principal")
        return self.principal.tenant_id

    @property
    def actor(self) -> str:
        return self.principal.subject if self.principal else "anonymous"


@dataclass
class Reply:
    """A handler's answer when it needs a status or headers other than the route's default."""
    body: Any
    status: int = 200
    headers: dict = field(default_factory=dict)


@dataclass
class RouteSpec:
    path: str
    method: str
    policy: Policy
    body: type[BaseModel] | ShapeRef | None
    response: type[BaseModel] | ShapeRef | None
    status: int
    summary: str
    view_name: str
    query: dict
    errors: tuple


def _validation_message(exc: ValidationError) -> tuple[str, list[dict]]:
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        problem = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        problems.append({"field": loc, "problem": problem})
    first = problems[0]
    return f"{first['field']}: {first['problem']}", problems


def _jsonable(value: Any) -> Any:
    if hasattr(type(value), "model_fields"):  # a pydantic model (pydantic is not imported here: web/lazy.py)
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


# Every JSON route of the app, in the order the areas are registered (web/routes/__init__.py): the OpenAPI
# document lists them in this order.
ROUTES: list[RouteSpec] = []
# What a listing route's query takes (the same on every list).
PAGING = {"limit": "Page size, 1-100 (default 50)", "cursor": "next_cursor of the previous page"}


class Api:
    """Declares the JSON routes of one area on its Chalice Blueprint (web/routes/*.py)."""
    def __init__(self, blueprint) -> None:
        self.app = blueprint
        self.routes: list[RouteSpec] = []

    def route(self, path: str, method: str, policy: Policy, *, body: type[BaseModel] | ShapeRef | None = None,
              response: type[BaseModel] | ShapeRef | None = None, status: int = 200, query: dict | None = None,
              errors: tuple = (), content_types: list[str] | None = None) -> Callable:
        def register(fn: Callable) -> Callable:
            spec = RouteSpec(path, method, policy, body, response, status, (fn.__doc__ or fn.__name__).strip(),
                             fn.__name__, query or {}, errors)
            self.routes.append(spec)

            def view(**path_params):
                return self._invoke(spec, fn, path_params)

            view.__name__ = fn.__name__
            view.__doc__ = fn.__doc__
            mark_view(view, policy)
            # Every content type reaches the view so a wrong one gets our envelope, not Chalice's 415.
            self.app.route(path, methods=[method], content_types=content_types or ["*/*"],
                           name=fn.__name__)(view)
            return fn
        return register

    def _invoke(self, spec: RouteSpec, fn: Callable, path_params: dict) -> Response:
        from chalicelib.core.observability import logger
        request = self.app.current_request
        context = request.context or {}
        request_id = context.get("requestId") or uuid.uuid4().hex
        ip = (context.get("identity") or {}).get("sourceIp")
        logger.set_correlation_id(request_id)
        try:
            principal = None
            if not isinstance(spec.policy, Public):
                principal = authenticate(request.headers.get("authorization"))
                if principal.kind not in spec.policy.token_kinds:
                    raise _forbidden(spec.policy, principal)
                _check_live(principal)
                if not spec.policy.allows(principal):
                    raise _forbidden(spec.policy, principal)
                spec.policy.check(principal, f"{spec.method} {spec.path}", path_params, ip)
            body = self._parse_body(resolve(spec.body), request) if spec.body else None
            call = Call(principal, body, dict(request.query_params or {}), ip,
                        request.headers.get("user-agent"), request_id)
            result = fn(call, **path_params)
        except Error as err:
            # The route template, never the concrete path or body: those may carry tokens or passwords.
            logger.info("request refused", extra={"route": f"{spec.method} {spec.path}", "status": status_of(err),
                                                   "code": err.code})
            return error_response(err)
        if isinstance(result, Response):
            return result
        reply = result if isinstance(result, Reply) else Reply(result, spec.status)
        logger.info("request served", extra={"route": f"{spec.method} {spec.path}", "status": reply.status,
                                             "tenant_id": principal.tenant_id if principal else None})
        # 204 has no body: Chalice would send `null`, which a keep-alive client then reads as the start of the
        # next response (found by `make fuzz`)
        if reply.status == 204:
            return Response(body="", status_code=204, headers={"Cache-Control": "no-store", **reply.headers})
        return Response(body=_jsonable(reply.body), status_code=reply.status,
                        headers={"Content-Type": "application/json", "Cache-Control": "no-store", **reply.headers})

    @staticmethod
    def _parse_body(model: type[BaseModel], request) -> BaseModel:
        from pydantic import ValidationError
        raw = request.raw_body or b""
        if len(raw) > MAX_BODY_BYTES:
            raise ApiError(413, "payload_too_large", f"The body is over {MAX_BODY_BYTES} bytes.")
        ctype = (request.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
        try:
            data = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "malformed_json", "The body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_request", "The body must be a JSON object.")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            message, problems = _validation_message(exc)
            raise ApiError(400, "invalid_request", message, fields=problems) from None


def add_method_not_allowed(app) -> None:
    """API Gateway answers other methods on a known path with its own body; route them to the envelope."""
    by_path: dict[str, set] = {}
    for spec in ROUTES:
        by_path.setdefault(spec.path, set()).add(spec.method)
    for path, methods in by_path.items():
        others = [m for m in ("GET", "POST", "PUT", "PATCH", "DELETE") if m not in methods]
        allowed = ", ".join(sorted(methods))

        def not_allowed(allowed=allowed, **_):
            return error_response(ApiError(405, "method_not_allowed", f"Use {allowed} on this path."),
                                  {"Allow": allowed})
        mark_view(not_allowed, Public())
        name = "method_not_allowed_" + path.strip("/").replace("/", "_").replace("{", "").replace("}", "")
        app.route(path, methods=others, content_types=["*/*"], name=name)(not_allowed)
