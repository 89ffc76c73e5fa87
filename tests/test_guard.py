"""Walks every route of the app: each declares who may call it, and anonymous or wrong-role calls fail."""
import re

import pytest

from chalicelib.core.security import keys
from chalicelib.web.api import Admin, PasswordChange, Public, Staff


def all_routes(app):
    for path, methods in app.app.routes.items():
        for method, entry in methods.items():
            yield path, method, entry.view_function


def concrete(path):
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_route_declares_a_policy(app):
    missing = [f"{m} {p}" for p, m, view in all_routes(app) if not hasattr(view, "policy")]
    assert not missing


def token(tenant_id, typ, perms=(), role="staff"):
    return keys.sign({"sub": "someone", "tid": tenant_id, "typ": typ, "perms": list(perms), "role": role}, 300)


def guarded(app):
    """The JSON API's guarded routes (console pages answer in HTML: tests/test_console.py walks them)."""
    return [(p, m, v.policy) for p, m, v in all_routes(app)
            if not isinstance(v.policy, Public) and not getattr(v, "page", False)]


def test_there_are_guarded_routes(app):
    assert len(guarded(app)) >= 12


def test_anonymous_calls_are_refused(app, http):
    for path, method, _ in guarded(app):
        status, body = http.call(method, concrete(path), body={})
        assert status == 401, (method, path, status, body)
        assert body["error"]["code"] == "not_signed_in"


@pytest.mark.parametrize("kind", ["portal", "partner", "password_change", "mfa_setup", "staff_without_permissions"])
def test_wrong_role_calls_are_refused(app, http, tenant, kind):
    typ = "staff" if kind == "staff_without_permissions" else kind
    tok = token(tenant.id, typ)
    if kind == "staff_without_permissions":  # a staff token is checked against its live session: a real one
        from staff_helpers import staff_member
        tok = staff_member(tenant)[1]
    for path, method, policy in guarded(app):
        allowed = policy.allows(__import__("chalicelib.web.api", fromlist=["Principal"]).Principal(
            kind=typ, tenant_id=tenant.id, subject="someone"))
        if allowed:
            continue  # e.g. a staff route for a staff token: covered by the flow tests
        status, body = http.call(method, concrete(path), body={}, token=tok)
        assert status == 403, (kind, method, path, status, body)
        assert body["error"]["code"] == "forbidden"


def test_policies_are_the_ones_we_mean(app):
    policies = {(m, p): v.policy for p, m, v in all_routes(app)}
    assert isinstance(policies[("POST", "/v1/staff/sign-in")], Public)
    assert isinstance(policies[("POST", "/v1/customers")], Admin)
    assert isinstance(policies[("GET", "/v1/staff/me")], Staff)
    assert isinstance(policies[("POST", "/v1/staff/change-password")], PasswordChange)


def test_a_tenant_never_sees_another_tenants_records(http, tenant, other_tenant):
    a, b = tenant.admin_token, other_tenant.admin_token
    status, customer = http.post("/v1/customers", {"name": "Only A", "emails": ["only.a@example.com"]}, token=a)
    assert status == 201
    cid = customer["customer_id"]
    assert http.get(f"/v1/customers/{cid}", token=b)[0] == 404
    assert http.patch(f"/v1/customers/{cid}", {"name": "Hijack"}, token=b)[0] == 404
    assert http.post(f"/v1/customers/{cid}/locations", {"address": "x"}, token=b)[0] == 404
    assert all(c["customer_id"] != cid for c in http.get("/v1/customers", token=b)[1]["items"])
    # a token forged for tenant A by editing B's token fails signature checks (see test_tokens)
    assert http.get(f"/v1/customers/{cid}", token=a)[1]["name"] == "Only A"
