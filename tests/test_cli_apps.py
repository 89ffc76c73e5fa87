"""`portal-access app create|list|rotate-secret` against the test process's moto server, in-process through
main(argv): create prints the client_id (and a confidential app's secret, once), list never shows a secret, bad
input is one line and a non-zero exit."""
import json

import pytest

from ops import cli


def run(capsys, *argv):
    rc = cli.main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def line_value(out, name):
    return next(line.split()[1] for line in out.splitlines() if line.startswith(name))


def test_help(capsys):
    rc, out, _ = run(capsys, "--help")
    assert rc == 0 and "app" in out
    for command in ("create", "list", "rotate-secret"):
        rc, out, _ = run(capsys, "app", command, "--help")
        assert rc == 0 and f"usage: portal-access app {command}" in out


def test_create_list_rotate(capsys, tenant):
    from chalicelib.core.models import AuditEvent
    from chalicelib.flows import apps
    rc, out, err = run(capsys, "app", "create", tenant.id, "--name", "Customer Portal", "--audience", "portal",
                       "--redirect-uri", "http://127.0.0.1:8400/callback", "--initiate-login-uri",
                       "http://127.0.0.1:8400/")
    assert rc == 0, err
    public_id = line_value(out, "client_id")
    assert "client_secret" not in out and "the default of its audience" in out
    assert apps.default_app(tenant.id, "portal").client_id == public_id
    rc, out, err = run(capsys, "app", "create", tenant.id, "--name", "Back office", "--audience", "staff", "--type",
                       "confidential", "--redirect-uri", "https://office.example.com/cb", "--redirect-uri",
                       "https://office.example.com/cb2", "--post-logout-redirect-uri", "https://office.example.com/")
    assert rc == 0, err
    confidential_id, secret = line_value(out, "client_id"), line_value(out, "client_secret")
    stored = apps.find(confidential_id)
    assert apps.check_secret(stored, secret) and stored.redirect_uris == ["https://office.example.com/cb",
                                                                          "https://office.example.com/cb2"]

    rc, listed, _ = run(capsys, "app", "list", tenant.id, "--json")
    rows = [json.loads(line) for line in listed.splitlines()]
    assert rc == 0 and {r["client_id"] for r in rows} == {public_id, confidential_id}
    assert secret not in listed and "secret" not in listed
    rc, table, _ = run(capsys, "app", "list", tenant.id)
    assert rc == 0 and table.startswith("client_id") and "Back office" in table and secret not in table

    rc, out, err = run(capsys, "app", "rotate-secret", tenant.id, confidential_id)
    assert rc == 0, err
    new_secret = line_value(out, "client_secret")
    stored = apps.find(confidential_id)
    assert new_secret != secret and apps.check_secret(stored, new_secret) and not apps.check_secret(stored, secret)
    trail = [e for e in AuditEvent.query(tenant.id) if e.action.startswith("app.")]
    assert {e.actor for e in trail} == {"operator"} and len(trail) == 3
    assert secret not in str([e.details for e in trail]) and new_secret not in str([e.details for e in trail])


@pytest.mark.parametrize("argv", [
    ["app", "create", "{tenant}", "--name", "X", "--audience", "portal", "--redirect-uri", "http://x.example/cb"],
    ["app", "create", "{tenant}", "--name", "", "--audience", "staff", "--redirect-uri", "https://x.example/cb"],
    ["app", "create", "no-such-tenant", "--name", "X", "--audience", "staff", "--redirect-uri", "https://x.example/"],
    ["app", "list", "no-such-tenant"],
    ["app", "rotate-secret", "{tenant}", "app_0000000000000000000000"],
    ["app", "rotate-secret", "{tenant}", "{public}"],
])
def test_bad_input_is_one_line_and_exit_1(capsys, tenant, argv):
    from chalicelib.flows import apps
    public = apps.create(tenant.id, apps.AppCreate(name="P", audience="portal", redirect_uris=["https://p.example/"]),
                         "operator", None)
    rc, out, err = run(capsys, *[a.format(tenant=tenant.id, public=public.client_id) for a in argv])
    assert rc == 1 and err.count("\n") == 1 and "error:" in err, (out, err)
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["app", "create", "t"], ["app", "create", "t", "--name", "X", "--audience", "all",
                                                             "--redirect-uri", "https://x.example/"], ["app"]])
def test_usage_errors_exit_2(capsys, argv):
    rc, _, err = run(capsys, *argv)
    assert rc == 2 and "error:" in err
