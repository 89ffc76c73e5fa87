"""Searching customers (GET /v1/customers?q=) and portal users (GET /v1/portal/users?q=) the way the admin
console does: emails in any case, phones in any spelling, name words, another tenant's records never."""
import pytest
from conftest import drain

FAMILY = {"name": "Nguyễn Family", "emails": ["Linh.Nguyen@Example.com"], "phones": ["(555) 010-0000"]}


def search(http, token, q, **params):
    from urllib.parse import urlencode
    status, body = http.get("/v1/customers?" + urlencode({"q": q, **params}), token=token)
    assert status == 200, body
    return body


def names(page):
    return [c["name"] for c in page["items"]]


@pytest.fixture
def directory(http, tenant):
    token = tenant.admin_token
    made = {}
    for body in (FAMILY, {"name": "Oakridge Apartments", "emails": ["billing@oakridge.example"],
                          "phones": ["+1 201 555 0199 x12"]},
                 {"name": "Smith Plumbing Supply", "phones": ["555.010.7777"]},
                 {"name": "Smithson Heating"}):
        status, created = http.post("/v1/customers", body, token=token)
        assert status == 201, created
        made[body["name"]] = created["customer_id"]
    oak = made["Oakridge Apartments"]
    assert http.post(f"/v1/customers/{oak}/locations", {"address": "1 Elm St", "emails": ["super@elm.example"]},
                     token=token)[0] == 201
    assert http.post(f"/v1/customers/{oak}/contacts", {"name": "Dana Ruiz", "email": "dana@ruiz.example",
                                                       "phone": "201-555-0142"}, token=token)[0] == 201
    return token, made


@pytest.mark.parametrize("q", ["(555) 010-0000", "555-010-0000", "+1 555 010 0000", "5550100000",
                               "1 (555) 010-0000", "555.010.0000"])
def test_a_phone_in_any_spelling_finds_the_customer(http, directory, q):
    token, _ = directory
    assert names(search(http, token, q)) == ["Nguyễn Family"]


@pytest.mark.parametrize("q", ["linh.nguyen@example.com", "LINH.NGUYEN@EXAMPLE.COM", " Linh.Nguyen@example.COM "])
def test_an_email_in_any_case_finds_the_customer(http, directory, q):
    token, _ = directory
    assert names(search(http, token, q)) == ["Nguyễn Family"]


def test_locations_and_contacts_emails_and_contacts_phones_find_their_customer(http, directory):
    token, _ = directory
    assert names(search(http, token, "SUPER@elm.example")) == ["Oakridge Apartments"]
    assert names(search(http, token, "dana@ruiz.example")) == ["Oakridge Apartments"]
    assert names(search(http, token, "(201) 555-0142")) == ["Oakridge Apartments"]
    assert names(search(http, token, "201 555 0199")) == ["Oakridge Apartments"]  # the extension is not the number


def test_name_words_by_their_start_case_and_accents_ignored(http, directory):
    token, _ = directory
    assert names(search(http, token, "nguyen")) == ["Nguyễn Family"]
    assert names(search(http, token, "FAM ngu")) == ["Nguyễn Family"]
    assert sorted(names(search(http, token, "smith"))) == ["Smith Plumbing Supply", "Smithson Heating"]
    assert names(search(http, token, "smith heat")) == ["Smithson Heating"]
    assert names(search(http, token, "plumbing")) == ["Smith Plumbing Supply"]
    assert search(http, token, "zebra")["items"] == []
    assert search(http, token, "nobody@example.com")["items"] == []
    assert search(http, token, "555-999-1234")["items"] == []


def test_name_search_pages(http, tenant):
    token = tenant.admin_token
    for i in range(5):
        assert http.post("/v1/customers", {"name": f"Garcia Job {i}"}, token=token)[0] == 201
    seen, cursor = [], None
    for _ in range(5):
        page = search(http, token, "garc", limit=2, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) <= 2
        seen += names(page)
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == [f"Garcia Job {i}" for i in range(5)]


def test_edits_move_the_index(http, directory):
    token, made = directory
    cid = made["Nguyễn Family"]
    status, _ = http.patch(f"/v1/customers/{cid}", {"name": "Tran Household", "phones": ["555 010 4444"],
                                                   "emails": ["tran@example.com"]}, token=token)
    assert status == 200
    assert search(http, token, "nguyen")["items"] == []
    assert search(http, token, "(555) 010-0000")["items"] == []
    assert search(http, token, "linh.nguyen@example.com")["items"] == []
    assert names(search(http, token, "tran")) == ["Tran Household"]
    assert names(search(http, token, "+15550104444")) == ["Tran Household"]
    assert names(search(http, token, "TRAN@example.com")) == ["Tran Household"]


def test_another_tenants_customers_are_never_found(http, directory, other_tenant):
    token = other_tenant.admin_token
    for q in ("nguyen", "linh.nguyen@example.com", "(555) 010-0000", "smith"):
        assert search(http, token, q)["items"] == []


def test_bad_queries_get_clear_answers(http, directory):
    token, _ = directory
    status, body = http.get("/v1/customers?q=n", token=token)
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "query_too_short", "q")
    status, body = http.get("/v1/customers?q=" + "a" * 201, token=token)
    assert (status, body["error"]["code"]) == (400, "invalid_request")
    status, body = http.get("/v1/customers?q=nguyen&cursor=bogus", token=token)
    assert (status, body["error"]["code"]) == (400, "invalid_cursor")
    # a well-formed cursor from another search: outside this query's key range, which DynamoDB refuses (moto not)
    from chalicelib.core.paging import make_cursor
    other = make_cursor({"email": {"S": "zzz#x"}}, "email")
    status, body = http.get(f"/v1/customers?q=nguyen&cursor={other}", token=token)
    assert (status, body["error"]["code"]) == (400, "invalid_cursor")
    status, body = http.get(f"/v1/portal/users?q=ann&cursor={other}", token=token)
    assert (status, body["error"]["code"]) == (400, "invalid_cursor")
    assert search(http, token, "!!!")["items"] == []
    assert len(http.get("/v1/customers?q=", token=token)[1]["items"]) == 4  # empty q: the plain list


def test_reindex_indexes_records_written_before_the_index(http, tenant):
    from chalicelib.core.models import Customer
    from chalicelib.flows import customer_search
    Customer(tenant.id, "legacy1", name="Legacy Boiler Works", phones=["(555) 010-3333"]).save()
    token = tenant.admin_token
    assert search(http, token, "legacy")["items"] == []
    assert customer_search.reindex(tenant.id)["customers"] == 1
    assert names(search(http, token, "legacy")) == ["Legacy Boiler Works"]
    assert names(search(http, token, "555-010-3333")) == ["Legacy Boiler Works"]
    customer_search.reindex(tenant.id)  # idempotent
    assert names(search(http, token, "boil")) == ["Legacy Boiler Works"]


def test_searching_needs_directory_manage(http, tenant):
    from staff_helpers import staff_member
    _, technician = staff_member(tenant)
    assert http.get("/v1/customers?q=smith", token=technician)[0] == 403


# --- portal users ---------------------------------------------------------------------------------------------

def invite(http, token, customer_id, email):
    status, body = http.post("/v1/portal/invitations", {"customer_id": customer_id, "email": email,
                                                       "access": "non_billing"}, token=token)
    assert status == 202, body
    return body


def users(http, token, q, **params):
    from urllib.parse import urlencode
    status, body = http.get("/v1/portal/users?" + urlencode({"q": q, **params}), token=token)
    assert status == 200, body
    return body


def test_portal_users_by_email_prefix_in_any_case(http, tenant, other_tenant, app):
    token = tenant.admin_token
    emails = ["ann@alpha.example", "anna@alpha.example", "bob@beta.example", "annex@beta.example"]
    status, c = http.post("/v1/customers", {"name": "Alpha", "emails": emails + ["nouser@alpha.example"]},
                          token=token)
    assert status == 201
    for email in emails:
        invite(http, token, c["customer_id"], email)
    drain(app)
    assert [u["email"] for u in users(http, token, "ANN")["items"]] == [
        "ann@alpha.example", "anna@alpha.example", "annex@beta.example"]
    assert [u["email"] for u in users(http, token, "Bob@Beta.Example")["items"]] == ["bob@beta.example"]
    assert users(http, token, "nouser")["items"] == []  # on a record, but no portal user
    assert users(http, other_tenant.admin_token, "ann")["items"] == []
    # paging, and the list's filters still apply
    page1 = users(http, token, "ann", limit=2)
    page2 = users(http, token, "ann", limit=2, cursor=page1["next_cursor"])
    assert [u["email"] for u in page1["items"] + page2["items"]] == [
        "ann@alpha.example", "anna@alpha.example", "annex@beta.example"]
    assert page2["next_cursor"] is None
    assert users(http, token, "ann", status="active")["items"] == []
    assert len(users(http, token, "ann", status="invited", customer_id=c["customer_id"])["items"]) == 3
    assert users(http, token, "ann", customer_id="someone-else")["items"] == []
    # an address taken off its record keeps its portal user findable
    assert http.patch(f"/v1/customers/{c['customer_id']}", {"emails": ["bob@beta.example"]}, token=token)[0] == 200
    assert [u["email"] for u in users(http, token, "anna")["items"]] == ["anna@alpha.example"]
    status, body = http.get("/v1/portal/users?q=ann&status=gone", token=token)
    assert (status, body["error"]["code"]) == (400, "invalid_request")
