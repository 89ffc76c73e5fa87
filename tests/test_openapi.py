from chalicelib.web.api import ROUTES, Public


def test_openapi_covers_every_route(app, http):
    status, spec = http.get("/v1/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    for spec_route in ROUTES:
        assert (spec_route.path, spec_route.method) in documented
    # and nothing documented that the app does not serve
    served = {(p, m) for p, methods in app.app.routes.items() for m in methods}
    assert documented <= served


def test_openapi_schemas_are_the_validation_models(http):
    spec = http.get("/v1/openapi.json")[1]
    op = spec["paths"]["/v1/customers"]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert schema["required"] == ["name"] and schema["additionalProperties"] is False
    assert op["security"] == [{"bearer": []}] and op["x-policy"] == "admin:directory:manage"
    assert "security" not in spec["paths"]["/v1/staff/sign-in"]["post"]
    # every $ref resolves
    text = str(spec)
    import re
    for name in re.findall(r"#/components/schemas/([A-Za-z0-9_]+)", text):
        assert name in spec["components"]["schemas"], name


def test_every_operation_states_its_policy(app, http):
    spec = http.get("/v1/openapi.json")[1]
    for ops in spec["paths"].values():
        for op in ops.values():
            assert op["x-policy"]
            assert ("security" in op) == (op["x-policy"] != Public().describe())


def test_paging_limit_is_declared_as_the_handlers_accept_it(http, tenant):
    spec = http.get("/v1/openapi.json")[1]
    limit = next(p for p in spec["paths"]["/v1/customers"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 100}
    assert http.get("/v1/customers?limit=100", token=tenant.admin_token)[0] == 200
    assert http.get("/v1/customers?limit=101", token=tenant.admin_token)[0] == 400
