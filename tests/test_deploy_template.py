"""The deployable package: `make package` builds and cfn-lints dev and prod (build/package/<stage>/sam.json), and
these tests read what it built, resource by resource: each function's own role (which actions on which resources,
and that the functions' real AWS calls are allowed by it), parameters instead of placeholders, keys from the first
minute, data safety, the edge (WAF, throttling, custom domain), logs, alarms, the dashboard and `make deploy`."""
import fnmatch
import importlib.util
import json
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "infra"))
import compose  # noqa: E402  (infra/compose.py)
import params  # noqa: E402  (infra/params.py)

STAGES = ("dev", "prod")
REGION, ACCOUNT = "us-east-1", "123456789012"
FUNCTIONS = {  # logical id of chalice's function -> its name in app.py (and .chalice/config.json)
    "APIHandler": "api_handler", "OnBulkInviteUpload": "on_bulk_invite_upload", "OnSendMessage": "on_send_message",
    "OnSendBulk": "on_send_bulk", "OnSesEvent": "on_ses_event", "RunSchedule": "run_schedule"}
ROLES = {"APIHandler": "ApiHandlerRole", "OnBulkInviteUpload": "OnBulkInviteUploadRole",
         "OnSendMessage": "OnSendMessageRole", "OnSendBulk": "OnSendBulkRole", "OnSesEvent": "OnSesEventRole",
         "RunSchedule": "RunScheduleRole"}
# Values that must never reach a deployed function (the old defaults and RFC 2606 names).
PLACEHOLDERS = ["no-reply@portal-access.example", "x@example.com", "a@mail.example.org", "me@corp.test",
                "CHANGE-ME@your-domain", "portal.example.com", "portal.dev.example.com", "CHANGE-ME", "",
                "portal-access.example", "host.localhost", "a.invalid"]


@pytest.fixture(scope="module")
def packaged():
    """`make package` once for the module: both stages built and linted (exit 0 = cfn-lint found nothing)."""
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_ENDPOINT_URL", None)
    result = subprocess.run(["make", "package"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-4000:]
    return {s: json.loads((ROOT / "build" / "package" / s / "sam.json").read_text()) for s in STAGES}


def resources(sam, rtype):
    return {lid: r for lid, r in sam["Resources"].items() if r.get("Type") == rtype}


@pytest.mark.package
def test_make_package_builds_and_lints_both_stages(packaged):
    template = json.loads((ROOT / "infra" / "template.json").read_text())
    aws = json.loads((ROOT / "infra" / "aws.json").read_text())
    for stage, sam in packaged.items():
        assert sam["Resources"]["RestAPI"]["Type"] == "AWS::Serverless::Api"  # what the GatewayResponses Ref
        local = {lid for lid, r in template["Resources"].items() if r.get("Type") != "AWS::ApiGateway::GatewayResponse"}
        assert local | set(aws["Resources"]) <= set(sam["Resources"])
        # The gateway responses travel in the API's body, so a redeployment's import keeps them (cfn-lint W3660).
        assert not resources(sam, "AWS::ApiGateway::GatewayResponse")
        body = sam["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
        responses = body["x-amazon-apigateway-gateway-responses"]
        for r in template["Resources"].values():
            if r.get("Type") == "AWS::ApiGateway::GatewayResponse":
                props = r["Properties"]
                got = responses[props["ResponseType"]]
                assert got["responseTemplates"] == props["ResponseTemplates"]
                assert got["responseParameters"] == props["ResponseParameters"]
                assert str(got.get("statusCode", "")) == props.get("StatusCode", "")
        assert "/v1/health" in body["paths"]  # merged into chalice's body, not replacing it
        assert (ROOT / "build" / "package" / stage / "deployment.zip").stat().st_size > 0
        queue = sam["Resources"]["OnSendMessage"]["Properties"]["Events"]["OnSendMessageSqsEventSource"]
        assert queue["Properties"]["Queue"]["Fn::Sub"].endswith(f":portal-access-{stage}-send")  # chalice's stage


# --- a small resolver and IAM evaluator for the packaged policies ----------------------------------------------------

class Resolver:
    """Resolves the intrinsics the policies and functions use, for one stage, as CloudFormation would in
    us-east-1 of account 123456789012 (the moto account)."""

    def __init__(self, sam, stage, **parameters):
        self.sam, self.conditions = sam, {}
        self.refs = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
                     "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None}
        for name, spec in sam["Parameters"].items():
            if "Default" in spec:
                self.refs[name] = str(spec["Default"])
        self.refs.update({"SenderEmail": "no-reply@sender.portal-access.com", "SesSandbox": "false",
                          "DomainName": "portal.portal-access.com", "Stage": stage})
        self.refs.update(parameters)
        self.attrs = {}
        for lid, r in sam["Resources"].items():
            props = r.get("Properties", {})
            t = r.get("Type")
            if t == "AWS::DynamoDB::Table":
                name = self.resolve(props["TableName"])
                self.refs[lid], self.attrs[(lid, "Arn")] = name, f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
            elif t == "AWS::SQS::Queue":
                name = self.resolve(props["QueueName"])
                self.attrs[(lid, "QueueName")], self.attrs[(lid, "Arn")] = name, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
            elif t == "AWS::S3::Bucket":
                name = self.resolve(props["BucketName"])
                self.refs[lid], self.attrs[(lid, "Arn")] = name, f"arn:aws:s3:::{name}"
            elif t == "AWS::SecretsManager::Secret":
                self.refs[lid] = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{self.resolve(props['Name'])}-AbCdEf"
            elif t == "AWS::Logs::LogGroup":
                self.attrs[(lid, "Arn")] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{self.resolve(props['LogGroupName'])}:*"
            elif t == "AWS::SES::ConfigurationSet":
                self.refs[lid] = self.resolve(props["Name"])
        for name, cond in sam.get("Conditions", {}).items():
            self.conditions[name] = cond

    def condition(self, name):
        return self.truth(self.conditions[name])

    def truth(self, c):
        (fn, args), = c.items()
        if fn == "Fn::Equals":
            return self.resolve(args[0]) == self.resolve(args[1])
        if fn == "Fn::Not":
            return not self.truth(args[0])
        if fn == "Fn::And":
            return all(self.truth(a) for a in args)
        if fn == "Fn::Or":
            return any(self.truth(a) for a in args)
        if fn == "Condition":
            return self.condition(args)
        raise NotImplementedError(fn)

    def resolve(self, v):
        if isinstance(v, list):
            return [x for x in (self.resolve(x) for x in v) if x is not None]
        if not isinstance(v, dict):
            return v
        if set(v) == {"Ref"}:
            return self.refs[v["Ref"]]
        if set(v) == {"Fn::GetAtt"}:
            return self.attrs[tuple(v["Fn::GetAtt"])]
        if set(v) == {"Fn::Sub"}:
            text, extra = (v["Fn::Sub"], {}) if isinstance(v["Fn::Sub"], str) else v["Fn::Sub"]
            extra = {k: self.resolve(x) for k, x in extra.items()}

            def sub(m):
                name = m.group(1)
                if name in extra:
                    return extra[name]
                lid, _, attr = name.partition(".")
                return self.attrs[(lid, attr)] if attr else self.refs[lid]
            return re.sub(r"\$\{([^}!]+)\}", sub, text)
        if set(v) == {"Fn::Select"}:
            i, items = v["Fn::Select"]
            return self.resolve(items)[i]
        if set(v) == {"Fn::Split"}:
            sep, text = v["Fn::Split"]
            return self.resolve(text).split(sep)
        if set(v) == {"Fn::If"}:
            name, yes, no = v["Fn::If"]
            return self.resolve(yes if self.condition(name) else no)
        return {k: self.resolve(x) for k, x in v.items()}


def statements(sam, role, resolver):
    [policy] = sam["Resources"][role]["Properties"]["Policies"]
    return [s for s in resolver.resolve(policy["PolicyDocument"]["Statement"]) if s is not None]


def as_list(v):
    return [v] if isinstance(v, str) else list(v)


def arn_match(pattern, arn):
    return fnmatch.fnmatchcase(arn, pattern)  # IAM: * any run of characters, ? one


def allowed(stmts, action, resource, context):
    def applies(s):
        if not any(fnmatch.fnmatchcase(action, a) for a in as_list(s["Action"])):
            return False
        if "Resource" in s and not any(arn_match(p, resource) for p in as_list(s["Resource"])):
            return False
        if "NotResource" in s and any(arn_match(p, resource) for p in as_list(s["NotResource"])):
            return False
        for op, conds in s.get("Condition", {}).items():
            assert op == "StringEquals", op  # the only operator these policies use
            if any(context.get(k) not in as_list(v) for k, v in conds.items()):
                return False
        return True
    if any(s["Effect"] == "Deny" and applies(s) for s in stmts):
        return False
    return any(s["Effect"] == "Allow" and applies(s) for s in stmts)


def grants(stmts):
    """{(action, resource pattern)} of the Allow statements (NotResource kept as "NOT <pattern>")."""
    out = set()
    for s in stmts:
        if s["Effect"] != "Allow":
            continue
        targets = as_list(s["Resource"]) if "Resource" in s else [f"NOT {p}" for p in as_list(s["NotResource"])]
        out |= {(a, r) for a in as_list(s["Action"]) for r in targets}
    return out


# --- the roles, resource by resource -------------------------------------------------------------------------------

def expected_grants(stage):
    """What each function may do: the tables, indexes, queues, objects and secrets it uses, found by reading the
    code each handler reaches and confirmed by test_the_functions_real_calls_are_allowed_by_their_own_roles."""
    arn = f"{REGION}:{ACCOUNT}"

    def table(short):
        return f"arn:aws:dynamodb:{arn}:table/portal-access-{stage}-{short}"

    def queue(short):
        return f"arn:aws:sqs:{arn}:portal-access-{stage}-{short}"

    bucket = f"arn:aws:s3:::portal-access-{stage}-uploads"

    def log(name):
        return f"arn:aws:logs:{arn}:log-group:/aws/lambda/portal-access-{stage}-{name}:*"

    def on(resource, *actions):
        return {(a, resource) for a in actions}

    def base(name):
        return on(log(name), "logs:CreateLogStream", "logs:PutLogEvents") | on(
            "*", "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets")

    consume = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes")
    send = on(queue("send"), "sqs:SendMessage", "sqs:GetQueueUrl")
    # the bulk lane: messages written to the backlog, the drainer kicked
    send_bulk = on(table("send-backlog"), "dynamodb:PutItem", "dynamodb:BatchWriteItem") | on(
        queue("send-bulk"), "sqs:SendMessage", "sqs:GetQueueUrl")
    crud = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem",
            "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem")
    api_tables = ["tenants", "people", "claims", "customers", "locations", "contacts", "record-emails", "portal-users",
                  "tokens", "jobs", "counters", "sessions", "partner-portals", "partner-clients",
                  "partner-enablements", "partner-users", "apps"]
    secret = f"arn:aws:secretsmanager:{arn}:secret:portal-access/{stage}"
    ses = f"arn:aws:ses:{arn}"
    # both senders: render (links, codes, counters, rate slots), deliver once, send by SES or SNS
    delivering = on(
            table("idempotency"), "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
            "dynamodb:DeleteItem") | set().union(*(on(table(t), "dynamodb:GetItem") for t in (
                "tenants", "people", "record-emails"))) | set().union(*(on(
                    table(t), "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem") for t in (
                    "tokens", "portal-users", "counters"))) | on(table("audit"), "dynamodb:PutItem") | on(
            f"{ses}:identity/sender.portal-access.com", "ses:SendEmail") | on(
            f"{ses}:identity/no-reply@sender.portal-access.com", "ses:SendEmail") | on(
            f"{ses}:configuration-set/portal-access-{stage}-email", "ses:SendEmail") | {
            ("sns:Publish", "NOT arn:aws:sns:*:*:*")}
    return {
        "APIHandler": base("api_handler") | set().union(*(on(table(t), *crud) for t in api_tables)) | {
            ("dynamodb:Query", f"{table(t)}/index/{i}") for t, i in (
                ("locations", "by-customer"), ("contacts", "by-customer"), ("portal-users", "by-status"),
                ("sessions", "by-user"), ("audit", "by-trail"), ("audit", "by-actor"), ("apps", "by-tenant"))} | on(table("audit"), "dynamodb:PutItem", "dynamodb:Query") | on(
            table("partner-portals"), "dynamodb:Scan") | send | on(f"{bucket}/bulk-invites/*", "s3:PutObject") | on(
            # the console's bulk review runs in the API: the upload read back, its rows and report, its send queued
            f"{bucket}/bulk-invites/*", "s3:GetObject", "s3:GetObjectVersion") | on(
            f"{bucket}/bulk-invite-reports/*", "s3:GetObject", "s3:PutObject") | on(
            queue("bulk-invites"), "sqs:SendMessage", "sqs:GetQueueUrl") | on(
            f"{secret}/signing-keys-AbCdEf", "secretsmanager:GetSecretValue") | on(
            f"{secret}/oidc-AbCdEf", "secretsmanager:GetSecretValue") | send_bulk,
        "OnBulkInviteUpload": base("on_bulk_invite_upload") | on(queue("bulk-invites"), *consume) | send | send_bulk | on(
            queue("bulk-invites"), "sqs:SendMessage", "sqs:GetQueueUrl") | on(  # a long run's continuation
            f"{bucket}/bulk-invites/*", "s3:GetObject", "s3:GetObjectVersion") | on(
            f"{bucket}/bulk-invite-reports/*", "s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload") | on(
            table("tenants"), "dynamodb:GetItem") | on(
            table("record-emails"), "dynamodb:GetItem", "dynamodb:BatchGetItem") | on(
            table("jobs"), "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem") | on(
            table("portal-users"), "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem",
            "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem") | on(table("audit"), "dynamodb:PutItem") | on(
            table("counters"), "dynamodb:PutItem", "dynamodb:GetItem"),
        "OnSendMessage": base("on_send_message") | on(queue("send"), *consume) | delivering,
        "OnSendBulk": base("on_send_bulk") | on(queue("send-bulk"), *consume) | delivering | on(
            queue("send-bulk"), "sqs:SendMessage", "sqs:GetQueueUrl") | on(
            queue("send-bulk-dlq"), "sqs:SendMessage", "sqs:GetQueueUrl") | on(
            table("send-backlog"), "dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem",
            "dynamodb:BatchWriteItem") | on(table("counters"), "dynamodb:DeleteItem"),
        "OnSesEvent": base("on_ses_event") | on(table("portal-users"), "dynamodb:UpdateItem"),
        "RunSchedule": base("run_schedule") | on(table("people"), "dynamodb:BatchGetItem", "dynamodb:GetItem",
                                                 "dynamodb:UpdateItem") | on(
            f"{table('people')}/index/by-due", "dynamodb:Query") | on(table("tenants"), "dynamodb:GetItem") | on(
            table("apps"), "dynamodb:GetItem") | on(  # the expiry warning names the staff app (its default)
            table("audit"), "dynamodb:PutItem") | send | on(  # stalled bulk runs (bulk_checkpoints.fail_stalled)
            table("jobs"), "dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem") | on(
            table("send-backlog"), "dynamodb:Query") | on(  # a bulk lane left with no drainer is woken
            table("counters"), "dynamodb:GetItem") | on(queue("send-bulk"), "sqs:SendMessage", "sqs:GetQueueUrl") | on(
            queue("bulk-invites"), "sqs:SendMessage", "sqs:GetQueueUrl"),  # a stalled run continued
    }


@pytest.mark.package
@pytest.mark.parametrize("stage", STAGES)
def test_each_function_has_its_own_least_privilege_role(packaged, stage):
    sam = packaged[stage]
    functions = resources(sam, "AWS::Serverless::Function")
    assert set(functions) == set(FUNCTIONS)  # everything chalice package makes, and nothing else runs code
    assert set(resources(sam, "AWS::IAM::Role")) == set(ROLES.values()) | {"ApiGatewayLogsRoleResource"}
    resolver = Resolver(sam, stage)
    expected = expected_grants(stage)
    for lid, fn in functions.items():
        assert fn["Properties"]["Role"] == {"Fn::GetAtt": [ROLES[lid], "Arn"]}, lid
        stmts = statements(sam, ROLES[lid], resolver)
        assert grants(stmts) == expected[lid], lid
        for s in stmts:
            wildcard = [r for r in as_list(s.get("Resource", [])) if r == "*"]
            # X-Ray's trace and sampling actions have no resource-level permissions: AWS requires "*" for them.
            assert not wildcard or (s["Sid"] == "TracingHasNoResourceLevelPermissions"
                                    and all(a.startswith("xray:") for a in as_list(s["Action"]))), (lid, s)
            assert "logs:CreateLogGroup" not in s["Action"]  # the template creates each log group, with retention
    # SMS only: sns:Publish is allowed on no ARN at all (a phone number has none), and denied on every topic and
    # platform endpoint, so even a later Allow elsewhere cannot turn it into topic publishing.
    send = statements(sam, "OnSendMessageRole", resolver)
    phone, topic, endpoint = "*", f"arn:aws:sns:{REGION}:{ACCOUNT}:portal-access-{stage}-ses-events", \
        f"arn:aws:sns:{REGION}:{ACCOUNT}:endpoint/GCM/app/0f1e"
    assert allowed(send, "sns:Publish", phone, {})
    assert not allowed(send, "sns:Publish", topic, {}) and not allowed(send, "sns:Publish", endpoint, {})
    assert any(s["Effect"] == "Deny" and s["Action"] == ["sns:Publish"] for s in send)
    # Email only from the sender address, through the stack's configuration set.
    identity = f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/sender.portal-access.com"
    assert allowed(send, "ses:SendEmail", identity, {"ses:FromAddress": "no-reply@sender.portal-access.com"})
    assert not allowed(send, "ses:SendEmail", identity, {"ses:FromAddress": "ceo@sender.portal-access.com"})
    # In the SES sandbox SES authorises the verified recipients' identities too: a parameter, still the sender only.
    sandbox = statements(sam, "OnSendMessageRole", Resolver(sam, stage, SesSandbox="true"))
    recipient = f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/tester@gmail.com"
    assert allowed(sandbox, "ses:SendEmail", recipient, {"ses:FromAddress": "no-reply@sender.portal-access.com"})
    assert not allowed(send, "ses:SendEmail", recipient, {"ses:FromAddress": "no-reply@sender.portal-access.com"})


@pytest.mark.package
def test_only_the_api_reads_the_signing_keys_and_nothing_scans_freely(packaged):
    sam = packaged["prod"]
    resolver = Resolver(sam, "prod")
    keys = resolver.refs["SigningKeysSecret"]
    for lid, role in ROLES.items():
        stmts = statements(sam, role, resolver)
        assert allowed(stmts, "secretsmanager:GetSecretValue", keys, {}) == (lid == "APIHandler"), lid
        scans = {r for a, r in grants(stmts) if a == "dynamodb:Scan"}
        # the schedule queries its index of what is due (expiry.py) instead of scanning the people table
        assert scans == {"APIHandler": {resolver.attrs[("PartnerPortalsTable", "Arn")]}}.get(lid, set()), lid
        audit = resolver.attrs[("AuditTable", "Arn")]
        # The audit trail is append-only for every function.
        assert not any(allowed(stmts, f"dynamodb:{a}", audit, {}) for a in ("UpdateItem", "DeleteItem", "BatchWriteItem"))


# --- the functions' real calls, against their own roles --------------------------------------------------------------

def iam_requests(service, operation, params_):
    """(action, resource ARN, condition context) that one AWS call is authorised as, in the local stage's names."""
    arn = f"{REGION}:{ACCOUNT}"

    def table(name):
        return f"arn:aws:dynamodb:{arn}:table/{name}"
    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                     "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
            return [(f"dynamodb:{kinds[k]}", table(v["TableName"]), {})
                    for item in params_["TransactItems"] for k, v in item.items()]
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{operation}", table(t), {}) for t in params_["RequestItems"]]
        resource = table(params_["TableName"]) + (f"/index/{params_['IndexName']}" if "IndexName" in params_ else "")
        return [(f"dynamodb:{operation}", resource, {})]
    if service == "sqs":
        name = params_["QueueName"] if operation == "GetQueueUrl" else params_["QueueUrl"].rsplit("/", 1)[1]
        action = operation.replace("Batch", "")
        return [(f"sqs:{action}", f"arn:aws:sqs:{arn}:{name}", {})]
    if service == "s3":
        obj = f"arn:aws:s3:::{params_['Bucket']}/{params_.get('Key', '')}"
        if operation in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
            return [("s3:PutObject", obj, {})]
        if operation in ("GetObject", "HeadObject"):
            return [("s3:GetObjectVersion" if params_.get("VersionId") else "s3:GetObject", obj, {})]
        return [(f"s3:{operation}", obj, {})]
    if service == "secretsmanager":
        return [(f"secretsmanager:{operation}",
                 f"arn:aws:secretsmanager:{arn}:secret:{params_['SecretId']}-AbCdEf", {})]
    if service == "ses":
        source = params_["Source"]
        context = {"ses:FromAddress": source}
        out = [("ses:SendEmail", f"arn:aws:ses:{arn}:identity/{source.split('@')[1]}", context)]
        if params_.get("ConfigurationSetName"):
            out.append(("ses:SendEmail", f"arn:aws:ses:{arn}:configuration-set/{params_['ConfigurationSetName']}", context))
        return out
    if service == "sns":
        return [("sns:Publish", "*" if "PhoneNumber" in params_ else params_.get("TopicArn"), {})]
    return [(f"{service}:{operation}", "*", {})]


class Recorder:
    """Every AWS call made while a handler acts, from any thread (s3transfer uploads in threads of its own)."""

    def __init__(self):
        self.actor, self.calls = None, {}

    @contextmanager
    def acting(self, actor):
        self.actor = actor
        try:
            yield
        finally:
            self.actor = None


@pytest.mark.package
def test_the_functions_real_calls_are_allowed_by_their_own_roles(packaged, app, http, tenant, monkeypatch):
    """Each handler runs its flows against the local stack (the portal: invite, bulk file, register, sign-in,
    reset, sessions; staff: SMS invitation, code reset; partners; the schedule; an SES bounce) while every AWS call
    it makes is recorded, then checked against its role in the packaged dev template (local names mapped to dev's;
    the local sender stands for the SenderEmail parameter)."""
    import botocore.client
    from conftest import SCHEDULED_EVENT, LambdaContext, drain, outbox_for
    from test_bulk_invites import BUCKET, bulk_events

    from chalicelib.core import config
    from chalicelib.core.models import Person, now

    rec = Recorder()
    real_call = botocore.client.BaseClient._make_api_call
    from chalicelib.core.security import keys
    keys._provider().clear_cache()  # the API reads the key ring here even when an earlier test cached it

    def recording(client, operation, api_params):
        if rec.actor:
            rec.calls.setdefault(rec.actor, []).append(
                (client.meta.service_model.service_name, operation, dict(api_params)))
        return real_call(client, operation, api_params)
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)

    class Sender:  # drain() plays the SQS poller (its calls are Lambda's, not the function's); the handler acts
        @staticmethod
        def on_send_message(event, context):
            with rec.acting("OnSendMessage"):
                return app.on_send_message(event, context)

        @staticmethod
        def on_send_bulk(event, context):
            with rec.acting("OnSendBulk"):
                return app.on_send_bulk(event, context)

    def deliver_all():
        drain(Sender)

    d, mobile = tenant.id, "+12017654321"
    with rec.acting("APIHandler"):
        token = tenant.admin_token
        customer = http.post("/v1/customers", {"name": "Policy", "emails": [f"owner@{d}.example"]}, token=token)[1]
        http.post(f"/v1/customers/{customer['customer_id']}/contacts",
                  {"name": "Books", "email": f"books@{d}.example"}, token=token)
        http.get(f"/v1/customers/{customer['customer_id']}/contacts", token=token)
        http.post(f"/v1/customers/{customer['customer_id']}/locations", {"address": "1 Elm"}, token=token)
        http.get(f"/v1/customers/{customer['customer_id']}/locations", token=token)
        user = http.post("/v1/portal/invitations", {"customer_id": customer["customer_id"],
                                                    "email": f"owner@{d}.example"}, token=token)[1]
        http.get("/v1/portal/users?status=invited", token=token)
        http.post("/v1/portal/bulk-invites/upload-url", {"filename": "x.csv"}, token=token)
        http.get("/v1/partner-portals", token=token)
        http.get("/.well-known/jwks.json")
        tech = http.post("/v1/people", {"kind": "technician", "name": "T", "mobile": mobile}, token=token)[1]
        http.post(f"/v1/people/{tech['person_id']}/invite", {}, token=token)
        flow = http.post("/v1/staff/password-reset/start", {"tenant_id": d, "identifier": tenant.admin_username})[1]
        http.post("/v1/staff/password-reset/send-code", {"flow_id": flow["flow_id"]})
    deliver_all()
    [invitation] = [m for m in outbox_for(f"owner@{d}.example") if "/register" in json.dumps(m["links"])]
    link = next(x for x in invitation["links"] if "/register" in x)
    with rec.acting("APIHandler"):
        http.post("/v1/portal/register", {"token": link.split("token=")[1], "password": "Policy-Check-Pass-77"})
        signed_in = http.post("/v1/portal/sign-in", {"tenant_id": d, "email": f"owner@{d}.example",
                                                     "password": "Policy-Check-Pass-77"})[1]
        http.get("/v1/portal/me", token=signed_in["access_token"])
        http.get("/v1/portal/sessions", token=signed_in["access_token"])
        http.post("/v1/portal/token/refresh", {"refresh_token": signed_in["refresh_token"]})
        http.post("/v1/portal/password-reset", {"tenant_id": d, "email": f"owner@{d}.example"})
        http.get(f"/v1/portal/users/{user['user_id']}/audit", token=token)
    deliver_all()
    assert outbox_for(mobile) and outbox_for(mobile)[-1]["channel"] == "sms"

    s3 = config.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"bulk-invites/{d}/policy.csv", Body=f"books@{d}.example\nnobody@{d}.example\n".encode())
    for event in [e for e in bulk_events() if "TestEvent" not in e["Records"][0]["body"]]:
        with rec.acting("OnBulkInviteUpload"):
            assert app.on_bulk_invite_upload(event, LambdaContext()) == {"batchItemFailures": []}
    deliver_all()

    # the admin console's work, in the API function: a bulk file reviewed in-process, its rows, report and send
    # (the send's run is the bulk function's), the searches, the activity trail, an unlock
    from datetime import date

    from chalicelib.core.principal import Principal
    from chalicelib.flows import activity, customer_search
    from chalicelib.flows.portal import bulk_review, user_search
    from chalicelib.flows.staff import unlock
    admin_person = next(p for p in Person.query(d) if p.username == tenant.admin_username)
    console_admin = Principal("staff", d, admin_person.person_id, frozenset({"portal:manage", "accounts:manage"}))
    with rec.acting("APIHandler"):
        job_id = bulk_review.upload_for_review(console_admin, "console.csv",
                                               f"books@{d}.example\nnobody@{d}.example\n".encode(), False, None)
        http.get(f"/v1/portal/bulk-invites/{job_id}/rows?outcome=will_invite", token=token)
        http.get(f"/v1/portal/bulk-invites/{job_id}/report.csv", token=token)
        http.post(f"/v1/portal/bulk-invites/{job_id}/send", token=token)
        http.get("/v1/customers?q=policy", token=token)
        customer_search.search(d, f"owner@{d}.example", {})
        user_search.search(d, "owner", {})
        activity.search(d, [activity.person(d, tenant.admin_username)], date(2026, 1, 1), None, {})
        unlock.unlock(console_admin, tech["person_id"], None)
    for event in [e for e in bulk_events() if "TestEvent" not in e["Records"][0]["body"]]:
        with rec.acting("OnBulkInviteUpload"):
            assert app.on_bulk_invite_upload(event, LambdaContext()) == {"batchItemFailures": []}
    deliver_all()

    admin = next(p for p in Person.query(d) if p.username == tenant.admin_username)
    from chalicelib.flows.expiry import due_actions  # back-dated in the schedule's index too, as the writers do
    admin.update(actions=[Person.password_set_at.set(now() - 360 * 24 * 3600),
                          *due_actions(admin, password_set_at=now() - 360 * 24 * 3600)])
    with rec.acting("RunSchedule"):
        app.run_schedule(SCHEDULED_EVENT, LambdaContext())
    deliver_all()
    note = {"eventType": "Bounce", "mail": {"tags": {"tenant": [d]}},
            "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": f"owner@{d}.example"}]}}
    with rec.acting("OnSesEvent"):
        app.on_ses_event({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn:x",
                                       "Sns": {"Type": "Notification", "MessageId": "n1", "TopicArn": "arn:x",
                                               "Subject": None, "Message": json.dumps(note),
                                               "Timestamp": "2026-01-01T00:00:00Z", "MessageAttributes": {}}}]},
                         LambdaContext())

    sam = packaged["dev"]
    resolver = Resolver(sam, "dev", SenderEmail=config.sender_email())
    local, dev = f"portal-access-{config.stage()}", "portal-access-dev"
    checked, refused = {}, []
    for actor, calls in rec.calls.items():
        stmts = statements(sam, ROLES[actor], resolver)
        for service, operation, api_params in calls:
            for action, resource, context in iam_requests(service, operation, api_params):
                resource = (resource or "").replace(local, dev).replace(f"portal-access/{config.stage()}/", "portal-access/dev/")
                resource = resource.replace(f":::{BUCKET}/", ":::portal-access-dev-uploads/")
                checked.setdefault(actor, set()).add(action)
                if not allowed(stmts, action, resource, context):
                    refused.append((actor, action, resource))
    assert refused == [], json.dumps(refused)
    # every function was exercised, each with the calls that matter most
    assert {"dynamodb:Scan", "secretsmanager:GetSecretValue", "sqs:SendMessage"} <= checked["APIHandler"]
    assert {"s3:GetObject", "s3:PutObject", "dynamodb:BatchGetItem", "sqs:SendMessage"} <= checked["OnBulkInviteUpload"]
    assert {"ses:SendEmail", "sns:Publish", "dynamodb:PutItem"} <= checked["OnSendMessage"]
    assert {"ses:SendEmail", "dynamodb:Query", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem"} <= checked["OnSendBulk"]
    assert {"dynamodb:Query", "dynamodb:BatchGetItem", "sqs:SendMessage"} <= checked["RunSchedule"]
    assert checked["OnSesEvent"] == {"dynamodb:UpdateItem"}


# --- parameters, not placeholders ----------------------------------------------------------------------------------

@pytest.mark.package
@pytest.mark.parametrize("stage", STAGES)
def test_functions_get_their_settings_from_parameters_without_placeholders(packaged, stage):
    sam = packaged[stage]
    p = sam["Parameters"]
    assert p["Stage"]["AllowedValues"] == [stage] and p["Stage"]["Default"] == stage
    env = sam["Globals"]["Function"]["Environment"]["Variables"]
    assert env == {"PORTAL_SENDER_EMAIL": {"Ref": "SenderEmail"},
                   "PORTAL_PUBLIC_BASE_URL": {"Fn::Sub": "https://${DomainName}"},
                   "PORTAL_UPLOADS_BUCKET": {"Ref": "UploadsBucketName"},
                   "PORTAL_SES_CONFIGURATION_SET": {"Ref": "EmailConfigurationSet"},
                   "PORTAL_SMS_ORIGINATION_NUMBER": {"Ref": "SmsOriginationNumber"},
                   "PORTAL_SMS_SENDER_ID": {"Ref": "SmsSenderId"}}
    for lid in FUNCTIONS:
        own = sam["Resources"][lid]["Properties"]["Environment"]["Variables"]
        assert own["PORTAL_STAGE"] == stage
        assert not set(own) & set(env), lid  # a function's own value would override the parameter (SAM Globals)
        assert not any(isinstance(v, str) and ("example" in v or "CHANGE" in v) for v in own.values()), lid
    for sender in ("OnSendMessage", "OnSendBulk"):  # the account's rates, shared by both lanes
        own = sam["Resources"][sender]["Properties"]["Environment"]["Variables"]
        assert own["PORTAL_SES_RATE_PER_SECOND"] == {"Ref": "SesRatePerSecond"}
        assert own["PORTAL_SNS_RATE_PER_SECOND"] == {"Ref": "SnsRatePerSecond"}
    # Required settings have no default, and the template itself refuses a placeholder.
    for name in ("SenderEmail", "DomainName", "CertificateArn", "SesSandbox"):
        assert "Default" not in p[name], name
    for value in PLACEHOLDERS:
        assert not re.fullmatch(p["SenderEmail"]["AllowedPattern"], value), value
        assert not re.fullmatch(p["DomainName"]["AllowedPattern"], value), value
    assert re.fullmatch(p["SenderEmail"]["AllowedPattern"], "no-reply@mail.acme-heating.com")
    assert re.fullmatch(p["DomainName"]["AllowedPattern"], "portal.acme-heating.com")
    assert re.fullmatch(p["CertificateArn"]["AllowedPattern"],
                        "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012")
    assert not re.fullmatch(p["CertificateArn"]["AllowedPattern"], "CHANGE-ME")
    assert re.fullmatch(p["SmsOriginationNumber"]["AllowedPattern"], "+18005550100")
    assert not re.fullmatch(p["SmsOriginationNumber"]["AllowedPattern"], "555-0100")
    # The custom domain: TLS 1.2, regional, mapped at the root to the API's stage; the execute-api URL is off.
    r = sam["Resources"]
    assert r["ApiDomainName"]["Properties"] == {
        "DomainName": {"Ref": "DomainName"}, "RegionalCertificateArn": {"Ref": "CertificateArn"},
        "EndpointConfiguration": {"Types": ["REGIONAL"]}, "SecurityPolicy": "TLS_1_2"}
    assert r["ApiBasePathMapping"]["Properties"] == {"DomainName": {"Ref": "ApiDomainName"},
                                                     "RestApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}
    assert r["ApiDnsRecord"]["Condition"] == "HasHostedZone"
    assert r["RestAPI"]["Properties"]["DisableExecuteApiEndpoint"] is True
    assert sam["Outputs"]["EndpointURL"]["Value"] == {"Fn::Sub": "https://${DomainName}/"}
    # SES: the sender's domain is the identity, DKIM 2048, the stack's configuration set by default.
    identity = r["SenderIdentity"]
    assert identity["Condition"] == "CreatesEmailIdentity"
    assert identity["Properties"]["EmailIdentity"] == {"Fn::Select": [1, {"Fn::Split": ["@", {"Ref": "SenderEmail"}]}]}
    assert identity["Properties"]["DkimSigningAttributes"] == {"NextSigningKeyLength": "RSA_2048_BIT"}
    assert identity["Properties"]["ConfigurationSetAttributes"] == {"ConfigurationSetName": {"Ref": "EmailConfigurationSet"}}
    assert r["EmailConfigurationSet"]["Properties"]["SuppressionOptions"] == {"SuppressedReasons": ["BOUNCE", "COMPLAINT"]}


@pytest.mark.package
def test_signing_keys_exist_from_the_first_minute(packaged):
    for stage in STAGES:
        secret = packaged[stage]["Resources"]["SigningKeysSecret"]
        props = secret["Properties"]
        assert "SecretString" not in props
        generated = props["GenerateSecretString"]
        assert json.loads(generated["SecretStringTemplate"]) == {"active_kid": None, "keys": []}
        assert generated["GenerateStringKey"] == "seed" and generated["PasswordLength"] >= 64
        assert secret["DeletionPolicy"] == secret["UpdateReplacePolicy"] == "Retain"
    # the local stack keeps the ring the seed creates (template.json: an empty ring, filled by keys rotate)
    local = json.loads((ROOT / "infra" / "template.json").read_text())["Resources"]["SigningKeysSecret"]["Properties"]
    assert json.loads(local["SecretString"]) == {"active_kid": None, "keys": []}


@pytest.mark.package
def test_send_consumer_is_bounded_by_the_event_source_not_reserved_concurrency(packaged):
    for stage in STAGES:
        for lid in ("OnSendMessage", "OnSendBulk"):
            send = packaged[stage]["Resources"][lid]["Properties"]
            assert "ReservedConcurrentExecutions" not in send  # it made Lambda throttle SQS into the DLQ
            event = send["Events"][f"{lid}SqsEventSource"]["Properties"]
            assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
            assert event["ScalingConfig"] == {"MaximumConcurrency": 2}
        # the rate is the account's (shared through counters), not per function instance
        assert packaged[stage]["Parameters"]["SesRatePerSecond"]["Default"] == 14


# --- data safety --------------------------------------------------------------------------------------------------

@pytest.mark.package
def test_tables_bucket_and_queues_keep_data_safe(packaged):
    sam = packaged["prod"]
    r = sam["Resources"]
    tables = resources(sam, "AWS::DynamoDB::Table")
    assert len(tables) == 20
    for lid, t in tables.items():
        props = t["Properties"]
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, lid
        assert props["DeletionProtectionEnabled"] is True, lid
        assert props["SSESpecification"] == {"SSEEnabled": True}, lid
        assert t["DeletionPolicy"] == t["UpdateReplacePolicy"] == "Retain", lid
    bucket = r["UploadsBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True} and len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    rules = {rule.get("Prefix"): rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    for prefix in ("bulk-invites/", "bulk-invite-reports/"):
        assert rules[prefix]["ExpirationInDays"] == {"Ref": "UploadsRetentionDays"}
        assert rules[prefix]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}  # versioned: old versions too
    assert rules[None]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert "Default" in sam["Parameters"]["UploadsRetentionDays"]
    [tls] = r["UploadsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert tls["Effect"] == "Deny" and tls["Principal"] == "*" and tls["Action"] == "s3:*"
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert tls["Resource"] == [{"Fn::GetAtt": ["UploadsBucket", "Arn"]}, {"Fn::Sub": "${UploadsBucket.Arn}/*"}]
    queues = resources(sam, "AWS::SQS::Queue")
    for lid, q in queues.items():
        assert q["Properties"]["SqsManagedSseEnabled"] is True, lid
        if not lid.endswith("DeadLetterQueue"):
            dlq = q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            assert dlq in queues and dlq.endswith("DeadLetterQueue"), lid


# --- edge -----------------------------------------------------------------------------------------------------------

AUTH_ROUTES = ["/v1/staff/sign-in", "/v1/portal/sign-in", "/v1/portal/sign-up", "/v1/portal/password-reset",
               "/v1/portal/password-reset/complete", "/v1/staff/password-reset/start",
               "/v1/staff/password-reset/send-code", "/v1/staff/password-reset/verify",
               "/v1/staff/password-reset/complete", "/v1/portal/token/refresh", "/v1/partner/token",
               "/v1/portal/register", "/v1/staff/accept-invite", "/v1/portal/access", "/v1/staff/sign-in/mfa",
               "/v1/staff/sign-in/mfa/passkey-options", "/v1/staff/sign-in/passkey/options",
               "/v1/staff/sign-in/passkey"]
AUTH_PAGES = ["/sign-in", "/register", "/reset-password", "/staff/accept-invite", "/staff/reset-password",
              "/staff/change-password", "/staff/sign-in", "/staff/sign-in/factor", "/staff/sign-in/setup",
              "/console/sign-in", "/console/sign-in/factor", "/console/sign-in/passkey", "/console/change-password",
              "/console/mfa-setup"]


@pytest.mark.package
def test_waf_rate_limits_the_public_identity_routes(packaged, app):
    sam = packaged["prod"]
    r = sam["Resources"]
    acl = r["WebAcl"]["Properties"]
    assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
    assoc = r["WebAclAssociation"]["Properties"]
    assert assoc["WebACLArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}
    assert {"Ref": "RestAPI"} in assoc["ResourceArn"]["Fn::Join"][1] and {"Ref": "RestAPI.Stage"} in assoc["ResourceArn"]["Fn::Join"][1]
    rules = {rule["Name"]: rule for rule in acl["Rules"]}
    auth = rules["auth-routes-per-ip"]["Statement"]["RateBasedStatement"]
    assert auth["Limit"] == {"Ref": "WafAuthRateLimit"} and auth["AggregateKeyType"] == "IP"
    assert rules["auth-routes-per-ip"]["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    body = acl["CustomResponseBodies"]["too_many_requests"]["Content"]
    assert json.loads(body)["error"]["code"] == "too_many_requests"  # the API's own envelope and code

    def patterns(lid):
        return r[lid]["Properties"]["RegularExpressionList"]
    scope = auth["ScopeDownStatement"]["OrStatement"]["Statements"]
    any_method = [s["RegexPatternSetReferenceStatement"]["Arn"]["Fn::GetAtt"][0] for s in scope
                  if "RegexPatternSetReferenceStatement" in s]
    [posts] = [s["AndStatement"]["Statements"] for s in scope if "AndStatement" in s]
    assert posts[0]["ByteMatchStatement"]["SearchString"] == "POST"
    post_only = posts[1]["RegexPatternSetReferenceStatement"]["Arn"]["Fn::GetAtt"][0]

    def limited(path, method="POST"):
        sets = any_method + ([post_only] if method == "POST" else [])
        return any(re.search(p, path) for lid in sets for p in patterns(lid))
    for path in AUTH_ROUTES + AUTH_PAGES:
        assert limited(path), path
    assert limited("/portal/access", "GET")  # the access link page checks its token on GET
    for path in ("/v1/customers", "/v1/portal/me", "/v1/staff/me", "/v1/people", "/v1/health", "/v1/openapi.json"):
        assert not limited(path), path
    assert not limited("/sign-in", "GET")  # loading the page is not a guess
    # the routes are real: a rename in app.py must move the WAF rule with it
    served = {path for path in app.app.routes}
    for path in AUTH_ROUTES + AUTH_PAGES:
        assert path in served, path
    assert rules["all-routes-per-ip"]["Statement"]["RateBasedStatement"]["Limit"] == {"Ref": "WafIpRateLimit"}
    managed = {rule["Statement"]["ManagedRuleGroupStatement"]["Name"] for rule in acl["Rules"]
               if "ManagedRuleGroupStatement" in rule["Statement"]}
    assert "AWSManagedRulesCommonRuleSet" in managed
    # the API stage throttles every method, and writes access logs without query strings (link tokens)
    api = r["RestAPI"]["Properties"]
    [settings] = api["MethodSettings"]
    assert settings["ResourcePath"] == "/*" and settings["HttpMethod"] == "*"
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurstLimit"}
    assert settings["DataTraceEnabled"] is False  # it would log request bodies: passwords
    fmt = api["AccessLogSetting"]["Format"]
    assert "$context.resourcePath" in fmt and "$context.path" not in fmt and "querystring" not in fmt.lower()


# --- logs, alarms, dashboard -------------------------------------------------------------------------------------------

@pytest.mark.package
@pytest.mark.parametrize("stage", STAGES)
def test_every_function_logs_with_retention_and_is_watched(packaged, stage):
    sam = packaged[stage]
    r = sam["Resources"]
    alarms = resources(sam, "AWS::CloudWatch::Alarm")
    by_metric = {}
    for lid, a in alarms.items():
        props = a["Properties"]
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], lid
        for metric in [props] + [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]:
            if "MetricName" in metric:
                by_metric.setdefault((metric["Namespace"], metric["MetricName"]), []).append(metric.get("Dimensions", []))
    for lid, name in FUNCTIONS.items():
        fn = r[lid]
        assert fn["Properties"]["FunctionName"] == {"Fn::Sub": f"portal-access-${{Stage}}-{name}"}
        [group] = [g for g in resources(sam, "AWS::Logs::LogGroup").values()
                   if g["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/portal-access-${{Stage}}-{name}"}]
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert any(d.endswith("LogGroup") for d in fn["DependsOn"]), lid  # created before the function runs
        for metric in ("Errors", "Throttles"):
            assert [{"Name": "FunctionName", "Value": {"Ref": lid}}] in by_metric[("AWS/Lambda", metric)], (lid, metric)
    for dlq in ("SendDeadLetterQueue", "SendBulkDeadLetterQueue", "BulkInvitesDeadLetterQueue"):
        assert [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}] in \
            by_metric[("AWS/SQS", "ApproximateNumberOfMessagesVisible")], dlq
    assert ("AWS/ApiGateway", "5XXError") in by_metric
    app_dims = {"service": "portal-access", "stage": {"Ref": "Stage"}}
    send_failed = [{d["Name"]: d["Value"] for d in dims} for dims in by_metric[("PortalAccess", "SendFailed")]]
    assert send_failed == [{**app_dims, "channel": "email"}, {**app_dims, "channel": "sms"}]
    for metric in ("BulkJobsFailed", "BulkRowsFailed"):
        assert [{d["Name"]: d["Value"] for d in dims} for dims in by_metric[("PortalAccess", metric)]] == [app_dims]
    assert r["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"
    assert r["ApiAccessLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    # The dashboard body is the JSON CloudWatch wants once CloudFormation substitutes it.
    body = r["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([^}]+)\}", body))
    assert names <= {"Stage", "AWS::Region"}, names
    widgets = json.loads(body.replace("${Stage}", stage).replace("${AWS::Region}", REGION))["widgets"]
    shown = json.dumps(widgets)
    for metric in ("SendFailed", "MessagesSent", "SignIns", "BulkRowsFailed", "5XXError", "BlockedRequests",
                   "ApproximateNumberOfMessagesVisible", "Throttles"):
        assert metric in shown, metric


# --- compose and deploy ---------------------------------------------------------------------------------------------

def test_compose_merges_aws_over_the_local_template():
    assert compose.merge({"a": {"b": 1, "c": [1]}, "DependsOn": "X"}, {"a": {"c": [2], "d": None}, "DependsOn": ["Y"]}) \
        == {"a": {"b": 1, "c": [2]}, "DependsOn": ["X", "Y"]}
    assert compose.merge({"a": {"b": 1, "s": "x"}}, {"a": {"s": None}}) == {"a": {"b": 1}}
    dev = compose.compose("dev")
    assert dev["Parameters"]["Stage"]["AllowedValues"] == ["dev"]
    assert dev["Parameters"]["UploadsBucketName"]["Default"] == "portal-access-dev-uploads"
    template = json.loads((ROOT / "infra" / "template.json").read_text())
    aws = json.loads((ROOT / "infra" / "aws.json").read_text())
    responses = {lid for lid, r in template["Resources"].items() if r.get("Type") == "AWS::ApiGateway::GatewayResponse"}
    assert responses and set(dev["Resources"]) == (set(template["Resources"]) - responses) | set(aws["Resources"])
    # what only AWS has stays out of the local template (its builder refuses types it does not know)
    assert not {r.get("Type") for r in template["Resources"].values()} & {
        "AWS::WAFv2::WebACL", "AWS::CloudWatch::Alarm", "AWS::Logs::LogGroup", "AWS::SES::EmailIdentity"}
    with pytest.raises(SystemExit):
        compose.compose("local")


def test_params_files_list_every_parameter_and_are_refused_until_filled():
    sam = compose.compose("prod")
    for stage in STAGES:
        values = json.loads((ROOT / "infra" / f"params-{stage}.json").read_text())
        keys = {k for k in values if not k.startswith("_")}
        required = {k for k, spec in sam["Parameters"].items() if "Default" not in spec}
        assert required <= keys <= set(sam["Parameters"]), stage
        found = params.problems(sam, values)
        assert any(p.startswith("SenderEmail:") for p in found) and any(p.startswith("DomainName:") for p in found)
    good = {"SenderEmail": "no-reply@mail.acme-heating.com", "SesSandbox": "false", "DomainName": "portal.acme-heating.com",
            "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"}
    assert params.problems(sam, good) == []
    assert params.problems(sam, {**good, "SenderEmail": "no-reply@portal-access.example"})
    assert params.problems(sam, {**good, "Nope": "1"}) == ["Nope: the template has no such parameter"]
    assert params.problems(sam, {k: v for k, v in good.items() if k != "CertificateArn"})[0].startswith("CertificateArn: required")
    assert params.problems(sam, {**good, "LogRetentionDays": 31}) == ["LogRetentionDays: one of " + ", ".join(
        str(v) for v in sam["Parameters"]["LogRetentionDays"]["AllowedValues"])]


@pytest.mark.package
def test_make_deploy_refuses_placeholders_then_packages_and_deploys_by_change_set(packaged, tmp_path):
    log = tmp_path / "aws.log"
    fake = tmp_path / "aws"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n")
    fake.chmod(0o755)
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_ENDPOINT_URL", None)

    def deploy(params_file, *extra):
        return subprocess.run(["make", "deploy", "STAGE=dev", "ARTIFACTS_BUCKET=acme-artifacts", f"AWS={fake}",
                               f"PARAMS={params_file}", *extra], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=600)
    refused = deploy(ROOT / "infra" / "params-dev.json")  # as committed: CHANGE-ME
    assert refused.returncode != 0 and "placeholder" in refused.stderr and not log.exists()
    assert subprocess.run(["make", "deploy", "STAGE=qa"], cwd=ROOT, env=env, capture_output=True).returncode != 0
    filled = tmp_path / "params.json"
    filled.write_text(json.dumps({
        "SenderEmail": "no-reply@mail.acme-heating.com", "SesSandbox": "true", "DomainName": "portal.acme-heating.com",
        "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012",
        "UploadsBucketName": "acme-portal-dev-uploads", "AlarmEmail": "ops@acme-heating.com"}))
    done = deploy(filled, "REVIEW=1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    package, deploy_ = log.read_text().splitlines()
    assert package.startswith("cloudformation package --template-file build/package/dev/sam.json")
    assert "--s3-bucket acme-artifacts" in package and "--output-template-file build/package/dev/packaged.json" in package
    assert deploy_.startswith("cloudformation deploy --template-file build/package/dev/packaged.json "
                              "--stack-name portal-access-dev")
    assert "--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND" in deploy_ and "--no-execute-changeset" in deploy_
    assert deploy_.endswith("--parameter-overrides SenderEmail=no-reply@mail.acme-heating.com SesSandbox=true "
                            "DomainName=portal.acme-heating.com CertificateArn=arn:aws:acm:us-east-1:123456789012:"
                            "certificate/12345678-1234-1234-1234-123456789012 UploadsBucketName=acme-portal-dev-uploads "
                            "AlarmEmail=ops@acme-heating.com")


@pytest.mark.package
def test_the_lambda_package_holds_no_operator_or_local_stack_code(packaged):
    """The operator console, the demo seed and the local stack live in ops/, outside what Chalice ships."""
    import zipfile
    for stage in ("dev", "prod"):
        names = zipfile.ZipFile(ROOT / "build" / "package" / stage / "deployment.zip").namelist()
        assert "app.py" in names and "chalicelib/core/sessions.py" in names
        shipped_ops = [n for n in names if n.startswith(("ops/", "chalicelib/local/", "chalicelib/cli.py",
                                                          "chalicelib/seed.py"))]
        assert shipped_ops == [], shipped_ops


@pytest.mark.package
def test_the_lambda_package_carries_bytecode_python_uses(packaged, tmp_path):
    """/var/task is read-only: without .pyc in the zip every cold start compiles every module (infra/bytecode.py).
    Unpacked, `import app` compiles nothing: every module it loads comes from its .pyc."""
    import zipfile
    with zipfile.ZipFile(ROOT / "build" / "package" / "dev" / "deployment.zip") as bundle:
        names = set(bundle.namelist())
        for source in ("app.py", "chalicelib/core/sessions.py", "botocore/client.py", "pydantic/main.py"):
            cached = importlib.util.cache_from_source(source)
            assert cached in names, cached
            assert bundle.read(cached)[4:8] == (0b01).to_bytes(4, "little")  # hash-based, unchecked
        bundle.extractall(tmp_path)
    # the interpreter compiles a source without a .pyc through importlib, not builtins.compile: count what it read
    probe = ("import sys, importlib.machinery as m\nread = []\n"
             "real = m.SourceFileLoader.source_to_code\n"
             "m.SourceFileLoader.source_to_code = lambda self, data, path, **k: (read.append(path), "
             "real(self, data, path, **k))[1]\n"
             "import app\nprint(len(read), sorted(read)[:5])")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": "us-east-1",
                              "PORTAL_STAGE": "dev"}).stdout.split(maxsplit=1)
    assert out[0] == "0", out


@pytest.mark.package
def test_the_api_and_bulk_functions_have_a_full_vcpu(packaged):
    """argon2id on Lambda's 512 MB takes 150-200 ms; at 1,769 MB (one full vCPU) 43-58 ms, so a sign-in's p50 stays
    under 100 ms (BENCHMARKS.md, Sizing the API function). A bulk run is CPU-bound too (about 1 ms of CPU a row,
    README Performance). The send functions wait on SES, not the CPU: they keep the default."""
    for sam in packaged.values():
        assert sam["Resources"]["APIHandler"]["Properties"]["MemorySize"] == 1769
        assert sam["Resources"]["OnBulkInviteUpload"]["Properties"]["MemorySize"] == 1769
        # a 100 MB file's last invocation joins the parts on /tmp: report rows, stored rows, the seen-set (~1 GB)
        assert sam["Resources"]["OnBulkInviteUpload"]["Properties"]["EphemeralStorage"] == {"Size": 4096}
        assert sam["Resources"]["OnSendMessage"]["Properties"].get("MemorySize", 512) == 512
