"""Security review, input and links: one-line fields refuse control characters (every route's body model), the
local stack's console shows no message bodies, and the secure access link stays out of URL paths."""
import html as html_lib
import re
import time

import pytest

from chalicelib.web.api import Admin, MfaSetup, PasswordChange, Public, ROUTES, Staff
from chalicelib.web.lazy import resolve

# --- one-line fields ----------------------------------------------------------------------------------------

NOT_ONE_LINE = ["\n", "\r", "\x00", "\x1b", "\x7f", "\x85", "\u202e", "\u2066", "\u2028", "\u2029"]
# Passwords and secrets are kept exactly as typed (README, "Passwords and tokens"); they are not one-line text.
EXACT = {"password", "password_confirm", "new_password", "new_password_confirm", "current_password",
         "client_secret"}


def _resolve(schema, defs):
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[1]]
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    return _resolve(options[0], defs) if options else schema


def string_fields(schema, defs, prefix=()):
    """Every free-text string of a body schema, as a path (array items at index 0); enums are not free text."""
    for name, prop in schema.get("properties", {}).items():
        prop = _resolve(prop, defs)
        path = (*prefix, name)
        if name in EXACT:
            continue
        if prop.get("type") == "string" and "enum" not in prop and "const" not in prop:
            yield path
        elif prop.get("type") == "array":
            items = _resolve(prop.get("items", {}), defs)
            if items.get("type") == "string" and "enum" not in items:
                yield (*path, 0)
            elif items.get("type") == "object":
                yield from string_fields(items, defs, (*path, 0))
        elif prop.get("type") == "object":
            yield from string_fields(prop, defs, path)


def body_with(path, value):
    """The smallest body that puts `value` at `path` (other fields left out: their absence is reported too)."""
    head, *rest = path
    if not rest:
        return {head: value}
    if rest[0] == 0:
        inner = value if len(rest) == 1 else body_with(rest[1:], value)
        return {head: [inner]}
    return {head: body_with(rest, value)}


def caller_for(policy, admin_token):
    if isinstance(policy, Public):
        return None
    # a staff token answers for MfaSetup too (staff or a setup token)
    assert isinstance(policy, (Admin, Staff, PasswordChange, MfaSetup)), f"no caller for {policy.describe()}"
    return admin_token


def test_every_one_line_field_of_every_body_refuses_control_characters(app, http, tenant):
    token = tenant.admin_token
    checked = set()
    for spec in ROUTES:
        if spec.body is None:
            continue
        schema = resolve(spec.body).model_json_schema()
        defs = schema.get("$defs", {})
        for path in string_fields(schema, defs):
            name = ".".join(str(p) for p in path)
            for bad in NOT_ONE_LINE:
                body = body_with(path, f"Ab{bad}cd")
                status, answer = http.call(spec.method, re.sub(r"\{[^}]+\}", "x", spec.path), body=body,
                                           token=caller_for(spec.policy, token))
                assert status == 400, (spec.method, spec.path, name, repr(bad), status, answer)
                error = answer["error"]
                assert error["code"] == "invalid_request", (spec.path, name, error)
                named = [f for f in error["fields"] if f["field"] == name]
                assert named, (spec.method, spec.path, name, repr(bad), error)
                assert "Ab" not in error["message"] and all("Ab" not in f["problem"] for f in error["fields"])
            checked.add((spec.method, spec.path, name))
    # the fields the review names are all among them
    for route, field in [("/v1/customers", "name"), ("/v1/customers", "billing_address"),
                         ("/v1/customers", "phones.0"), ("/v1/customers", "emails.0"),
                         ("/v1/customers/{customer_id}/locations", "address"),
                         ("/v1/customers/{customer_id}/contacts", "name"), ("/v1/people", "name"),
                         ("/v1/people", "mobile"), ("/v1/staff/sign-in", "username"),
                         ("/v1/staff/sign-in", "tenant_id"), ("/v1/portal/register", "token"),
                         ("/v1/portal/sign-in", "email"), ("/v1/partner/token", "client_id"),
                         ("/v1/people/{person_id}/account", "username"),
                         ("/v1/portal/access", "token")]:
        assert any(p == route and f == field for _, p, f in checked), (route, field)
    assert len(checked) >= 40


def test_the_problem_says_what_is_wrong_without_echoing_the_value(http, tenant):
    status, body = http.post("/v1/customers", {"name": "Evil\nBcc: victim@example.com"}, token=tenant.admin_token)
    assert status == 400 and body["error"]["code"] == "invalid_request"
    assert body["error"]["message"].startswith("name: ")
    assert "line" in body["error"]["message"] and "U+000A" in body["error"]["message"]
    assert "Bcc" not in str(body)
    status, body = http.post("/v1/customers", {"name": "Ann\u202eteh"}, token=tenant.admin_token)
    assert status == 400 and body["error"]["fields"] == [{"field": "name", "problem": body["error"]["fields"][0]
                                                           ["problem"]}] and "U+202E" in body["error"]["message"]


def test_ordinary_text_still_passes(http, tenant):
    t = tenant.admin_token
    status, c = http.post("/v1/customers", {"name": "  Zoë O'Brien-Núñez & Søn (北京) ", "billing_address":
                                            "12 Rue de l'Église, Montréal\tQC"}, token=t)
    assert status == 400 and c["error"]["fields"][0]["field"] == "billing_address"  # a tab is a control character
    status, c = http.post("/v1/customers", {"name": "  Zoë O'Brien-Núñez & Søn (北京) ",
                                            "billing_address": "12 Rue de l'Église, Montréal QC 🙂"}, token=t)
    assert status == 201 and c["name"] == "Zoë O'Brien-Núñez & Søn (北京)"  # trimmed as before
    # a zero-width joiner (Cf, not a bidi control) is part of ordinary text (emoji, Indic scripts)
    assert http.post("/v1/customers", {"name": "Family 👨\u200d👩\u200d👧"}, token=t)[0] == 201


def test_passwords_are_not_one_line_text(http, tenant):
    """A password stays exactly as typed: only the policy judges it (a tab or a newline is the person's choice)."""
    status, body = http.post("/v1/staff/sign-in", {"tenant_id": tenant.id, "username": tenant.admin_username,
                                                   "password": "Wrong\tPassword\n1"})
    assert status == 401 and body["error"]["code"] == "invalid_credentials"


def test_the_openapi_document_says_one_line(http):
    spec = http.get("/v1/openapi.json")[1]
    schema = spec["components"]["schemas"]["CustomerCreate"]["properties"]["name"]
    pattern = re.compile(schema["pattern"])
    assert pattern.search("Zoë O'Brien") and not pattern.search("a\x00b") and not pattern.search("a\u202eb")


def test_one_line_unit():
    from chalicelib.core.text import control_character
    for ch in ["\x00", "\t", "\n", "\x0b", "\x0c", "\r", "\x1f", "\x7f", "\x80", "\x9f", "\u2028", "\u2029",
               *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))]:
        assert control_character(f"a{ch}b") == ch, hex(ord(ch))
    for ok in ["", "plain", "é", "\u200d", "\u200e", "\u00a0", "\u3000", "🙂"]:
        assert control_character(ok) is None, repr(ok)


# --- the local stack's console --------------------------------------------------------------------------------

def test_the_outbox_line_names_channel_recipient_and_subject_never_the_message(capsys, tmp_path, monkeypatch):
    from chalicelib.core import messaging
    monkeypatch.setenv("PORTAL_OUTBOX_DIR", str(tmp_path))
    code_link = "http://portal.test/staff/reset-password?token=SECRET-LINK-TOKEN-1234567890"
    sms = messaging.sms("t-1", "+15550100999", f"Your code is Xy7Qp2Lm. Or open {code_link}", [code_link])
    mail = messaging.email("t-1", "ann@example.com", "Reset your Acme portal password",
                           f"Open {code_link} to choose a new password.", [code_link], html=f"<a href='{code_link}'>")
    for message in (sms, mail):
        messaging._write_outbox(message)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert "sms" in lines[0] and "+15550100999" in lines[0]
    assert "email" in lines[1] and "ann@example.com" in lines[1] and "Reset your Acme portal password" in lines[1]
    for line in lines:
        assert "Xy7Qp2Lm" not in line and "SECRET-LINK-TOKEN" not in line and "token=" not in line
    # the outbox files still hold the whole message, which is what they are for
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 2 and all("SECRET-LINK-TOKEN" in f.read_text() for f in files)
    assert "Xy7Qp2Lm" in files[0].read_text() + files[1].read_text()


def test_the_local_api_logs_request_lines_without_their_query():
    """chalice local logs every request line; a link's first load carries its token in the query."""
    from ops.local import chalice_local
    handler = chalice_local.chalice_local_mod.ChaliceRequestHandler.__new__(
        chalice_local.chalice_local_mod.ChaliceRequestHandler)
    logged = []
    handler.log_message = lambda fmt, *args: logged.append(fmt % args)
    for line in ("GET /portal/access?token=SECRET-LINK-TOKEN-123 HTTP/1.1",
                 "GET /register?token=SECRET-LINK-TOKEN-123&x=1 HTTP/1.1", "POST /v1/portal/access HTTP/1.1"):
        handler.requestline = line
        handler.log_request(303)
    assert not any("SECRET" in entry for entry in logged), logged
    assert '"GET /portal/access?... HTTP/1.1" 303' in logged[0] and "/register?... HTTP/1.1" in logged[1]
    assert '"POST /v1/portal/access HTTP/1.1" 303' in logged[2]


# --- the secure access link (DESIGN rule 6): out of URL paths, an expiry the business sees and renews ---------

DAY = 24 * 3600


class Cookies:
    """A browser's cookie jar over chalice.test.Client (which keeps none)."""

    def __init__(self, client):
        self.client, self.jar = client, {}

    def get(self, path, headers=None):
        h = dict(headers or {})
        if self.jar:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        r = self.client.http.get(path, headers=h)
        lines = r.headers.get("Set-Cookie") or []
        for line in [lines] if isinstance(lines, str) else lines:
            name, _, rest = line.partition("=")
            if "Max-Age=0" in line:
                self.jar.pop(name, None)
            else:
                self.jar[name] = rest.split(";")[0]
        return r


def page_text(response):
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", response.body.decode()))


def cookies_of(response):
    lines = response.headers.get("Set-Cookie") or []
    return [lines] if isinstance(lines, str) else lines


@pytest.fixture
def jar(client):
    return Cookies(client)


@pytest.fixture
def linked(http, tenant):
    """A customer with an access link (no portal users yet): (admin token, customer, link answer, token)."""
    t = tenant.admin_token
    customer = http.post("/v1/customers", {"name": "Harper Household", "emails": [f"harper@{tenant.id}.example"]},
                         token=t)[1]
    status, link = http.post(f"/v1/customers/{customer['customer_id']}/access-link", token=t)
    assert status == 201, link
    return t, customer, link, link["link"].split("token=", 1)[1]


def iso_seconds(value):
    from datetime import datetime
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def expire(tenant_id, customer_id):
    from chalicelib.core.models import Customer
    Customer(tenant_id, customer_id).update(actions=[Customer.access_link_expires_at.set(int(time.time()) - 1)],
                                            add_version_condition=False)


def test_the_link_is_a_page_with_the_token_in_its_query_and_an_expiry(linked):
    _, customer, link, token = linked
    assert link["link"] == f"http://portal.test/portal/access?token={token}" and len(token) >= 40
    assert link["customer_id"] == customer["customer_id"]
    created, expires = iso_seconds(link["created_at"]), iso_seconds(link["expires_at"])
    assert abs(created - time.time()) < 60 and abs(expires - created - 90 * DAY) < 5  # 90 days by default


def test_the_api_takes_the_token_in_a_post_body_and_no_route_has_it_in_its_path(app, http, linked):
    _, customer, _, token = linked
    status, session = http.post("/v1/portal/access", {"token": token})
    assert status == 200 and set(session) == {"access_token", "token_type", "expires_in"}, session
    status, me = http.get("/v1/portal/me", token=session["access_token"])
    assert status == 200 and me["signed_in_with"] == "access_link"
    assert me["grants"][0]["customer_id"] == customer["customer_id"]
    assert http.get(f"/v1/portal/access/{token}")[0] in (403, 404)  # the old GET route is gone
    assert not any("{token}" in spec.path for spec in ROUTES)
    doc = http.get("/v1/openapi.json")[1]
    assert "/v1/portal/access" in doc["paths"] and not any("{token}" in p for p in doc["paths"])
    status, body = http.post("/v1/portal/access", {"token": "x" * 43})
    assert status == 400 and body["error"]["code"] == "token_invalid"
    status, body = http.post("/v1/portal/access", {"token": token + "\n"})  # trimmed, as every token
    assert status == 200
    status, body = http.post("/v1/portal/access", {"token": token[:20] + "\x00" + token[20:]})
    assert status == 400 and body["error"]["fields"][0]["field"] == "token"
    assert http.post("/v1/portal/access", {})[1]["error"]["code"] == "invalid_request"


def test_a_rotated_link_stops_and_its_sessions_end(http, linked):
    t, customer, _, old = linked
    old_session = http.post("/v1/portal/access", {"token": old})[1]["access_token"]
    new = http.post(f"/v1/customers/{customer['customer_id']}/access-link", token=t)[1]["link"].split("token=")[1]
    status, body = http.post("/v1/portal/access", {"token": old})
    assert status == 410 and body["error"]["code"] == "access_link_rotated"
    assert http.get("/v1/portal/me", token=old_session)[0] == 401
    assert http.post("/v1/portal/access", {"token": new})[0] == 200


def test_an_expired_link_says_so_and_renewing_moves_the_expiry_of_the_same_link(http, tenant, linked):
    t, customer, _, token = linked
    cid = customer["customer_id"]
    session = http.post("/v1/portal/access", {"token": token})[1]["access_token"]
    expire(tenant.id, cid)
    status, body = http.post("/v1/portal/access", {"token": token})
    assert status == 410 and body["error"]["code"] == "access_link_expired"
    assert "ask" in body["error"]["message"].lower() and "new" in body["error"]["message"]
    assert http.get("/v1/portal/me", token=session)[0] == 401  # an open link session ends with its link
    status, state = http.get(f"/v1/customers/{cid}/access-link", token=t)
    assert status == 200 and state["status"] == "expired" and state["customer_id"] == cid
    status, renewed = http.post(f"/v1/customers/{cid}/access-link/renew", {"expires_in_days": 30}, token=t)
    assert status == 200 and renewed["status"] == "active", renewed
    assert abs(iso_seconds(renewed["expires_at"]) - time.time() - 30 * DAY) < 60
    assert renewed["created_at"] == state["created_at"]  # the same link
    assert http.post("/v1/portal/access", {"token": token})[0] == 200
    assert http.get(f"/v1/customers/{cid}/access-link", token=t)[1] == renewed


def test_the_business_sees_the_state_never_the_token(http, tenant, linked):
    t, customer, link, token = linked
    cid = customer["customer_id"]
    status, state = http.get(f"/v1/customers/{cid}/access-link", token=t)
    assert status == 200 and state == {"customer_id": cid, "status": "active", "created_at": link["created_at"],
                                       "expires_at": link["expires_at"]}
    assert token not in str(state)
    bare = http.post("/v1/customers", {"name": "No Link"}, token=t)[1]["customer_id"]
    assert http.get(f"/v1/customers/{bare}/access-link", token=t)[1] == {"customer_id": bare, "status": "none"}
    status, body = http.post(f"/v1/customers/{bare}/access-link/renew", {"expires_in_days": 10}, token=t)
    assert status == 409 and body["error"]["code"] == "no_access_link"
    assert http.get(f"/v1/customers/{bare}/access-link", token=t)[1]["status"] == "none"
    assert http.post(f"/v1/customers/{bare}/access-link/renew", {}, token=t)[0] == 409


@pytest.mark.parametrize("days", [0, 366, -1, "90", True, 1.5, None])
def test_expiry_days_are_1_to_365(http, linked, days):
    t, customer, _, _ = linked
    for path in ("access-link", "access-link/renew"):
        status, body = http.post(f"/v1/customers/{customer['customer_id']}/{path}", {"expires_in_days": days},
                                 token=t)
        assert status == 400 and body["error"]["fields"][0]["field"] == "expires_in_days", (path, days, body)


def test_expiry_days_bounds_are_accepted(http, linked):
    t, customer, _, _ = linked
    cid = customer["customer_id"]
    for days in (1, 365):
        status, body = http.post(f"/v1/customers/{cid}/access-link", {"expires_in_days": days}, token=t)
        assert status == 201 and abs(iso_seconds(body["expires_at"]) - time.time() - days * DAY) < 60
        status, body = http.post(f"/v1/customers/{cid}/access-link/renew", {"expires_in_days": days}, token=t)
        assert status == 200 and abs(iso_seconds(body["expires_at"]) - time.time() - days * DAY) < 60


def test_another_business_never_reaches_the_link(http, tenant, other_tenant, linked):
    _, customer, link, token = linked
    cid, b = customer["customer_id"], other_tenant.admin_token
    for method, path, body in [("GET", "access-link", None), ("POST", "access-link", {}),
                               ("POST", "access-link/renew", {"expires_in_days": 365}),
                               ("POST", "access-link", None), ("POST", "access-link/renew", None)]:
        status, answer = http.call(method, f"/v1/customers/{cid}/{path}", body=body, token=b)
        assert status == 404 and answer["error"]["code"] == "customer_not_found", (method, path, answer)
        assert "Harper" not in str(answer)
    # A's link is untouched: still the same, still opens, same expiry
    assert http.post("/v1/portal/access", {"token": token})[0] == 200
    assert http.get(f"/v1/customers/{cid}/access-link", token=tenant.admin_token)[1]["expires_at"] == \
        link["expires_at"]


def test_the_link_routes_need_portal_manage(app, http, tenant, linked):
    from chalicelib.web.api import Admin
    policies = {(s.method, s.path): s.policy for s in ROUTES}
    for route in [("POST", "/v1/customers/{customer_id}/access-link"),
                  ("GET", "/v1/customers/{customer_id}/access-link"),
                  ("POST", "/v1/customers/{customer_id}/access-link/renew")]:
        assert isinstance(policies[route], Admin) and policies[route].permission == "portal:manage", route
    assert isinstance(policies[("POST", "/v1/portal/access")], Public)
    _, customer, _, token = linked
    session = http.post("/v1/portal/access", {"token": token})[1]["access_token"]
    cid = customer["customer_id"]
    assert http.get(f"/v1/customers/{cid}/access-link", token=session)[0] == 403  # the link holder itself
    assert http.post(f"/v1/customers/{cid}/access-link/renew", {}, token=session)[0] == 403
    assert http.get(f"/v1/customers/{cid}/access-link")[0] == 401


# --- the hosted page: /portal/access?token=… ------------------------------------------------------------------

def test_the_page_moves_the_token_into_a_strict_cookie_and_shows_what_the_link_opens(jar, tenant, linked):
    _, customer, link, token = linked
    first = jar.get(f"/portal/access?token={token}")
    assert first.status_code == 303 and first.headers["Location"] == "/portal/access"
    [cookie] = [c for c in cookies_of(first) if c.startswith("pa_access=")]
    assert cookie.startswith(f"pa_access={token};")
    flags = {part.strip() for part in cookie.split(";")[1:]}
    assert {"HttpOnly", "SameSite=Strict", "Path=/portal/access"} <= flags
    assert token not in first.body.decode() and token not in str({k: v for k, v in first.headers.items()
                                                                  if k != "Set-Cookie"})
    page = jar.get("/portal/access")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    text = page_text(page)
    assert "You have secure access to Harper Household's account with Test Plumbing." in text, text
    assert token not in page.body.decode()
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    # reloading keeps working (the cookie, not the URL, holds the token)
    assert jar.get("/portal/access").status_code == 200


def test_over_https_the_cookie_is_secure_and_host_bound(jar, linked, monkeypatch):
    monkeypatch.setenv("PORTAL_PUBLIC_BASE_URL", "https://portal.example")
    _, _, _, token = linked
    first = jar.get(f"/portal/access?token={token}")
    assert first.status_code == 303 and first.headers["Location"] == "/portal/access"
    [cookie] = [c for c in cookies_of(first) if "pa_access=" in c]
    flags = {part.strip() for part in cookie.split(";")[1:]}
    assert cookie.startswith("__Secure-pa_access=") and {"Secure", "HttpOnly", "SameSite=Strict"} <= flags
    assert jar.get("/portal/access").status_code == 200


def test_a_link_clicked_on_another_site_gets_one_same_site_hop(jar, linked):
    """Chromium withholds SameSite=Strict cookies from every request of a navigation another site started (the
    303's target included): that request gets a page that reloads itself from this site, and then has the cookie."""
    _, _, _, token = linked
    jar.get(f"/portal/access?token={token}", headers={"Sec-Fetch-Site": "cross-site"})
    saved, jar.jar = jar.jar, {}
    hop = jar.get("/portal/access", headers={"Sec-Fetch-Site": "cross-site"})
    assert hop.status_code == 200 and hop.headers["Refresh"] == "0; url=/portal/access"
    assert 'href="/portal/access"' in hop.body.decode() and "set-cookie" not in {k.lower() for k in hop.headers}
    jar.jar = saved
    assert jar.get("/portal/access", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    jar.jar = {}
    missing = jar.get("/portal/access", headers={"Sec-Fetch-Site": "same-origin"})  # no loop: the explanation
    assert missing.status_code == 400 and "Open the link from your message" in page_text(missing)


@pytest.mark.parametrize("case", ["expired", "rotated", "password_required", "unknown"])
def test_a_link_that_no_longer_opens_explains_itself_and_the_way_forward(app, http, jar, tenant, linked, case):
    t, customer, _, token = linked
    cid = customer["customer_id"]
    if case == "expired":
        expire(tenant.id, cid)
    elif case == "rotated":
        http.post(f"/v1/customers/{cid}/access-link", token=t)
    elif case == "password_required":
        assert http.post("/v1/portal/invitations", {"customer_id": cid, "email": f"harper@{tenant.id}.example"},
                         token=t)[0] == 202
    elif case == "unknown":
        token = "x" * 43
    first = jar.get(f"/portal/access?token={token}")
    assert first.headers["Content-Type"].startswith("text/html") and not any(
        c.startswith("pa_access=") and "Max-Age=0" not in c for c in cookies_of(first))
    text = page_text(first)
    expected = {"expired": (410, ["This link has expired", "Ask Test Plumbing for a new link"]),
                "rotated": (410, ["A newer link was made", "Ask Test Plumbing for the new link"]),
                "password_required": (403, ["Sign in with your email and password", "Sign in"]),
                "unknown": (400, ["This link does not work"])}[case]
    assert first.status_code == expected[0], (case, text)
    for words in expected[1]:
        assert words in text, (case, words, text)
    assert token not in first.body.decode()
    if case == "password_required":
        assert f'href="/sign-in?tenant_id={tenant.id}"' in first.body.decode()


def test_a_link_that_stops_while_its_cookie_is_held_explains_itself_too(jar, tenant, linked):
    _, customer, _, token = linked
    assert jar.get(f"/portal/access?token={token}").status_code == 303
    expire(tenant.id, customer["customer_id"])
    page = jar.get("/portal/access")
    assert page.status_code == 410 and "This link has expired" in page_text(page)
    assert "pa_access" not in jar.jar  # the cookie is cleared with it
