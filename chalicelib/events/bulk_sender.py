"""The send-bulk queue's handler: a message is a kick (drain the bulk backlog now) or, after a redrive, a
dead-lettered bulk message going back to its business's line."""
import json

from chalicelib.events import sender
from chalicelib.flows import bulk_sending


def handle_batch(raw_event: dict, context) -> dict:
    drained = False
    for record in raw_event.get("Records", []):
        body = json.loads(record["body"])
        if "message_id" in body:
            bulk_sending.redriven(body)
        elif not drained:  # one drain serves every kick of the batch
            bulk_sending.drain(context, sender.render)
            drained = True
    return {"batchItemFailures": []}
