"""Staff "Forgot password?" end to end (DESIGN rule 13, ASVS 2.5/2.7): start → send code → verify → complete,
by email and SMS, with case-sensitive 8-character codes valid 10 minutes, 5 tries per flow, the same answers for
unknown identifiers, rate limits, one winner among concurrent verifications, and nothing secret stored."""
import pytest
from conftest import drain, outbox_for
from staff_helpers import (  # noqa: F401
    PASSWORD,
    clock,
    last_code,
    run_together,
    staff_member,
    threaded_app,
    unique_email,
    unique_mobile,
)

from chalicelib.core.models import AuditEvent, Token
from chalicelib.core.security.tokens import token_hash
from chalicelib.flows.staff import staff_recovery

NEW_PASSWORD = "Recovered-Pass-8642"
BASE = "/v1/staff/password-reset"


def start(http, tenant_id, identifier):
    status, body = http.post(f"{BASE}/start", {"tenant_id": tenant_id, "identifier": identifier})
    assert status == 202, body
    return body["flow_id"]


def send_code(http, flow_id, channel=None):
    status, body = http.post(f"{BASE}/send-code", {"flow_id": flow_id, **({"channel": channel} if channel else {})})
    assert status == 202, body
    return body


def verify(http, flow_id, code):
    return http.post(f"{BASE}/verify", {"flow_id": flow_id, "code": code})


def complete(http, reset_token, password=NEW_PASSWORD):
    return http.post(f"{BASE}/complete", {"reset_token": reset_token, "new_password": password})


def wrong_case(code):
    """The same code with the case of its letters swapped (a code of only digits cannot be tested so)."""
    return code.swapcase()


# --- the whole flow -----------------------------------------------------------------------------------------

def test_forgot_password_by_email_with_the_username(app, http, tenant):
    person, _ = staff_member(tenant, kind="employee")
    flow = start(http, tenant.id, person.username)
    assert send_code(http, flow) == {"status": "sent", "expires_in": 600}
    code = last_code(app, person.email)
    assert len(code) == 8 and code.isalnum()
    message = outbox_for(person.email)[-1]
    assert message["channel"] == "email" and message["links"] == [] and "case" in message["body"]
    status, body = complete(http, "not-a-real-token-" + "x" * 30)
    assert status == 400 and body["error"]["code"] == "token_invalid"
    status, body = verify(http, flow, code)
    assert status == 200 and body["expires_in"] == 900
    reset_token = body["reset_token"]
    status, body = complete(http, reset_token, "alllowercase1")
    assert status == 400 and body["error"]["code"] == "password_needs_upper"
    status, body = complete(http, reset_token, PASSWORD)
    assert status == 400 and body["error"]["code"] == "password_reused"
    status, body = complete(http, reset_token)
    assert status == 200 and body == {"status": "password_reset"}
    assert tenant.sign_in(person.username, NEW_PASSWORD)[0] == 200
    assert tenant.sign_in(person.username, PASSWORD)[0] == 401
    status, body = complete(http, reset_token, "Yet-Another-Pass-1")
    assert status == 410 and body["error"]["code"] == "token_used"
    status, body = verify(http, flow, code)
    assert status == 410  # the flow is used up
    drain(app)
    notices = [m for m in outbox_for(person.email) if m["subject"] and "password was changed" in m["subject"]]
    assert len(notices) == 1 and "forgot-password" in notices[0]["body"]  # ASVS 2.2.3
    acts = [e.action for e in AuditEvent.query(tenant.id) if person.person_id in (e.target, e.actor)]
    assert {"staff.password_reset_started", "staff.reset_code_sent", "staff.reset_code_verified",
            "staff.password_reset"} <= set(acts)


def test_forgot_password_by_sms_with_the_mobile_number_written_any_way(app, http, tenant):
    person, _ = staff_member(tenant)  # a technician with only a mobile
    written = f"({person.mobile[2:5]}) {person.mobile[5:8]}-{person.mobile[8:]}"
    flow = start(http, tenant.id, written)
    send_code(http, flow, channel="email")  # no email on the profile: the code goes by SMS
    code = last_code(app, person.mobile)
    assert outbox_for(person.mobile)[-1]["channel"] == "sms"
    status, body = verify(http, flow, code)
    assert status == 200
    assert complete(http, body["reset_token"])[0] == 200
    assert tenant.sign_in(person.username, NEW_PASSWORD)[0] == 200
    drain(app)
    assert "password" in outbox_for(person.mobile)[-1]["body"]  # told by SMS


def test_the_email_identifies_too_and_sms_can_be_chosen(app, http, tenant):
    person, _ = staff_member(tenant, kind="employee", mobile=unique_mobile())
    flow = start(http, tenant.id, f"  {person.email.upper()} ")
    send_code(http, flow, channel="sms")
    code = last_code(app, person.mobile)
    assert verify(http, flow, code)[0] == 200


def test_codes_are_case_sensitive(app, http, tenant):
    person, _ = staff_member(tenant, kind="employee")
    flow = start(http, tenant.id, person.username)
    send_code(http, flow)
    code = last_code(app, person.email)
    while code == wrong_case(code):  # all digits: ask for another code (1 in ~2^20)
        send_code(http, flow)
        code = last_code(app, person.email)
    status, body = verify(http, flow, wrong_case(code))
    assert status == 400 and body["error"]["code"] == "code_invalid" and body["error"]["attempts_left"] == 4
    status, body = verify(http, flow, code.lower() if code != code.lower() else code.upper())
    assert status == 400
    assert verify(http, flow, code)[0] == 200


def test_five_wrong_codes_kill_the_flow(app, http, tenant):
    person, _ = staff_member(tenant, kind="employee")
    flow = start(http, tenant.id, person.username)
    send_code(http, flow)
    code = last_code(app, person.email)
    for left in (4, 3, 2, 1):
        status, body = verify(http, flow, "Wrong123")
        assert status == 400 and body["error"]["attempts_left"] == left
    status, body = verify(http, flow, "Wrong123")
    assert status == 410 and body["error"]["code"] == "flow_dead"
    status, body = verify(http, flow, code)  # even the right code
    assert status == 410 and body["error"]["code"] == "flow_dead"
    status, body = http.post(f"{BASE}/send-code", {"flow_id": flow})  # and no new code revives it
    assert status == 410 and body["error"]["code"] == "flow_dead"
    # a new flow works
    flow = start(http, tenant.id, person.username)
    send_code(http, flow)
    assert verify(http, flow, last_code(app, person.email))[0] == 200


def test_a_new_code_replaces_the_old_but_not_the_attempts(app, http, tenant):
    person, _ = staff_member(tenant, kind="employee")
    flow = start(http, tenant.id, person.username)
    send_code(http, flow)
    first = last_code(app, person.email)
    assert verify(http, flow, "Wrong123")[1]["error"]["attempts_left"] == 4
    send_code(http, flow)
    second = last_code(app, person.email)
    status, body = verify(http, flow, first)
    if first != second:
        assert status == 400 and body["error"]["attempts_left"] == 3
    send_code(http, flow)
    status, body = http.post(f"{BASE}/send-code", {"flow_id": flow})  # three codes per flow
    assert status == 429 and body["error"]["code"] == "too_many_codes"


def test_codes_expire_after_ten_minutes(app, http, tenant, clock):
    person, _ = staff_member(tenant, kind="employee")
    flow = start(http, tenant.id, person.username)
    send_code(http, flow)
    code = last_code(app, person.email)
    clock.advance(10 * 60 + 1)
    status, body = verify(http, flow, code)
    assert status == 410 and body["error"]["code"] == "code_expired"
    send_code(http, flow)
    clock.advance(9 * 60)
    assert verify(http, flow, last_code(app, person.email))[0] == 200


def test_the_flow_itself_expires(app, http, tenant, clock):
    person, _ = staff_member(tenant, kind="employee")
    flow = start(http, tenant.id, person.username)
    clock.advance(staff_recovery.FLOW_SECONDS + 1)
    status, body = http.post(f"{BASE}/send-code", {"flow_id": flow})
    assert status == 410 and body["error"]["code"] == "flow_expired"


def test_reset_tokens_expire(app, http, tenant, clock):
    person, _ = staff_member(tenant, kind="employee")
    flow = start(http, tenant.id, person.username)
    send_code(http, flow)
    reset_token = verify(http, flow, last_code(app, person.email))[1]["reset_token"]
    clock.advance(staff_recovery.RESET_TOKEN_SECONDS + 1)
    status, body = complete(http, reset_token)
    assert status == 410 and body["error"]["code"] == "token_expired"


# --- no account enumeration ---------------------------------------------------------------------------------

def _shape(body):
    """An answer with its random parts (flow ids) replaced: what an observer can compare."""
    return {k: ("<random>" if k == "flow_id" else v) for k, v in body.items()}


def test_known_and_unknown_identifiers_get_the_same_answers(app, http, tenant, other_tenant):
    person, _ = staff_member(tenant, kind="employee")
    invited_only = staff_member(tenant, kind="employee")[0]
    from chalicelib.core.models import Person
    Person.get(tenant.id, invited_only.person_id).update(actions=[Person.account_status.set("invited")])
    drain(app)
    cases = [(tenant.id, person.username), (tenant.id, "nobody-here"), (tenant.id, unique_email("ghost")),
             (tenant.id, unique_mobile()), ("no-such-tenant", person.username),
             (other_tenant.id, person.username), (tenant.id, invited_only.username)]
    answers = []
    for tenant_id, identifier in cases:
        status, started = http.post(f"{BASE}/start", {"tenant_id": tenant_id, "identifier": identifier})
        sent = http.post(f"{BASE}/send-code", {"flow_id": started["flow_id"]})
        wrong = verify(http, started["flow_id"], "Wrong123")
        answers.append(((status, _shape(started)), sent, wrong))
    assert all(a == answers[0] for a in answers), answers
    assert answers[0][0][0] == 202 and answers[0][1][0] == 202 and answers[0][2][0] == 400
    drain(app)
    # only the real, active account got a code
    assert len(outbox_for(person.email)) == 1 and outbox_for(invited_only.email) == []


# --- abuse: rate limits and concurrency ---------------------------------------------------------------------

def test_start_is_rate_limited_per_identifier(http, tenant):
    limit, window = staff_recovery.LIMITS["start_identifier"]
    for _ in range(limit):
        start(http, tenant.id, "someone.busy")
    status, body = http.post(f"{BASE}/start", {"tenant_id": tenant.id, "identifier": "Someone.Busy"})
    assert status == 429 and body["error"]["code"] == "too_many_requests"
    assert 0 < body["error"]["retry_after"] <= window
    assert http.post(f"{BASE}/start", {"tenant_id": tenant.id, "identifier": "someone.else"})[0] == 202


def test_every_step_is_rate_limited_per_ip(http, tenant, monkeypatch):
    monkeypatch.setitem(staff_recovery.LIMITS, "start_ip", (3, 900))
    monkeypatch.setitem(staff_recovery.LIMITS, "verify_ip", (2, 900))
    for i in range(3):
        flow = start(http, tenant.id, f"user{i}")
    status, body = http.post(f"{BASE}/start", {"tenant_id": tenant.id, "identifier": "user9"})
    assert status == 429 and body["error"]["retry_after"] > 0
    verify(http, flow, "Wrong123")
    verify(http, flow, "Wrong123")
    status, body = verify(http, flow, "Wrong123")
    assert status == 429 and body["error"]["code"] == "too_many_requests"


def test_twenty_concurrent_verifications_of_one_code_have_one_winner(app, http, tenant):
    person, _ = staff_member(tenant, kind="employee")
    flow = start(http, tenant.id, person.username)
    send_code(http, flow)
    code = last_code(app, person.email)
    with threaded_app(app):
        results = run_together(20, lambda i: verify(http, flow, code))
    assert not [r for r in results if isinstance(r, Exception)], results
    winners = [body for status, body in results if status == 200]
    assert len(winners) == 1, results
    assert all(status == 410 and body["error"]["code"] in ("token_used", "flow_dead")
               for status, body in results if status != 200)
    assert complete(http, winners[0]["reset_token"])[0] == 200


# --- secrets: stored hashed, never logged -------------------------------------------------------------------

def test_codes_and_flow_ids_are_stored_only_hashed(app, http, tenant, capsys):
    person, _ = staff_member(tenant, kind="employee")
    flow = start(http, tenant.id, person.username)
    send_code(http, flow)
    code = last_code(app, person.email)
    stored = Token.get(token_hash(flow))
    raw = str(stored.serialize())
    assert flow not in raw and code not in raw and stored.code_hash and len(stored.code_hash) == 64
    reset_token = verify(http, flow, code)[1]["reset_token"]
    complete(http, reset_token)
    everything = [str(t.serialize()) for t in Token.scan(Token.tenant_id == tenant.id)]
    everything += [str(e.serialize()) for e in AuditEvent.query(tenant.id)]
    for secret in (flow, code, reset_token, NEW_PASSWORD):
        assert not any(secret in item for item in everything)
    out = capsys.readouterr()
    logs = "\n".join(line for line in (out.out + out.err).splitlines() if not line.startswith("[outbox]"))
    for secret in (flow, code, reset_token, NEW_PASSWORD):
        assert secret not in logs


# --- bad input ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, body", [
    ("start", {}), ("start", {"tenant_id": "t"}), ("start", {"tenant_id": "t", "identifier": ""}),
    ("start", {"tenant_id": 1, "identifier": "a"}), ("start", {"tenant_id": "t", "identifier": "a", "x": 1}),
    ("start", {"tenant_id": "t", "identifier": "a" * 300}),
    ("send-code", {}), ("send-code", {"flow_id": "abc"}), ("send-code", {"flow_id": "a" * 43, "channel": "fax"}),
    ("verify", {"flow_id": "a" * 43}), ("verify", {"flow_id": "a" * 43, "code": "Abcd1234"}),
    ("verify", {"flow_id": ["a"], "code": "x"}),
    ("complete", {"reset_token": "a" * 43}), ("complete", {"reset_token": "a" * 43, "new_password": NEW_PASSWORD}),
    ("complete", {"reset_token": None, "new_password": NEW_PASSWORD}),
])
def test_bad_input_is_a_400_envelope(http, path, body):
    status, got = http.post(f"{BASE}/{path}", body)
    assert status == 400 and set(got) == {"error"} and got["error"]["code"] in ("invalid_request", "token_invalid")
    assert got["error"]["message"]


def test_malformed_json_and_wrong_method(http):
    assert http.post(f"{BASE}/start", raw="{nope")[1]["error"]["code"] == "malformed_json"
    assert http.call("GET", f"{BASE}/verify")[0] == 405
