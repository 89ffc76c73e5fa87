"""Bad input gets the error envelope with a stable code: never a 500, never a stack trace."""
import json

import pytest


def envelope(body):
    return isinstance(body, dict) and set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]


def test_malformed_json(http, tenant):
    status, body = http.post("/v1/customers", raw="{not json", token=tenant.admin_token)
    assert status == 400 and body["error"]["code"] == "malformed_json"


@pytest.mark.parametrize("payload, field", [
    ({"name": 123}, "name"), ({"name": "x", "emails": "a@b.com"}, "emails"),
    ({"name": "x", "emails": ["not-an-email"]}, "emails.0"), ({"name": "x", "colour": "red"}, "colour"),
    ({}, "name"), ({"name": ""}, "name"),
])
def test_validation_errors_name_the_field(http, tenant, payload, field):
    status, body = http.post("/v1/customers", payload, token=tenant.admin_token)
    assert status == 400 and body["error"]["code"] == "invalid_request"
    assert body["error"]["fields"][0]["field"] == field


def test_body_must_be_an_object(http, tenant):
    status, body = http.post("/v1/customers", raw="[1, 2]", token=tenant.admin_token)
    assert status == 400 and envelope(body)


def test_oversized_body(http, tenant):
    status, body = http.post("/v1/customers", raw=json.dumps({"name": "x" * 70_000}), token=tenant.admin_token)
    assert status == 413 and body["error"]["code"] == "payload_too_large"


def test_wrong_content_type(http, tenant):
    status, body = http.call("POST", "/v1/customers", raw="name=x", token=tenant.admin_token,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415 and body["error"]["code"] == "unsupported_media_type"


def test_method_not_allowed(http):
    status, body = http.call("DELETE", "/v1/staff/sign-in")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"


def test_unknown_ids_are_404(http, tenant):
    status, body = http.get("/v1/customers/nope", token=tenant.admin_token)
    assert status == 404 and body["error"]["code"] == "customer_not_found"


def test_bad_pagination(http, tenant):
    token = tenant.admin_token
    assert http.get("/v1/customers?limit=0", token=token)[1]["error"]["code"] == "invalid_request"
    assert http.get("/v1/customers?limit=abc", token=token)[0] == 400
    assert http.get("/v1/customers?cursor=%%%", token=token)[1]["error"]["code"] == "invalid_cursor"
    assert http.get("/v1/customers?cursor=e30", token=token)[1]["error"]["code"] == "invalid_cursor"


def test_an_unexpected_failure_is_an_envelope_without_a_trace(http, tenant, monkeypatch):
    from chalicelib.flows import directory
    monkeypatch.setattr(directory, "list_customers", lambda *a: 1 / 0)
    status, body = http.get("/v1/customers", token=tenant.admin_token)
    assert status == 500 and body == {"error": {"code": "internal_error",
                                                "message": "Something went wrong on our side; try again."}}
