"""The bulk queue's handler: S3 notifications of uploaded CSV files, one per SQS record, each run by
flows/portal/bulk_invites.handle, the sends of reviewed jobs that bulk_review.send queues (handle_send), and
the continuations of runs longer than one invocation (handle_continue, bulk_checkpoints). A failed record is reported back (ReportBatchItemFailures) so only it is retried;
why it failed is recorded for the DLQ listing."""
from typing import TYPE_CHECKING

from chalicelib.core import dead_letters
from chalicelib.core.observability import logger
from chalicelib.flows.portal import bulk_checkpoints, bulk_invites

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


def handle_batch(raw_event: dict, context) -> "PartialItemFailureResponse":
    """The bulk queue's handler: each SQS record is one S3 notification (or S3's test event, skipped)."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    def process(record) -> None:
        receive_count = int(record.attributes.approximate_receive_count or 1)
        for upload in bulk_invites.uploads_in(record.body):
            try:
                bulk_invites.handle(upload, receive_count, context)
            except Exception as exc:  # the queue retries; the log says why (keys and codes only, no content)
                logger.exception("bulk upload failed", extra={"key": upload.key, "receive_count": receive_count})
                dead_letters.record_failure("bulk-invites", record.message_id, exc, receive_count)
                raise
        for tenant_id, job_id in bulk_invites.sends_in(record.body):
            try:
                bulk_invites.handle_send(tenant_id, job_id, receive_count, context)
            except Exception as exc:
                logger.exception("bulk send failed", extra={"job_id": job_id, "receive_count": receive_count})
                dead_letters.record_failure("bulk-invites", record.message_id, exc, receive_count)
                raise
        for tenant_id, job_id in bulk_checkpoints.continues_in(record.body):
            try:
                bulk_invites.handle_continue(tenant_id, job_id, receive_count, context)
            except Exception as exc:
                logger.exception("bulk continuation failed", extra={"job_id": job_id,
                                                                    "receive_count": receive_count})
                dead_letters.record_failure("bulk-invites", record.message_id, exc, receive_count)
                raise

    return process_partial_response(event=raw_event, record_handler=process, context=context,
                                    processor=BatchProcessor(event_type=EventType.SQS,
                                                             raise_on_entire_batch_failure=False))
