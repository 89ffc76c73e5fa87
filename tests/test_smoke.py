def test_health(http):
    assert http.get("/v1/health") == (200, {"status": "ok", "stage": "local"})


def test_sign_in_and_create_customer(http, tenant):
    token = tenant.admin_token
    status, body = http.post("/v1/customers", {"name": "A", "emails": ["A@Example.com "]}, token=token)
    assert status == 201, body
    assert body["emails"] == ["a@example.com"]
    status, got = http.get(f"/v1/customers/{body['customer_id']}", token=token)
    assert status == 200 and got["name"] == "A"
