"""The apps registry (issue 17 "## Apps"): the flow the OpenID Provider reads (find, check_secret, default_app) and
the admin API (POST|GET /v1/apps, GET|PATCH|DELETE /v1/apps/{client_id}, POST /v1/apps/{client_id}/secret), against
the moto server: validation with each code, one default per audience under concurrent "make default", another
tenant's apps not found, office and technician refused, and the secret never in a listing, a read or the audit."""

import json

import pytest
from staff_helpers import run_together, staff_member, threaded_app

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
    made = [flow_create(tenant.id, name=f"App {i}") for i in range(6)]
    results = run_together(6, lambda i: apps.make_default(tenant.id, made[i].client_id, "admin", None))
    assert not [r for r in results if isinstance(r, Exception)], results
    defaults = [a for a in App.by_tenant.query(tenant.id) if a.is_default]
    assert len(defaults) == 1
    assert apps.default_app(tenant.id, "portal").client_id == defaults[0].client_id


def test_concurrent_first_apps_make_one_default(tenant):
    from chalicelib.core.models import App
    results = run_together(8, lambda i: flow_create(tenant.id, name=f"App {i}"))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.is_default for r in results) == 1
    assert sum(a.is_default for a in App.by_tenant.query(tenant.id)) == 1
    from chalicelib.core.models import AppDefault
    assert AppDefault.get(AppDefault.key_of(tenant.id, "portal")).apps == 8  # the count the cap reads


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


# --- the admin API ------------------------------------------------------------------------------------------------

def api_create(http, token, **fields):
    status, body = http.post("/v1/apps", {**PORTAL, **fields}, token=token)
    assert status == 201, body
    return body


def test_create_list_get_patch_delete(http, tenant):
    token = tenant.admin_token
    portal = api_create(http, token, post_logout_redirect_uris=["https://portal.example.com/"],
                        initiate_login_uri="https://portal.example.com/")
    assert portal["is_default"] and portal["client_type"] == "public" and "client_secret" not in portal
    assert portal["redirect_uris"] == ["https://portal.example.com/callback"]
    staff = api_create(http, token, **STAFF)
    assert staff["is_default"] and staff["audience"] == "staff"
    second = api_create(http, token, name="Second portal app")
    assert not second["is_default"]

    status, listed = http.get("/v1/apps", token=token)
    assert status == 200 and {a["client_id"] for a in listed["items"]} == {
        portal["client_id"], staff["client_id"], second["client_id"]}
    status, only_staff = http.get("/v1/apps?audience=staff", token=token)
    assert [a["client_id"] for a in only_staff["items"]] == [staff["client_id"]]
    assert http.get("/v1/apps?audience=everyone", token=token)[0] == 400
    status, page = http.get("/v1/apps?limit=2", token=token)
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = http.get(f"/v1/apps?limit=2&cursor={page['next_cursor']}", token=token)[1]
    assert len(rest["items"]) == 1 and not rest.get("next_cursor")

    status, got = http.get(f"/v1/apps/{portal['client_id']}", token=token)
    assert status == 200 and got == portal

    status, changed = http.patch(f"/v1/apps/{second['client_id']}", {
        "name": "  Renamed  ", "redirect_uris": ["http://127.0.0.1:8400/callback", "http://127.0.0.1:8400/callback"],
        "initiate_login_uri": "http://127.0.0.1:8400/", "is_default": True}, token=token)
    assert status == 200, changed
    assert changed["name"] == "Renamed" and changed["redirect_uris"] == ["http://127.0.0.1:8400/callback"]
    assert changed["is_default"] and changed["initiate_login_uri"] == "http://127.0.0.1:8400/"
    assert not http.get(f"/v1/apps/{portal['client_id']}", token=token)[1]["is_default"]
    status, cleared = http.patch(f"/v1/apps/{second['client_id']}", {"initiate_login_uri": None}, token=token)
    assert status == 200 and "initiate_login_uri" not in cleared
    status, refused = http.patch(f"/v1/apps/{second['client_id']}", {"is_default": False}, token=token)
    assert status == 400 and refused["error"]["code"] == "default_required"
    status, refused = http.patch(f"/v1/apps/{second['client_id']}", {"audience": "staff"}, token=token)
    assert status == 400 and refused["error"]["code"] == "invalid_request"

    status, refused = http.call("DELETE", f"/v1/apps/{second['client_id']}", token=token)
    assert status == 409 and refused["error"]["code"] == "default_app"
    assert http.call("DELETE", f"/v1/apps/{portal['client_id']}", token=token)[0] == 204
    status, gone = http.get(f"/v1/apps/{portal['client_id']}", token=token)
    assert status == 404 and gone["error"]["code"] == "app_not_found"
    assert http.call("DELETE", f"/v1/apps/{second['client_id']}", token=token)[0] == 204  # the last one


def test_rotate_secret_and_secrets_never_shown_again(http, tenant):
    from chalicelib.core.models import AuditEvent
    from chalicelib.flows import apps
    token = tenant.admin_token
    made = api_create(http, token, client_type="confidential", name="Back office")
    first = made["client_secret"]
    assert first and apps.check_secret(apps.find(made["client_id"]), first)
    status, rotated = http.post(f"/v1/apps/{made['client_id']}/secret", token=token)
    assert status == 200 and rotated["client_id"] == made["client_id"] and rotated["client_secret"] != first
    stored = apps.find(made["client_id"])
    assert apps.check_secret(stored, rotated["client_secret"]) and not apps.check_secret(stored, first)
    public = api_create(http, token)
    status, refused = http.post(f"/v1/apps/{public['client_id']}/secret", token=token)
    assert status == 409 and refused["error"]["code"] == "public_app"
    seen = json.dumps([http.get("/v1/apps", token=token)[1], http.get(f"/v1/apps/{made['client_id']}", token=token)[1],
                       http.patch(f"/v1/apps/{made['client_id']}", {"name": "Back office 2"}, token=token)[1]])
    assert "secret" not in seen and first not in seen and rotated["client_secret"] not in seen
    trail = [e for e in AuditEvent.query(tenant.id) if e.action.startswith("app.")]
    assert {e.action for e in trail} == {"app.created", "app.updated", "app.secret_rotated"}
    text = json.dumps([[e.action, e.target, e.details.as_dict() if e.details else {}] for e in trail])
    assert first not in text and rotated["client_secret"] not in text
    assert first not in json.dumps(stored.attribute_values)


@pytest.mark.parametrize("fields,code,field", [
    ({"redirect_uris": []}, "redirect_uri_required", "redirect_uris"),
    ({"redirect_uris": ["http://portal.example.com/callback"]}, "invalid_redirect_uri", "redirect_uris"),
    ({"redirect_uris": ["https://portal.example.com/cb#x"]}, "invalid_redirect_uri", "redirect_uris"),
    ({"redirect_uris": ["myapp:/callback"]}, "invalid_redirect_uri", "redirect_uris"),
    ({"post_logout_redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri", "post_logout_redirect_uris"),
    ({"redirect_uris": [f"https://a.example/{i}" for i in range(11)]}, "too_many_redirect_uris", "redirect_uris"),
    ({"post_logout_redirect_uris": [f"https://a.example/{i}" for i in range(11)]}, "too_many_redirect_uris",
     "post_logout_redirect_uris"),
    ({"initiate_login_uri": "http://portal.example.com/"}, "invalid_initiate_login_uri", "initiate_login_uri"),
    ({"name": ""}, "invalid_request", "name"),
    ({"name": "x" * 81}, "invalid_request", "name"),
    ({"name": "two\nlines"}, "invalid_request", "name"),
    ({"audience": "partners"}, "invalid_request", "audience"),
    ({"client_type": "secretive"}, "invalid_request", "client_type"),
    ({"redirect_uris": "https://portal.example.com/callback"}, "invalid_request", "redirect_uris"),
    ({"client_secret": "chosen"}, "invalid_request", "client_secret"),
])
def test_validation_over_http(http, tenant, fields, code, field):
    status, body = http.post("/v1/apps", {**PORTAL, **fields}, token=tenant.admin_token)
    assert status == 400 and body["error"]["code"] == code, body
    named = body["error"].get("field") or body["error"]["fields"][0]["field"]
    assert named == field, body
    assert http.get("/v1/apps", token=tenant.admin_token)[1]["items"] == []  # nothing written


def test_patch_validates_like_create(http, tenant):
    made = api_create(http, tenant.admin_token)
    for fields, code in [({"redirect_uris": []}, "redirect_uri_required"),
                         ({"redirect_uris": ["http://x.example/"]}, "invalid_redirect_uri"),
                         ({"post_logout_redirect_uris": ["https://x.example/#"]}, "invalid_redirect_uri"),
                         ({"initiate_login_uri": "ftp://x.example/"}, "invalid_initiate_login_uri"),
                         ({"name": " "}, "invalid_request"), ({"is_default": "yes"}, "invalid_request")]:
        status, body = http.patch(f"/v1/apps/{made['client_id']}", fields, token=tenant.admin_token)
        assert status == 400 and body["error"]["code"] == code, (fields, body)
    assert http.get(f"/v1/apps/{made['client_id']}", token=tenant.admin_token)[1] == made


def test_another_tenants_app_is_not_found(http, tenant, other_tenant):
    theirs = api_create(http, other_tenant.admin_token, client_type="confidential")
    cid, token = theirs["client_id"], tenant.admin_token
    for method, path, body in [("GET", f"/v1/apps/{cid}", None), ("PATCH", f"/v1/apps/{cid}", {"name": "Mine"}),
                               ("PATCH", f"/v1/apps/{cid}", {"is_default": True}), ("DELETE", f"/v1/apps/{cid}", None),
                               ("POST", f"/v1/apps/{cid}/secret", None), ("GET", "/v1/apps/app_unknown", None),
                               ("GET", f"/v1/apps/{cid.upper()}", None), ("GET", f"/v1/apps/{cid}%20", None)]:
        status, answer = http.call(method, path, body=body, token=token)
        assert status == 404 and answer["error"]["code"] == "app_not_found", (method, path, answer)
    assert http.get("/v1/apps", token=token)[1]["items"] == []
    assert http.get(f"/v1/apps/{cid}", token=other_tenant.admin_token)[1] == {
        k: v for k, v in theirs.items() if k != "client_secret"}


@pytest.mark.parametrize("kind,role", [("employee", "office"), ("technician", "technician")])
def test_office_and_technicians_are_refused(http, tenant, kind, role):
    made = api_create(http, tenant.admin_token)
    _, token = staff_member(tenant, kind=kind, role=role)
    cid = made["client_id"]
    for method, path, body in [("POST", "/v1/apps", PORTAL), ("GET", "/v1/apps", None),
                               ("GET", f"/v1/apps/{cid}", None), ("PATCH", f"/v1/apps/{cid}", {"name": "x"}),
                               ("DELETE", f"/v1/apps/{cid}", None), ("POST", f"/v1/apps/{cid}/secret", None)]:
        status, answer = http.call(method, path, body=body, token=token)
        assert status == 403 and answer["error"]["code"] == "forbidden", (method, path, answer)
        assert "manage apps" in answer["error"]["message"]
    # the permission alone is enough
    _, allowed = staff_member(tenant, kind="employee", permissions=["apps:manage"])
    assert http.get("/v1/apps", token=allowed)[0] == 200


def test_concurrent_make_default_over_http(app, http, tenant):
    token = tenant.admin_token
    made = [api_create(http, token, name=f"App {i}") for i in range(4)]
    with threaded_app(app):
        results = run_together(4, lambda i: http.patch(f"/v1/apps/{made[i]['client_id']}", {"is_default": True},
                                                        token=token))
    assert all(status == 200 for status, _ in results), results
    listed = http.get("/v1/apps", token=token)[1]["items"]
    assert sum(a["is_default"] for a in listed) == 1


def test_the_demo_seed_makes_one_app_of_each_audience_once(tenant, monkeypatch, capsys):
    from chalicelib.flows import apps
    from ops import seed
    from ops.local import stack
    monkeypatch.setattr(seed, "DEMO_TENANT", tenant.id)
    first = seed.seed_apps()
    assert seed.seed_apps() == first  # idempotent: found again by name and audience
    portal, staff = apps.find(first["portal"]), apps.find(first["staff"])
    assert (portal.name, portal.client_type, portal.is_default) == ("Customer Portal", "public", True)
    assert portal.redirect_uris == ["http://127.0.0.1:8400/callback"]
    assert portal.initiate_login_uri == "http://127.0.0.1:8400/"
    assert (staff.name, staff.client_type, staff.is_default) == ("Technician App", "public", True)
    assert staff.redirect_uris == ["com.example.fieldtech:/oauth2redirect"]
    monkeypatch.setenv("PORTAL_OUTBOX_DIR", "/tmp/outbox")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    text = stack.banner("http://127.0.0.1:8000", {"admin_username": "a", "tenant_id": tenant.id, "apps": first},
                        "pw", False, 1.0)
    assert f"portal app     client id {first['portal']}" in text and f"staff app      client id {first['staff']}" in text


def test_apps_per_audience_are_capped(http, tenant, monkeypatch):
    from chalicelib.flows import apps
    monkeypatch.setattr(apps, "MAX_APPS_PER_AUDIENCE", 2)
    first = api_create(http, tenant.admin_token)
    second = api_create(http, tenant.admin_token, name="Second")
    status, body = http.post("/v1/apps", PORTAL, token=tenant.admin_token)
    assert status == 409 and body["error"]["code"] == "too_many_apps"
    assert api_create(http, tenant.admin_token, **STAFF)["is_default"]  # the other audience has its own count
    assert http.call("DELETE", f"/v1/apps/{second['client_id']}", token=tenant.admin_token)[0] == 204
    assert not api_create(http, tenant.admin_token, name="Third")["is_default"]  # room again
    assert apps.default_app(tenant.id, "portal").client_id == first["client_id"]
