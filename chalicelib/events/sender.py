"""The send-queue handler: delivers each queued email or SMS once. A failed record is reported back
(ReportBatchItemFailures) so only it is retried; after the queue's maxReceiveCount it lands in the DLQ."""
import json
from typing import TYPE_CHECKING

from chalicelib.core import dead_letters, messaging, observability
from chalicelib.core.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


def handle_batch(raw_event: dict, context) -> "PartialItemFailureResponse":
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    def deliver(record) -> None:
        message = json.loads(record.body)
        try:
            messaging.deliver_once(message, context)
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
