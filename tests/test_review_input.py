"""Security review, input and links: one-line fields refuse control characters (every route's body model), the
local stack's console shows no message bodies, and the secure access link stays out of URL paths."""
import re

import pytest

from chalicelib.api import Admin, PasswordChange, Public, Staff

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
    assert isinstance(policy, (Admin, Staff, PasswordChange)), f"no caller for {policy.describe()}"
    return admin_token


def test_every_one_line_field_of_every_body_refuses_control_characters(app, http, tenant):
    token = tenant.admin_token
    checked = set()
    for spec in app.api.routes:
        if spec.body is None:
            continue
        schema = spec.body.model_json_schema()
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
                         ("/v1/people/{person_id}/account", "username")]:
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
    from chalicelib.text import control_character
    for ch in ["\x00", "\t", "\n", "\x0b", "\x0c", "\r", "\x1f", "\x7f", "\x80", "\x9f", "\u2028", "\u2029",
               *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))]:
        assert control_character(f"a{ch}b") == ch, hex(ord(ch))
    for ok in ["", "plain", "é", "\u200d", "\u200e", "\u00a0", "\u3000", "🙂"]:
        assert control_character(ok) is None, repr(ok)


# --- the local stack's console --------------------------------------------------------------------------------

def test_the_outbox_line_names_channel_recipient_and_subject_never_the_message(capsys, tmp_path, monkeypatch):
    from chalicelib import messaging
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
    from chalicelib.local import chalice_local
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
