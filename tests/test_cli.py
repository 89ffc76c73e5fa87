"""The operator console (`portal-access`) against the test process's moto server: in-process through main(argv),
and once as the real subprocess an operator runs (AWS_ENDPOINT_URL from the environment)."""
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from chalicelib.core.models import PartnerClient, PartnerPortal
from ops import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def agreement(tmp_path):
    path = tmp_path / "agreement.txt"
    path.write_text("Partner agreement.\nSection 1: confidentiality.\n", encoding="utf-8")
    return path


def run(capsys, *argv):
    rc = cli.main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def create(capsys, agreement, portal_id=None, perms="view_customer,view_location"):
    portal_id = portal_id or "cli-" + uuid.uuid4().hex[:8]
    rc, out, err = run(capsys, "partner-portal", "create", "--name", f"Coach {portal_id}", "--portal-id", portal_id,
                       "--permissions", perms, "--agreement-file", str(agreement), "--agreement-version", "2024-01")
    assert rc == 0, err
    secret = next(line.split()[1] for line in out.splitlines() if line.startswith("client_secret"))
    return portal_id, secret, out


def one_line_error(err):
    return err.count("\n") == 1 and "error:" in err


def test_help_for_every_command(capsys):
    rc, out, _ = run(capsys, "--help")
    assert rc == 0 and "partner-portal" in out
    for command in ("create", "update", "list", "rotate-secret", "add-user"):
        rc, out, _ = run(capsys, "partner-portal", command, "--help")
        assert rc == 0 and "usage: portal-access partner-portal " + command in out
    assert "view_customer_statement" in run(capsys, "partner-portal", "create", "--help")[1]


def test_create_prints_the_secret_once_and_stores_only_its_hash(capsys, agreement):
    portal_id, secret, out = create(capsys, agreement)
    assert f"client_id      {portal_id}" in out and len(secret) >= 40
    portal = PartnerPortal.get(portal_id)
    assert portal.permissions == ["view_customer", "view_location"] and portal.agreement_version == "2024-01"
    assert portal.agreement_text == agreement.read_text()
    client = PartnerClient.get(portal_id)
    stored = json.dumps([portal.attribute_values, client.attribute_values], default=str)
    assert secret not in stored and client.secret_hash.startswith("$argon2id$")
    from chalicelib.core.security import passwords
    assert passwords.verify_password(client.secret_hash, secret)
    # the list shows the portal, never a secret
    rc, listed, _ = run(capsys, "partner-portal", "list", "--json")
    mine = [json.loads(line) for line in listed.splitlines() if json.loads(line)["portal_id"] == portal_id]
    assert rc == 0 and mine[0]["permissions"] == ["view_customer", "view_location"] and secret not in listed
    rc, table, _ = run(capsys, "partner-portal", "list")
    assert rc == 0 and table.startswith("PORTAL") and portal_id in table


@pytest.mark.parametrize("argv, rc", [
    (["partner-portal", "create", "--permissions", "view_customer"], 2),  # no --name, no agreement
    (["partner-portal", "nope"], 2),
    ([], 2),
    (["partner-portal", "update", "no-such-portal", "--name", "X"], 1),
    (["partner-portal", "rotate-secret", "no-such-portal"], 1),
    (["partner-portal", "add-user", "no-such-portal", "--name", "A", "--email", "a@b.example"], 1),
])
def test_bad_input_is_one_line_and_non_zero(capsys, argv, rc):
    got, out, err = run(capsys, *argv)
    assert got == rc and one_line_error(err), err


def test_create_refuses_bad_values(capsys, agreement, tmp_path):
    base = ["partner-portal", "create", "--name", "X Coach", "--agreement-file", str(agreement),
            "--agreement-version", "1"]
    rc, _, err = run(capsys, *base, "--permissions", "view_everything")
    assert rc == 1 and one_line_error(err) and "view_everything" in err and "view_alerts" in err
    rc, _, err = run(capsys, *base, "--permissions", "view_customer", "--portal-id", "Bad Id!")
    assert rc == 1 and one_line_error(err)
    missing = ["partner-portal", "create", "--name", "X", "--permissions", "view_customer", "--agreement-file",
               str(tmp_path / "missing.txt"), "--agreement-version", "1"]
    rc, _, err = run(capsys, *missing)
    assert rc == 1 and one_line_error(err) and "missing.txt" in err
    portal_id, _, _ = create(capsys, agreement)
    rc, _, err = run(capsys, "partner-portal", "create", "--name", "Again", "--portal-id", portal_id,
                     "--permissions", "view_customer", "--agreement-file", str(agreement), "--agreement-version", "1")
    assert rc == 1 and one_line_error(err) and "already taken" in err


def test_update_permissions_and_agreement(capsys, agreement, tmp_path):
    portal_id, _, _ = create(capsys, agreement)
    rc, out, err = run(capsys, "partner-portal", "update", portal_id, "--permissions", "view_alerts,view_estimate")
    assert rc == 0, err
    assert PartnerPortal.get(portal_id).permissions == ["view_alerts", "view_estimate"]
    changed = tmp_path / "v2.txt"
    changed.write_text("Partner agreement, second edition.\n")
    # a changed text under the same version would change what tenants accepted: refused
    rc, _, err = run(capsys, "partner-portal", "update", portal_id, "--agreement-file", str(changed),
                     "--agreement-version", "2024-01")
    assert rc == 1 and one_line_error(err) and "new version" in err
    rc, _, err = run(capsys, "partner-portal", "update", portal_id, "--agreement-file", str(changed))
    assert rc == 1 and one_line_error(err)
    rc, _, err = run(capsys, "partner-portal", "update", portal_id, "--agreement-file", str(changed),
                     "--agreement-version", "2025-01")
    assert rc == 0, err
    assert PartnerPortal.get(portal_id).agreement_version == "2025-01"
    rc, _, err = run(capsys, "partner-portal", "update", portal_id)
    assert rc == 1 and "nothing to change" in err


def test_rotate_secret_and_add_user(capsys, agreement, http, tenant):
    portal_id, old, _ = create(capsys, agreement)
    assert http.post(f"/v1/partner-portals/{portal_id}/enable", {"accept": True, "agreement_version": "2024-01"},
                     token=tenant.admin_token)[0] == 200
    rc, out, err = run(capsys, "partner-portal", "rotate-secret", portal_id)
    assert rc == 0, err
    new = next(line.split()[1] for line in out.splitlines() if line.startswith("client_secret"))
    assert new != old

    def token(secret):
        return http.post("/v1/partner/token", {"client_id": portal_id, "client_secret": secret,
                                               "tenant_id": tenant.id})[0]
    assert token(old) == 401 and token(new) == 200

    rc, out, err = run(capsys, "partner-portal", "add-user", portal_id, "--name", "Ada", "--email", "Ada@Coach.example")
    assert rc == 0 and "ada@coach.example (active)" in out
    rc, out, err = run(capsys, "partner-portal", "add-user", portal_id, "--name", "Bo", "--email", "bo@coach.example",
                       "--inactive")
    assert rc == 0 and "(inactive)" in out
    rc, _, err = run(capsys, "partner-portal", "add-user", portal_id, "--name", "Ada", "--email", "ada@coach.example")
    assert rc == 1 and one_line_error(err) and "already" in err
    rc, _, err = run(capsys, "partner-portal", "add-user", portal_id, "--name", "C", "--email", "not-an-email")
    assert rc == 1 and one_line_error(err)
    users = http.get(f"/v1/partner-portals/{portal_id}/users", token=tenant.admin_token)[1]["items"]
    assert [u["email"] for u in users] == ["ada@coach.example"]


def test_the_console_script_as_a_subprocess(capsys, agreement):
    """What an operator runs: a fresh process that reaches the stage's AWS endpoint from the environment."""
    portal_id, secret, _ = create(capsys, agreement)
    env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "PORTAL_")) or k in ("PATH", "HOME")}
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    out = subprocess.run([sys.executable, "-m", "ops.cli", "partner-portal", "list", "--json"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert portal_id in [json.loads(line)["portal_id"] for line in out.stdout.splitlines()]
    assert secret not in out.stdout + out.stderr
    bad = subprocess.run([sys.executable, "-m", "ops.cli", "partner-portal", "update", "nope", "--name", "X"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "no partner portal" in bad.stderr


def test_an_unreachable_endpoint_is_a_one_line_error():
    """A wrong AWS endpoint (or missing credentials, tables): one line naming the stage, no traceback."""
    env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "PORTAL_")) or k in ("PATH", "HOME")}
    env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:1"  # nothing listens on port 1
    out = subprocess.run([sys.executable, "-m", "ops.cli", "partner-portal", "list"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "stage local" in out.stderr, out.stderr


# --- issue 10: tenant, keys, dlq, audit ----------------------------------------------------------------------------

def test_tenant_create_invites_the_first_admin_and_refuses_an_existing_id(app, http, capsys):
    import uuid

    from conftest import drain, links_to

    from ops import cli
    tid = "acme-" + uuid.uuid4().hex[:6]
    assert cli.main(["tenant", "create", tid, "--name", "Acme Heating", "--admin-email", f"Boss@{tid}.example"]) == 0
    out = capsys.readouterr().out
    assert "invitation emailed" in out and "password" not in out.lower()
    drain(app)
    [link] = links_to(f"boss@{tid}.example", "/staff/accept-invite")
    assert cli.main(["tenant", "create", tid, "--name", "Again", "--admin-email", "x@y.example"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["tenant", "list", "--json"]) == 0
    assert any(json.loads(line)["tenant_id"] == tid for line in capsys.readouterr().out.splitlines())
    assert cli.main(["tenant", "show", tid]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["admins"] == [{"email": f"boss@{tid}.example", "status": "invited"}]
    assert link


def test_a_disabled_tenant_is_refused_at_sign_in_and_on_every_call(http, tenant, capsys):
    from ops import cli
    token = tenant.admin_token
    assert cli.main(["tenant", "disable", tenant.id]) == 0
    status, body = http.get("/v1/customers", token=token)
    assert status == 403 and body["error"]["code"] == "tenant_disabled"
    assert tenant.sign_in()[0] == 401
    assert cli.main(["tenant", "enable", tenant.id]) == 0
    assert http.get("/v1/customers", token=token)[0] == 200
    assert cli.main(["tenant", "disable", "no-such-tenant"]) == 1


def test_keys_rotate_list_retire(http, tenant, capsys):
    from chalicelib.core.security import keys
    from ops import cli
    old = tenant.admin_token
    assert cli.main(["keys", "rotate"]) == 0
    listed = [json.loads(line) for line in (cli.main(["keys", "list", "--json"]) == 0 and capsys.readouterr().out).splitlines()
              if line.startswith("{")]
    active = [k for k in listed if k["active"]]
    assert len(active) == 1 and len(listed) >= 2
    assert http.get("/v1/customers", token=old)[0] == 200  # the previous key still verifies
    assert cli.main(["keys", "retire", active[0]["kid"]]) == 1  # the active one cannot go
    old_kid = __import__("jwt").get_unverified_header(old)["kid"]
    assert cli.main(["keys", "retire", old_kid]) == 0
    assert http.get("/v1/customers", token=old)[0] == 401
    keys.ensure_signing_key()


def test_dlq_list_and_redrive(app, capsys):
    from chalicelib.core import config, dead_letters
    from ops import cli
    sqs = config.client("sqs")
    dlq = sqs.get_queue_url(QueueName=config.resource_name("send-dlq"))["QueueUrl"]
    sent = sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"channel": "email", "to": "dead@x.example",
                                                                  "message_id": "m1", "tenant_id": "t"}))
    dead_letters.record_failure("send", sent["MessageId"], RuntimeError("SES said no"), 5)
    assert cli.main(["dlq", "list", "--queue", "send", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    row = next(r for r in rows if r["message_id"] == sent["MessageId"])
    assert row["reason"] == "RuntimeError: SES said no" and "dead@x.example" in row["summary"]
    assert cli.main(["dlq", "redrive", "--queue", "send"]) == 0
    assert "moved" in capsys.readouterr().out
    assert dead_letters.list_dead("send") == []
    from conftest import drain
    drain(app)


def test_audit_prints_the_trail(http, tenant, capsys):
    from ops import cli
    tenant.sign_in()
    assert cli.main(["audit", tenant.id, "--json"]) == 0
    actions = [json.loads(line)["action"] for line in capsys.readouterr().out.splitlines()]
    assert "staff.signed_in" in actions
    assert cli.main(["audit", tenant.id, "--since", "2999-01-01"]) == 0
    assert "staff.signed_in" not in capsys.readouterr().out
    assert cli.main(["audit", tenant.id, "--since", "yesterday"]) == 1
