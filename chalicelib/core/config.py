"""Settings read from the environment (set per stage in .chalice/config.json) and the names of every
AWS resource. Resource names follow one pattern, `portal-access-<stage>-<short>`, the same pattern the
CloudFormation template in infra/ uses with its `Stage` parameter, so both always agree.

Stage `local` talks only to a local AWS endpoint (the moto server of `make run`): without one, boto3 and PynamoDB
would go to real AWS with whatever credentials the machine has, so every AWS client of stage local, and every
local-stage entry point (the console, the dispatcher, chalice local), calls `require_local_endpoint` first."""
import os
from functools import lru_cache
from urllib.parse import urlparse

PROJECT = "portal-access"

# Short names of the resources infra/template.json defines; the local stack creates them from that file.
TABLES = ("tenants", "people", "claims", "customers", "locations", "contacts", "record-emails",
          "portal-users", "tokens", "jobs", "audit", "counters", "idempotency", "sessions",
          "partner-portals", "partner-clients", "partner-enablements", "partner-users", "apps", "send-backlog")
QUEUES = ("bulk-invites", "send", "send-bulk")


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
    """Where the hosted pages live: links in emails and SMS are built from it. Unset, the local API's address:
    http://127.0.0.1:<PORTAL_API_PORT> (8000 by default), so links follow the port the stack runs on."""
    return (os.environ.get("PORTAL_PUBLIC_BASE_URL")
            or f"http://127.0.0.1:{os.environ.get('PORTAL_API_PORT') or '8000'}").rstrip("/")


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def aws_endpoint() -> str | None:
    """Set on the local stack (the moto server); unset in AWS. boto3 reads AWS_ENDPOINT_URL itself."""
    return os.environ.get("AWS_ENDPOINT_URL") or None


class LocalEndpointMissing(RuntimeError):
    """Stage local without a local AWS endpoint: refused before any call can reach a real AWS account."""


_AWS_HOSTS = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")
_FIX = ("start the local stack (`make run`; its console: `make console ARGS=\"...\"`), or export "
        "AWS_ENDPOINT_URL=http://127.0.0.1:4566 (the stack's moto server), or set PORTAL_STAGE to a deployed stage")


def _aws_host(url: str) -> bool:
    host = (urlparse(url).hostname or "").lower()
    return host in ("amazonaws.com", "api.aws") or host.endswith(_AWS_HOSTS)


def local_endpoint_problem() -> str | None:
    """Why stage local may not run here (one line), or None (another stage, or a local endpoint is set).
    Local means AWS_ENDPOINT_URL is set and names no AWS host; a per-service AWS_ENDPOINT_URL_<SERVICE>, which
    botocore prefers, must not name one either, and AWS_IGNORE_CONFIGURED_ENDPOINT_URLS must not switch them off."""
    if not is_local():
        return None
    endpoint = aws_endpoint()
    if not endpoint:
        return f"stage local runs only against a local AWS endpoint and AWS_ENDPOINT_URL is not set: {_FIX}"
    for key in sorted(k for k in os.environ if k == "AWS_ENDPOINT_URL" or k.startswith("AWS_ENDPOINT_URL_")):
        if os.environ[key] and _aws_host(os.environ[key]):
            return f"stage local runs only against a local AWS endpoint, not {key}={os.environ[key]}: {_FIX}"
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").strip().lower() == "true":
        return "stage local runs only against a local AWS endpoint, which AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true " \
               "switches off: unset it"
    return None


def require_local_endpoint() -> None:
    """Raises LocalEndpointMissing (one line) when stage local has no local AWS endpoint; no-op otherwise."""
    problem = local_endpoint_problem()
    if problem:
        raise LocalEndpointMissing(problem)


def outbox_dir() -> str | None:
    """The local stack writes every outgoing email and SMS here as JSON; unset in AWS."""
    return os.environ.get("PORTAL_OUTBOX_DIR") or None


def sender_email() -> str:
    """Where emails come from. Only the local stack has a default; a deployed stage sets it (require_settings)."""
    default = "no-reply@portal-access.example" if is_local() else ""
    return os.environ.get("PORTAL_SENDER_EMAIL", default)


class PlaceholderSetting(RuntimeError):
    """A deployed stage started with a setting unset or left at a placeholder."""


# Domains and top-level domains that can never be a real sender or site (RFC 2606/6761), and the params files'
# own placeholder.
_PLACEHOLDER_HOSTS = ("example.com", "example.net", "example.org", "example")
_RESERVED_TLDS = (".example", ".test", ".invalid", ".localhost", ".local")


def _placeholder(value: str) -> bool:
    host = value.rsplit("@", 1)[-1] if "@" in value else (urlparse(value).hostname or value)
    host = host.lower().rstrip(".")
    return (not value.strip() or "change-me" in value.lower() or host in _PLACEHOLDER_HOSTS
            or any(host.endswith("." + h) for h in _PLACEHOLDER_HOSTS) or host.endswith(_RESERVED_TLDS))


def settings_problems() -> list[str]:
    """What a deployed stage is missing (empty on stage local, or when every setting is real)."""
    if is_local():
        return []
    problems = []
    for name in ("PORTAL_SENDER_EMAIL", "PORTAL_PUBLIC_BASE_URL", "PORTAL_UPLOADS_BUCKET",
                 "PORTAL_SES_CONFIGURATION_SET"):
        value = os.environ.get(name, "")
        if not value.strip():
            problems.append(f"{name} is not set")
        elif _placeholder(value):
            problems.append(f"{name}={value} is a placeholder")
    base = os.environ.get("PORTAL_PUBLIC_BASE_URL", "")
    if base and not base.startswith("https://"):
        problems.append(f"PORTAL_PUBLIC_BASE_URL={base} must be an https:// address")
    return problems


_settings_checked = False


def require_settings() -> None:
    """Refuses to serve a deployed stage whose settings are unset or placeholders, with one clear message (the
    stage's parameters: infra/params-<stage>.json, docs/deploy.md). Checked once per container, on the first
    invocation: `chalice package` imports the app without them."""
    global _settings_checked
    if _settings_checked:
        return
    problems = settings_problems()
    if problems:
        raise PlaceholderSetting(f"stage {stage()} refuses to start: " + "; ".join(problems)
                                 + " (set them in infra/params-<stage>.json and deploy again)")
    _settings_checked = True


def ses_configuration_set() -> str:
    return os.environ.get("PORTAL_SES_CONFIGURATION_SET", resource_name("email"))


def is_local() -> bool:
    return stage() == "local"


@lru_cache(maxsize=None)
def client(service: str):
    """One boto3 client per service per process, created on first use (cold start stays light). On stage local,
    only against a local endpoint (require_local_endpoint)."""
    require_local_endpoint()
    import boto3
    return boto3.client(service, region_name=region(), endpoint_url=aws_endpoint())
