"""The isolation matrix, generated from the route table: every guarded route called with no token, an expired
token, a forged signature, `alg: none`, and the tokens of other populations (portal user, technician, partner,
a forced-change token); and every route that names a record called by another tenant's admin with tenant A's ids.
Each is refused unless the route's declared policy allows that caller."""
import base64
import json
import re

import pytest

from chalicelib.core.principal import Principal
from chalicelib.core.security import keys
from chalicelib.web.api import Public


def b64(d):
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


def routes(app):
    """The JSON API's guarded routes (console pages answer in HTML: tests/test_console.py walks them)."""
    for path, methods in app.app.routes.items():
        for method, entry in methods.items():
            view = entry.view_function
            if not isinstance(view.policy, Public) and not getattr(view, "page", False):
                yield path, method, entry.view_function.policy


def fill(path, ids=None):
    return re.sub(r"\{([^}]+)\}", lambda m: (ids or {}).get(m.group(1), "x"), path)


def forged(token_kind, tenant_id, good_token):
    header, payload, sig = good_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    if token_kind == "expired":
        return keys.sign({k: v for k, v in claims.items() if k not in ("iat", "exp", "nbf", "iss", "jti")}, -60)
    if token_kind == "forged_signature":
        return f"{header}.{b64({**claims, 'tid': 'another', 'perms': ['accounts:manage']})}.{sig}"
    if token_kind == "alg_none":
        return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."
    raise ValueError(token_kind)


@pytest.mark.parametrize("kind", ["none", "expired", "forged_signature", "alg_none"])
def test_bad_credentials_are_refused_everywhere(app, http, tenant, kind):
    good = tenant.admin_token
    token = None if kind == "none" else forged(kind, tenant.id, good)
    for path, method, _ in routes(app):
        status, body = http.call(method, fill(path), body={}, token=token)
        assert status == 401, (kind, method, path, status, body)


POPULATIONS = {
    "portal_user": {"typ": "portal", "grants": []},
    "technician": {"typ": "staff", "role": "technician", "perms": []},
    "partner": {"typ": "partner", "perms": ["view_customer", "view_location"]},
    "password_change": {"typ": "password_change", "reason": "expired"},
}


@pytest.mark.parametrize("population", sorted(POPULATIONS))
def test_other_populations_get_only_what_their_policy_allows(app, http, tenant, population):
    claims = {"sub": "someone", "tid": tenant.id, **POPULATIONS[population]}
    token = keys.sign(claims, 300)
    if population == "technician":  # a staff token is checked against its live session: a real one
        from staff_helpers import staff_member
        token = staff_member(tenant)[1]
    principal = Principal(kind=claims["typ"], tenant_id=tenant.id, subject="someone",
                          permissions=frozenset(claims.get("perms", ())), claims=claims)
    checked = 0
    for path, method, policy in routes(app):
        if policy.allows(principal):
            continue
        status, body = http.call(method, fill(path), body={}, token=token)
        assert status == 403, (population, method, path, status, body)
        checked += 1
    assert checked >= 10


def test_another_tenants_admin_never_reaches_tenant_a_records(app, http, tenant, other_tenant):
    a = tenant.admin_token
    customer = http.post("/v1/customers", {"name": "A-secret-household", "emails": [f"a-secret@{tenant.id}.example"]},
                         token=a)[1]
    cid = customer["customer_id"]
    location = http.post(f"/v1/customers/{cid}/locations", {"address": "A-secret-street"}, token=a)[1]
    contact = http.post(f"/v1/customers/{cid}/contacts", {"name": "A-secret-contact"}, token=a)[1]
    user = http.post("/v1/portal/invitations", {"customer_id": cid, "email": f"a-secret@{tenant.id}.example"},
                     token=a)[1]
    person = http.post("/v1/people", {"kind": "employee", "name": "A-secret-person",
                                      "email": f"person@{tenant.id}.example"}, token=a)[1]
    ids = {"customer_id": cid, "location_id": location["location_id"], "contact_id": contact["contact_id"],
           "user_id": user["user_id"], "person_id": person.get("person_id", "x")}
    b = other_tenant.admin_token
    checked = 0
    for path, method, _ in routes(app):
        names = set(re.findall(r"\{([^}]+)\}", path))
        if not names or not names <= set(ids):
            continue
        status, body = http.call(method, fill(path, ids), body={}, token=b)
        text = json.dumps(body)
        assert status in (400, 403, 404), (method, path, status, body)
        assert "A-secret" not in text and f"a-secret@{tenant.id}" not in text, (method, path, body)
        checked += 1
    assert checked >= 15
