"""What a deployed stage needs of the app (issue 19): no placeholder settings, SMS sent as transactional from the
operator's origination settings, and the metrics the alarms and the dashboard of infra/aws.json watch."""
import json

import pytest

from chalicelib.core import config, messaging, observability

REAL = {"PORTAL_SENDER_EMAIL": "no-reply@mail.acme-plumbing.com", "PORTAL_PUBLIC_BASE_URL": "https://portal.acme-plumbing.com",
        "PORTAL_UPLOADS_BUCKET": "portal-access-prod-uploads", "PORTAL_SES_CONFIGURATION_SET": "portal-access-prod-email"}


@pytest.fixture
def prod(monkeypatch):
    monkeypatch.setenv("PORTAL_STAGE", "prod")
    monkeypatch.setattr(config, "_settings_checked", False)
    for name in REAL:
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch
    config._settings_checked = False


@pytest.mark.parametrize("name, value", [("PORTAL_SENDER_EMAIL", "no-reply@portal-access.example"),
                                         ("PORTAL_SENDER_EMAIL", "CHANGE-ME"),
                                         ("PORTAL_PUBLIC_BASE_URL", "https://portal.example.com"),
                                         ("PORTAL_PUBLIC_BASE_URL", "http://portal.acme-plumbing.com"),
                                         ("PORTAL_PUBLIC_BASE_URL", "https://portal.test"),
                                         ("PORTAL_SES_CONFIGURATION_SET", "")])
def test_a_deployed_stage_refuses_a_placeholder(prod, name, value):
    for key, real in REAL.items():
        prod.setenv(key, real)
    assert config.settings_problems() == []
    prod.setenv(name, value)
    with pytest.raises(config.PlaceholderSetting) as refused:
        config.require_settings()
    assert name in str(refused.value) and "refuses to start" in str(refused.value)


def test_unset_settings_are_named_and_the_sender_has_no_default_outside_local(prod):
    problems = config.settings_problems()
    assert {p.split()[0] for p in problems} == set(REAL)
    assert config.sender_email() == ""


def test_a_placeholder_stage_answers_nothing(app, prod, capsys, caplog):
    from chalice.test import Client
    from conftest import ROOT
    with Client(app.app, stage_name="prod", project_dir=str(ROOT)) as prod_client:  # the prod stage's settings
        r = prod_client.http.get("/v1/health")
    assert r.status_code == 500 and json.loads(r.body)["error"]["code"] == "internal_error"
    logged = capsys.readouterr().out + caplog.text
    assert "refuses to start" in logged and "PORTAL_SENDER_EMAIL is not set" in logged  # the log says why


def test_stage_local_needs_none_of_them(monkeypatch):
    monkeypatch.setenv("PORTAL_STAGE", "local")
    assert config.settings_problems() == []


def test_sms_are_transactional_from_the_operators_origination(monkeypatch):
    assert messaging.sms_attributes() == {"AWS.SNS.SMS.SMSType": {"DataType": "String",
                                                                  "StringValue": "Transactional"}}
    monkeypatch.setenv("PORTAL_SMS_ORIGINATION_NUMBER", "+15550100999")
    monkeypatch.setenv("PORTAL_SMS_SENDER_ID", "ACMEPLUMB")
    attributes = messaging.sms_attributes()
    assert attributes["AWS.MM.SMS.OriginationNumber"]["StringValue"] == "+15550100999"
    assert attributes["AWS.SNS.SMS.SenderID"]["StringValue"] == "ACMEPLUMB"
    # SNS (moto) takes them
    msg = messaging.render_sms("t-sms", "+15550100123", "staff-reset-code", [], code="AbC123xy", name="Tech",
                               tenant_name="Acme", minutes="10")
    assert messaging.deliver(msg)["provider_id"]


def emitted(out: str) -> list[dict]:
    found = []
    for line in out.splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and "_aws" in data:
            found.append(data)
    return found


def test_sign_ins_are_counted_by_audience_and_outcome(tenant, monkeypatch, capsys):
    """The flow as the staff sign-in route runs it (the test client would switch metrics off: stage local)."""
    from chalicelib.core.errors import Error
    from chalicelib.flows.staff import staff_signin
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    capsys.readouterr()

    def sign_in(password):
        return observability.sign_in_outcome("staff", lambda: staff_signin.sign_in(
            tenant.id, tenant.admin_username, password, "192.0.2.10"))
    assert sign_in(tenant.admin_password)["access_token"]
    with pytest.raises(Error):
        sign_in("Wrong-Password-1")
    metrics = emitted(capsys.readouterr().out)
    outcomes = [(m["audience"], m["outcome"], m["SignIns"]) for m in metrics if "SignIns" in m]
    assert outcomes == [("staff", "success", [1.0]), ("staff", "failure", [1.0])]
    [dimensions] = metrics[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert sorted(dimensions) == ["audience", "outcome", "service", "stage"]  # exactly what the alarms match
    assert metrics[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "PortalAccess"


def test_metrics_stay_off_where_powertools_metrics_are_off(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    observability.count("MessagesSent", channel="email")
    assert emitted(capsys.readouterr().out) == []
