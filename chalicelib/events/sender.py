"""The send-queue handler: delivers each queued email or SMS once. A failed record is reported back
(ReportBatchItemFailures) so only it is retried; after the queue's maxReceiveCount it lands in the DLQ."""
import json
from typing import TYPE_CHECKING

from chalicelib.core import dead_letters, messaging, observability
from chalicelib.core.observability import logger
from chalicelib.flows.portal import invitations, portal_access
from chalicelib.flows.staff import staff_recovery

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


# Messages whose content is made at delivery time (an invitation mints its link then). Flows that must answer alike
# whatever the identity (sign-up, reset) queue a message for every request and let the renderer decide, at
# delivery, what if anything to send (None: nothing).
RENDERERS = {"portal_invitation": invitations.render_invitation,
             "portal_sign_up": portal_access.render_sign_up,
             "portal_reset": portal_access.render_reset,
             "staff_reset_code": staff_recovery.render_code}


def render(message: dict) -> dict | None:
    return RENDERERS[message["render"]](message) if message.get("render") else message


def handle_batch(raw_event: dict, context) -> "PartialItemFailureResponse":
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    def deliver(record) -> None:
        message = json.loads(record.body)
        try:
            messaging.deliver_once(message, render, context)
        except Exception as exc:
            # The reason travels with the retry and the DLQ message's logs; the message body holds no secret
            # beyond the link it exists to deliver, and the link is never logged.
            logger.warning("delivery failed", extra={"message_id": message.get("message_id"),
                                                     "reason": type(exc).__name__})
            dead_letters.record_failure("send", record.message_id, exc,
                                        int(record.attributes.approximate_receive_count or 1))
            observability.count("SendFailed", channel=message.get("channel") or "email")
            raise

    return process_partial_response(event=raw_event, record_handler=deliver,
                                    processor=BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
                                    context=context)
