"""Nothing secret of the second factor is logged, stored in clear, sent or echoed (issue 18; as
tests/test_secrets_in_logs.py does for the rest): a run sets up an authenticator app through the setup-only state,
signs in with a code and a recovery code, fails a few codes, regenerates the codes and removes the app; then every
log line (with the operator's log-the-event switch on), every item of every table, every outbox file and every
error answer is searched for the TOTP key (both spellings), the otpauth URI, the recovery codes and the tokens."""
import json
import logging

from conftest import drain
from mfa_helpers import code, code_clock, secret_of  # noqa: F401
from staff_helpers import PASSWORD, staff_member
from test_secrets_in_logs import Recording, Secrets, every_table_item, found_in, outbox_files


def test_no_factor_secret_in_logs_tables_outbox_or_errors(app, client, tenant, capsys, caplog, monkeypatch,
                                                          code_clock):
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    http = Recording(client)
    secrets = Secrets([PASSWORD])
    before = outbox_files()
    person, _ = staff_member(tenant, kind="employee")
    admin = tenant.admin_token  # signed in before the policy asks admins for a factor too
    assert http.call("PUT", "/v1/staff/mfa/policy", {"staff_mfa": "required_for_all"}, token=admin)[0] == 200
    status, body = tenant.sign_in(person.username, PASSWORD)
    setup = secrets.add(body["error"]["setup_token"])
    status, started = http.post("/v1/staff/mfa/totp", token=setup)
    key = secret_of(started)
    secrets.add(key, started["secret"], started["otpauth_uri"])
    assert http.post("/v1/staff/mfa/totp/confirm", {"code": "abcdef"}, token=setup)[0] == 400
    status, done = http.post("/v1/staff/mfa/totp/confirm", {"code": code(key, code_clock())}, token=setup)
    assert status == 200
    secrets.add(done["access_token"], *done["recovery_codes"])
    code_clock.next()
    # sign in: a wrong code, a right one, a recovery code
    status, body = tenant.sign_in(person.username, PASSWORD)
    mfa_token = secrets.add(body["error"]["mfa_token"])
    assert http.post("/v1/staff/sign-in/mfa", {"mfa_token": mfa_token, "code": "000000"
                                               if code(key, code_clock()) != "000000" else "111111"})[0] == 401
    status, session = http.post("/v1/staff/sign-in/mfa", {"mfa_token": mfa_token, "code": code(key, code_clock())})
    assert status == 200
    token = secrets.add(session["access_token"])
    assert http.post("/v1/staff/sign-in/mfa", {"mfa_token": mfa_token, "code": done["recovery_codes"][0]})[0] == 401
    status, body = tenant.sign_in(person.username, PASSWORD)
    second = secrets.add(body["error"]["mfa_token"])
    status, session = http.post("/v1/staff/sign-in/mfa", {"mfa_token": second, "code": done["recovery_codes"][1]})
    assert status == 200
    secrets.add(session["access_token"])
    status, fresh = http.post("/v1/staff/mfa/recovery-codes", token=token)
    secrets.add(*fresh["recovery_codes"])
    assert http.call("PUT", "/v1/staff/mfa/policy", {"staff_mfa": "optional"}, token=admin)[0] == 200
    assert http.call("DELETE", "/v1/staff/mfa/totp", token=token)[0] == 204
    drain(app)

    out = capsys.readouterr()
    logs = out.out + out.err + "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str)
                                         for r in caplog.records)
    assert "request served" in logs
    leaks = found_in(secrets, [("logs", logs)])
    leaks += found_in(secrets, [(f"table {table}", text) for table, text in every_table_item()])
    written = [json.loads(p.read_text()) for p in outbox_files() - before]
    assert any("sign-in method" in m["body"] for m in written)
    leaks += found_in(secrets, [("outbox", json.dumps(m)) for m in written])  # notices carry no secret at all
    assert len(http.errors) >= 3
    leaks += found_in(secrets, [("error answer", e) for e in http.errors])
    assert not leaks, leaks
