"""Outgoing email (SES) and SMS (SNS). Flows never call SES or SNS directly. Two lanes: `enqueue` puts messages
someone is waiting for (codes, links, answers) on the send queue (batches of 10), served first; `enqueue_bulk`
puts a bulk run's messages on the business's line of the send backlog (core/send_backlog.py), which the bulk
drainer serves in turns at the rate left over (core/send_rate.py). Either way each message is delivered exactly
once (Powertools Idempotency keyed on the message id) and survives throttling by retries and redelivery.

On the local stack every delivered message is also written to the outbox as one JSON file."""
import json
import os
import time
import uuid
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from chalicelib.core import config, observability, send_backlog, send_rate
from chalicelib.core.observability import logger

if TYPE_CHECKING:
    import jinja2

SEND_BATCH = 10


def email(tenant_id: str, to: str, subject: str, body: str, links: list[str] | None = None,
          message_id: str | None = None, html: str | None = None) -> dict:
    return {"message_id": message_id or uuid.uuid4().hex, "tenant_id": tenant_id, "channel": "email", "to": to,
            "subject": subject, "body": body, "html": html, "links": links or []}


TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


@lru_cache(maxsize=1)
def _templates() -> "jinja2.Environment":
    """templates/emails/, made on the first message (an API request never imports Jinja2). Only the .html bodies
    are HTML-escaped: a .txt body or an SMS is plain text, sent as it reads. StrictUndefined: a value a template
    needs and is not given is an error, never a blank in a sent message."""
    import jinja2
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                              autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True)


def _render(filename: str, values: dict, *, required: bool = True) -> str | None:
    """templates/emails/<filename> filled with `values`; None when it is not required and there is none."""
    import jinja2
    try:
        template = _templates().get_template(f"emails/{filename}")
    except jinja2.TemplateNotFound:
        if required:
            raise FileNotFoundError(TEMPLATES / "emails" / filename) from None
        return None
    return template.render(values)


def render_email(tenant_id: str, to: str, template: str, links: list[str], message_id: str | None = None,
                 **values: str) -> dict:
    """templates/emails/<template>.txt: first line `Subject: …`, a blank line, then the text body;
    templates/emails/<template>.html (optional, on emails/layout.html) gets the same values, HTML-escaped. No
    tracking pixels, no remote images: the HTML is self-contained."""
    text = _render(f"{template}.txt", values) or ""
    subject_line, _, body = text.partition("\n\n")
    return email(tenant_id, to, subject_line.removeprefix("Subject:").strip(), body.strip() + "\n", links,
                 message_id, _render(f"{template}.html", values, required=False))


def render_sms(tenant_id: str, to: str, template: str, links: list[str], message_id: str | None = None,
               **values: str) -> dict:
    return sms(tenant_id, to, (_render(f"{template}.sms.txt", values) or "").strip(), links, message_id)


def sms(tenant_id: str, to: str, body: str, links: list[str] | None = None, message_id: str | None = None) -> dict:
    return {"message_id": message_id or uuid.uuid4().hex, "tenant_id": tenant_id, "channel": "sms", "to": to,
            "subject": None, "body": body, "links": links or []}


@lru_cache(maxsize=1)
def _send_queue_url() -> str:
    return config.client("sqs").get_queue_url(QueueName=config.queue_name("send"))["QueueUrl"]


def enqueue(messages: list[dict]) -> None:
    """Puts messages on the send queue, ten per call; a message SQS refuses is retried, never dropped."""
    sqs = config.client("sqs")
    for start in range(0, len(messages), SEND_BATCH):
        pending = {m["message_id"]: m for m in messages[start:start + SEND_BATCH]}
        for _attempt in range(5):
            result = sqs.send_message_batch(QueueUrl=_send_queue_url(), Entries=[
                {"Id": mid, "MessageBody": json.dumps(m)} for mid, m in pending.items()])
            pending = {f["Id"]: pending[f["Id"]] for f in result.get("Failed", [])}
            if not pending:
                break
            time.sleep(0.2)
        if pending:
            raise RuntimeError(f"send queue refused {len(pending)} messages")


def enqueue_bulk(tenant_id: str, messages: list[dict]) -> None:
    """The bulk lane, for runs that send many messages (a bulk upload's invitations, a staff bulk run): they wait
    on the business's line of the send backlog and go out at the rate interactive messages leave, taking turns
    with other businesses' lines, so they never delay a reset code nor another business's run."""
    if not messages:
        return
    put_bulk(tenant_id, messages)
    announce_bulk(tenant_id)


def put_bulk(tenant_id: str, messages: list[dict]) -> None:
    """enqueue_bulk in two halves, for a producer that puts many batches (a bulk upload's run, a chunk at a time,
    from several threads): the messages on the line, not yet announced; then, after every few batches and always
    after the last, announce_bulk (a line's marker and the drainer's lease are two calls: once per batch they
    would cost more than the messages themselves)."""
    send_backlog.put(tenant_id, messages)


def announce_bulk(tenant_id: str) -> None:
    """The business's line may hold messages: its marker touched, the drainer woken unless one is draining."""
    send_backlog.mark_active(tenant_id)
    send_backlog.kick_unless_draining()


# SES says Throttling (or MaxSendRateExceeded), SNS says Throttled (HTTP 429)
THROTTLE_CODES = {"Throttling", "ThrottlingException", "MaxSendRateExceeded", "TooManyRequestsException", "Throttled"}
THROTTLE_TRIES = 4


INTERACTIVE, BULK = "interactive", "bulk"


def deliver(message: dict, lane: str = INTERACTIVE) -> dict:
    """Hands one message to SES or SNS within the account's rate (send_rate: an interactive send takes its slot
    at once, a bulk send waits for one left over), retrying throttling with exponential back-off
    and full jitter. Anything else (or throttling that lasts) raises: the queue redelivers the message and,
    after its maxReceiveCount, dead-letters it; the log line says why."""
    import random

    from botocore.exceptions import ClientError
    for attempt in range(THROTTLE_TRIES):
        if lane == BULK:
            send_rate.take_bulk(message["channel"])
        else:
            send_rate.take_interactive(message["channel"])
        try:
            provider_id = _send(message)
            break
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in THROTTLE_CODES or attempt == THROTTLE_TRIES - 1:
                raise
            time.sleep(random.uniform(0, 0.2 * 2 ** attempt))
    _write_outbox(message)
    observability.count("MessagesSent", channel=message["channel"])
    logger.info("message delivered", extra={"channel": message["channel"], "message_id": message["message_id"],
                                            "tenant_id": message["tenant_id"]})
    return {"provider_id": provider_id}


def _send(message: dict) -> str:
    if message["channel"] == "email":
        result = config.client("ses").send_email(
            Source=config.sender_email(), Destination={"ToAddresses": [message["to"]]},
            Message={"Subject": {"Data": message["subject"]},
                     "Body": {"Text": {"Data": message["body"]},
                              **({"Html": {"Data": message["html"]}} if message.get("html") else {})}},
            ConfigurationSetName=config.ses_configuration_set(),
            Tags=[{"Name": "tenant", "Value": message["tenant_id"]}])
        return result["MessageId"]
    return config.client("sns").publish(PhoneNumber=message["to"], Message=message["body"],
                                        MessageAttributes=sms_attributes())["MessageId"]


def sms_attributes() -> dict:
    """Transactional (codes and links go out before marketing traffic), from the stage's origination number or
    sender id when the operator set one (infra/params-<stage>.json)."""
    attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
    for env, name in (("PORTAL_SMS_ORIGINATION_NUMBER", "AWS.MM.SMS.OriginationNumber"),
                      ("PORTAL_SMS_SENDER_ID", "AWS.SNS.SMS.SenderID")):
        if os.environ.get(env, "").strip():
            attributes[name] = {"DataType": "String", "StringValue": os.environ[env].strip()}
    return attributes


@lru_cache(maxsize=1)
def _idempotency():
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    layer = DynamoDBPersistenceLayer(table_name=config.table_name("idempotency"),
                                     boto3_client=config.client("dynamodb"))
    settings = IdempotencyConfig(event_key_jmespath="message_id", expires_after_seconds=7 * 24 * 3600)

    @idempotent_function(data_keyword_argument="message", persistence_store=layer, config=settings)
    def deliver_once(message: dict, render: Callable[[dict], dict | None], lane: str) -> dict:
        concrete = render(message)
        return deliver(concrete, lane) if concrete else {"skipped": True}
    return settings, deliver_once


def warm_up() -> None:
    """What deliver_once builds on first use (the idempotency layer, the templates), built before threads share it."""
    _idempotency()
    _templates()


def deliver_once(message: dict, render: Callable[[dict], dict | None], lambda_context=None,
                 lane: str = INTERACTIVE) -> dict:
    """Delivers the message once per message_id (Powertools Idempotency): `render` makes its content first (the
    send-queue handler's renderers, for messages made at delivery time)."""
    settings, once = _idempotency()
    if lambda_context is not None:
        settings.register_lambda_context(lambda_context)
    return once(message=message, render=render, lane=lane)


def _write_outbox(message: dict) -> None:
    outbox = config.outbox_dir()
    if not outbox:
        return
    path = Path(outbox)
    path.mkdir(parents=True, exist_ok=True)
    record = {k: message.get(k) for k in ("channel", "to", "subject", "body", "links", "html", "message_id",
                                          "tenant_id")}
    name = f"{time.time_ns()}-{message['message_id']}.json"
    tmp = path / f".{name}.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, path / name)  # readers never see a half-written file
    # The console says what went to whom (an email's subject); the message itself, with its code or link, is in the
    # file only, so a terminal's scrollback or a shared screen never shows one.
    what = f": {message['subject']}" if message["channel"] == "email" and message.get("subject") else ""
    print(f"[outbox] {message['channel']} to {message['to']}{what} ({path / name})", flush=True)
