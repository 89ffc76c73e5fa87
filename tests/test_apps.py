"""The apps registry (issue 17 "## Apps"): the flow the OpenID Provider reads (find, check_secret, default_app) and
the admin API (POST|GET /v1/apps, GET|PATCH|DELETE /v1/apps/{client_id}, POST /v1/apps/{client_id}/secret), against
the moto server: validation with each code, one default per audience under concurrent "make default", another
tenant's apps not found, office and technician refused, and the secret never in a listing, a read or the audit."""

import pytest
from staff_helpers import run_together

from chalicelib.core.errors import Conflict, Invalid, NotFound

PORTAL = {"name": "Customer Portal", "audience": "portal", "client_type": "public",
          "redirect_uris": ["https://portal.example.com/callback"]}
STAFF = {"name": "Technician App", "audience": "staff", "client_type": "public",
         "redirect_uris": ["com.example.fieldtech:/oauth2redirect"]}


def flow_create(tenant_id, **fields):
    from chalicelib.flows import apps
    return apps.create(tenant_id, apps.AppCreate.model_validate({**PORTAL, **fields}), "admin", None)


# --- the flow the provider calls ----------------------------------------------------------------------------------

def test_find_and_default_app_of_any_tenant(tenant, other_tenant):
    from chalicelib.flows import apps
    first = flow_create(tenant.id)
    second = flow_create(tenant.id, name="Second portal app")
    theirs = flow_create(other_tenant.id)
    assert first.client_id.startswith("app_") and len(first.client_id) == 26
    assert len({first.client_id, second.client_id, theirs.client_id}) == 3
    found = apps.find(first.client_id)
    assert found is not None and found.tenant_id == tenant.id and found.audience == "portal"
    assert apps.find(theirs.client_id).tenant_id == other_tenant.id
    for wrong in ("", "app_", first.client_id.upper(), first.client_id + "x", f"default#{tenant.id}#portal",
                  " " + first.client_id):
        assert apps.find(wrong) is None
    assert first.is_default and not second.is_default
    assert apps.default_app(tenant.id, "portal").client_id == first.client_id
    assert apps.default_app(other_tenant.id, "portal").client_id == theirs.client_id
    assert apps.default_app(tenant.id, "staff") is None
    assert apps.default_app(tenant.id, "nobody") is None


def test_check_secret(tenant):
    from chalicelib.flows import apps
    public = flow_create(tenant.id)
    confidential = flow_create(tenant.id, client_type="confidential", name="Back office")
    assert public.client_secret is None and len(confidential.client_secret) >= 43
    stored = apps.find(confidential.client_id)
    assert stored.secret_hash and confidential.client_secret not in stored.secret_hash
    assert apps.check_secret(stored, confidential.client_secret)
    assert not apps.check_secret(stored, confidential.client_secret + "x")
    assert not apps.check_secret(stored, "")
    assert not apps.check_secret(apps.find(public.client_id), "")
    assert not apps.check_secret(apps.find(public.client_id), confidential.client_secret)


@pytest.mark.parametrize("uri", [
    "https://app.example.com/callback", "https://app.example.com:8443/cb?x=1", "http://127.0.0.1/callback",
    "http://127.0.0.1:8400/callback", "http://localhost:3000/cb", "http://[::1]:9000/", "com.example.app:/callback",
    "com.example.fieldtech:/oauth2redirect"])
def test_redirect_uris_accepted(uri):
    from chalicelib.flows import apps
    assert apps.uri_problem(uri) is None


@pytest.mark.parametrize("uri", [
    "http://app.example.com/callback", "https://app.example.com/cb#frag", "https://app.example.com/cb#",
    "/callback", "app.example.com/callback", "myapp:/callback", "javascript:alert(1)", "data:text/html,x",
    "https:///nohost", "https://user:pw@app.example.com/cb", "https://*.example.com/cb", "http://127.0.0.2/cb",
    "http://localhost.example.com/cb", "https://app.example.com/a b", "https://app.example.com:99999/cb",
    "ftp://files.example.com/", "HTTPS://app.example.com/cb", "com.example.app:"])
def test_redirect_uris_refused(uri):
    from chalicelib.flows import apps
    assert apps.uri_problem(uri) is not None


def test_validation_codes(tenant):
    cases = [({"redirect_uris": []}, "redirect_uri_required", "redirect_uris"),
             ({"redirect_uris": ["http://app.example.com/cb"]}, "invalid_redirect_uri", "redirect_uris"),
             ({"post_logout_redirect_uris": ["https://x.example/#a"]}, "invalid_redirect_uri",
              "post_logout_redirect_uris"),
             ({"redirect_uris": [f"https://app.example.com/{i}" for i in range(11)]}, "too_many_redirect_uris",
              "redirect_uris"),
             ({"initiate_login_uri": "com.example.app:/start"}, "invalid_initiate_login_uri", "initiate_login_uri")]
    for fields, code, field in cases:
        with pytest.raises(Invalid) as refused:
            flow_create(tenant.id, **fields)
        assert (refused.value.code, refused.value.extra["field"]) == (code, field), fields


def test_concurrent_make_default_leaves_exactly_one(tenant):
    from chalicelib.core.models import App
    from chalicelib.flows import apps
    made = [flow_create(tenant.id, name=f"App {i}") for i in range(5)]
    results = run_together(5, lambda i: apps.make_default(tenant.id, made[i].client_id, "admin", None))
    assert not [r for r in results if isinstance(r, Exception)], results
    defaults = [a for a in App.by_tenant.query(tenant.id) if a.is_default]
    assert len(defaults) == 1
    assert apps.default_app(tenant.id, "portal").client_id == defaults[0].client_id


def test_concurrent_first_apps_make_one_default(tenant):
    from chalicelib.core.models import App
    results = run_together(4, lambda i: flow_create(tenant.id, name=f"App {i}"))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.is_default for r in results) == 1
    assert sum(a.is_default for a in App.by_tenant.query(tenant.id)) == 1


def test_delete_default_only_when_last_of_its_audience(tenant):
    from chalicelib.flows import apps
    first = flow_create(tenant.id)
    second = flow_create(tenant.id, name="Second")
    with pytest.raises(Conflict) as refused:
        apps.delete(tenant.id, first.client_id, "admin", None)
    assert refused.value.code == "default_app"
    apps.delete(tenant.id, second.client_id, "admin", None)
    apps.delete(tenant.id, first.client_id, "admin", None)
    assert apps.default_app(tenant.id, "portal") is None and apps.find(first.client_id) is None
    again = flow_create(tenant.id, name="Again")
    assert again.is_default and apps.default_app(tenant.id, "portal").client_id == again.client_id
    with pytest.raises(NotFound):
        apps.delete(tenant.id, first.client_id, "admin", None)
