"""Schemathesis hooks for `make fuzz`, loaded by `st run` through SCHEMATHESIS_HOOKS=fuzz.hooks.

Credentials: every operation gets the token its `x-policy` asks for, signed in here (and again after 401, or
every few minutes): the demo admin for staff and admin routes, a registered portal user for portal routes, the
demo partner for partner routes; public routes go without. fuzz/run.py prepared those accounts and passes them in
FUZZ_* variables.

Protection: the fuzzer may call anything on this throwaway stack, except mutate the three identities it signs in
with (the admin, the portal user, the demo partner portal): a non-GET call naming one of them is sent to a
non-existent id instead, so a random PATCH cannot disable the account every later call depends on.
"""
import os

import schemathesis

from fuzz.run import call

API = os.environ.get("FUZZ_API", "")
PROTECTED = {value for value in os.environ.get("FUZZ_PROTECTED_IDS", "").split(",") if value}


def _token(who: str, path: str, body: dict) -> str:
    status, answer = call(API, "POST", path, body)
    if status != 200:
        raise RuntimeError(f"the fuzz {who} cannot get a token: {status} {answer}")
    return answer["access_token"]


def staff_token() -> str:
    return _token("admin", "/v1/staff/sign-in", {"tenant_id": os.environ["FUZZ_TENANT"],
                                                 "username": os.environ["FUZZ_ADMIN_USERNAME"],
                                                 "password": os.environ["FUZZ_ADMIN_PASSWORD"]})


def portal_token() -> str:
    return _token("portal user", "/v1/portal/sign-in", {"tenant_id": os.environ["FUZZ_TENANT"],
                                                        "email": os.environ["FUZZ_PORTAL_EMAIL"],
                                                        "password": os.environ["FUZZ_PORTAL_PASSWORD"]})


def partner_token() -> str:
    return _token("partner", "/v1/partner/token", {"client_id": os.environ["FUZZ_PARTNER_CLIENT"],
                                                   "client_secret": os.environ["FUZZ_PARTNER_SECRET"],
                                                   "tenant_id": os.environ["FUZZ_TENANT"]})


def token_kind(operation) -> str | None:
    """Which identity an operation needs, from its x-policy (chalicelib/web/openapi.py writes it)."""
    policy = operation.definition.raw.get("x-policy", "public")
    if policy == "public":
        return None
    if policy.startswith("partner"):
        return "partner"
    if policy == "portal_user":
        return "portal"
    return "staff"  # staff, staff_or_password_change, admin:<permission>


SIGN_IN = {"staff": staff_token, "portal": portal_token, "partner": partner_token}


# Tokens live 10-15 minutes: fetch again after 4, and at once after a 401 (e.g. after a fuzzed sign-out).
@schemathesis.auth(refresh_interval=240, cache_by_key=lambda case, ctx: token_kind(ctx.operation) or "public")
class Tokens:
    def get(self, case, ctx):
        kind = token_kind(ctx.operation)
        return SIGN_IN[kind]() if kind else None

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def before_call(ctx, case, kwargs):
    if case.method.upper() == "GET":
        return
    for name, value in (case.path_parameters or {}).items():
        if value in PROTECTED:
            case.path_parameters[name] = "protected-by-fuzz"
    # a policy requiring a second factor would stop the fuzz admin signing in with a password alone (issue 18)
    if case.operation.path == "/v1/staff/mfa/policy" and isinstance(case.body, dict) \
            and str(case.body.get("staff_mfa", "")).startswith("required"):
        case.body["staff_mfa"] = "optional"
