from chalicelib.flows import directory


def test_customers_locations_contacts_round_trip(http, tenant):
    t = tenant.admin_token
    status, c = http.post("/v1/customers", {"name": "Harper", "emails": ["J@Example.com", "j@example.com"],
                                            "phones": ["555-0101"], "billing_address": "1 Main St"}, token=t)
    assert status == 201 and c["emails"] == ["j@example.com"]
    cid = c["customer_id"]
    status, loc = http.post(f"/v1/customers/{cid}/locations", {"address": "12 Elm", "emails": ["tenant@x.example"]},
                            token=t)
    assert status == 201 and loc["customer_id"] == cid
    status, contact = http.post(f"/v1/customers/{cid}/contacts", {"name": "Pat", "email": "pat@x.example"}, token=t)
    assert status == 201
    assert http.get(f"/v1/customers/{cid}/locations", token=t)[1]["items"][0]["location_id"] == loc["location_id"]
    assert http.get(f"/v1/customers/{cid}/contacts", token=t)[1]["items"][0]["contact_id"] == contact["contact_id"]
    assert http.get(f"/v1/locations/{loc['location_id']}", token=t)[1]["address"] == "12 Elm"
    status, patched = http.patch(f"/v1/contacts/{contact['contact_id']}", {"phone": "555-0199"}, token=t)
    assert status == 200 and patched["phone"] == "555-0199" and patched["email"] == "pat@x.example"
    status, patched = http.patch(f"/v1/locations/{loc['location_id']}", {"name": "Rental"}, token=t)
    assert status == 200 and patched["name"] == "Rental"


def test_email_index_follows_edits(http, tenant):
    t = tenant.admin_token
    c = http.post("/v1/customers", {"name": "Nguyen", "emails": ["old@example.com"]}, token=t)[1]
    ref = f"customer:{c['customer_id']}"
    assert directory.records_for_email(tenant.id, "old@example.com") == {ref}
    status, patched = http.patch(f"/v1/customers/{c['customer_id']}", {"emails": ["new@example.com"]}, token=t)
    assert status == 200 and patched["emails"] == ["new@example.com"]
    assert directory.records_for_email(tenant.id, "old@example.com") == set()
    assert directory.records_for_email(tenant.id, "new@example.com") == {ref}
    loc = http.post(f"/v1/customers/{c['customer_id']}/locations", {"address": "x", "emails": ["new@example.com"]},
                    token=t)[1]
    assert directory.records_for_email(tenant.id, "new@example.com") == {
        ref, f"location:{loc['location_id']}:{c['customer_id']}"}
    # the index is per tenant
    assert directory.records_for_email("someone-else", "new@example.com") == set()


def test_pagination_walks_every_customer_once(http, tenant):
    t = tenant.admin_token
    made = {http.post("/v1/customers", {"name": f"C{i}"}, token=t)[1]["customer_id"] for i in range(7)}
    seen, cursor = [], None
    while True:
        status, page = http.get("/v1/customers?limit=3" + (f"&cursor={cursor}" if cursor else ""), token=t)
        assert status == 200 and len(page["items"]) <= 3
        seen += [c["customer_id"] for c in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert set(seen) == made and len(seen) == len(made)


def test_patch_cannot_blank_required_fields(http, tenant):
    t = tenant.admin_token
    c = http.post("/v1/customers", {"name": "X"}, token=t)[1]
    status, body = http.patch(f"/v1/customers/{c['customer_id']}", {"name": None}, token=t)
    assert status == 400


def test_patch_with_null_lists_clears_them(http, tenant):
    """Found by `make fuzz`: null for a list (schema: list | null) was a 500 (PynamoDB refuses a null list)."""
    t = tenant.admin_token
    c = http.post("/v1/customers", {"name": "Null lists", "emails": ["nulls@example.com"], "phones": ["555-0102"]},
                  token=t)[1]
    status, patched = http.patch(f"/v1/customers/{c['customer_id']}", {"emails": None, "phones": None}, token=t)
    assert status == 200 and patched["emails"] == [] and patched["phones"] == []
    assert directory.records_for_email(tenant.id, "nulls@example.com") == set()
    loc = http.post(f"/v1/customers/{c['customer_id']}/locations", {"address": "1 Null St",
                                                                     "emails": ["loc.nulls@example.com"]}, token=t)[1]
    status, patched = http.patch(f"/v1/locations/{loc['location_id']}", {"emails": None, "name": "Shed"}, token=t)
    assert status == 200 and patched["emails"] == [] and patched["name"] == "Shed"
    assert directory.records_for_email(tenant.id, "loc.nulls@example.com") == set()


def test_office_role_manages_the_directory_but_technicians_cannot(http, tenant):
    from chalicelib.core.security import passwords
    from chalicelib.flows.staff import people
    pw = passwords.hash_password("Office-Pass-123")
    people.create(tenant.id, kind="employee", name="Office", email="office@x.example", role="office",
                  username="office", password_hash=pw)
    people.create(tenant.id, kind="technician", name="Tech", mobile="+12015550111", role="technician",
                  username="tech", password_hash=pw)
    office = tenant.sign_in("office", "Office-Pass-123")[1]["access_token"]
    tech = tenant.sign_in("tech", "Office-Pass-123")[1]["access_token"]
    assert http.post("/v1/customers", {"name": "By office"}, token=office)[0] == 201
    assert http.post("/v1/customers", {"name": "By tech"}, token=tech)[0] == 403
