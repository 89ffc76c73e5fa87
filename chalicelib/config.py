"""Settings read from the environment (set per stage in .chalice/config.json) and the names of every
AWS resource. Resource names follow one pattern, `portal-access-<stage>-<short>`, the same pattern the
CloudFormation template in infra/ uses with its `Stage` parameter, so both always agree."""
import os
from functools import lru_cache

PROJECT = "portal-access"

# Short names of the resources infra/template.json defines; the local stack creates them from that file.
TABLES = ("tenants", "people", "claims", "customers", "locations", "contacts", "record-emails",
          "portal-users", "tokens", "jobs", "audit", "counters", "idempotency", "sessions",
          "partner-portals", "partner-clients", "partner-enablements", "partner-users")
QUEUES = ("bulk-invites", "send")


def stage() -> str:
    return os.environ.get("PORTAL_STAGE", "local")


def resource_name(short: str, for_stage: str | None = None) -> str:
    return f"{PROJECT}-{for_stage or stage()}-{short}"


def table_name(short: str) -> str:
    assert short in TABLES, short
    return resource_name(short)


def queue_name(short: str) -> str:
    assert short in QUEUES, short
    return resource_name(short)


def signing_keys_secret() -> str:
    return f"{PROJECT}/{stage()}/signing-keys"


def uploads_bucket() -> str:
    return os.environ.get("PORTAL_UPLOADS_BUCKET", resource_name("uploads"))


def public_base_url() -> str:
    """Where the hosted pages live: links in emails and SMS are built from it."""
    return os.environ.get("PORTAL_PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def aws_endpoint() -> str | None:
    """Set on the local stack (the moto server); unset in AWS. boto3 reads AWS_ENDPOINT_URL itself."""
    return os.environ.get("AWS_ENDPOINT_URL") or None


def outbox_dir() -> str | None:
    """The local stack writes every outgoing email and SMS here as JSON; unset in AWS."""
    return os.environ.get("PORTAL_OUTBOX_DIR") or None


def sender_email() -> str:
    return os.environ.get("PORTAL_SENDER_EMAIL", "no-reply@portal-access.example")


def ses_configuration_set() -> str:
    return os.environ.get("PORTAL_SES_CONFIGURATION_SET", resource_name("email"))


def is_local() -> bool:
    return stage() == "local"


@lru_cache(maxsize=None)
def client(service: str):
    """One boto3 client per service per process, created on first use (cold start stays light)."""
    import boto3
    return boto3.client(service, region_name=region(), endpoint_url=aws_endpoint())
