"""infra/template.json, the IAM policies and the local stack built from the template agree with each other
and with chalicelib.core.config: one source of truth for names and key schemas."""
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

from chalicelib.core import config

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = ROOT / "infra" / "template.json"
TEMPLATE = json.loads(TEMPLATE_PATH.read_text())
CFN_LINT = Path(sys.executable).with_name("cfn-lint")  # cfnlint has no `python -m` entry point
STAGE = "infratest"  # its own names, so nothing else in the moto process collides


def of_type(rtype: str) -> dict:
    return {lid: r["Properties"] for lid, r in TEMPLATE["Resources"].items() if r.get("Type") == rtype}


def sub_names(rtype: str, prop: str) -> set[str]:
    """The `<short>` of every `portal-access-${Stage}-<short>` name of that resource type."""
    prefix = "portal-access-${Stage}-"
    return {p[prop]["Fn::Sub"][len(prefix):] for p in of_type(rtype).values()
            if p[prop]["Fn::Sub"].startswith(prefix)}


def template_table(short: str) -> dict:
    return next(p for p in of_type("AWS::DynamoDB::Table").values()
                if p["TableName"]["Fn::Sub"].endswith(f"-{short}"))


@pytest.fixture
def moto(monkeypatch):
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "PORTAL_UPLOADS_BUCKET"):
        monkeypatch.delenv(key, raising=False)
    yield endpoint
    server.stop()


def receive_all(sqs, url: str, until, timeout: float = 10.0) -> list[dict]:
    """Bodies of the queue's messages, read until `until(bodies)` holds or the timeout passes."""
    bodies, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline and not until(bodies):
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def test_local_stack_is_built_from_the_template(moto):
    import boto3

    from ops.local.resources import create_all

    first = create_all(stage=STAGE)
    secrets = boto3.client("secretsmanager")
    secret_name = f"portal-access/{STAGE}/signing-keys"
    assert json.loads(secrets.get_secret_value(SecretId=secret_name)["SecretString"]) == \
        {"active_kid": None, "keys": []}
    secrets.put_secret_value(SecretId=secret_name, SecretString='{"active_kid": "k1", "keys": ["x"]}')
    second = create_all(stage=STAGE, uploads_bucket=f"portal-access-{STAGE}-uploads")
    assert first == second  # a second run is harmless and reports the same resources
    assert json.loads(secrets.get_secret_value(SecretId=secret_name)["SecretString"])["active_kid"] == "k1"

    ddb = boto3.client("dynamodb")
    assert set(second["tables"]) == set(config.TABLES)
    for short in config.TABLES:
        want = template_table(short)
        desc = ddb.describe_table(TableName=f"portal-access-{STAGE}-{short}")["Table"]
        assert desc["KeySchema"] == want["KeySchema"], short
        assert {a["AttributeName"]: a["AttributeType"] for a in desc["AttributeDefinitions"]} == \
            {a["AttributeName"]: a["AttributeType"] for a in want["AttributeDefinitions"]}, short
        assert {g["IndexName"]: g["KeySchema"] for g in desc.get("GlobalSecondaryIndexes", [])} == \
            {g["IndexName"]: g["KeySchema"] for g in want.get("GlobalSecondaryIndexes", [])}, short
        ttl = ddb.describe_time_to_live(TableName=desc["TableName"])["TimeToLiveDescription"]
        if "TimeToLiveSpecification" in want:
            assert ttl == {"TimeToLiveStatus": "ENABLED",
                           "AttributeName": want["TimeToLiveSpecification"]["AttributeName"]}, short
    assert template_table("idempotency")["TimeToLiveSpecification"]["AttributeName"] == "expiration"

    sqs = boto3.client("sqs")
    for short in config.QUEUES:
        attrs = sqs.get_queue_attributes(QueueUrl=second["queues"][short], AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attrs["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"].endswith(f":portal-access-{STAGE}-{short}-dlq")
        assert int(redrive["maxReceiveCount"]) == 5
    bulk_url = second["queues"]["bulk-invites"]
    bulk_arn = sqs.get_queue_attributes(QueueUrl=bulk_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert sqs.get_queue_attributes(QueueUrl=bulk_url, AttributeNames=["VisibilityTimeout"])[
        "Attributes"]["VisibilityTimeout"] == "5400"

    s3 = boto3.client("s3")
    bucket = second["bucket"]
    assert bucket == f"portal-access-{STAGE}-uploads"
    [notification] = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert notification["QueueArn"] == bulk_arn
    assert notification["Events"] == ["s3:ObjectCreated:*"]
    assert notification["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "bulk-invites/"}]

    s3.put_object(Bucket=bucket, Key="elsewhere/x.csv", Body=b"a@example.com\n")
    s3.put_object(Bucket=bucket, Key="bulk-invites/demo/x.csv", Body=b"a@example.com\n")
    bodies = receive_all(sqs, bulk_url, until=lambda got: any("Records" in b for b in got))
    # Setting the notification sends one s3:TestEvent (the handler skips it); the second run did not re-send.
    assert [b for b in bodies if b.get("Event") == "s3:TestEvent"] == \
        [{"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": bodies[0]["Time"], "Bucket": bucket}]
    records = [r for b in bodies for r in b.get("Records", [])]
    # Event keys are URL-encoded (moto even encodes "/" as %2F): handlers must unquote_plus them.
    assert [(r["eventName"], r["s3"]["bucket"]["name"], unquote_plus(r["s3"]["object"]["key"]))
            for r in records] == [("ObjectCreated:Put", bucket, "bulk-invites/demo/x.csv")]

    ses = boto3.client("ses")
    verified = ses.list_identities()["Identities"]
    assert config.sender_email() in verified and "portal-access.example" in verified
    assert ses.describe_configuration_set(ConfigurationSetName=f"portal-access-{STAGE}-email")
    assert second["topic_arn"].endswith(f":portal-access-{STAGE}-ses-events")
    assert second["secret"] == secret_name


def test_template_is_cfn_lint_clean(tmp_path):
    # Alone, the template is linted without its partial resources (those only extend chalice's functions; the
    # merged result is linted whole by test_make_package_builds_a_lint_clean_template).
    standalone = dict(TEMPLATE, Resources={k: r for k, r in TEMPLATE["Resources"].items() if "Type" in r})
    path = tmp_path / "template.json"
    path.write_text(json.dumps(standalone))
    result = subprocess.run([str(CFN_LINT), str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_template_names_match_config_and_policies_are_least_privilege():
    assert set(config.TABLES) == sub_names("AWS::DynamoDB::Table", "TableName")
    queues = sub_names("AWS::SQS::Queue", "QueueName")
    assert queues == set(config.QUEUES) | {f"{q}-dlq" for q in config.QUEUES}
    assert TEMPLATE["Parameters"]["Stage"]["Default"] == "prod"
    assert TEMPLATE["Parameters"]["UploadsBucketName"]["Default"] == config.resource_name("uploads", "prod")
    for props in of_type("AWS::DynamoDB::Table").values():
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"] == {"SSEEnabled": True}
        assert props["DeletionProtectionEnabled"] is True
        assert {a["AttributeType"] for a in props["AttributeDefinitions"]} <= {"S", "N"}

    # Gateway errors speak the app's envelope (messageString is already a quoted JSON string).
    responses = {p["ResponseType"]: p for p in of_type("AWS::ApiGateway::GatewayResponse").values()}
    assert {"MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    for rtype, props in responses.items():
        assert props["RestApiId"] == {"Ref": "RestAPI"}
        body = props["ResponseTemplates"]["application/json"].replace("$context.error.messageString", '"m"')
        assert set(json.loads(body)["error"]) == {"code", "message"}, rtype
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"
    assert '"not_found"' in responses["MISSING_AUTHENTICATION_TOKEN"]["ResponseTemplates"]["application/json"]
    assert '"internal_error"' in responses["DEFAULT_5XX"]["ResponseTemplates"]["application/json"]

    # Every function has its own policy file (.chalice/policy-<function>.json), the same for dev and prod: its
    # resources are the template's own (Fn::GetAtt / Ref / Fn::Sub of its logical ids), so a stage's names come from
    # its Stage parameter. What each may do, resource by resource, is proven on the packaged template by
    # tests/test_deploy_template.py.
    import cfnlint
    known = json.loads((Path(cfnlint.__file__).parent / "data" / "AdditionalSpecs" / "Policies.json").read_text())
    chalice = json.loads((ROOT / ".chalice" / "config.json").read_text())
    functions = {"api_handler", "on_bulk_invite_upload", "on_send_message", "on_send_bulk", "on_ses_event",
                 "run_schedule"}
    aws = json.loads((ROOT / "infra" / "aws.json").read_text())
    names = set(TEMPLATE["Resources"]) | set(aws["Resources"]) | set(TEMPLATE["Parameters"]) | set(aws["Parameters"])
    for stage in ("dev", "prod"):
        conf = chalice["stages"][stage]
        assert conf["autogen_policy"] is False and "iam_policy_file" not in conf
        assert {f: c["iam_policy_file"] for f, c in conf["lambda_functions"].items()} == \
            {f: f"policy-{f}.json" for f in functions}
        # settings come from the template's parameters (infra/aws.json), never a placeholder here
        assert set(conf["environment_variables"]) == {"PORTAL_STAGE"}
    for function in functions:
        text = (ROOT / ".chalice" / f"policy-{function}.json").read_text()
        policy = json.loads(text)
        statements = [s.get("Fn::If", [None, s])[1] for s in policy["Statement"]]
        for s in statements:
            assert "NotAction" not in s and s["Effect"] in ("Allow", "Deny"), function
            assert s["Effect"] == "Allow" or s["Action"] == ["sns:Publish"], function  # the one Deny: SMS only
            for action in s["Action"]:
                service, _, name = action.partition(":")
                assert "*" not in action, action
                assert name.lower() in known[service]["Actions"], action
        referenced = set(re.findall(r'"Ref": "([A-Za-z0-9]+)"', text)) | {
            m.split(".")[0] for m in re.findall(r"\$\{([A-Za-z0-9.]+)\}", text)} | set(
            re.findall(r'"Fn::GetAtt": \[\s*"([A-Za-z0-9]+)"', text))
        assert referenced - {"Domain"} <= names, (function, referenced - names)  # Domain: a Fn::Sub variable
        assert "portal-access-dev" not in text and "portal-access-prod" not in text, function
