"""Create the AWS resources of infra/template.json on the local AWS endpoint (the moto server).

The template is the one source of truth: this module walks its resources by Type and replays each as
API calls, so a table or queue added there appears locally with no change here. Only the handful of
intrinsics the template uses are resolved (Ref, Fn::Sub, Fn::GetAtt ...Arn). Every step tolerates the
resource already existing, so calling create_all() again is harmless.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Callable

import boto3
from botocore.exceptions import ClientError

from chalicelib.core import config

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.json"
SENDER_DOMAIN = "portal-access.example"


def load_template() -> dict:
    return json.loads(TEMPLATE.read_text())


def _ignore(codes: tuple[str, ...], call: Callable, **kwargs) -> Any:
    """Run one AWS call, treating "already exists"-style errors as success (idempotency)."""
    try:
        return call(**kwargs)
    except ClientError as e:
        if e.response["Error"]["Code"] in codes:
            return None
        raise


class _Context:
    """Values the intrinsics resolve to: parameters, pseudo parameters, then what each resource created."""

    def __init__(self, params: dict[str, str]):
        self.refs: dict[str, str] = dict(params)
        self.attrs: dict[tuple[str, str], str] = {}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self.refs[value["Ref"]]
        if set(value) == {"Fn::GetAtt"}:
            lid, attr = value["Fn::GetAtt"]
            return self.attrs[(lid, attr)]
        if set(value) == {"Fn::Sub"}:
            def sub(m: re.Match) -> str:
                name, _, attr = m.group(1).partition(".")
                return self.attrs[(name, attr)] if attr else self.refs[name]
            return re.sub(r"\$\{([^}!]+)\}", sub, value["Fn::Sub"])
        return {k: self.resolve(v) for k, v in value.items()}


class _Builder:
    def __init__(self, stage: str, uploads_bucket: str, endpoint_url: str | None):
        self.region = config.region()
        self._session = boto3.session.Session(region_name=self.region)
        self._endpoint = endpoint_url  # None lets boto3 fall back to AWS_ENDPOINT_URL by itself
        self._clients: dict[str, Any] = {}
        self._tables: set[str] | None = None
        self.prefix = f"{config.PROJECT}-{stage}-"
        self.ctx = _Context({"Stage": stage, "UploadsBucketName": uploads_bucket,
                             "AWS::Region": self.region, "AWS::Partition": "aws"})
        self.out: dict[str, Any] = {"stage": stage, "tables": {}, "queues": {}, "bucket": None,
                                    "topic_arns": {}, "topic_arn": None, "configuration_set": None,
                                    "secret": None}

    def aws(self, service: str):
        if service not in self._clients:
            self._clients[service] = self._session.client(service, endpoint_url=self._endpoint)
        return self._clients[service]

    def short(self, name: str) -> str:
        return name[len(self.prefix):] if name.startswith(self.prefix) else name

    def table(self, lid: str, props: dict) -> None:
        name = self.ctx.resolve(props["TableName"])
        spec = {k: props[k] for k in ("AttributeDefinitions", "KeySchema", "BillingMode",
                                      "GlobalSecondaryIndexes") if k in props}
        # PITR and SSE are left out: they change nothing on moto. No waiter: moto creates tables ACTIVE.
        if name not in self._existing_tables():
            _ignore(("ResourceInUseException",), self.aws("dynamodb").create_table, TableName=name, **spec)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            current = self.aws("dynamodb").describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                self.aws("dynamodb").update_time_to_live(TableName=name, TimeToLiveSpecification={
                    "AttributeName": ttl["AttributeName"], "Enabled": True})
        self.ctx.refs[lid] = name
        self.ctx.attrs[(lid, "Arn")] = f"arn:aws:dynamodb:{self.region}:{self._account()}:table/{name}"
        self.out["tables"][self.short(name)] = name

    def _existing_tables(self) -> set[str]:
        if self._tables is None:  # one listing instead of a failing create_table per table on re-runs
            pages = self.aws("dynamodb").get_paginator("list_tables").paginate()
            self._tables = {t for page in pages for t in page["TableNames"]}
        return self._tables

    def queue(self, lid: str, props: dict) -> None:
        name = self.ctx.resolve(props["QueueName"])
        attributes = {k: str(props[k]).lower() if isinstance(props[k], bool) else str(props[k])
                      for k in ("VisibilityTimeout", "MessageRetentionPeriod", "SqsManagedSseEnabled")
                      if k in props}
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(self.ctx.resolve(props["RedrivePolicy"]))
        try:
            url = self.aws("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        except ClientError as e:  # exists with other attributes (template changed): bring it up to date
            if e.response["Error"]["Code"] not in ("QueueAlreadyExists", "QueueNameExists"):
                raise
            url = self.aws("sqs").get_queue_url(QueueName=name)["QueueUrl"]
            self.aws("sqs").set_queue_attributes(QueueUrl=url, Attributes=attributes)
        arn = self.aws("sqs").get_queue_attributes(
            QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.ctx.refs[lid], self.ctx.attrs[(lid, "Arn")] = url, arn
        self.out["queues"][self.short(name)] = url

    def queue_policy(self, lid: str, props: dict) -> None:
        policy = json.dumps(self.ctx.resolve(props["PolicyDocument"]))
        for url in self.ctx.resolve(props["Queues"]):
            self.aws("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})

    def bucket(self, lid: str, props: dict) -> None:
        name = self.ctx.resolve(props["BucketName"])
        extra = {} if self.region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": self.region}}
        _ignore(("BucketAlreadyOwnedByYou",), self.aws("s3").create_bucket, Bucket=name, **extra)
        # Versioning matters locally (events then carry versionId, as in AWS); encryption, public access
        # block and ownership controls change nothing on moto, so they are not replayed.
        if "VersioningConfiguration" in props:
            self.aws("s3").put_bucket_versioning(
                Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
        # moto's CloudFormation ignores NotificationConfiguration, so it is set by API call here.
        wanted = []
        for q in props.get("NotificationConfiguration", {}).get("QueueConfigurations", []):
            conf = {"QueueArn": self.ctx.resolve(q["Queue"]), "Events": [q["Event"]]}
            if "Filter" in q:
                conf["Filter"] = {"Key": {"FilterRules": q["Filter"]["S3Key"]["Rules"]}}
            wanted.append(conf)
        if wanted and self._notifications(name) != self._notification_key(wanted):
            # Only when it differs: every put makes S3 send another s3:TestEvent to the queue.
            self.aws("s3").put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"QueueConfigurations": wanted})
        self.ctx.refs[lid] = name
        self.ctx.attrs[(lid, "Arn")] = f"arn:aws:s3:::{name}"
        self.out["bucket"] = name

    @staticmethod
    def _notification_key(configs: list[dict]) -> list:
        return sorted((c["QueueArn"], tuple(sorted(c["Events"])),
                       tuple(sorted((r["Name"].lower(), r["Value"])
                                    for r in c.get("Filter", {}).get("Key", {}).get("FilterRules", []))))
                      for c in configs)

    def _notifications(self, bucket: str) -> list:
        current = self.aws("s3").get_bucket_notification_configuration(Bucket=bucket)
        return self._notification_key(current.get("QueueConfigurations", []))

    def topic(self, lid: str, props: dict) -> None:
        arn = self.aws("sns").create_topic(Name=self.ctx.resolve(props["TopicName"]))["TopicArn"]
        self.ctx.refs[lid] = self.ctx.attrs[(lid, "TopicArn")] = arn
        self.out["topic_arns"][self.short(arn.rsplit(":", 1)[1])] = arn
        self.out["topic_arn"] = self.out["topic_arn"] or arn

    def configuration_set(self, lid: str, props: dict) -> None:
        name = self.ctx.resolve(props["Name"])
        _ignore(("ConfigurationSetAlreadyExists",), self.aws("ses").create_configuration_set,
                ConfigurationSet={"Name": name})
        self.ctx.refs[lid] = name
        self.out["configuration_set"] = name

    def event_destination(self, lid: str, props: dict) -> None:
        dest = self.ctx.resolve(props["EventDestination"])
        api = {"Name": dest["Name"], "Enabled": dest.get("Enabled", True),
               "MatchingEventTypes": dest["MatchingEventTypes"]}
        if "SnsDestination" in dest:
            api["SNSDestination"] = {"TopicARN": dest["SnsDestination"]["TopicARN"]}
        _ignore(("EventDestinationAlreadyExists",),
                self.aws("ses").create_configuration_set_event_destination,
                ConfigurationSetName=self.ctx.resolve(props["ConfigurationSetName"]), EventDestination=api)

    def secret(self, lid: str, props: dict) -> None:
        name = self.ctx.resolve(props["Name"])
        try:  # never overwrite: the operator command (or the local seed) may have filled it already
            arn = self.aws("secretsmanager").describe_secret(SecretId=name)["ARN"]
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            arn = self.aws("secretsmanager").create_secret(
                Name=name, SecretString=props.get("SecretString", "{}"),
                **({"Description": props["Description"]} if "Description" in props else {}))["ARN"]
        self.ctx.refs[lid] = arn
        self.out.setdefault("secrets", {})[lid] = name
        if lid == "SigningKeysSecret":
            self.out["secret"] = name

    def sender_identity(self) -> None:
        # moto refuses SendEmail from an unverified source; in AWS identities are verified out of band.
        self.aws("ses").verify_email_identity(EmailAddress=config.sender_email())
        self.aws("ses").verify_domain_identity(Domain=SENDER_DOMAIN)

    def _account(self) -> str:
        if "AWS::AccountId" not in self.ctx.refs:
            self.ctx.refs["AWS::AccountId"] = self.aws("sts").get_caller_identity()["Account"]
        return self.ctx.refs["AWS::AccountId"]


# Creation order: a resource's references must already be resolved (DLQs before their queues, queues
# before the policy and the bucket notification, the topic before the SES event destination).
_ORDER = (
    ("AWS::DynamoDB::Table", "table"),
    ("AWS::SNS::Topic", "topic"),
    ("AWS::SQS::Queue", "queue"),
    ("AWS::SQS::QueuePolicy", "queue_policy"),
    ("AWS::S3::Bucket", "bucket"),
    ("AWS::SES::ConfigurationSet", "configuration_set"),
    ("AWS::SES::ConfigurationSetEventDestination", "event_destination"),
    ("AWS::SecretsManager::Secret", "secret"),
)
# Meaningless on the local stack. Any other new Type fails loudly rather than silently missing locally.
_NOT_LOCAL = {"AWS::ApiGateway::GatewayResponse", "AWS::SNS::TopicPolicy"}


def create_all(stage: str = "local", uploads_bucket: str | None = None,
               endpoint_url: str | None = None) -> dict:
    """Create (or confirm) every resource of infra/template.json for `stage`; returns
    {"stage", "tables": {short: name}, "queues": {short: url} (DLQs included), "bucket",
     "topic_arn", "topic_arns": {short: arn}, "configuration_set", "secret"}."""
    # Same precedence as the app's config.uploads_bucket(), so the app finds the bucket created here.
    bucket = (uploads_bucket or os.environ.get("PORTAL_UPLOADS_BUCKET")
              or config.resource_name("uploads", stage))
    b = _Builder(stage, bucket, endpoint_url)
    b._account()  # resolves AWS::AccountId once, up front
    resources = load_template()["Resources"]
    # Resources without a Type extend what `chalice package` generates (merged into its functions): not local.
    resources = {lid: r for lid, r in resources.items() if "Type" in r}
    unknown = {r["Type"] for r in resources.values()} - {t for t, _ in _ORDER} - _NOT_LOCAL
    if unknown:
        raise NotImplementedError(f"create_all cannot create {sorted(unknown)} yet")
    for rtype, method in _ORDER:
        items = [(lid, r) for lid, r in resources.items() if r["Type"] == rtype]
        if rtype == "AWS::SQS::Queue":  # dead-letter queues (no RedrivePolicy) first
            items.sort(key=lambda item: "RedrivePolicy" in item[1]["Properties"])
        for lid, r in items:
            getattr(b, method)(lid, r["Properties"])
    b.sender_identity()
    return b.out
